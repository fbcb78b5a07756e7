"""The seasonal baseline and its backtest, on series whose answer is known."""

from __future__ import annotations

import random
from datetime import datetime, timezone

import pytest

from wattprint.energy import forecast, times

ORIGIN = times.to_us(datetime(2019, 3, 4, tzinfo=timezone.utc))  # a Monday
SLOTS = times.WEEK // times.BUCKET


def weekly(pattern, weeks: int, scale=lambda week: 1.0) -> dict[int, float]:
    """`weeks` weeks before ORIGIN of pattern(slot), week w (1 = the last before ORIGIN) times scale(w)."""
    out = {}
    for w in range(1, weeks + 1):
        start = ORIGIN - w * times.WEEK
        for slot in range(SLOTS):
            out[start + slot * times.BUCKET] = pattern(slot) * scale(w)
    return out


def test_a_repeating_week_is_forecast_exactly_and_backtests_to_zero_error():
    history = weekly(lambda s: (s % 96) / 96 + (s // 96), weeks=7)
    starts = list(range(ORIGIN, ORIGIN + 2 * times.WEEK, times.BUCKET))
    result = forecast.forecast(history, ORIGIN, starts, backtest_weeks=2)
    assert result.values == pytest.approx([(s % SLOTS % 96) / 96 + (s % SLOTS // 96) for s in range(2 * SLOTS)])
    assert result.level == pytest.approx(1.0)
    assert (result.mae, result.smape, result.backtest_buckets) == (pytest.approx(0), pytest.approx(0), 2 * SLOTS)


def test_one_outlier_week_does_not_move_the_median():
    history = weekly(lambda s: 1.0, weeks=7, scale=lambda w: 50.0 if w == 3 else 1.0)
    values, level = forecast.predict(history, ORIGIN, [ORIGIN, ORIGIN + times.BUCKET])
    assert values == pytest.approx([1.0, 1.0]) and level == pytest.approx(1.0)


def test_the_level_follows_the_last_week_within_limits():
    history = weekly(lambda s: 1.0, weeks=7, scale=lambda w: 1.5 if w == 1 else 1.0)
    values, level = forecast.predict(history, ORIGIN, [ORIGIN])
    # The last week's 1.5 is one of the four weeks' medians' inputs: the median stays 1, the level is 1.5.
    assert level == pytest.approx(1.5) and values == pytest.approx([1.5])
    history = weekly(lambda s: 1.0, weeks=7, scale=lambda w: 10.0 if w == 1 else 1.0)
    assert forecast.level(history, ORIGIN) == 2.0
    assert forecast.level({}, ORIGIN) == 1.0


def test_backtest_errors_are_mae_and_smape_of_the_weeks_before():
    rng = random.Random(7)
    noise = {}
    history = weekly(lambda s: 2.0, weeks=7)
    for key in history:
        noise[key] = history[key] + rng.choice([-0.5, 0.5])
    result = forecast.forecast(noise, ORIGIN, [ORIGIN], backtest_weeks=2)
    # Recompute the errors by hand from predict() for the two weeks before the origin.
    errors, ratios = [], []
    for j in (1, 2):
        back = ORIGIN - j * times.WEEK
        week = list(range(back, back + times.WEEK, times.BUCKET))
        predicted, _ = forecast.predict(noise, back, week)
        errors += [abs(f - noise[t]) for t, f in zip(week, predicted)]
        ratios += [2 * abs(f - noise[t]) / (abs(f) + abs(noise[t])) for t, f in zip(week, predicted)]
    assert result.mae == pytest.approx(sum(errors) / len(errors)) and 0.2 < result.mae < 1.0
    assert result.smape == pytest.approx(100 * sum(ratios) / len(ratios))


def test_targets_beyond_a_week_use_the_weeks_before_the_origin():
    history = weekly(lambda s: float(s), weeks=7)
    t = ORIGIN + 3 * times.WEEK + 5 * times.BUCKET  # slot 5, three weeks ahead
    values, _ = forecast.predict(history, ORIGIN, [t])
    assert values == pytest.approx([5.0])
