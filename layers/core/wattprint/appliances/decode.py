"""Which state each appliance is in, second by second, from the mains' two currents. Pure, plain Python.

A factorial hidden Markov model decoded by Viterbi:

- a hidden state is a combination of one state per appliance (3 x 3 x 2 = 18 in the reference setting);
- its expected readings combine the appliances' learnt levels. Currents do not add exactly: the RMS of a sum is
  sqrt(sum r_i^2 + 2 rho sum_{i<j} r_i r_j), with rho the (unknown) correlation of the appliances' waveforms
  (1: in phase and of one shape, where RMS values add; 0: unrelated, where they add in quadrature), and the peak
  of a sum is at most the sum of the peaks (equal only if they peak at the same instant). The decoder models
  both with such a rho, starting from 1 and re-estimating it, with a scale on the spread, from a first pass;
- a reading's cost is a Huber loss (quadratic within 3 sd, linear beyond) of each current's standardised
  residual, so a switching transient (an inrush spike of a second or two) costs a bounded amount;
- changing an appliance's state costs -log(p / (k - 1)) + log(1 - p), with p its switching probability per
  second learnt from its own recording. The cost of a transition is the sum over the appliances that change,
  so the best predecessor of every combination is found one appliance at a time (for each appliance, the
  cheapest member of each group of combinations that differ only in that appliance, plus its switching cost):
  O(K x appliances) per second instead of O(K^2).

Limits: identical appliances cannot be told apart (only how many of them are in each state); combinations
whose expected readings are closer than their spread are confused; one rho for all pairs is an approximation;
a load that is not in any model is explained as some combination of the known ones.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass
from itertools import product

from ..errors import BadRequest, TooMuchWork
from .model import ApplianceModel
from .recording import MAX_ROWS, Recording

#: K x rows a request may ask for: MAX_ROWS with the reference setting's 18 combinations.
MAX_WORK = 18 * MAX_ROWS
MAX_COMBINATIONS = 256
HUBER = 3.0
#: Measurement noise of the mains reading the first pass assumes (mA, and a share of the level); the second
#: pass scales the spread by what the first pass's residuals show.
NOISE_MA, NOISE_SHARE = 0.5, 0.02


@dataclass(frozen=True)
class Decoded:
    combinations: list[tuple[int, ...]]  # per row, the state index of each appliance
    rho_rms: float
    rho_peak: float
    scale_rms: float
    scale_peak: float

    def states(self, models: list[ApplianceModel]) -> list[list[str]]:
        """Per appliance, its state name at each row."""
        return [[models[a].states[combo[a]].name for combo in self.combinations] for a in range(len(models))]


def combinations(models: list[ApplianceModel]) -> list[tuple[int, ...]]:
    return list(product(*(range(len(m.states)) for m in models)))


def _expected(models, combos, rho_rms, rho_peak, scale_rms, scale_peak):
    """Per combination: (mean rms, 1/sd rms, mean peak, 1/sd peak, log sd rms + log sd peak)."""
    params = []
    for combo in combos:
        states = [m.states[s] for m, s in zip(models, combo)]
        r = [s.rms for s in states]
        p = [s.peak for s in states]
        cross_r = sum(2 * r[i] * r[j] for i in range(len(r)) for j in range(i + 1, len(r)))
        cross_p = sum(2 * p[i] * p[j] for i in range(len(p)) for j in range(i + 1, len(p)))
        mean_r = math.sqrt(sum(x * x for x in r) + rho_rms * cross_r)
        mean_p = math.sqrt(sum(x * x for x in p) + rho_peak * cross_p)
        sd_r = scale_rms * math.sqrt(sum(s.rms_sd ** 2 for s in states) + NOISE_MA ** 2 + (NOISE_SHARE * mean_r) ** 2)
        sd_p = scale_peak * math.sqrt(sum(s.peak_sd ** 2 for s in states) + NOISE_MA ** 2
                                      + (NOISE_SHARE * mean_p) ** 2)
        params.append((mean_r, 1 / sd_r, mean_p, 1 / sd_p, math.log(sd_r) + math.log(sd_p)))
    return params


def _groups(models: list[ApplianceModel], combos: list[tuple[int, ...]]):
    """Per appliance: (its switching cost, the groups of combination indices that differ only in its state)."""
    index = {combo: i for i, combo in enumerate(combos)}
    dims = []
    for a, model in enumerate(models):
        k = len(model.states)
        if k < 2:
            continue
        groups = {}
        for combo, i in index.items():
            groups.setdefault(combo[:a] + combo[a + 1:], []).append(i)
        p = model.switch_p
        cost = -math.log(p / (k - 1)) + math.log(1 - p)
        dims.append((cost, [tuple(g) for g in groups.values()]))
    return dims


def _viterbi(rms: list[float], peak: list[float], params, dims, start: list[float] | None = None,
             keep_at: int | None = None):
    """The best path (a combination index per reading). With `start` (the forward costs carried from earlier
    readings) the decoding continues from them; with `keep_at` also returns the forward costs after that many
    readings (what a later call continues from)."""
    n_combos = len(params)
    cost = list(start) if start is not None else [0.0] * n_combos
    kept = cost[:] if keep_at == 0 else None
    back: list[array] = []
    identity = list(range(n_combos))
    h, h2 = HUBER, HUBER * HUBER / 2
    for y_r, y_p in zip(rms, peak):
        origin = identity[:]
        for switch, groups in dims:
            for group in groups:
                best = min(group, key=cost.__getitem__)
                reach = cost[best] + switch
                for c in group:
                    if cost[c] > reach:
                        cost[c] = reach
                        origin[c] = origin[best]
        cost = [x + (0.5 * zr * zr if (zr := abs((y_r - mr) * ir)) < h else h * zr - h2)
                + (0.5 * zp * zp if (zp := abs((y_p - mp) * ip)) < h else h * zp - h2) + k
                for x, (mr, ir, mp, ip, k) in zip(cost, params)]
        back.append(array("H", origin))
        if keep_at == len(back):
            kept = cost[:]
    c = min(range(n_combos), key=cost.__getitem__)
    path = [0] * len(back)
    for t in range(len(back) - 1, -1, -1):
        path[t] = c
        c = back[t][c]
    return path if keep_at is None else (path, kept)


def _fit_sums(models, combos, path, rms, peak, params) -> dict:
    """Per current: the least-squares sums for rho (of the squared reading on the cross terms) and the
    standardised residuals, over the readings `path` decoded, readings beyond the Huber threshold (transients)
    left out of rho's sums."""
    sums = {}
    for key, values, mean_index, inv_index in (("rms", rms, 0, 1), ("peak", peak, 2, 3)):
        num = den = 0.0
        residuals = []
        for t, c in enumerate(path):
            mean, inv = params[c][mean_index], params[c][inv_index]
            z = (values[t] - mean) * inv
            residuals.append(abs(z))
            if abs(z) >= HUBER:
                continue
            levels = [getattr(m.states[s], key) for m, s in zip(models, combos[c])]
            square = sum(x * x for x in levels)
            cross = sum(2 * levels[i] * levels[j] for i in range(len(levels)) for j in range(i + 1, len(levels)))
            num += (values[t] ** 2 - square) * cross
            den += cross * cross
        sums[key] = (num, den, residuals)
    return sums


