"""Appliances: clusters that keep their identity and a name from run to run (keys.py, service.py)."""
