"""Alerts end to end on real PostgreSQL: energy posted through POST /energy, scored from its change feed, alerts
fired and told once (whatever is redelivered), the API, webhooks signed and retried, moto for SQS."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from moto import mock_aws

from local.apigw import Gateway
from local.usage_synth import household
from wattprint import settings as settings_module
from wattprint import tokens
from wattprint.alerts import service as alerts
from wattprint.alerts import signing

UTC = timezone.utc
START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def api(app, functions, database, conn):
    gateway = Gateway(app, functions, workers=2)
    _, ingest = tokens.create(conn, "ingest", "meter")
    _, read = tokens.create(conn, "read", "board")

    def call(method, target, body=None, token=None):
        data = b"" if body is None else json.dumps(body).encode()
        token = token or (ingest if target.startswith("/energy") and method == "POST" else read)
        reply = gateway.handle(method, target, [("Authorization", f"Bearer {token}"),
                                                ("Content-Type", "application/json")], data)
        return reply.status, json.loads(reply.body.decode() or "null")

    yield call
    gateway.close()


def post_hours(api, device: int, hours: list[tuple[datetime, float]]):
    """Each hour's Wh as a kWh reading at its start; one more reading closes the last hour (its end is known)."""
    closing = hours[-1][0] + timedelta(hours=1)
    points = [{"datetime": iso(t), "value": wh / 1000.0} for t, wh in hours] + [{"datetime": iso(closing), "value": 0}]
    for i in range(0, len(points), 1000):
        code, body = api("POST", "/energy", {"device_id": device, "units": "kWh", "data": points[i:i + 1000]})
        assert code == 200, body


def config(**overrides) -> alerts.AlertsConfig:
    return alerts.config(settings_module.alert_settings({**{"ALERT_DAILY_CAP": "100"}, **overrides}))


def notifications(conn, device: int) -> list[tuple[str, str]]:
    return [(kind, text) for kind, text in conn.run(
        "SELECT n.kind, n.text FROM alert_notifications n JOIN alerts a ON a.id = n.alert_id "
        "WHERE a.device_id = :d AND NOT n.capped ORDER BY n.at, n.id", d=device)]


def test_minmax_example_scores_through_the_whole_path(api, conn):
    # Seven days of hour-4 history spanning 108–363 Wh, then 1500 Wh between 04:00 and 05:00: 5.4588.
    history = [108, 200, 363, 150, 250, 300, 120]
    hours = []
    for day, wh in enumerate(history + [1500]):
        for hour in range(24):
            hours.append((START + timedelta(days=day, hours=hour), wh if hour == 4 else 200.0))
    post_hours(api, 7, hours)
    outcome = alerts.score_changes(7, config(ALERT_METHOD="minmax"))
    assert outcome["scored"] == len(hours)
    code, body = api("GET", f"/anomalies?device_id=7&method=minmax&since={iso(START)}&until="
                            f"{iso(START + timedelta(days=9))}&anomalous=true")
    assert code == 200, body
    scored = {item["hour"]: item for item in body["items"]}
    hit = scored["2026-01-12T04:00:00Z"]
    assert hit["score"] == pytest.approx(5.4588, abs=5e-5) and hit["wh"] == pytest.approx(1500)
    assert hit["baseline"] == "2026-01-12"
    # (Wednesday's 363 Wh was above Monday's and Tuesday's range, and fired first: minmax with two days of history.)
    assert notifications(conn, 7)[-2:] == [
        ("fired", "Device 7: unusual use: 1.5 kWh between 04:00 and 05:00 UTC on Mon 12 Jan, usually 0.11–0.36 kWh"),
        ("resolved", "Device 7: back to usual: 0.2 kWh between 05:00 and 06:00 UTC on Mon 12 Jan, usually 0.2–0.2 kWh")]


def _stuck_household():
    house = household(3, days=49, seed=2, spikes=0, stuck=1, dead=0)
    stuck = sorted(h for h, kind in house.anomalies.items() if kind == "stuck")
    return house, stuck


def test_an_injected_anomaly_fires_once_and_resolves_once_whatever_is_redelivered(api, conn):
    house, stuck = _stuck_household()
    post_hours(api, 3, house.hours)
    first = alerts.score_changes(3, config())
    assert first["fed"] > 0
    told = notifications(conn, 3)
    # The stuck load's alert: fired at its first hour, repeated 4 h later while it went on (5 hours), resolved
    # once. (Other alerts may be the method's false positives: the bench measures those.)
    (alert_id, status), = conn.run("SELECT id, status FROM alerts WHERE device_id = 3 AND opened_hour = :h",
                                   h=stuck[0])
    kinds = [r[0] for r in conn.run("SELECT kind FROM alert_notifications WHERE alert_id = :a ORDER BY at",
                                    a=alert_id)]
    assert status == "resolved" and kinds == ["fired", "repeat", "resolved"], told
    # A redelivered message, the same readings posted again, and a second scorer all tell nothing more.
    assert alerts.score_changes(3, config())["scored"] == 0
    post_hours(api, 3, house.hours)
    alerts.score_changes(3, config())
    assert notifications(conn, 3) == told


