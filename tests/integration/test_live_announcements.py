"""Announcing only when it can matter (issue 18), with real PostgreSQL and moto's SQS counting the sends: nothing
while no dashboard is connected, one per interval while one is, and the events of skipped announcements still
pushed by the live function's ticks."""

import json

import boto3
import pytest
from botocore.client import BaseClient
from moto import mock_aws

from local.apigw import Gateway
from local import synth
from wattprint import tokens
from wattprint.live import announce, live


class Clock:
    now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


def live_queues(monkeypatch, clock, *more: str) -> tuple[list, dict]:
    """Inside mock_aws: the live and push queues (and `more`), the environment pointing at them, this instance's
    gate on `clock`, and the list of every SendMessage made, as made."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = boto3.client("sqs", region_name="us-east-1")
    urls = {name: client.create_queue(QueueName=name)["QueueUrl"] for name in ("live", "push", *more)}
    monkeypatch.setenv("LIVE_QUEUE_URL", urls["live"])
    monkeypatch.setenv("PUSH_QUEUE_URL", urls["push"])
    monkeypatch.setenv("LIVE_MANAGEMENT_ENDPOINT", "http://management")
    monkeypatch.delenv("CLUSTER_QUEUE_URL", raising=False)
    monkeypatch.setenv("CLUSTER_THRESHOLD", str(10**9))
    # This instance's gate, counting the test schema's connections, on a clock the test moves.
    monkeypatch.setattr(announce, "GATE", announce.Gate(clock=clock))
    # Every SendMessage the code makes, as made (moto still receives it): a tick is sent with a delay, which
    # moto honours, so the queue alone cannot say how many were sent.
    calls = []
    real = BaseClient._make_api_call

    def spy(self, operation, params):
        if operation == "SendMessage":
            calls.append(params)
        return real(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", spy)
    return calls, urls


@pytest.fixture
def queues(monkeypatch, database, clock):
    with mock_aws():
        yield live_queues(monkeypatch, clock)


def sent(calls, url) -> list[dict]:
    """The events, run and tick announcements sent to `url` since the last look (a tick as {"tick": after_seq,
    "delay": s})."""
    found = []
    for params in [c for c in calls if c["QueueUrl"] == url]:
        body = json.loads(params["MessageBody"])
        if body.get("kind") == "energy":  # buckets changed: gated by the connection count only, not these tests'
            calls.remove(params)
            continue
        found.append({"tick": body["after_seq"], "delay": params["DelaySeconds"]} if body.get("kind") == "tick"
                     else body)
        calls.remove(params)
    return found


def pushes(calls, urls):
    return sent(calls, urls["push"])


def dashboard(conn) -> int:
    """A read token's id, for a connection of its own."""
    token, _ = tokens.create(conn, "read", "dashboard")
    return token.id


@pytest.fixture
def post(app, functions, conn, queues):
    gateway = Gateway(app, functions, workers=1)
    _, token = tokens.create(conn, "ingest", "sensor")
    lines = iter(synth.generate(500, seed=11))

    def post(n=1):
        for _ in range(n):
            reply = gateway.handle("POST", "/events", [("Authorization", f"Bearer {token}"),
                                                        ("Content-Type", "text/plain")], next(lines).encode())
            assert reply.status == 201, reply.body

    yield post
    gateway.close()


def test_no_announcement_is_sent_while_no_dashboard_is_connected(queues, post, clock):
    calls, urls = queues
    for _ in range(5):
        post(20)
        clock.now += announce.COUNT_TTL  # the count is read again: still nobody
    assert calls == []  # energy buckets neither
    assert sent(calls, urls["live"]) == []
    assert announce.GATE.skipped["no_connection"] == 100


