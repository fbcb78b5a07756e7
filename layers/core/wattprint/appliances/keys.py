"""Which cluster of a run is which known appliance: an optimal assignment of the run's cluster centres to the known
keys' centres (pure: no I/O; numpy and scipy, so only the cluster function, which has the scikit-learn layer, runs it).

Distances are standardised by the run's own feature spread: each of the eight features is divided by its standard
deviation over the run's events, and d is the Euclidean distance in those units. A cluster is the known appliance
it is assigned to when d <= THRESHOLD (0.5), else a new appliance. Why:

* the features have unlike units and ranges (watts in thousands, amperes in tens, volts near 230): unscaled, power
  alone would decide; scaled by the whole run's spread, each feature counts by how much it varies in the house;
* the spread of a run is the spread of all the appliances' events, which changes little from run to run (each run
  re-clusters every event so far). MeanShift's bandwidth, the other scale at hand, does not: estimate_bandwidth
  jumps by an order of magnitude when a new appliance makes every cluster's share fall under its 20% quantile
  (measured: 33 → 583 on generated data), and would then merge appliances far apart;
* 0.5 of a spread: appliances of one house are typically more than one spread apart in several features at once
  (d well over 1), while a cluster's centre moves by a few hundredths of a spread from one run to the next, as each
  run adds a threshold's worth of events to all those before.

Known limit: a feature that drifts for every appliance at once without separating them (the grid's voltage between
seasons) moves every centre by its whole drift in spreads; a drift of half its spread would make every appliance new.
The assignment (scipy.optimize.linear_sum_assignment) first maximises how many clusters find a known key within the
threshold, then minimises their total distance: a pair beyond the threshold costs more than all admissible pairs
together, so it is chosen only where nothing admissible is left, and is then refused.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

THRESHOLD = 0.5  # in the run's feature spreads (see the module docstring)


def spread_scale(sd) -> np.ndarray:
    """The distances' scale from each feature's standard deviation over a run's events: 1 where it is 0 (a constant
    feature: every centre has the same value, so any scale gives the distance 0)."""
    sd = np.asarray(sd, dtype=np.float64)
    return np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)


def distances(centres: Sequence[Sequence[float]], known: Sequence[Sequence[float]], scale) -> np.ndarray:
    """(len(centres), len(known)) distances in units of `scale` (spread_scale(), one per feature)."""
    scale = np.asarray(scale, dtype=np.float64)
    if not (np.isfinite(scale).all() and (scale > 0).all()):
        raise ValueError(f"every feature's scale must be a positive number, got {scale.tolist()!r}")
    a = np.asarray(centres, dtype=np.float64).reshape(len(centres), -1) / scale
    b = np.asarray(known, dtype=np.float64).reshape(len(known), -1) / scale
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2))


def match(centres: Sequence[Sequence[float]], known: Sequence[Sequence[float]], scale,
          threshold: float = THRESHOLD) -> list[int | None]:
    """For each centre (a run's clusters, label order), the index of the known centre it is, or None: new."""
    out: list[int | None] = [None] * len(centres)
    if not len(centres) or not len(known):
        return out
    d = distances(centres, known, scale)
    admissible = d <= threshold
    cost = np.where(admissible, d, threshold * (min(d.shape) + 1))
    for row, column in zip(*linear_sum_assignment(cost)):
        if admissible[row, column]:
            out[int(row)] = int(column)
    return out
