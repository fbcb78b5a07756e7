"""The alerts' use cases: score what changed, list anomalies and alerts, acknowledge, webhooks, and hand what is
to be told to the notify queue. One function per use case; handlers call these.

A little over 300 lines on purpose: scoring, telling and reading share the transaction rules and payloads written
here, and splitting them would send a reader between files for one flow (energy change → score → tell)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from .. import aws, db
from ..errors import BadRequest, NotFound
from .. import settings as settings_module
from ..settings import AlertSettings
from ..energy import service as energy
from ..live import service as live
from . import lifecycle, messages, params, scoring, signing, store

log = logging.getLogger(__name__)
UTC = timezone.utc
HOUR = timedelta(hours=1)
COMPLETE_COVERAGE = 0.999  # an hour with a gap in its readings is not scored: its energy would look low


@dataclass(frozen=True)
class AlertsConfig:
    method: str = "robust"  # the method whose anomalies drive alerts; both are scored and kept
    scoring: scoring.ScoringConfig = field(default_factory=scoring.ScoringConfig)
    lifecycle: lifecycle.AlertConfig = field(default_factory=lifecycle.AlertConfig)
    notify_queue_url: str | None = None
    topic_arn: str | None = None


def config(settings: AlertSettings) -> AlertsConfig:
    quiet = settings.quiet_hours or (None, None)
    return AlertsConfig(
        method=settings.method,
        scoring=scoring.ScoringConfig(threshold=settings.threshold, low_threshold=settings.threshold),
        lifecycle=lifecycle.AlertConfig(fire_after=settings.fire_after, resolve_after=settings.resolve_after,
                                        repeat=timedelta(hours=settings.repeat_hours), quiet_start=quiet[0],
                                        quiet_end=quiet[1], daily_cap=settings.daily_cap),
        notify_queue_url=settings.notify_queue_url, topic_arn=settings.topic_arn)


# ---------------------------------------------------------------------------------------------- scoring

def _baseline(conn, device_id: int, day, config: AlertsConfig) -> scoring.Baseline:
    cached = store.baseline(conn, device_id, day)
    if cached is not None:
        return scoring.Baseline.from_json(cached if isinstance(cached, dict) else json.loads(cached))
    start, end = scoring.history_window(day, config.scoring)
    history = [(hour, wh) for hour, wh, coverage in energy.hourly(conn, device_id, start, end)
               if coverage >= COMPLETE_COVERAGE]
    learnt = scoring.learn(history, day, config.scoring)
    store.save_baseline(conn, device_id, day, learnt.to_json())
    return learnt


def _payload(device_id: int, kind: str, hour: datetime, wh: float, score: scoring.Score, alert: int,
             method: str) -> dict:
    return {"alert_id": alert, "device_id": device_id, "kind": kind, "method": method,
            "hour": hour.isoformat().replace("+00:00", "Z"), "wh": wh, "score": score.value,
            "direction": score.direction, "usual_low_wh": score.low, "usual_high_wh": score.high,
            "text": messages.text(kind, device_id, hour, wh, score.low, score.high, score.direction)}


def score_changes(device_id: int, config: AlertsConfig) -> dict:
    """Score the device's completed hours from the earliest one whose energy changed since last time, feed the new
    ones to its alert lifecycle, and record what is to be told — all in one transaction that holds the device's
    state, so a redelivered message or a second scorer finds the work done. Then hand it to the notify queue."""
    scored = fed = 0
    with db.transaction() as conn:
        raw, last_hour = store.lock_state(conn, device_id)
        since = energy.take_changes(conn, device_id)
        if since is not None:
            start = since.replace(minute=0, second=0, microsecond=0)
            state = lifecycle.state_from_json(raw)
            baselines: dict = {}
            for hour, wh, coverage in energy.hourly(conn, device_id, start, None):
                if coverage < COMPLETE_COVERAGE:
                    continue
                day = hour.date()
                if day not in baselines:
                    baselines[day] = _baseline(conn, device_id, day, config)
                scores = scoring.score(baselines[day], hour, wh, config.scoring)
                for score in scores.values():
                    store.save_score(conn, device_id, hour, wh, score, day)
                scored += 1
                driving = scores[config.method]
                if (last_hour is not None and hour <= last_hour) or driving.value is None:
                    continue  # a late re-score updates the score only; the lifecycle took each hour once
                state = _advance(conn, device_id, state, hour, wh, driving, config)
                last_hour, fed = hour, fed + 1
            store.save_state(conn, device_id, lifecycle.state_to_json(state), last_hour)
    try:
        sent = publish(config) if fed else 0
    except (*aws.errors(), RuntimeError) as error:  # told later: the sweep hands over what is still untold
        log.warning("alert notifications not handed to the notify queue yet: %s", error)
        sent = 0
    return {"device_id": device_id, "scored": scored, "fed": fed, "sent": sent}


def score_message(body: str, config: AlertsConfig) -> dict:
    """One energy-changes message, {"device_id": n}. A malformed one is dropped (logged): retrying cannot mend it."""
    try:
        doc = json.loads(body)
        device_id = doc["device_id"]
        if not isinstance(device_id, int) or isinstance(device_id, bool):
            raise TypeError(device_id)
    except (ValueError, KeyError, TypeError):
        log.error("energy-changes message dropped: not {\"device_id\": n}: %r", body[:200])
        return {"dropped": True}
    return score_changes(device_id, config)


def _advance(conn, device_id: int, state: lifecycle.State, hour: datetime, wh: float, score: scoring.Score,
             config: AlertsConfig) -> lifecycle.State:
    step = lifecycle.step(state, score.anomalous, hour + HOUR, config.lifecycle)
    if step.opened is not None:
        opened_hour = hour - (config.lifecycle.fire_after - 1) * HOUR
        store.open_alert(conn, device_id, step.opened, config.method, score.direction, opened_hour, hour + HOUR, wh)
    elif step.state.alert is not None and score.anomalous:
        store.touch_alert(conn, store.alert_id(conn, device_id, step.state.alert), hour, wh)
    if step.resolved is not None:
        store.resolve_alert(conn, store.alert_id(conn, device_id, step.resolved), hour + HOUR)
    for capped, notifications in ((False, step.notifications), (True, step.capped)):
        for n in notifications:
            alert = store.alert_id(conn, device_id, n.alert)
            payload = _payload(device_id, n.kind, hour, wh, score, alert, config.method)
            store.add_notification(conn, alert, n.kind, n.at, payload["text"], payload, capped)
    return step.state


# ---------------------------------------------------------------------------------------------- telling

def _targets(conn, device_id: int, config: AlertsConfig) -> list[dict]:
    targets = [{"target": "sns", "topic_arn": config.topic_arn}] if config.topic_arn else []
    targets += [{"target": "webhook", "webhook_id": hook_id, "url": url, "secret": secret}
                for hook_id, url, secret in store.webhooks_for(conn, device_id)]
    return targets


def publish(config: AlertsConfig, older_than_s: float = 0) -> int:
    """Hand every untold notification to the notify queue (one message per notification and target) and the live
    channel, then mark it told. A failed send leaves it for the next call (the sweep calls this too)."""
    if not config.notify_queue_url:
        return 0
    with db.transaction() as conn:
        rows = store.unsent(conn, older_than_s)
        entries = []
        for notification_id, payload, device_id in rows:
            for target in _targets(conn, device_id, config):
                entries.append({"notification_id": notification_id, **target, "payload": payload})
        sqs = aws.client("sqs", attempts=3)
        for i in range(0, len(entries), 10):
            batch = entries[i:i + 10]
            answer = sqs.send_message_batch(QueueUrl=config.notify_queue_url, Entries=[
                {"Id": str(n), "MessageBody": json.dumps(entry)} for n, entry in enumerate(batch)])
            if answer.get("Failed"):
                raise RuntimeError(f"the notify queue refused {len(answer['Failed'])} messages")
        store.mark_sent(conn, [row[0] for row in rows])
    for _, payload, _ in rows:
        live.alert(payload)
    return len(rows)


def deliver(message: str, timeout_s: float = 5.0) -> str:
    """One notify-queue message delivered (the notify function, outside the VPC): published on the SNS topic, or
    POSTed to a webhook signed with its secret. Raises when it must be tried again."""
    import time
    import urllib.error
    import urllib.request

    entry = json.loads(message)
    payload = entry["payload"]
    if entry["target"] == "sns":
        aws.client("sns", attempts=2).publish(
            TopicArn=entry["topic_arn"], Subject=f"wattprint: device {payload['device_id']} {payload['kind']}"[:100],
            Message=payload["text"])
        return "sns"
    body = json.dumps(payload, separators=(",", ":")).encode()
    request = urllib.request.Request(entry["url"], data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "wattprint-webhooks",
        signing.HEADER: signing.sign(entry["secret"], body, int(time.time())),
        # Delivery is at least once: a receiver that saw this id already can ignore it.
        "X-Wattprint-Delivery": f"{entry['notification_id']}-{entry['webhook_id']}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:  # noqa: S310 — registered URLs only
            if not 200 <= answer.status < 300:
                raise RuntimeError(f"webhook {entry['webhook_id']} answered {answer.status}")
    except urllib.error.HTTPError as error:
        raise RuntimeError(f"webhook {entry['webhook_id']} answered {error.code}") from None
    except (urllib.error.URLError, OSError) as error:
        raise RuntimeError(f"webhook {entry['webhook_id']} unreachable: {error}") from None
    return "webhook"


def sweep(config: AlertsConfig) -> dict:
    """Housekeeping (hourly): hand over notifications whose send failed, and re-announce energy changes whose
    message was lost (a change feed row that no scorer took within minutes)."""
    return {"notifications_sent": publish(config, older_than_s=60),
            "energy_changes_resent": energy.resend_stale_changes(older_than_s=300)}


BACKOFF_FIRST_S = 30
BACKOFF_MAX_S = 900  # SQS's visibility timeout may be up to 12 h; a quarter of an hour keeps retries useful


def back_off(receipt_handle: str, receive_count: int, queue_url: str | None) -> None:
    """Make a failed delivery invisible for 30 s, 60 s, 120 s, … (at most 15 min) before its next try."""
    if not queue_url:
        return
    delay = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** max(0, receive_count - 1))
    try:
        aws.client("sqs").change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt_handle,
                                                    VisibilityTimeout=delay)
    except aws.errors() as error:  # the queue's own visibility timeout applies instead
        log.warning("could not delay the next delivery try: %s", error)


# ---------------------------------------------------------------------------------------------- reading

def anomalies(query: dict | None) -> dict:
    """GET /anomalies: the scored hours of a window (default: the last 7 days) under one method."""
    q = params.anomalies(query, datetime.now(UTC))
    with db.transaction() as conn:
        rows = store.anomalies(conn, q.method, q.device_id, q.since, q.until, q.only_anomalous, q.limit)
    items = [{"device_id": d, "hour": _iso(h), "wh": wh, "score": s, "anomalous": a, "direction": direction,
              "expected_wh": e, "usual_low_wh": lo, "usual_high_wh": hi, "basis": basis,
              "baseline": baseline.isoformat()}
             for d, h, wh, s, a, direction, e, lo, hi, basis, baseline in rows]
    return {"method": q.method, "since": _iso(q.since), "until": _iso(q.until), "items": items}


def _iso(t: datetime | None) -> str | None:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z") if t else None


def _alert_json(row) -> dict:
    (alert_id, device_id, number, method, direction, status, opened, fired, resolved, acked, peak, last,
     told) = row
    return {"id": alert_id, "device_id": device_id, "number": number, "method": method, "direction": direction,
            "status": status, "opened_hour": _iso(opened), "fired_at": _iso(fired), "resolved_at": _iso(resolved),
            "acked_at": _iso(acked), "peak_wh": peak, "last_hour": _iso(last), "notifications": told}


def alerts(query: dict | None) -> dict:
    """GET /alerts: every firing alert and those fired since `since` (default: the last 7 days), newest first."""
    q = params.alerts(query, datetime.now(UTC))
    with db.transaction() as conn:
        return {"items": [_alert_json(r) for r in store.alerts(conn, q.device_id, q.status, q.since, q.limit)]}


def acknowledge(alert_id_text: str) -> dict:
    """POST /alerts/{id}/ack: stop an alert's repeats (its resolution is still told)."""
    alert_id = params.alert_id(alert_id_text)
    with db.transaction() as conn:
        found = store.acknowledge(conn, alert_id)
        if found is None:
            raise NotFound(f"no alert {alert_id}", alert_id=alert_id)
        device_id, number, _, _ = found
        raw, last_hour = store.lock_state(conn, device_id)
        state = lifecycle.state_from_json(raw)
        if state.alert == number:
            store.save_state(conn, device_id, lifecycle.state_to_json(lifecycle.acknowledge(state)), last_hour)
        return _alert_json(store.alert(conn, alert_id))


