"""Announcements: what the live queue may carry, that announcing never fails a request, and when it is skipped."""

import pytest

from wattprint.live import announce


@pytest.fixture
def clock():
    class Clock:
        now = 100.0

        def __call__(self):
            return self.now

    return Clock()


@pytest.fixture
def connected(monkeypatch):
    """The module's gate replaced by one that counts a dashboard (no database in unit tests)."""
    monkeypatch.setattr(announce, "GATE", announce.Gate(count=lambda: 1))


def test_announcements_parse():
    assert announce.parse('{"kind": "events", "first_seq": 1, "last_seq": 5}') == {"kind": "events", "first_seq": 1,
                                                                               "last_seq": 5}
    assert announce.parse('{"kind": "run", "run_id": 3}') == {"kind": "run", "run_id": 3}
    assert announce.parse('{"kind": "tick", "after_seq": 0}') == {"kind": "tick", "after_seq": 0}
    assert announce.parse('{"kind": "tick", "after_seq": 0, "connection_id": "c1"}')["connection_id"] == "c1"


@pytest.mark.parametrize("body", ["", "[]", "{}", '{"kind": "run"}', '{"kind": "run", "run_id": "3"}',
                                  '{"kind": "run", "run_id": true}', '{"kind": "events", "first_seq": 1}',
                                  '{"kind": "other", "run_id": 1}', '{"kind": "tick"}',
                                  '{"kind": "tick", "after_seq": 1.5}',
                                  '{"kind": "tick", "after_seq": 1, "connection_id": 7}'])
def test_anything_else_is_refused(body):
    with pytest.raises(announce.InvalidAnnouncement):
        announce.parse(body)


def test_announcing_is_off_without_a_queue(monkeypatch, connected):
    monkeypatch.delenv("LIVE_QUEUE_URL", raising=False)
    assert announce.events_stored(1, 2) is False and announce.run_changed(1) is False
    assert announce.tick(1) is False
    assert announce.GATE.skipped == {"no_connection": 0, "throttled": 0}  # not even counted: nothing to gate


def test_a_failed_announcement_is_logged_not_raised(monkeypatch, caplog, connected):
    from moto import mock_aws

    with mock_aws():
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("LIVE_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/no-such-queue")
        assert announce.events_stored(1, 2) is False
    assert "not announced" in caplog.text


def test_no_dashboard_no_announcement_and_the_count_is_reread_after_its_ttl(clock):
    counts = []

    def count():
        counts.append(clock.now)
        return 0

    gate = announce.Gate(count=count, clock=clock)
    assert [gate.events() for _ in range(3)] == [announce.NO_CONNECTION] * 3
    assert gate.run() == announce.NO_CONNECTION
    assert counts == [100.0]  # counted once for all four
    clock.now += announce.COUNT_TTL
    assert gate.events() == announce.NO_CONNECTION
    assert counts == [100.0, 100.0 + announce.COUNT_TTL]
    assert gate.skipped == {"no_connection": 5, "throttled": 0}


def test_with_a_dashboard_one_events_announcement_per_interval_and_every_run_change(clock):
    gate = announce.Gate(count=lambda: 2, clock=clock)
    assert gate.events() is None
    clock.now += gate.interval / 2
    assert gate.events() == announce.THROTTLED
    assert gate.run() is None and gate.run() is None  # run changes are not throttled
    clock.now += gate.interval / 2
    assert gate.events() is None
    assert gate.skipped == {"no_connection": 0, "throttled": 1}


def test_a_dashboard_that_connects_is_seen_within_the_ttl(clock):
    connections = [0]
    gate = announce.Gate(count=lambda: connections[0], clock=clock)
    assert gate.events() == announce.NO_CONNECTION
    connections[0] = 1
    clock.now += announce.COUNT_TTL * 0.9
    assert gate.events() == announce.NO_CONNECTION  # the cached count
    clock.now += announce.COUNT_TTL * 0.2
    assert gate.events() is None
    connections[0] = 0
    clock.now += announce.COUNT_TTL
    assert gate.events() == announce.NO_CONNECTION


def test_a_count_that_fails_announces(clock, caplog):
    def broken():
        raise OSError("database gone")

    gate = announce.Gate(count=broken, clock=clock)
    assert gate.events() is None and gate.run() is None
    assert "not counted" in caplog.text


def test_tick_delay_covers_the_interval():
    # A skipped announcement is caught by the tick that follows the push of the one sent before it: the tick must
    # not come before the interval that skipped it has ended, and a new connection's tick after every cached count.
    assert announce.TICK_DELAY >= announce.INTERVAL
    assert announce.CONNECT_TICK_DELAY > announce.COUNT_TTL
