"""Scoring an hour of energy against the device's history (pure: no I/O).

Two methods, both kept for every scored hour:

- `robust` (the default): the modified z-score `0.6745 × (x − median) / MAD` of the hour's Wh against the same
  (day of week, hour of day) cell of the device's recent history. Identical readings give MAD = 0, so the MAD is
  floored; a cell with too little history falls back to (weekday or weekend, hour of day). Anomalous above
  `threshold` (too much) and below `-low_threshold` (a device that stopped).
- `minmax`: the stream-smarts score `(x − min_h) / (max_h − min_h)` over the history of that hour of day, all days of
  the week, as stream-smarts did; anomalous when above 1. It only looks for too much.

A baseline is learnt from the hours before the scored hour's day (UTC), so an hour never scores against itself and
every hour of one day uses one baseline: `Baseline.version` names it, and the service caches it per device and day.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from statistics import median

METHODS = ("robust", "minmax")
MODIFIED_Z = 0.6745  # makes the MAD of a normal distribution comparable to its standard deviation


@dataclass(frozen=True)
class ScoringConfig:
    threshold: float = 3.5  # robust: anomalous when the score is above this
    low_threshold: float = 3.5  # robust: anomalous when the score is below minus this
    history_days: int = 56  # eight weeks: eight samples of each (weekday, hour) cell
    # A MAD from a handful of hours is itself noisy: a cell needs `min_cell` samples, else the (weekday or
    # weekend, hour) cell is used, which needs `min_fallback`; with neither, the hour is not scored.
    min_cell: int = 4
    min_fallback: int = 10
    # The MAD is at least this share of the median, and at least mad_floor_wh: a device whose hours are all
    # identical would otherwise call any change, however small, an anomaly.
    mad_floor_ratio: float = 0.10
    mad_floor_wh: float = 1.0
    min_minmax: int = 2  # minmax needs a range


@dataclass(frozen=True)
class Cell:
    median: float
    mad: float  # floored
    low: float  # the usual range told to people: 10th and 90th percentile of the cell
    high: float
    samples: int

    def to_dict(self) -> dict:
        return {"median": self.median, "mad": self.mad, "low": self.low, "high": self.high, "samples": self.samples}

    @classmethod
    def from_dict(cls, d: dict) -> Cell:
        return cls(**d)


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    samples: int


@dataclass(frozen=True)
class Baseline:
    """What a device's history before `as_of` says of each hour: the cells of both methods."""

    as_of: date  # learnt from the hours before this day
    cells: dict = field(default_factory=dict)  # (weekday 0-6, hour) -> Cell
    fallback: dict = field(default_factory=dict)  # (weekend bool, hour) -> Cell
    hours: dict = field(default_factory=dict)  # hour of day -> Range (minmax)

    @property
    def version(self) -> str:
        return self.as_of.isoformat()

    def to_json(self) -> dict:
        return {"as_of": self.version,
                "cells": {f"{d}:{h}": c.to_dict() for (d, h), c in self.cells.items()},
                "fallback": {f"{int(w)}:{h}": c.to_dict() for (w, h), c in self.fallback.items()},
                "hours": {str(h): [r.low, r.high, r.samples] for h, r in self.hours.items()}}

    @classmethod
    def from_json(cls, doc: dict) -> Baseline:
        def key(text):
            a, b = text.split(":")
            return int(a), int(b)

        return cls(as_of=date.fromisoformat(doc["as_of"]),
                   cells={key(k): Cell.from_dict(v) for k, v in doc["cells"].items()},
                   fallback={(bool(key(k)[0]), key(k)[1]): Cell.from_dict(v) for k, v in doc["fallback"].items()},
                   hours={int(h): Range(*v) for h, v in doc["hours"].items()})


@dataclass(frozen=True)
class Score:
    method: str
    value: float | None  # None: too little history to say
    anomalous: bool
    direction: str | None  # "high", "low" or None
    expected: float | None  # the median (robust) or the top of the usual range (minmax)
    low: float | None
    high: float | None
    basis: str | None  # which history: "weekday-hour", "daytype-hour", "hour"


def _quantile(sorted_values: list[float], q: float) -> float:
    position = (len(sorted_values) - 1) * q
    below = math.floor(position)
    above = min(below + 1, len(sorted_values) - 1)
    return sorted_values[below] + (sorted_values[above] - sorted_values[below]) * (position - below)