def test_with_a_dashboard_one_announcement_per_interval(queues, post, clock, conn):
    calls, urls = queues
    post(3)
    live.connect("dash-1", dashboard(conn), "dashboard", 10)
    assert sent(calls, urls["live"]) == [{"tick": 3, "delay": announce.CONNECT_TICK_DELAY}]
    post(5)  # within the cached count's TTL: the new dashboard is not seen yet; the connect tick covers these
    assert sent(calls, urls["live"]) == []
    clock.now += announce.COUNT_TTL
    post(50)  # one interval: one announcement, for the first of them
    assert sent(calls, urls["live"]) == [{"kind": "events", "first_seq": 9, "last_seq": 9}]
    clock.now += announce.INTERVAL
    post(2)
    assert sent(calls, urls["live"]) == [{"kind": "events", "first_seq": 59, "last_seq": 59}]
    assert announce.GATE.skipped == {"no_connection": 8, "throttled": 50}


def test_the_events_of_skipped_announcements_reach_the_dashboard_by_ticks(queues, post, clock, conn):
    calls, urls = queues
    announce.GATE = announce.Gate(count=lambda: 1, clock=clock)
    live.connect("dash-1", dashboard(conn), None, 10)
    sent(calls, urls["live"])  # the connect tick
    post(4)
    (first,) = sent(calls, urls["live"])  # events 1..1; 2..4 skipped
    outcome = live.deliver([announce.parse(json.dumps(first))])
    (request,) = pushes(calls, urls)
    (events,) = request["messages"]
    assert (events["first_seq"], events["last_seq"], events["total"]) == (1, 4, 4)  # up to the total, not 1
    assert [item["seq"] for item in events["items"]] == [1, 2, 3, 4]
    assert request["connections"] == ["dash-1"] and outcome["ticked"]
    assert sent(calls, urls["live"]) == [{"tick": 4, "delay": announce.TICK_DELAY}]

    post(3)  # the end of a burst: all three skipped (within the interval of the first)
    assert sent(calls, urls["live"]) == []
    live.deliver([{"kind": "tick", "after_seq": 4}])  # the tick arrives
    (request,) = pushes(calls, urls)
    assert [item["seq"] for item in request["messages"][0]["items"]] == [5, 6, 7]
    assert sent(calls, urls["live"]) == [{"tick": 7, "delay": announce.TICK_DELAY}]  # one more tick ...
    outcome = live.deliver([{"kind": "tick", "after_seq": 7}])
    assert pushes(calls, urls) == [] and not outcome["ticked"]  # ... which finds nothing and ends
    assert sent(calls, urls["live"]) == []


def test_a_new_connection_is_told_when_it_is_settled_and_only_it(queues, post, clock, conn):
    """What a skipped announcement held besides events (energy buckets, a run's change) no tick can push again: the
    connect tick tells the new connection, once every instance sees it, to re-read what it read before."""
    calls, urls = queues
    token = dashboard(conn)
    live.connect("dash-1", token, None, 10)
    (tick,) = [json.loads(c["MessageBody"]) for c in calls if c["QueueUrl"] == urls["live"]]
    assert tick == {"kind": "tick", "after_seq": 0, "connection_id": "dash-1"}
    sent(calls, urls["live"])
    live.connect("dash-2", token, None, 10)
    sent(calls, urls["live"])
    outcome = live.deliver([announce.parse(json.dumps(tick))])
    (request,) = pushes(calls, urls)
    assert request["connections"] == ["dash-1"] and request["messages"] == [{"type": "settled"}]
    assert outcome["requests"] == 1 and outcome["messages"] == 0 and not outcome["ticked"]
    live.disconnect(["dash-1"])  # gone before its tick came: nobody to tell
    live.deliver([announce.parse(json.dumps(tick))])
    assert pushes(calls, urls) == []


def test_nothing_is_read_or_pushed_for_nobody(queues, post, monkeypatch):
    calls, urls = queues
    announce.GATE = announce.Gate(count=lambda: 1)
    post(2)
    sent(calls, urls["live"])
    monkeypatch.setattr(live, "messages", lambda a: pytest.fail("read with no connection"))
    outcome = live.deliver([{"kind": "events", "first_seq": 1, "last_seq": 1}])
    assert outcome == {"messages": 0, "connections": 0, "forgotten": 0, "requests": 0, "ticked": False}
    assert pushes(calls, urls) == [] and sent(calls, urls["live"]) == []


