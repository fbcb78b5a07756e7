"""An appliance's states, learnt from a recording of that appliance alone. Pure, plain Python (no numpy: the API
function that runs this must start fast).

Method: k-means on the logarithm of (effective, maximum) current (a reading's spread grows with its level, so
on a log scale an OFF state of 2 mA and an ON state of 100 mA are clusters of a like width), for k = MAX_STATES
.. 1 (or exactly
the number of names given). The data's k is the largest whose states all hold at least MIN_SHARE of the rows
and are pairwise separated (Ashman's D >= MIN_SEPARATION on either current). Each state keeps the median and
the MAD-based spread of both currents of its rows, which switching transients (a few seconds each) barely move.
States are named by level, lowest first: OFF, IDLE, ON (or the given names, in that order).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

from ..errors import InvalidModel
from .recording import Recording

MAX_STATES = 4
DEFAULT_NAMES = {1: ("ON",), 2: ("OFF", "ON"), 3: ("OFF", "IDLE", "ON"), 4: ("OFF", "IDLE", "ON", "HIGH")}
MIN_ROWS = 60  # a minute of 1 s rows
MIN_SHARE = 0.01
MIN_STATE_ROWS = 10
MIN_SEPARATION = 3.0
LOG_OFFSET_MA = 0.5  # about the noise floor: readings below it are all alike on the log scale
#: Spread floors (mA, and a share of the level): a quantised or very steady reading must not make a state's
#: likelihood infinitely narrow.
MIN_SD_MA, MIN_SD_SHARE = 0.05, 0.005
#: The switching probability per second learnt from the recording is kept within these bounds.
MIN_SWITCH_P, MAX_SWITCH_P = 1e-5, 0.05
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.()/-]{0,63}$")
_STATE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")


@dataclass(frozen=True)
class State:
    name: str
    rms: float  # mA, median
    rms_sd: float
    peak: float  # mA, median
    peak_sd: float
    share: float  # of the training rows


@dataclass(frozen=True)
class ApplianceModel:
    name: str
    states: tuple[State, ...]  # lowest level first
    switch_p: float  # probability that the appliance changes state in a given second
    rows: int  # training rows

    def to_json(self) -> dict:
        return {"name": self.name, "states": [asdict(s) for s in self.states], "switch_p": self.switch_p,
                "rows": self.rows}

    @classmethod
    def from_json(cls, data: dict) -> "ApplianceModel":
        return cls(data["name"], tuple(State(**s) for s in data["states"]), data["switch_p"], data["rows"])


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidModel("an appliance name is 1 to 64 letters, digits, spaces or _ . ( ) / -, starting with a "
                           f"letter or digit: {name!r}", field="name")
    return name


def parse_state_names(text: str | None) -> tuple[str, ...] | None:
    """`OFF,IDLE,ON` → ('OFF', 'IDLE', 'ON'), lowest level first; None/empty: named by level."""
    if text is None or not text.strip():
        return None
    names = tuple(part.strip() for part in text.split(","))
    bad = [n for n in names if not _STATE.match(n)]
    if bad:
        raise InvalidModel(f"state names are 1 to 32 letters, digits, _ or -: {bad[0]!r}", field="states")
    if len(set(n.upper() for n in names)) != len(names):
        raise InvalidModel(f"state names repeat: {text!r}", field="states")
    if len(names) > MAX_STATES:
        raise InvalidModel(f"at most {MAX_STATES} states, {len(names)} named", field="states")
    return names


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2


def _spread(values: list[float], centre: float) -> float:
    mad = _median([abs(v - centre) for v in values]) * 1.4826
    return max(mad, MIN_SD_MA, MIN_SD_SHARE * centre)


def _kmeans(points: list[tuple[float, float]], k: int, iterations: int = 50) -> list[int]:
    """Lloyd's algorithm from centres at quantiles of the first coordinate (deterministic)."""
    order = sorted(range(len(points)), key=lambda i: points[i][0])
    centres = [points[order[min(len(order) - 1, int((j + 0.5) * len(order) / k))]] for j in range(k)]
    assignment = [0] * len(points)
    for _ in range(iterations):
        changed = False
        for i, (x, y) in enumerate(points):
            best = min(range(k), key=lambda j: (x - centres[j][0]) ** 2 + (y - centres[j][1]) ** 2)
            if best != assignment[i]:
                assignment[i], changed = best, True
        sums = [[0.0, 0.0, 0] for _ in range(k)]
        for (x, y), j in zip(points, assignment):
            s = sums[j]
            s[0] += x
            s[1] += y
            s[2] += 1
        centres = [(s[0] / s[2], s[1] / s[2]) if s[2] else centres[j] for j, s in enumerate(sums)]
        if not changed:
            break
    return assignment


