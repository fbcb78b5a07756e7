"""Stored sensor events feed their device's energy series: ingest stores them, the feed function's entry
(energy.service.feed_new) follows them by its cursor, in seq order."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta, timezone

import pytest

from local import synth
from local.apigw import Gateway
from wattprint import tokens
from wattprint.ingest import parser
from wattprint.energy import integrate, times

UTC = timezone.utc
BASE = parser.parse_event(
    "Device: ID=10; Fw=16071801; Evt=2; Alarms: CoilReversed=OFF; Power: Active=289W; Reactive=279var; "
    "Apparent=403VA; Line: Current=1.75A; Voltage=230.08V; Phase=-43,841rad; Peaks: 1041.000; 1051.000; "
    "1058.000; 1051.000; 1049.000; 1047.000; 1054.000; 1059.000; 1057.000; 1060.000; FFT Re: -257863.00; "
    "102815.00; -64043.00; 48516.00; 59599.00; -4223.00; -43441.00; 23559.00; -24518.00; FFT Img: "
    "481910.00; -14891.00; 69871.00; -7130.00; 43860.00; 34204.00; 55951.00; -6945.00; 26131.00; "
    "UTC Time: 2016-10-4 16:47:50; hz: 49.87; WiFi Strength: -62; Dummy: 20")
T0 = datetime(2016, 10, 4, 16, 45, tzinfo=UTC)


def event(device: int, seconds: int, watts: float) -> str:
    return synth.render(dataclasses.replace(BASE, device_id=device, active_power_w=float(watts),
                                             sensor_time=T0 + timedelta(seconds=seconds)), "firmware")


@pytest.fixture
def ingest(app, functions, database, conn, monkeypatch):
    monkeypatch.setenv("CLUSTER_THRESHOLD", str(10**9))
    gateway = Gateway(app, functions, workers=2)
    _, token = tokens.create(conn, "ingest", "sensor")

    def post(lines):
        reply = gateway.handle("POST", "/events", [("Authorization", f"Bearer {token}"),
                                                    ("Content-Type", "text/plain")], "\n".join(lines).encode())
        assert reply.status == 201, reply.body
        assert feed()["fed"] == len(lines)
        return json.loads(reply.body)

    yield post
    gateway.close()


def feed(batch: int | None = None) -> dict:
    from wattprint.energy import service
    from wattprint.settings import load

    return service.feed_new(load(), **({"batch": batch} if batch else {}))


def store_events(conn, lines) -> None:
    """Events stored as ingest stores them (in one transaction on `conn`), not fed yet."""
    from wattprint.ingest import store

    conn.run("START TRANSACTION")
    try:
        store.insert_events(conn, [(raw, r) for _, raw, r in parser.parse_lines("\n".join(lines))], 10**9)
    except BaseException:
        conn.run("ROLLBACK")
        raise
    conn.run("COMMIT")


def buckets(conn, device):
    return conn.run("SELECT bucket_start, kwh, covered_us, estimated_us, arrival_us FROM energy_buckets "
                    "WHERE device_id = :d ORDER BY bucket_start", d=device)


def test_an_advancing_clock_is_the_sample_time_and_power_is_held_to_the_next_event(ingest, conn):
    # Device 10: 1200 W from 16:45 for 5 minutes, then 2400 W; events every minute, over two posts.
    ingest([event(10, 60 * m, 1200 if m < 5 else 2400) for m in range(0, 10)])
    ingest([event(10, 60 * m, 2400) for m in range(10, 16)])
    rows = buckets(conn, 10)
    assert rows[0][0] == T0 and rows[0][1] == pytest.approx(1.2 * 5 / 60 + 2.4 * 10 / 60)
    assert rows[0][2] == times.BUCKET and rows[0][3:] == [0, 0]
    # 17:00: the last event (one minute of estimated end).
    assert rows[1][0] == T0 + timedelta(minutes=15) and rows[1][1] == pytest.approx(2.4 / 60)
    assert rows[1][2:] == [60 * times.SECOND, 60 * times.SECOND, 0]  # all of it the estimated end
    stored = conn.run("SELECT count(*), bool_and(flags = 0), bool_and(source = 0) FROM energy_readings")
    assert stored == [[16, True, True]]


def test_a_repeating_clock_falls_back_to_the_arrival_time_and_is_flagged(ingest, conn):
    first = ingest([event(11, 0, 1000)] * 3)  # the firmware: one UTC Time on every line
    ingest([event(11, 0, 3000)] * 2)
    readings = conn.run("SELECT ts, value, flags FROM energy_readings WHERE device_id = 11 ORDER BY ts")
    received = conn.run("SELECT DISTINCT received_at FROM events WHERE device_id = 11 ORDER BY 1")
    # The first event is the clock's first sighting (its own time); the repeats are at their arrival, one
    # reading per request (its events share received_at; the last one wins).
    assert readings[0][0] == T0 and arrived([r[0] for r in readings[1:]], [r[0] for r in received])
    assert [(r[1], r[2]) for r in readings] == [(1.0, 0), (1.0, integrate.ARRIVAL_TIME),
                                               (3.0, integrate.ARRIVAL_TIME)]
    assert first["count"] == 3
    flagged = conn.run("SELECT bool_or(arrival_us > 0) FROM energy_buckets WHERE device_id = 11")
    assert flagged == [[True]]


def test_the_real_file_feeds_device_1(ingest, conn, real_lines):
    ingest(real_lines[:300])
    ingest(real_lines[300:600])
    received = [r[0] for r in conn.run("SELECT DISTINCT received_at FROM events ORDER BY 1")]
    rows = conn.run("SELECT ts, flags FROM energy_readings WHERE device_id = 1 ORDER BY ts")
    assert arrived([r[0] for r in rows][1:], received) and all(r[1] == integrate.ARRIVAL_TIME for r in rows[1:])
    last = conn.run("SELECT active_power_w FROM events ORDER BY seq DESC LIMIT 1")[0][0]
    assert conn.run("SELECT value FROM energy_readings ORDER BY ts DESC LIMIT 1")[0][0] == last / 1000


def test_a_failed_feed_leaves_the_series_and_its_cursor_untouched_and_a_retry_feeds(ingest, conn, monkeypatch):
    from wattprint.energy import service, store
    from wattprint.settings import load

    ingest([event(12, 60 * m, 500) for m in range(3)])
    before = buckets(conn, 12), conn.run("SELECT * FROM energy_readings ORDER BY ts")
    store_events(conn, [event(12, 60 * m, 900) for m in range(3, 6)])

    def fail(conn_, seq):
        raise RuntimeError("after the feed, before the cursor moved")

    monkeypatch.setattr(store, "advance_feed", fail)
    with pytest.raises(RuntimeError):
        service.feed_new(load())
    assert (buckets(conn, 12), conn.run("SELECT * FROM energy_readings ORDER BY ts")) == before
    assert conn.run("SELECT after_seq FROM energy_feed") == [[3]]
    monkeypatch.undo()
    assert feed() == {"fed": 3, "more": False, "busy": False, "buckets": 1}
    assert conn.run("SELECT count(*) FROM energy_readings WHERE device_id = 12") == [[6]]


def test_the_feed_reads_in_batches_and_says_when_more_remain(ingest, conn):
    store_events(conn, [event(15, 60 * m, 100 * m) for m in range(10)])
    assert feed(batch=4) == {"fed": 4, "more": True, "busy": False, "buckets": 1}
    assert feed(batch=4)["fed"] == 4 and feed(batch=4) == {"fed": 2, "more": False, "busy": False, "buckets": 1}
    assert feed() == {"fed": 0, "more": False, "busy": False, "buckets": 0}
    assert conn.run("SELECT count(*) FROM energy_readings WHERE device_id = 15") == [[10]]
    assert_fed_equals_full_integration(conn, 15)


def test_a_second_feed_leaves_the_work_to_the_one_holding_the_cursor(ingest, conn):
    store_events(conn, [event(16, 0, 100)])
    conn.run("START TRANSACTION")
    conn.run("SELECT after_seq FROM energy_feed FOR UPDATE")
    try:
        assert feed() == {"fed": 0, "more": False, "busy": True, "buckets": 0}
    finally:
        conn.run("ROLLBACK")
    assert feed()["fed"] == 1


def full_integration(conn, device):
    """The device's buckets integrated from scratch from its stored readings (what the append path must equal)."""
    rows = conn.run("SELECT CAST(extract(epoch FROM ts) * 1000000 AS bigint), value, units, flags, source "
                    "FROM energy_readings WHERE device_id = :d ORDER BY ts, source", d=device)
    readings = [integrate.Reading(*row) for row in rows]
    gap = 7200 * times.SECOND
    spacing = integrate.typical_spacing([r.ts for r in readings][-integrate.SPACING_INTERVALS - 1:], gap) or 0
    return integrate.buckets(readings, gap, spacing)