def test_late_energy_rescores_its_hour_but_does_not_replay_the_lifecycle(api, conn):
    house, stuck = _stuck_household()
    post_hours(api, 3, house.hours)
    alerts.score_changes(3, config())
    told = notifications(conn, 3)
    hour = START + timedelta(days=42, hours=2)  # six weeks of its cell before it
    code, _ = api("POST", "/energy", {"device_id": 3, "units": "kWh", "data": [{"datetime": iso(hour), "value": 9}]})
    assert code == 200
    assert alerts.score_changes(3, config())["scored"] >= 1
    (row,) = conn.run("SELECT wh, anomalous FROM anomaly_scores WHERE device_id = 3 AND method = 'robust' "
                      "AND hour = :h", h=hour)
    assert row == [pytest.approx(9000), True]
    assert notifications(conn, 3) == told


def test_hours_without_enough_history_are_not_alerted(api, conn):
    post_hours(api, 5, [(START + timedelta(hours=i), 100.0 if i != 30 else 5000.0) for i in range(72)])
    alerts.score_changes(5, config())
    assert conn.run("SELECT count(*) FROM alerts")[0][0] == 0
    assert conn.run("SELECT count(*) FROM anomaly_scores WHERE method = 'robust' AND score IS NOT NULL")[0][0] == 0


def test_alerts_api_lists_and_acknowledges(api, conn):
    house, _ = _stuck_household()
    post_hours(api, 3, house.hours)
    alerts.score_changes(3, config())
    code, body = api("GET", "/alerts?device_id=3&since=2026-01-01T00:00:00Z")
    assert code == 200 and body["items"], body
    alert = body["items"][0]
    code, acked = api("POST", f"/alerts/{alert['id']}/ack")
    assert code == 200 and acked["acked_at"] is not None
    assert api("POST", "/alerts/999999/ack")[0] == 404
    assert api("POST", "/alerts/abc/ack")[0] == 400
    assert api("GET", "/alerts?status=open")[0] == 400
    assert api("GET", "/anomalies?method=zscore")[0] == 400
    assert api("GET", "/anomalies?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z")[0] == 400
    assert api("GET", "/anomalies?devices=3")[0] == 400


def test_quiet_hours_and_the_daily_cap_hold_through_the_service(api, conn):
    house, stuck = _stuck_household()  # stuck hours are at night (01:00–09:00)
    post_hours(api, 3, house.hours)
    alerts.score_changes(3, config(ALERT_QUIET_HOURS="0-12", ALERT_REPEAT_HOURS="1", ALERT_DAILY_CAP="1"))
    told = notifications(conn, 3)
    ats = [r[0] for r in conn.run("SELECT n.at FROM alert_notifications n JOIN alerts a ON a.id = n.alert_id "
                                  "WHERE a.device_id = 3 AND NOT n.capped")]
    assert all(t.hour >= 12 for t in ats), ats
    assert len([k for k, _ in told]) <= 1 * len({t.date() for t in ats})


class _Receiver(BaseHTTPRequestHandler):
    got: list = []
    answer = 200

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).got.append((dict(self.headers), body))
        self.send_response(type(self).answer)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    _Receiver.got, _Receiver.answer = [], 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server, _Receiver
    server.shutdown()
    server.server_close()


@mock_aws
def test_webhook_gets_each_notification_signed_and_a_receiver_that_is_down_is_retried(api, conn, receiver,
                                                                                     monkeypatch):
    server, handler = receiver
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue = sqs.create_queue(QueueName="notify")["QueueUrl"]
    hook = alerts.register_webhook(f"http://127.0.0.1:{server.server_address[1]}/hook", None, allow_http=True)
    house, _ = _stuck_household()
    post_hours(api, 3, house.hours)
    outcome = alerts.score_changes(3, config(NOTIFY_QUEUE_URL=queue))
    told = len(notifications(conn, 3))
    assert outcome["sent"] == told >= 3
    assert conn.run("SELECT count(*) FROM alert_notifications WHERE sent_at IS NULL")[0][0] == 0
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    assert len(messages) == told  # one target: the webhook
    handler.answer = 503
    with pytest.raises(RuntimeError, match="answered 503"):
        alerts.deliver(messages[0]["Body"])
    alerts.back_off(messages[0]["ReceiptHandle"], 3, queue)  # the third try waits 120 s
    handler.answer = 200
    for message in messages:
        assert alerts.deliver(message["Body"]) == "webhook"
    headers, body = handler.got[-told]
    payload = json.loads(body)
    assert payload["device_id"] == 3 and payload["text"].startswith("Device 3: ")
    now = int(datetime.now(UTC).timestamp())
    assert signing.verify(hook["secret"], body, headers[signing.HEADER], now)
    assert not signing.verify("whsec_other", body, headers[signing.HEADER], now)
    assert not signing.verify(hook["secret"], body, headers[signing.HEADER], now + 3600)
    delivered = [json.loads(h["X-Wattprint-Delivery"].split("-")[0]) for h, _ in handler.got[-told:]]
    assert sorted(delivered) == sorted(json.loads(m["Body"])["notification_id"] for m in messages)


