"""An alert's lifecycle hour by hour: fire, repeat, resolve, acknowledge, quiet hours, the daily cap."""

from datetime import datetime, timedelta, timezone

from wattprint.alerts.lifecycle import AlertConfig, State, acknowledge, step

UTC = timezone.utc
T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)


def _play(pattern: str, config: AlertConfig, start: datetime = T0, state: State | None = None):
    """Feed 'A' (anomalous) / '.' (normal) hours; returns the final state and [(hour index, kind, alert)]."""
    state = state or State()
    told = []
    for i, mark in enumerate(pattern):
        result = step(state, mark == "A", start + timedelta(hours=i + 1), config)
        state = result.state
        told += [(i, n.kind, n.alert) for n in result.notifications]
    return state, told


def test_fires_once_repeats_every_interval_and_resolves_once():
    state, told = _play("..AAAAAAAAA..", AlertConfig())
    assert told == [(2, "fired", 1), (6, "repeat", 1), (10, "repeat", 1), (11, "resolved", 1)]
    assert state.alert is None and state.alerts == 1


def test_fire_after_and_resolve_after():
    config = AlertConfig(fire_after=3, resolve_after=2)
    _, told = _play("AA.AAA.A..", config)
    assert told == [(5, "fired", 1), (9, "resolved", 1)]


def test_acknowledged_alert_stops_repeating_but_still_resolves():
    state, told = _play("AA", AlertConfig())
    state = acknowledge(state)
    state, more = _play("AAAAAAAA.", AlertConfig(), start=T0 + timedelta(hours=2), state=state)
    assert told == [(0, "fired", 1)] and more == [(8, "resolved", 1)]


def test_second_alert_gets_the_next_number():
    _, told = _play("A.A.", AlertConfig())
    assert told == [(0, "fired", 1), (1, "resolved", 1), (2, "fired", 2), (3, "resolved", 2)]


def test_quiet_hours_hold_a_firing_until_they_end():
    # Quiet 22:00–07:00; the hours below end at 02:00, 03:00, … so the first hour outside ends at 07:00.
    config = AlertConfig(quiet_start=22, quiet_end=7)
    start = datetime(2026, 3, 2, 1, tzinfo=UTC)
    _, told = _play("AAAAAAAA", config, start=start)
    assert told == [(5, "fired", 1)]  # held from 02:00, told at 07:00


def test_a_problem_gone_during_quiet_hours_wakes_nobody():
    config = AlertConfig(quiet_start=22, quiet_end=7)
    _, told = _play("AA.......", config, start=datetime(2026, 3, 2, 1, tzinfo=UTC))
    assert told == []


def test_a_resolution_during_quiet_hours_is_told_after_them():
    config = AlertConfig(quiet_start=22, quiet_end=7)
    start = datetime(2026, 3, 2, 20, tzinfo=UTC)  # hours end 21:00, 22:00, …
    _, told = _play("A." + "." * 9, config, start=start)
    assert told == [(0, "fired", 1), (10, "resolved", 1)]  # 21:00 fired; resolved at 22:00, told at 07:00


def test_daily_cap_drops_what_is_beyond_it():
    config = AlertConfig(daily_cap=2, repeat=timedelta(hours=1))
    start = datetime(2026, 3, 2, 0, tzinfo=UTC)
    state = State()
    kinds, capped = [], []
    for i in range(6):
        result = step(state, True, start + timedelta(hours=i + 1), config)
        state = result.state
        kinds += [n.kind for n in result.notifications]
        capped += [n.kind for n in result.capped]
    assert kinds == ["fired", "repeat"] and capped == ["repeat"] * 4
    # A new UTC day resets the count.
    result = step(state, True, datetime(2026, 3, 3, 0, 30, tzinfo=UTC), config)
    assert [n.kind for n in result.notifications] == ["repeat"]


def test_replaying_the_same_hours_gives_the_same_notifications():
    config = AlertConfig(fire_after=2, quiet_start=23, quiet_end=6, daily_cap=3)
    pattern = "..AAA.AAAAAAAAAAA...AA.A" * 3
    assert _play(pattern, config) == _play(pattern, config)