def test_sensor_events_announce_their_energy_once_per_feed_not_per_request(queues, post, clock, conn):
    """Issue 18: ingest announces only `events` (one per interval); the feed function, which feeds a batch of
    requests' events at a time, announces their buckets in one `energy` message. POST /energy announces its own."""
    from wattprint import settings
    from wattprint.energy import service as energy

    calls, urls = queues
    announce.GATE = announce.Gate(count=lambda: 1, clock=clock)
    live.connect("dash-1", dashboard(conn), None, 10)
    calls.clear()
    post(30)
    kinds = [json.loads(c["MessageBody"]).get("kind") for c in calls if c["QueueUrl"] == urls["live"]]
    assert kinds == ["events"]  # one, for the first of them; no energy
    assert conn.run("SELECT count(*) FROM energy_buckets")[0][0] == 0  # not fed yet
    calls.clear()
    assert energy.feed_new(settings.load())["fed"] == 30
    (message,) = [json.loads(c["MessageBody"]) for c in calls if c["QueueUrl"] == urls["live"]]
    fed = {row[0] for row in conn.run("SELECT DISTINCT device_id FROM energy_buckets")}
    assert message["kind"] == "energy" and fed and {i["device_id"] for i in message["items"]} == fed
    calls.clear()
    energy.post_readings(json.dumps({"device_id": 9001, "units": "kW", "data": [
        {"datetime": "2026-01-05T00:00:00Z", "value": 1.0}, {"datetime": "2026-01-05T00:05:00Z", "value": 2.0}]}),
        settings.load())
    (message,) = [json.loads(c["MessageBody"]) for c in calls if c["QueueUrl"] == urls["live"]]
    assert message["kind"] == "energy" and {i["device_id"] for i in message["items"]} == {9001}


def test_ingest_asks_the_feed_at_most_once_a_second_and_the_feed_looks_again_while_it_finds_events(
        monkeypatch, database, clock, app, functions, conn):
    from wattprint import follow, settings
    from wattprint.energy import service as energy

    with mock_aws():
        calls, urls = live_queues(monkeypatch, clock, "feed")
        monkeypatch.setenv("ENERGY_FEED_QUEUE_URL", urls["feed"])
        monkeypatch.setattr(energy, "_FEED_THROTTLE", follow.Throttle(clock=clock))
        gateway = Gateway(app, functions, workers=1)
        _, token = tokens.create(conn, "ingest", "sensor")
        lines = iter(synth.generate(50, seed=12))

        def post():
            reply = gateway.handle("POST", "/events", [("Authorization", f"Bearer {token}"),
                                                        ("Content-Type", "text/plain")], next(lines).encode())
            assert reply.status == 201, reply.body

        def asked():
            found = [(json.loads(c["MessageBody"]), c.get("DelaySeconds", 0)) for c in calls
                     if c["QueueUrl"] == urls["feed"]]
            calls.clear()
            return found

        try:
            post()
            post()  # within the same second: not asked again
            assert asked() == [({"after_seq": 1}, 0)]
            clock.now += follow.INTERVAL
            post()
            assert asked() == [({"after_seq": 3}, 0)]
            outcome, dropped = energy.feed_requests([("m", json.dumps({"after_seq": 3})), ("bad", "{")],
                                                    settings.load())
            assert outcome["fed"] == 3 and [m for m, _ in dropped] == ["bad"]
            assert asked() == [({"after_seq": 0}, follow.TICK_DELAY)]  # it fed something: it looks again
            assert energy.feed_requests([("tick", json.dumps({"after_seq": 0}))], settings.load())[0]["fed"] == 0
            assert asked() == []  # a look that finds nothing ends
        finally:
            gateway.close()