def _rho(num: float, den: float) -> float:
    return min(1.0, max(0.0, num / den)) if den else 1.0


def _calibrate(models, combos, path, rms, peak, params):
    """rho and the residuals' spread scale (from their median), from the rows a first pass decoded."""
    fit = {}
    for key, (num, den, residuals) in _fit_sums(models, combos, path, rms, peak, params).items():
        residuals.sort()
        scale = max(1.0, 1.4826 * residuals[len(residuals) // 2]) if residuals else 1.0
        fit[key] = (_rho(num, den), scale)
    return fit


def decode(models: list[ApplianceModel], recording: Recording, calibrate: bool = True) -> Decoded:
    if not models:
        raise BadRequest("no appliance model to decode with: train one first (PUT /appliances/models/{name})",
                         field="models")
    combos = combinations(models)
    if len(combos) > MAX_COMBINATIONS:
        raise TooMuchWork(f"{len(combos)} state combinations: at most {MAX_COMBINATIONS}; label with fewer "
                          "appliances at once", field="models")
    if len(combos) * len(recording) > MAX_WORK:
        raise TooMuchWork(f"{len(recording)} rows x {len(combos)} state combinations is more than {MAX_WORK}: "
                          f"send at most {MAX_WORK // len(combos)} rows at a time", field="recording")
    dims = _groups(models, combos)
    params = _expected(models, combos, 1.0, 1.0, 1.0, 1.0)
    path = _viterbi(recording.rms, recording.peak, params, dims)
    rho_r = rho_p = scale_r = scale_p = 1.0
    if calibrate:
        fit = _calibrate(models, combos, path, recording.rms, recording.peak, params)
        (rho_r, scale_r), (rho_p, scale_p) = fit["rms"], fit["peak"]
        params = _expected(models, combos, rho_r, rho_p, scale_r, scale_p)
        path = _viterbi(recording.rms, recording.peak, params, dims)
    return Decoded([combos[c] for c in path], rho_r, rho_p, scale_r, scale_p)


# ------------------------------------------------------------------------------------------------- live

#: Readings a live decision waits for: the state at a reading is decided once LAG later readings are in (a
#: fixed-lag smoother), so a one- or two-second transient at the end of a batch is not reported as a switch.
LAG = 3
#: Forward costs are kept relative to their minimum and capped: a combination far behind stays reachable by a
#: switch, and the carried numbers stay small.
COST_CAP = 1e4
#: Per reading, how much of the live fit's sums is kept: they follow the last ~FORGET_READINGS readings.
FORGET_READINGS = 1800
_KEEP = 1 - 1 / FORGET_READINGS
#: A live fit is used once its sums hold this many readings' worth (before: rho 1, spread scale 1).
MIN_FIT_READINGS = 120


@dataclass(frozen=True)
class Carried:
    """A device's decoder between calls: the forward cost of every combination after its last decided reading,
    the readings not yet decided (at most LAG: (seq, time, rms, peak)), and the running fit of rho and the spread
    (per current: rho's two sums, the sum of clipped |z|, the readings' weight), the live form of `decode`'s
    second pass."""
    cost: list[float]
    pending: list[tuple]
    fit: dict  # "rms"/"peak" -> [num, den, sum |z|, weight]

    def to_json(self) -> dict:
        return {"cost": self.cost, "pending": [list(p) for p in self.pending], "fit": self.fit}

    @classmethod
    def from_json(cls, doc: dict) -> "Carried":
        return cls(list(doc["cost"]), [tuple(p) for p in doc["pending"]], dict(doc["fit"]))

    def calibration(self) -> tuple[float, float, float, float]:
        """(rho rms, rho peak, scale rms, scale peak) from the running fit (1s until it holds enough)."""
        out = []
        for key in ("rms", "peak"):
            num, den, z, weight = self.fit[key]
            fitted = weight >= MIN_FIT_READINGS
            # |z| of a normal reading averages sqrt(2/pi) sd; clipping at HUBER barely moves that.
            out.append((_rho(num, den) if fitted else 1.0, max(1.0, z / weight * 1.2533) if fitted else 1.0))
        return out[0][0], out[1][0], out[0][1], out[1][1]


def _fresh(n_combos: int) -> Carried:
    return Carried([0.0] * n_combos, [], {"rms": [0.0, 0.0, 0.0, 0.0], "peak": [0.0, 0.0, 0.0, 0.0]})


def decode_live(models: list[ApplianceModel], carried: Carried | None, readings: list[tuple],
                lag: int = LAG) -> tuple[list[tuple[tuple, tuple[int, ...]]], Carried]:
    """Continue a device's decoding with new readings ((seq, time, rms, peak), in order): the readings decided
    now, each with its combination, and what to carry to the next call. The same Viterbi as `decode`, its forward
    costs carried across calls, with rho and the spread fitted as the readings come (`Carried.calibration`).
    `carried` None, or for another combination count (the models changed): a fresh start."""
    combos = combinations(models)
    if not 0 < len(combos) <= MAX_COMBINATIONS:
        raise TooMuchWork(f"{len(combos)} state combinations: between 1 and {MAX_COMBINATIONS}", field="models")
    if carried is None or len(carried.cost) != len(combos):
        carried = _fresh(len(combos))
    pending = carried.pending + list(readings)
    if len(pending) <= lag:
        return [], Carried(carried.cost, pending, carried.fit)
    decided = len(pending) - lag
    params = _expected(models, combos, *carried.calibration())
    rms, peak = [r[2] for r in pending[:decided]], [r[3] for r in pending[:decided]]
    path, kept = _viterbi([r[2] for r in pending], [r[3] for r in pending], params, _groups(models, combos),
                          start=carried.cost, keep_at=decided)
    path = path[:decided]
    # rho's sums at rho 1, as the batch's first pass takes them (which readings are transients is judged there);
    # the spread from the residuals under the rho and scale that decoded.
    plain = _fit_sums(models, combos, path, rms, peak, _expected(models, combos, 1.0, 1.0, 1.0, 1.0))
    used = _fit_sums(models, combos, path, rms, peak, params)
    keep = _KEEP ** decided
    fit = {}
    for key in ("rms", "peak"):
        (num, den, _), residuals = plain[key], used[key][2]
        old_num, old_den, old_z, old_weight = carried.fit[key]
        fit[key] = [old_num * keep + num, old_den * keep + den,
                    old_z * keep + sum(min(z, HUBER) for z in residuals), old_weight * keep + decided]
    low = min(kept)
    cost = [min(COST_CAP, x - low) for x in kept]
    return [(pending[t], combos[path[t]]) for t in range(decided)], Carried(cost, pending[decided:], fit)
