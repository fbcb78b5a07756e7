"""Readings → 15-minute buckets: the issue's hand-computed cases, and an independent integration."""

from __future__ import annotations

import bisect
from datetime import datetime, timezone
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wattprint.energy import integrate, times
from wattprint.energy.integrate import ARRIVAL_TIME, ESTIMATED_END, KW, KWH, Reading

MIN = 60 * times.SECOND
T0 = times.to_us(datetime(2019, 1, 5, tzinfo=timezone.utc))
GAP = 2 * times.HOUR


def at(minutes: float) -> int:
    return T0 + int(minutes * MIN)


def test_five_minute_kw_readings_1_4_1_make_half_a_kwh():
    readings = [Reading(at(0), 1), Reading(at(5), 4), Reading(at(10), 1), Reading(at(15), 0)]
    out = integrate.buckets(readings, GAP, None)
    assert list(out) == [T0]
    assert out[T0].kwh == pytest.approx(0.5, abs=1e-12)
    assert out[T0].coverage == 1.0 and out[T0].flags == 0


def test_hourly_12_kwh_is_3_per_quarter_and_the_last_takes_the_typical_spacing():
    # The FleetEnergyManagement spec's example: 12 at 00:00, 26 at 01:00.
    readings = [Reading(at(0), 12, KWH), Reading(at(60), 26, KWH)]
    spacing = integrate.typical_spacing([r.ts for r in readings], GAP)
    assert spacing == times.HOUR
    out = integrate.buckets(readings, GAP, spacing)
    assert [out[at(m)].kwh for m in (0, 15, 30, 45)] == [3, 3, 3, 3]
    assert [out[at(m)].kwh for m in (60, 75, 90, 105)] == [6.5] * 4
    assert all(out[at(m)].flags == ESTIMATED_END for m in (60, 75, 90, 105))
    assert all(out[at(m)].flags == 0 for m in (0, 15, 30, 45))
    assert sum(b.kwh for b in out.values()) == 38  # conserved


def test_a_reading_straddling_a_boundary_splits_by_time():
    readings = [Reading(at(10), 6), Reading(at(20), 0)]  # 6 kW for 10 minutes: 5 before 00:15, 5 after
    out = integrate.buckets(readings, GAP, None)
    assert out[at(0)].kwh == pytest.approx(0.5) and out[at(15)].kwh == pytest.approx(0.5)
    assert out[at(0)].coverage == pytest.approx(1 / 3) and out[at(15)].coverage == pytest.approx(1 / 3)
    kwh = [Reading(at(10), 1, KWH), Reading(at(40), 0, KWH)]  # 1 kWh over 30 minutes: 1/6, 1/2, 1/3
    out = integrate.buckets(kwh, GAP, None)
    assert [out[at(m)].kwh for m in (0, 15, 30)] == pytest.approx([1 / 6, 1 / 2, 1 / 3])


def test_a_gap_over_the_maximum_carries_nothing_and_lowers_coverage():
    readings = [Reading(at(0), 2), Reading(at(5), 2), Reading(at(5 + 121), 2), Reading(at(135), 0)]
    out = integrate.buckets(readings, GAP, None)
    assert out[at(0)].kwh == pytest.approx(2 * 5 / 60) and out[at(0)].coverage == pytest.approx(1 / 3)
    assert at(30) not in out  # inside the gap: no energy, no coverage
    assert out[at(120)].kwh == pytest.approx(2 * 9 / 60) and out[at(120)].coverage == pytest.approx(9 / 15)
    # Exactly the maximum is not a gap.
    out = integrate.buckets([Reading(at(0), 1), Reading(at(120), 0)], GAP, None)
    assert sum(b.kwh for b in out.values()) == pytest.approx(2)


def test_flags_follow_the_time_they_mark():
    readings = [Reading(at(0), 1, flags=ARRIVAL_TIME), Reading(at(20), 1)]
    out = integrate.buckets(readings, GAP, 20 * MIN)
    assert (out[at(15)].arrival, out[at(15)].estimated) == (5 * MIN, 10 * MIN)
    assert out[at(0)].flags == ARRIVAL_TIME
    assert out[at(15)].flags == ARRIVAL_TIME | ESTIMATED_END
    assert out[at(30)].flags == ESTIMATED_END
    assert integrate.flag_names(ARRIVAL_TIME | ESTIMATED_END) == ["estimated_end", "arrival_time"]


