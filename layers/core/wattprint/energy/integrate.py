"""Readings → energy per 15-minute bucket. Pure: no I/O, integer microseconds throughout.

A reading starts an interval that runs to the device's next reading (from either source). A `kW` reading is a
power held constant over its interval (last observation carried forward); a `kWh` reading is the energy of its
interval, spread over it in proportion to time. An interval longer than the maximum gap is a gap: it carries
nothing and covers nothing, so the buckets it crosses show a coverage below 1. The device's last reading has
no next one yet: its interval takes the device's typical spacing (the median of its recent intervals that are
not gaps) and the buckets it reaches are flagged `estimated_end`; with no such interval it carries nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median
from typing import Iterable, Sequence

from .times import BUCKET, HOUR, floor

KW, KWH = 0, 1  # the units column
UNITS = {"kW": KW, "kWh": KWH}
UNIT_NAMES = {KW: "kW", KWH: "kWh"}

SENSOR, API = 0, 1  # the source column; at one instant the sensor's reading comes first

# Flags. A bucket stores how much of its time each kind covers (µs, additive like the energy, so a change can be
# applied as a difference); a flag is set when that time is not 0. A reading's flags hold only ARRIVAL_TIME.
ESTIMATED_END = 1  # time of the last reading's interval, whose end is an estimate
ARRIVAL_TIME = 2  # time of a sensor reading timed by its arrival (the sensor's clock did not advance)
FLAG_NAMES = {ESTIMATED_END: "estimated_end", ARRIVAL_TIME: "arrival_time"}

SPACING_INTERVALS = 16  # recent intervals whose median is the typical spacing
_KW_US_PER_KWH = HOUR  # energy is accumulated in kW·µs, exact for whole-second kW readings


@dataclass(frozen=True)
class Reading:
    ts: int  # µs since the epoch
    value: float
    units: int = KW
    flags: int = 0  # ARRIVAL_TIME for a sensor reading timed by its arrival
    source: int = API


@dataclass
class Bucket:
    start: int
    kwh: float = 0.0
    covered: int = 0  # µs of the bucket's 15 minutes that some interval covers
    estimated: int = 0  # µs of it covered by the last reading's interval (its end estimated)
    arrival: int = 0  # µs of it covered by arrival-timed readings

    @property
    def coverage(self) -> float:
        return self.covered / BUCKET

    @property
    def flags(self) -> int:
        return flags_of(self.estimated, self.arrival)


def flags_of(estimated: int, arrival: int) -> int:
    return (ESTIMATED_END if estimated else 0) | (ARRIVAL_TIME if arrival else 0)


def flag_names(flags: int) -> list[str]:
    return [name for bit, name in FLAG_NAMES.items() if flags & bit]


def typical_spacing(times: Sequence[int], max_gap: int) -> int | None:
    """The median of the last SPACING_INTERVALS intervals between `times` (sorted) that are neither empty nor
    gaps; None when there is none."""
    steps = [b - a for a, b in zip(times, times[1:]) if 0 < b - a <= max_gap][-SPACING_INTERVALS:]
    return int(median(steps)) if steps else None


def intervals(readings: Sequence[Reading], max_gap: int, last_spacing: int | None):
    """(start, end, reading, extra_flags) for every interval that carries energy, in time order.

    `readings` are sorted by (ts, source). `last_spacing` is None when the last reading given is not the device's
    last (its interval ends at a reading the caller did not load: it is not used), else the spacing its interval
    takes (0: unknown, it carries nothing)."""
    for reading, following in zip(readings, readings[1:]):
        if 0 < following.ts - reading.ts <= max_gap:
            yield reading.ts, following.ts, reading, 0
    if readings and last_spacing and last_spacing <= max_gap:
        last = readings[-1]
        yield last.ts, last.ts + last_spacing, last, ESTIMATED_END


def power(reading: Reading, start: int, end: int) -> float:
    """The kW a reading holds over its interval [start, end): a kW reading's value, a kWh reading's energy spread
    over the interval."""
    return reading.value if reading.units == KW else reading.value * _KW_US_PER_KWH / (end - start)


def buckets(readings: Sequence[Reading], max_gap: int, last_spacing: int | None,
            lo: int | None = None, hi: int | None = None) -> dict[int, Bucket]:
    """The buckets (by start) that some interval reaches, limited to starts in [lo, hi) when given."""
    out: dict[int, Bucket] = {}
    for start, end, reading, extra in intervals(readings, max_gap, last_spacing):
        arrival = reading.flags & ARRIVAL_TIME
        rate = power(reading, start, end)  # kW·µs per µs of the interval
        at = floor(start)
        if lo is not None and at < lo:
            at = lo if lo < end else end
        while at < end and (hi is None or at < hi):
            overlap = min(end, at + BUCKET) - max(start, at)
            if overlap > 0:
                bucket = out.get(at)
                if bucket is None:
                    bucket = out[at] = Bucket(at)
                bucket.kwh += rate * overlap
                bucket.covered += overlap
                if extra:
                    bucket.estimated += overlap
                if arrival:
                    bucket.arrival += overlap
            at += BUCKET
    for bucket in out.values():
        bucket.kwh /= _KW_US_PER_KWH
    return out


def aggregate(rows: Iterable[tuple[int, float, int, int, int]], lo: int, hi: int, step: int) -> list[dict]:
    """Dense series over [lo, hi) at `step` (a multiple of 15 minutes) from stored (start, kwh, covered, estimated,
    arrival) rows: summed, coverage the covered share of each step; steps with no row are 0."""
    series: dict[int, list] = {}
    for start, kwh, covered, estimated, arrival in rows:
        at = floor(start, step)
        total = series.setdefault(at, [0.0, 0, 0, 0])
        total[0] += kwh
        total[1] += covered
        total[2] += estimated
        total[3] += arrival
    out = []
    for at in range(lo, hi, step):
        value, covered, estimated, arrival = series.get(at, (0.0, 0, 0, 0))
        out.append({"start": at, "value": value, "coverage": covered / step, "flags": flags_of(estimated, arrival)})
    return out
