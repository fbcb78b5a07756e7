"""The forecast: a seasonal baseline, and its backtest on the device's own history. Pure.

For a bucket t the baseline is the median of the device's energy in the same weekday and quarter hour over the
WEEKS most recent weeks before the origin (a median, so one odd week does not move it), times the recent level:
what the last week before the origin used, over what the same method (from the weeks before that one) expected
for it, held within [1/2, 2] so one odd week cannot blow the level up either. Buckets with no energy recorded
count as 0 kWh.

The backtest runs the same method from origins one and two weeks earlier and compares each with the week that
followed it: MAE in kWh per bucket, sMAPE (2|F−A| / (|F|+|A|), buckets where both are 0 left out) in percent.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median

from .times import BUCKET, WEEK

WEEKS = 4
BACKTEST_WEEKS = 2
WEEKS_NEEDED = WEEKS + 2  # the baseline, the level's week, and one week to backtest on
HISTORY_WEEKS = WEEKS + 1 + BACKTEST_WEEKS
LEVEL_LIMITS = (0.5, 2.0)


@dataclass(frozen=True)
class Forecast:
    starts: list[int]
    values: list[float]
    level: float
    backtest_weeks: int
    backtest_buckets: int
    mae: float | None
    smape: float | None


def _baseline(history: dict[int, float], origin: int, t: int) -> float:
    first = (t - origin) // WEEK + 1  # the nearest week back that lies before the origin
    return median(history.get(t - k * WEEK, 0.0) for k in range(first, first + WEEKS))


def _week(origin: int) -> range:
    return range(origin, origin + WEEK, BUCKET)


def level(history: dict[int, float], origin: int) -> float:
    before = origin - WEEK
    actual = sum(history.get(t, 0.0) for t in _week(before))
    expected = sum(_baseline(history, before, t) for t in _week(before))
    if expected <= 0:
        return 1.0
    low, high = LEVEL_LIMITS
    return min(high, max(low, actual / expected))


def predict(history: dict[int, float], origin: int, starts: list[int]) -> tuple[list[float], float]:
    scale = level(history, origin)
    return [scale * _baseline(history, origin, t) for t in starts], scale


def forecast(history: dict[int, float], origin: int, starts: list[int], backtest_weeks: int) -> Forecast:
    """`history`: bucket start (µs) → kWh for at least the HISTORY_WEEKS weeks before `origin` that exist."""
    values, scale = predict(history, origin, starts)
    errors, ratios = [], []
    for j in range(1, backtest_weeks + 1):
        back = origin - j * WEEK
        week = list(_week(back))
        predicted, _ = predict(history, back, week)
        for t, f in zip(week, predicted):
            a = history.get(t, 0.0)
            errors.append(abs(f - a))
            if abs(f) + abs(a) > 0:
                ratios.append(2 * abs(f - a) / (abs(f) + abs(a)))
    return Forecast(starts, values, scale, backtest_weeks, len(errors),
                    sum(errors) / len(errors) if errors else None,
                    100 * sum(ratios) / len(ratios) if ratios else None)