def test_the_last_reading_with_no_spacing_known_carries_nothing():
    assert integrate.buckets([Reading(at(0), 5)], GAP, 0) == {}
    assert integrate.typical_spacing([at(0)], GAP) is None
    assert integrate.typical_spacing([at(0), at(200)], GAP) is None  # only a gap
    assert integrate.typical_spacing([at(m) for m in (0, 1, 2, 4, 200)], GAP) == int(1.0 * MIN)


def test_limits_clip_to_the_buckets_asked_for():
    readings = [Reading(at(0), 4), Reading(at(60), 0)]
    out = integrate.buckets(readings, GAP, None, lo=at(15), hi=at(45))
    assert sorted(out) == [at(15), at(30)] and out[at(15)].kwh == pytest.approx(1)


def test_aggregate_sums_and_fills_empty_steps():
    rows = [(at(0), 1.0, 450 * times.SECOND, 0, 0), (at(15), 2.0, 900 * times.SECOND, 60 * times.SECOND, 0)]
    out = integrate.aggregate(rows, T0, T0 + 2 * times.HOUR, times.HOUR)
    assert out[0] == {"start": T0, "value": 3.0, "coverage": pytest.approx(1350 / 3600), "flags": ESTIMATED_END}
    assert out[1] == {"start": T0 + times.HOUR, "value": 0.0, "coverage": 0.0, "flags": 0}


# ------------------------------------------------------------------------------------------- property-based

def reference(readings, max_gap, last_spacing):
    """Exact energy per bucket by a different route: cut time at every reading and bucket boundary, and for each
    piece find the reading in force by bisection (Fractions, no floats)."""
    ts = [r.ts for r in readings]
    ends = ts[1:] + [ts[-1] + last_spacing]
    cuts = set(ts) | set(ends)
    first, last = min(ts), max(ends)
    cuts |= set(range(times.floor(first), last + 1, times.BUCKET))
    cuts = sorted(c for c in cuts if first <= c <= last)
    energy, covered = {}, {}
    for a, b in zip(cuts, cuts[1:]):
        i = bisect.bisect_right(ts, a) - 1
        r, length = readings[i], ends[i] - ts[i]
        if length <= 0 or length > max_gap:
            continue
        rate = Fraction(r.value) if r.units == KW else Fraction(r.value) * times.HOUR / length
        key = times.floor(a)
        energy[key] = energy.get(key, 0) + rate * (b - a) / times.HOUR
        covered[key] = covered.get(key, 0) + (b - a)
    return energy, covered


series = st.lists(st.tuples(st.integers(1, 150 * 60), st.floats(0, 5000, allow_nan=False),
                            st.sampled_from([KW, KWH])), min_size=1, max_size=40)


@settings(max_examples=300, deadline=None)
@given(series, st.integers(0, 3 * 3600), st.integers(0, 899))
def test_buckets_equal_an_independent_integration(steps, spacing_s, offset_s):
    t = T0 + offset_s * times.SECOND
    readings = []
    for step_s, value, units in steps:
        readings.append(Reading(t, value, units))
        t += step_s * times.SECOND
    spacing = spacing_s * times.SECOND
    out = integrate.buckets(readings, GAP, spacing)
    energy, covered = reference(readings, GAP, spacing)
    energy = {k: v for k, v in energy.items() if covered[k] > 0}
    assert sorted(out) == sorted(energy)
    for key, value in energy.items():
        assert out[key].kwh == pytest.approx(float(value), rel=1e-9, abs=1e-9)
        assert out[key].covered == covered[key]


@settings(max_examples=200, deadline=None)
@given(series, st.integers(-8, 30), st.integers(0, 30))
def test_a_clipped_recompute_equals_the_full_one_inside_its_range(steps, lo_q, width_q):
    t, readings = T0, []
    for step_s, value, units in steps:
        readings.append(Reading(t, value, units))
        t += step_s * times.SECOND
    full = integrate.buckets(readings, GAP, 10 * MIN)
    lo, hi = T0 + lo_q * times.BUCKET, T0 + (lo_q + width_q) * times.BUCKET
    part = integrate.buckets(readings, GAP, 10 * MIN, lo=lo, hi=hi)
    assert {k: (b.kwh, b.covered, b.estimated, b.arrival) for k, b in part.items()} == {
        k: (b.kwh, b.covered, b.estimated, b.arrival) for k, b in full.items() if lo <= k < hi}
