"""Which cluster of a run is which known appliance: an optimal assignment of the run's cluster centres to the known
keys' centres (pure: no I/O; numpy and scipy, so only the cluster function, which has the scikit-learn layer, runs it).

Distances are standardised by the run's MeanShift bandwidth: d = ||centre - known|| / bandwidth, in the raw eight
features, the very space and metric the spec's MeanShift clusters in. A cluster is the known appliance it is assigned
to when d <= THRESHOLD (1.0), else a new appliance. Why the bandwidth and why 1:

* MeanShift keeps no two modes closer than one bandwidth (scikit-learn drops the smaller of two that are), so one
  bandwidth is the clustering's own resolution: a mode that moved less than that between runs could not have been
  told apart from where it was, and two appliances closer than that would have been one cluster;
* it adapts to the data with each run, as the bandwidth does, and needs no per-feature spread: a near-constant
  feature (voltage) standardised by its own spread would make a drift of a few volts look like a new appliance,
  while MeanShift itself barely sees it.

The assignment (scipy.optimize.linear_sum_assignment) first maximises how many clusters find a known key within the
threshold, then minimises their total distance: a pair beyond the threshold costs more than all admissible pairs
together, so it is chosen only where nothing admissible is left, and is then refused.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

THRESHOLD = 1.0  # in bandwidths (see the module docstring)


def distances(centres: Sequence[Sequence[float]], known: Sequence[Sequence[float]], bandwidth: float) -> np.ndarray:
    """(len(centres), len(known)) standardised distances."""
    if not (np.isfinite(bandwidth) and bandwidth > 0):
        raise ValueError(f"the bandwidth must be a positive number, got {bandwidth!r}")
    a = np.asarray(centres, dtype=np.float64).reshape(len(centres), -1)
    b = np.asarray(known, dtype=np.float64).reshape(len(known), -1)
    if len(a) and len(b) and a.shape[1] != b.shape[1]:
        raise ValueError(f"centres of {a.shape[1]} features cannot be matched to centres of {b.shape[1]}")
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2)) / bandwidth


def match(centres: Sequence[Sequence[float]], known: Sequence[Sequence[float]], bandwidth: float,
          threshold: float = THRESHOLD) -> list[int | None]:
    """For each centre (a run's clusters, label order), the index of the known centre it is, or None: new."""
    out: list[int | None] = [None] * len(centres)
    if not len(centres) or not len(known):
        return out
    d = distances(centres, known, bandwidth)
    admissible = d <= threshold
    cost = np.where(admissible, d, threshold * (min(d.shape) + 1))
    for row, column in zip(*linear_sum_assignment(cost)):
        if admissible[row, column]:
            out[int(row)] = int(column)
    return out