def test_appending_one_request_at_a_time_equals_a_full_integration(ingest, conn):
    import random

    rng = random.Random(14)
    clock = 0
    for _ in range(60):
        if rng.random() < 0.5:
            clock += rng.choice([7, 60, 200, 900, 8000])  # an advancing clock, sometimes past the maximum gap
            lines = [event(13, clock, rng.uniform(0, 3000))]
        else:
            lines = [event(13, clock, rng.uniform(0, 3000))] * rng.randint(1, 3)  # repeats: timed by arrival
        ingest(lines)
    expected = full_integration(conn, 13)
    got = conn.run("SELECT CAST(extract(epoch FROM bucket_start) * 1000000 AS bigint), kwh, covered_us, "
                   "estimated_us, arrival_us FROM energy_buckets WHERE device_id = 13 ORDER BY 1")
    assert [row[0] for row in got] == sorted(expected)
    for start, kwh, covered, estimated, arrival in got:
        b = expected[start]
        assert (covered, estimated, arrival) == (b.covered, b.estimated, b.arrival)
        assert kwh == pytest.approx(b.kwh, rel=1e-9, abs=1e-12)
    days = conn.run("SELECT sum(kwh), sum(covered_us), sum(arrival_us) FROM energy_days WHERE device_id = 13")[0]
    assert days[0] == pytest.approx(sum(b.kwh for b in expected.values()))
    assert days[1:] == [sum(b.covered for b in expected.values()), sum(b.arrival for b in expected.values())]