# ---------------------------------------------------------------------------------------------- webhooks

def register_webhook(url: str, device_id: int | None, allow_http: bool) -> dict:
    from urllib.parse import urlsplit

    parts = urlsplit(url or "")
    if parts.scheme not in (("https", "http") if allow_http else ("https",)) or not parts.hostname:
        raise BadRequest("a webhook URL must be an absolute https:// URL", field="url")
    secret = signing.new_secret()
    with db.transaction() as conn:
        hook = store.add_webhook(conn, url, secret, device_id)
    return {**hook, "secret": secret}


def webhooks() -> dict:
    with db.transaction() as conn:
        return {"webhooks": store.list_webhooks(conn)}


def remove_webhook(webhook_id: int) -> dict:
    with db.transaction() as conn:
        if not store.remove_webhook(conn, webhook_id):
            raise NotFound(f"no webhook {webhook_id}", webhook_id=webhook_id)
    return {"removed": webhook_id}


def _operator_register(request: dict) -> dict:
    device = request.get("device_id")
    if device is not None and (not isinstance(device, int) or isinstance(device, bool)):
        raise BadRequest("device_id must be an integer (or absent: every device)", field="device_id")
    return register_webhook(request.get("url", ""), device, settings_module.load().alerts.allow_http_webhooks)


def _operator_remove(request: dict) -> dict:
    webhook_id = request.get("webhook_id")
    if not isinstance(webhook_id, int) or isinstance(webhook_id, bool):
        raise BadRequest("webhook_id must be an integer", field="webhook_id")
    return remove_webhook(webhook_id)


# The alerts' operator actions, for wattprint.admin.handle(request, more=...) (the admin function, the local CLI).
OPERATOR_ACTIONS = {"register_webhook": _operator_register, "list_webhooks": lambda request: webhooks(),
                    "remove_webhook": _operator_remove}


def openapi() -> tuple[dict, dict]:
    """(schemas, paths) of the alerts routes for the API's OpenAPI document."""
    from . import openapi as document  # only GET /openapi.json needs it

    return document.SCHEMAS, document.PATHS