def _spread(values: list[float]) -> tuple[float, float]:
    middle = median(values)
    return middle, median(abs(v - middle) for v in values)


def _cell(values: list[float], pooled: float, config: ScoringConfig) -> Cell:
    middle, mad = _spread(values)
    floor = max(config.mad_floor_wh, max(config.mad_floor_ratio, pooled) * abs(middle))
    ordered = sorted(values)
    return Cell(median=middle, mad=max(mad, floor), low=_quantile(ordered, 0.1), high=_quantile(ordered, 0.9),
                samples=len(values))


def _pooled(groups: list[list[float]]) -> float:
    """The device's typical MAD relative to its median, over its cells: a cell of four hours can look far calmer
    than the device is, and this keeps its MAD from being smaller than the device's usual spread."""
    ratios = []
    for values in groups:
        middle, mad = _spread(values)
        if middle > 0:
            ratios.append(mad / middle)
    return median(ratios) if ratios else 0.0


def day_start(hour: datetime) -> datetime:
    return hour.replace(hour=0, minute=0, second=0, microsecond=0)


def history_window(as_of: date, config: ScoringConfig) -> tuple[datetime, datetime]:
    """[start, end) of the hours a baseline for day `as_of` learns from."""
    end = datetime(as_of.year, as_of.month, as_of.day, tzinfo=timezone.utc)
    return end - timedelta(days=config.history_days), end


def learn(history: list[tuple[datetime, float]], as_of: date, config: ScoringConfig) -> Baseline:
    """A baseline from (hour start, Wh) pairs; hours on or after `as_of` are ignored (never score against itself)."""
    start, end = history_window(as_of, config)
    by_cell: dict[tuple[int, int], list[float]] = {}
    by_daytype: dict[tuple[bool, int], list[float]] = {}
    by_hour: dict[int, list[float]] = {}
    for hour, wh in history:
        if not (start <= hour < end):
            continue
        by_cell.setdefault((hour.weekday(), hour.hour), []).append(wh)
        by_daytype.setdefault((hour.weekday() >= 5, hour.hour), []).append(wh)
        by_hour.setdefault(hour.hour, []).append(wh)
    cells = {k: v for k, v in by_cell.items() if len(v) >= config.min_cell}
    pooled = _pooled(list(cells.values()))
    return Baseline(
        as_of=as_of,
        cells={k: _cell(v, pooled, config) for k, v in cells.items()},
        fallback={k: _cell(v, pooled, config) for k, v in by_daytype.items() if len(v) >= config.min_fallback},
        hours={h: Range(min(v), max(v), len(v)) for h, v in by_hour.items() if len(v) >= config.min_minmax},
    )


def robust(baseline: Baseline, hour: datetime, wh: float, config: ScoringConfig) -> Score:
    cell = baseline.cells.get((hour.weekday(), hour.hour))
    basis = "weekday-hour"
    if cell is None:
        cell, basis = baseline.fallback.get((hour.weekday() >= 5, hour.hour)), "daytype-hour"
    if cell is None:
        return Score("robust", None, False, None, None, None, None, None)
    value = MODIFIED_Z * (wh - cell.median) / cell.mad
    direction = "high" if value > config.threshold else "low" if value < -config.low_threshold else None
    return Score("robust", value, direction is not None, direction, cell.median, cell.low, cell.high, basis)


def minmax(baseline: Baseline, hour: datetime, wh: float, config: ScoringConfig) -> Score:
    seen = baseline.hours.get(hour.hour)
    if seen is None:
        return Score("minmax", None, False, None, None, None, None, None)
    # A flat history has no range; the floor keeps the score finite (stream-smarts divided by zero there).
    value = (wh - seen.low) / max(seen.high - seen.low, config.mad_floor_wh)
    anomalous = value > 1
    return Score("minmax", value, anomalous, "high" if anomalous else None, seen.high, seen.low, seen.high, "hour")


def score(baseline: Baseline, hour: datetime, wh: float, config: ScoringConfig) -> dict[str, Score]:
    """Both methods' scores of one hour; `hour` must be on `baseline.as_of`'s day."""
    if hour.date() != baseline.as_of:
        raise ValueError(f"an hour of {hour.date()} scored with the baseline of {baseline.as_of}")
    return {"robust": robust(baseline, hour, wh, config), "minmax": minmax(baseline, hour, wh, config)}