def assert_fed_equals_full_integration(conn, device):
    expected = full_integration(conn, device)
    got = conn.run("SELECT CAST(extract(epoch FROM bucket_start) * 1000000 AS bigint), kwh, covered_us, "
                   "estimated_us, arrival_us FROM energy_buckets WHERE device_id = :d ORDER BY 1", d=device)
    assert [row[0] for row in got] == sorted(expected), device
    for start, kwh, covered, estimated, arrival in got:
        b = expected[start]
        assert (covered, estimated, arrival) == (b.covered, b.estimated, b.arrival), (device, start)
        assert kwh == pytest.approx(b.kwh, rel=1e-9, abs=1e-12), (device, start)
    days = conn.run("SELECT coalesce(sum(kwh), 0), coalesce(sum(covered_us), 0) FROM energy_days "
                    "WHERE device_id = :d", d=device)[0]
    assert days[0] == pytest.approx(sum(b.kwh for b in expected.values()))
    assert days[1] == sum(b.covered for b in expected.values())


@pytest.mark.parametrize("seed", [3, 18, 41])
def test_requests_of_several_devices_with_meter_posts_between_equal_a_full_integration(ingest, conn, seed):
    """One write statement rewrites every device of a request (migration 0017's function returns each device's
    neighbours): devices appending, repeating their clock (arrival time) and going back in time within one request,
    with POST /energy readings of the same devices, late and early, in between; each device's series equals the
    integration of its stored readings from scratch, and the change feed marks the devices."""
    import random

    from wattprint.energy import service
    from wattprint.settings import load

    rng = random.Random(seed)
    devices = [31, 32, 33]
    clocks = {d: 0 for d in devices}
    conn.run("DELETE FROM energy_changes")
    for _ in range(25):
        lines = []
        for _ in range(rng.randint(1, 8)):
            d = rng.choice(devices)
            step = rng.choice([0, 0, 5, 60, 300, 900, 8000, -120])
            clocks[d] = max(0, clocks[d] + step)
            lines.append(event(d, clocks[d], rng.uniform(0, 3000)))
        ingest(lines)
        if rng.random() < 0.4:
            d = rng.choice(devices)
            t0 = T0 + timedelta(seconds=rng.randint(-3600, clocks[d] + 3600))
            data = [{"datetime": (t0 + timedelta(seconds=60 * i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                     "value": round(rng.uniform(0, 3), 3)} for i in range(rng.randint(1, 5))]
            service.post_readings(json.dumps({"device_id": d, "units": rng.choice(["kW", "kWh"]), "data": data}),
                                  load())
    for d in devices:
        assert_fed_equals_full_integration(conn, d)
    assert {row[0] for row in conn.run("SELECT device_id FROM energy_changes")} == set(devices)


def test_the_clock_rule_event_by_event(ingest, conn):
    ingest([event(20, 12, 100)])  # the stored clock: 16:45:12
    seconds = [10, 20, 15, 20, 30, 5, 30, 31]
    ingest([event(20, s, 1000 + i) for i, s in enumerate(seconds)])
    arrival = conn.run("SELECT received_at FROM events WHERE device_id = 20 ORDER BY seq DESC LIMIT 1")[0][0]
    # By hand: 10 is not after the stored 12 (arrival); 20 advances; 15, 20 do not; 30 advances; 5, 30 do not;
    # 31 advances. At the arrival time the last of those that did not advance wins: 30 (watts 1006).
    expected = [(T0 + timedelta(seconds=12), 0.1, 0), (T0 + timedelta(seconds=20), 1.001, 0),
                (T0 + timedelta(seconds=30), 1.004, 0), (T0 + timedelta(seconds=31), 1.007, 0),
                (arrival, 1.006, integrate.ARRIVAL_TIME)]
    rows = conn.run("SELECT ts, value, flags FROM energy_readings WHERE device_id = 20 ORDER BY ts")
    assert arrived([rows[-1][0]], [arrival])
    rows[-1][0] = arrival
    assert [(r[0], pytest.approx(r[1]), r[2]) for r in rows] == expected
    assert conn.run("SELECT sensor_time FROM energy_sensor_clocks WHERE device_id = 20") == [
        [T0 + timedelta(seconds=31)]]


def test_an_arrival_earlier_than_one_fed_before_it_is_raised_to_it(ingest, conn):
    """Concurrent requests take the event counter's lock, and so their seq, in another order than they began: fed
    in seq order, a later-committed request's received_at can be earlier than the one before it. Its reading is
    raised to that instant (one reading: the later event's), so the series never goes back in time."""
    ingest([event(21, 0, 1000)])  # the clock's first sighting: its own time
    conn.run("START TRANSACTION")
    began = conn.run("SELECT now()")[0][0]  # the early request's received_at
    try:
        ingest([event(21, 0, 3000)])  # begins later, commits (and is fed) first
        from wattprint.ingest import store

        store.insert_events(conn, [(raw, r) for _, raw, r in parser.parse_lines(event(21, 0, 2000))], 10**9)
    except BaseException:
        conn.run("ROLLBACK")
        raise
    conn.run("COMMIT")
    assert feed()["fed"] == 1
    later = conn.run("SELECT received_at FROM events WHERE device_id = 21 ORDER BY seq")[1][0]
    assert later > began
    rows = conn.run("SELECT ts, value, flags FROM energy_readings WHERE device_id = 21 ORDER BY ts")
    assert [(r[0], r[1], r[2]) for r in rows] == [(T0, 1.0, 0), (later, 2.0, integrate.ARRIVAL_TIME)]
    assert conn.run("SELECT arrived_at FROM energy_sensor_clocks WHERE device_id = 21") == [[later]]
    assert_fed_equals_full_integration(conn, 21)


def arrived(readings, received) -> bool:
    """Each arrival-timed reading at its request's received_at (no request here overtakes another)."""
    return list(readings) == list(received)


def test_ingest_and_the_feed_each_work_as_their_own_login_and_no_more(app, functions, database, conn, login_as,
                                                                      monkeypatch):
    from local.apigw import Gateway as G

    monkeypatch.setenv("CLUSTER_THRESHOLD", str(10**9))
    _, token = tokens.create(conn, "ingest", "sensor")
    login_as("ingest", "authorizer")  # the gateway runs the authorizer in this process too
    gateway = G(app, functions, workers=1)
    try:
        for m in range(3):
            reply = gateway.handle("POST", "/events", [("Authorization", f"Bearer {token}"),
                                                        ("Content-Type", "text/plain")], event(14, 60 * m, 600).encode())
            assert reply.status == 201, reply.body
    finally:
        gateway.close()
    assert conn.run("SELECT count(*) FROM energy_readings WHERE device_id = 14") == [[0]]  # not ingest's to write
    login_as("feed")
    assert feed()["fed"] == 3
    from wattprint import db

    for statement in ("SELECT raw FROM events", "DELETE FROM events", "UPDATE event_counter SET total = 0",
                      "DELETE FROM energy_feed", "SELECT count(*) FROM api_tokens"):
        with pytest.raises(Exception, match="permission denied"):
            db.execute(statement)
    assert conn.run("SELECT count(*) FROM energy_readings WHERE device_id = 14") == [[3]]
    assert conn.run("SELECT count(*) > 0 FROM energy_buckets WHERE device_id = 14") == [[True]]


def test_the_servers_typical_spacing_is_the_integrators(conn):
    """energy_spacing (migration 0017, the append path's) against wattprint.energy.integrate.typical_spacing, over
    random instants with repeats, gaps and even and odd counts of intervals."""
    import random

    rng = random.Random(17)
    gap = 7200 * times.SECOND
    for _ in range(300):
        instants = sorted(rng.choice([0, 1, 7, 60, 61, 900, 8000]) * times.SECOND + rng.randint(0, 999)
                          for _ in range(rng.randint(0, 20)))
        instants = [sum(instants[:i + 1]) for i in range(len(instants))]
        rng.shuffle(instants)
        server = conn.run("SELECT energy_spacing(CAST(:t AS bigint[]), :gap, :n)", t=instants, gap=gap,
                          n=integrate.SPACING_INTERVALS)[0][0]
        assert server == integrate.typical_spacing(sorted(instants), gap), instants