def test_webhook_urls_are_checked():
    from wattprint.errors import BadRequest

    for url in ("", "ftp://example.com/x", "http://example.com/x", "https:///nohost"):
        with pytest.raises(BadRequest):
            alerts.register_webhook(url, None, allow_http=False)


@mock_aws
def test_the_sweep_hands_over_what_a_failed_send_left_and_re_announces_lost_changes(api, conn, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    notify = sqs.create_queue(QueueName="notify")["QueueUrl"]
    changes = sqs.create_queue(QueueName="changes")["QueueUrl"]
    alerts.register_webhook("https://example.com/hook", None, allow_http=False)
    house, _ = _stuck_household()
    post_hours(api, 3, house.hours)  # no changes queue yet: the change row's message is "lost"
    assert conn.run("SELECT count(*) FROM energy_changes")[0][0] == 1
    alerts.score_changes(3, config())  # no notify queue yet: nothing handed over
    unsent = conn.run("SELECT count(*) FROM alert_notifications WHERE sent_at IS NULL AND NOT capped")[0][0]
    assert unsent >= 3
    post_hours(api, 3, [(h, wh + 1) for h, wh in house.hours[-30:-20]])  # a late correction: a new change row
    conn.run("UPDATE alert_notifications SET created_at = created_at - interval '2 minutes'")
    conn.run("UPDATE energy_changes SET marked_at = marked_at - interval '10 minutes'")
    monkeypatch.setenv("ENERGY_CHANGES_QUEUE_URL", changes)
    outcome = alerts.sweep(config(NOTIFY_QUEUE_URL=notify))
    assert outcome == {"notifications_sent": unsent, "energy_changes_resent": 1}
    got = sqs.receive_message(QueueUrl=changes, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"]) for m in got] == [{"device_id": 3}]
    assert alerts.sweep(config(NOTIFY_QUEUE_URL=notify))["notifications_sent"] == 0


def test_scoring_and_the_api_work_as_their_own_logins_and_no_more(api, conn, login_as):
    from pg8000.exceptions import DatabaseError

    from wattprint import db

    house, _ = _stuck_household()
    post_hours(api, 3, house.hours)
    login_as("score")
    assert alerts.score_changes(3, config())["fed"] > 0
    with pytest.raises(DatabaseError, match="permission denied"):
        db.execute("DELETE FROM alerts")
    login_as("alerts")
    (first,) = alerts.alerts({"device_id": "3", "since": "2026-01-01T00:00:00Z", "limit": "1"})["items"]
    assert alerts.acknowledge(str(first["id"]))["acked_at"] is not None
    with pytest.raises(DatabaseError, match="permission denied"):
        db.execute("UPDATE alerts SET status = 'resolved'")
    with pytest.raises(DatabaseError, match="permission denied"):
        db.execute("SELECT secret FROM webhooks")


def test_operator_actions_register_list_and_remove_webhooks(database, monkeypatch):
    from wattprint.errors import BadRequest, NotFound

    actions = alerts.OPERATOR_ACTIONS
    monkeypatch.delenv("WEBHOOK_ALLOW_HTTP", raising=False)
    with pytest.raises(BadRequest):  # in AWS: https only
        actions["register_webhook"]({"url": "http://127.0.0.1:8099/hook"})
    monkeypatch.setenv("WEBHOOK_ALLOW_HTTP", "true")  # the local stack's setting
    hook = actions["register_webhook"]({"url": "http://127.0.0.1:8099/hook", "device_id": 9})
    assert hook["secret"].startswith("whsec_") and hook["device_id"] == 9
    listed = actions["list_webhooks"]({})["webhooks"]
    assert [w["id"] for w in listed] == [hook["id"]] and "secret" not in listed[0]  # shown once, never listed
    with pytest.raises(BadRequest):
        actions["register_webhook"]({"url": "https://example.com/x", "device_id": "nine"})
    with pytest.raises(BadRequest):
        actions["remove_webhook"]({"webhook_id": "1"})
    assert actions["remove_webhook"]({"webhook_id": hook["id"]}) == {"removed": hook["id"]}
    with pytest.raises(NotFound):
        actions["remove_webhook"]({"webhook_id": hook["id"]})


def test_the_local_cli_registers_and_removes_a_webhook(database, capsys):
    from local import admin as cli

    assert cli.main(["register_webhook", "--url", "https://example.com/hook", "--device-id", "9"]) == 0
    hook = json.loads(capsys.readouterr().out)
    assert hook["secret"].startswith("whsec_") and hook["device_id"] == 9
    assert cli.main(["list_webhooks"]) == 0
    assert [w["id"] for w in json.loads(capsys.readouterr().out)["webhooks"]] == [hook["id"]]
    assert cli.main(["register_webhook", "--url", "ftp://example.com/x"]) == 2
    assert "https://" in capsys.readouterr().err
    assert cli.main(["remove_webhook", "--webhook-id", str(hook["id"])]) == 0
    assert cli.main(["remove_webhook", "--webhook-id", str(hook["id"])]) == 2
