"""Scoring hours against a device's own history: both methods, by hand and on generated households."""

from datetime import date, datetime, timedelta, timezone

import pytest

from local.usage_synth import household
from wattprint.alerts import scoring

UTC = timezone.utc
CONFIG = scoring.ScoringConfig()


def _hours(start: datetime, values):
    return [(start + timedelta(hours=i), v) for i, v in enumerate(values)]


def test_minmax_reproduces_the_stream_smarts_example():
    # Hour-4 history spanning 108–363 Wh; 1500 Wh between 04:00 and 05:00 scores 5.4588.
    history = [(datetime(2026, 3, d, 4, tzinfo=UTC), wh) for d, wh in zip(range(1, 8), (108, 200, 363, 150, 250,
                                                                                          300, 120))]
    baseline = scoring.learn(history, date(2026, 3, 9), CONFIG)
    result = scoring.minmax(baseline, datetime(2026, 3, 9, 4, tzinfo=UTC), 1500, CONFIG)
    assert result.value == pytest.approx(5.4588, abs=5e-5)
    assert result.anomalous and result.direction == "high"
    inside = scoring.minmax(baseline, datetime(2026, 3, 9, 4, tzinfo=UTC), 363, CONFIG)
    assert inside.value == pytest.approx(1.0) and not inside.anomalous


def test_robust_score_by_hand():
    # Four Mondays at 04:00: 100, 110, 120, 130 Wh → median 115, MAD 10 (floored at 10% of 115 = 11.5).
    history = [(datetime(2026, 3, 2, 4, tzinfo=UTC) + timedelta(weeks=w), wh) for w, wh in
               enumerate((100, 110, 120, 130))]
    baseline = scoring.learn(history, date(2026, 3, 30), CONFIG)
    result = scoring.robust(baseline, datetime(2026, 3, 30, 4, tzinfo=UTC), 215, CONFIG)
    assert result.value == pytest.approx(0.6745 * (215 - 115) / 11.5)
    assert result.anomalous and result.direction == "high" and result.basis == "weekday-hour"
    low = scoring.robust(baseline, datetime(2026, 3, 30, 4, tzinfo=UTC), 0, CONFIG)
    assert low.anomalous and low.direction == "low"
    normal = scoring.robust(baseline, datetime(2026, 3, 30, 4, tzinfo=UTC), 125, CONFIG)
    assert not normal.anomalous and normal.direction is None


def test_identical_readings_floor_the_mad():
    history = [(datetime(2026, 3, 2, 4, tzinfo=UTC) + timedelta(weeks=w), 200.0) for w in range(4)]
    baseline = scoring.learn(history, date(2026, 3, 30), CONFIG)
    assert baseline.cells[(0, 4)].mad == pytest.approx(20.0)
    assert not scoring.robust(baseline, datetime(2026, 3, 30, 4, tzinfo=UTC), 210, CONFIG).anomalous
    assert scoring.robust(baseline, datetime(2026, 3, 30, 4, tzinfo=UTC), 400, CONFIG).anomalous


def test_thin_cells_fall_back_to_weekday_or_weekend_then_to_no_score():
    # Two weeks of weekdays only: no (weekday, hour) cell has 4 samples, the weekday-hour pool has 10.
    start = datetime(2026, 3, 2, tzinfo=UTC)
    history = [(start + timedelta(days=d, hours=4), 100.0 + d) for d in range(14) if (start + timedelta(days=d))
               .weekday() < 5]
    baseline = scoring.learn(history, date(2026, 3, 16), CONFIG)
    result = scoring.robust(baseline, datetime(2026, 3, 16, 4, tzinfo=UTC), 104, CONFIG)
    assert result.basis == "daytype-hour" and result.value is not None
    # A Saturday (its own baseline day) has neither a cell nor a weekend pool: not scored, not anomalous.
    saturday = scoring.learn(history, date(2026, 3, 21), CONFIG)
    unscored = scoring.robust(saturday, datetime(2026, 3, 21, 4, tzinfo=UTC), 104, CONFIG)
    assert unscored.value is None and not unscored.anomalous


def test_an_hour_never_scores_against_its_own_day():
    day = date(2026, 3, 30)
    history = [(datetime(2026, 3, 2, 4, tzinfo=UTC) + timedelta(weeks=w), 100.0) for w in range(4)]
    with_today = history + [(datetime(2026, 3, 30, 4, tzinfo=UTC), 5000.0), (datetime(2026, 3, 30, 5, tzinfo=UTC), 1)]
    assert scoring.learn(with_today, day, CONFIG) == scoring.learn(history, day, CONFIG)
    with pytest.raises(ValueError):
        scoring.score(scoring.learn(history, day, CONFIG), datetime(2026, 3, 31, 4, tzinfo=UTC), 1, CONFIG)


def test_baseline_round_trips_through_json():
    house = household(1, days=40, spikes=1, stuck=0, dead=0)
    baseline = scoring.learn(house.hours, date(2026, 2, 10), CONFIG)
    again = scoring.Baseline.from_json(baseline.to_json())
    assert again == baseline and again.version == "2026-02-10"


def test_robust_finds_injected_anomalies_in_generated_households():
    # The bench reports the same over more households, seeds and noise levels; this is the floor.
    tp = fp = fn = 0
    for device in (1, 2, 3):
        house = household(device, seed=7)
        cache = {}
        for hour, wh in house.hours:
            if hour.date() not in cache:
                cache[hour.date()] = scoring.learn(house.hours, hour.date(), CONFIG)
            baseline = cache[hour.date()]
            result = scoring.robust(baseline, hour, wh, CONFIG)
            truth = hour in house.anomalies
            tp += result.anomalous and truth
            fp += result.anomalous and not truth
            fn += truth and not result.anomalous
    assert tp / (tp + fp) >= 0.9 and tp / (tp + fn) >= 0.9, (tp, fp, fn)