def _states(recording: Recording, assignment: list[int], k: int) -> list[State]:
    groups: list[list[int]] = [[] for _ in range(k)]
    for i, j in enumerate(assignment):
        groups[j].append(i)
    states = []
    for rows in groups:
        if not rows:
            continue
        rms = [recording.rms[i] for i in rows]
        peak = [recording.peak[i] for i in rows]
        centre_rms, centre_peak = _median(rms), _median(peak)
        states.append(State("", centre_rms, _spread(rms, centre_rms), centre_peak, _spread(peak, centre_peak),
                            len(rows) / len(recording)))
    return sorted(states, key=lambda s: (s.rms, s.peak))


def _separated(a: State, b: State) -> bool:
    d_rms = math.sqrt(2) * abs(a.rms - b.rms) / math.hypot(a.rms_sd, b.rms_sd)
    d_peak = math.sqrt(2) * abs(a.peak - b.peak) / math.hypot(a.peak_sd, b.peak_sd)
    return max(d_rms, d_peak) >= MIN_SEPARATION


def _acceptable(states: list[State], k: int, rows: int) -> bool:
    if len(states) != k:
        return False
    if any(s.share < MIN_SHARE or s.share * rows < MIN_STATE_ROWS for s in states):
        return False
    return all(_separated(a, b) for i, a in enumerate(states) for b in states[i + 1:])


def _switch_p(recording: Recording, states: list[State]) -> float:
    """Changes of state per second in the recording, once changes that do not last 3 s (transients) are ignored."""
    def nearest(i: int) -> int:
        x, y = recording.rms[i], recording.peak[i]
        return min(range(len(states)), key=lambda j: ((x - states[j].rms) / states[j].rms_sd) ** 2
                   + ((y - states[j].peak) / states[j].peak_sd) ** 2)

    labels = [nearest(i) for i in range(len(recording))]
    switches, current, run_state, run = 0, labels[0], labels[0], 0
    for label in labels:
        if label == run_state:
            run += 1
        else:
            run_state, run = label, 1
        if run == 3 and run_state != current:
            switches, current = switches + 1, run_state
    p = (switches + 1) / (len(labels) + 2)
    return min(MAX_SWITCH_P, max(MIN_SWITCH_P, p))


def learn(name: str, recording: Recording, state_names: tuple[str, ...] | None = None) -> ApplianceModel:
    check_name(name)
    rows = len(recording)
    if rows < MIN_ROWS:
        raise InvalidModel(f"{rows} reading rows are too few to learn states from: at least {MIN_ROWS}",
                           field="recording")
    points = [(math.log1p(r / LOG_OFFSET_MA), math.log1p(p / LOG_OFFSET_MA))
              for r, p in zip(recording.rms, recording.peak)]
    candidates = (len(state_names),) if state_names else range(MAX_STATES, 0, -1)
    chosen = None
    found = 1
    for k in candidates:
        states = _states(recording, _kmeans(points, k), k) if k > 1 else _states(recording, [0] * rows, 1)
        if _acceptable(states, k, rows):
            chosen = states
            break
    if chosen is None:
        for k in range(len(state_names) - 1, 0, -1):
            states = _states(recording, _kmeans(points, k), k) if k > 1 else _states(recording, [0] * rows, 1)
            if _acceptable(states, k, rows):
                found = k
                break
        raise InvalidModel(f"{len(state_names)} state names given, but the recording shows {found} distinct "
                           f"state(s) (each needs {MIN_SHARE:.0%} of the rows and levels apart from the others)",
                           field="states")
    names = state_names or DEFAULT_NAMES[len(chosen)]
    named = tuple(State(n, s.rms, s.rms_sd, s.peak, s.peak_sd, s.share) for n, s in zip(names, chosen))
    return ApplianceModel(name, named, _switch_p(recording, list(named)), rows)
