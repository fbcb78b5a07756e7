"""Clustering: MeanShift runs over the stored events (features, fit, labels), their claims and leases (runs) and
the hourly sweep. Entry: service.py. Imports nothing: the sweep function must not load numpy."""
