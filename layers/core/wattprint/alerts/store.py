"""The alerts' SQL, next to the code that runs it. Every function takes the caller's connection: scoring runs
in one transaction per device, holding that device's alert_states row."""

from __future__ import annotations

import json
from datetime import date, datetime

from ..db import Connection

def lock_state(conn: Connection, device_id: int) -> tuple[dict, datetime | None]:
    """The device's lifecycle state and the last hour it consumed, locked until the transaction ends: scorers of
    one device take turns."""
    conn.run("INSERT INTO alert_states (device_id, state) VALUES (:device, '{}') ON CONFLICT (device_id) DO NOTHING",
             device=device_id)
    state, last_hour = conn.run("SELECT state, last_hour FROM alert_states WHERE device_id = :device FOR UPDATE",
                                device=device_id)[0]
    return (state if isinstance(state, dict) else json.loads(state)), last_hour


def save_state(conn: Connection, device_id: int, state: dict, last_hour: datetime | None) -> None:
    conn.run("UPDATE alert_states SET state = CAST(:state AS jsonb), last_hour = :last "
             "WHERE device_id = :device", device=device_id, state=json.dumps(state), last=last_hour)


def baseline(conn: Connection, device_id: int, as_of: date) -> dict | None:
    rows = conn.run("SELECT baseline FROM alert_baselines WHERE device_id = :device AND as_of = :as_of",
                    device=device_id, as_of=as_of)
    return rows[0][0] if rows else None


def save_baseline(conn: Connection, device_id: int, as_of: date, doc: dict) -> None:
    conn.run("INSERT INTO alert_baselines (device_id, as_of, baseline) VALUES (:device, :as_of, CAST(:doc AS jsonb)) "
             "ON CONFLICT (device_id, as_of) DO NOTHING", device=device_id, as_of=as_of, doc=json.dumps(doc))


_SCORE = """
INSERT INTO anomaly_scores (device_id, hour, method, wh, score, anomalous, direction, expected, usual_low, usual_high,
                            basis, baseline)
VALUES (:device, :hour, :method, :wh, :score, :anomalous, :direction, :expected, :low, :high, :basis, :baseline)
ON CONFLICT (device_id, method, hour) DO UPDATE SET
    wh = EXCLUDED.wh, score = EXCLUDED.score, anomalous = EXCLUDED.anomalous, direction = EXCLUDED.direction,
    expected = EXCLUDED.expected, usual_low = EXCLUDED.usual_low, usual_high = EXCLUDED.usual_high,
    basis = EXCLUDED.basis, baseline = EXCLUDED.baseline, scored_at = now()"""


def save_score(conn: Connection, device_id: int, hour: datetime, wh: float, score, baseline_day: date) -> None:
    conn.run(_SCORE, device=device_id, hour=hour, method=score.method, wh=wh, score=score.value,
             anomalous=score.anomalous, direction=score.direction, expected=score.expected, low=score.low,
             high=score.high, basis=score.basis, baseline=baseline_day)


def open_alert(conn: Connection, device_id: int, number: int, method: str, direction: str | None,
               opened_hour: datetime, fired_at: datetime, wh: float) -> int:
    return conn.run(
        "INSERT INTO alerts (device_id, number, method, direction, status, opened_hour, fired_at, peak_wh, last_hour) "
        "VALUES (:device, :number, :method, :direction, 'firing', :opened, :fired, :wh, :opened) "
        "ON CONFLICT (device_id, number) DO UPDATE SET number = EXCLUDED.number RETURNING id",
        device=device_id, number=number, method=method, direction=direction, opened=opened_hour, fired=fired_at,
        wh=wh)[0][0]


def alert_id(conn: Connection, device_id: int, number: int) -> int:
    return conn.run("SELECT id FROM alerts WHERE device_id = :device AND number = :number",
                    device=device_id, number=number)[0][0]


def touch_alert(conn: Connection, alert: int, hour: datetime, wh: float) -> None:
    conn.run("UPDATE alerts SET last_hour = greatest(last_hour, :hour), peak_wh = greatest(peak_wh, :wh) "
             "WHERE id = :id", id=alert, hour=hour, wh=wh)


def resolve_alert(conn: Connection, alert: int, at: datetime) -> None:
    conn.run("UPDATE alerts SET status = 'resolved', resolved_at = :at WHERE id = :id AND status = 'firing'",
             id=alert, at=at)


def add_notification(conn: Connection, alert: int, kind: str, at: datetime, text: str, payload: dict,
                     capped: bool) -> None:
    conn.run("INSERT INTO alert_notifications (alert_id, kind, at, text, payload, capped) "
             "VALUES (:alert, :kind, :at, :text, CAST(:payload AS jsonb), :capped) "
             "ON CONFLICT (alert_id, kind, at) DO NOTHING",
             alert=alert, kind=kind, at=at, text=text, payload=json.dumps(payload), capped=capped)


_UNSENT = """
SELECT n.id, n.payload, a.device_id FROM alert_notifications n JOIN alerts a ON a.id = n.alert_id
WHERE n.sent_at IS NULL AND NOT n.capped AND n.created_at <= now() - make_interval(secs => :older)
ORDER BY n.id LIMIT :limit FOR UPDATE OF n SKIP LOCKED"""


def unsent(conn: Connection, older_than_s: float = 0, limit: int = 500) -> list[tuple[int, dict, int]]:
    return [(i, p if isinstance(p, dict) else json.loads(p), d)
            for i, p, d in conn.run(_UNSENT, older=older_than_s, limit=limit)]


def mark_sent(conn: Connection, ids: list[int]) -> None:
    if ids:
        conn.run("UPDATE alert_notifications SET sent_at = now() WHERE id = ANY(CAST(:ids AS bigint[]))", ids=ids)


def webhooks_for(conn: Connection, device_id: int) -> list[tuple[int, str, str]]:
    return [tuple(r) for r in conn.run(
        "SELECT id, url, secret FROM webhooks WHERE device_id IS NULL OR device_id = :device ORDER BY id",
        device=device_id)]


def add_webhook(conn: Connection, url: str, secret: str, device_id: int | None) -> dict:
    row = conn.run("INSERT INTO webhooks (url, secret, device_id) VALUES (:url, :secret, :device) "
                   "RETURNING id, created_at", url=url, secret=secret, device=device_id)[0]
    return {"id": row[0], "url": url, "device_id": device_id, "created_at": row[1].isoformat()}


def list_webhooks(conn: Connection) -> list[dict]:
    return [{"id": i, "url": u, "device_id": d, "created_at": c.isoformat()}
            for i, u, d, c in conn.run("SELECT id, url, device_id, created_at FROM webhooks ORDER BY id")]


def remove_webhook(conn: Connection, webhook_id: int) -> bool:
    return bool(conn.run("DELETE FROM webhooks WHERE id = :id RETURNING id", id=webhook_id))


_ANOMALIES = """
SELECT device_id, hour, wh, score, anomalous, direction, expected, usual_low, usual_high, basis, baseline
FROM anomaly_scores
WHERE method = :method AND (CAST(:device AS integer) IS NULL OR device_id = :device)
  AND hour >= :since AND hour < :until AND (NOT :only OR anomalous)
ORDER BY device_id, hour LIMIT :limit"""


def anomalies(conn: Connection, method: str, device_id: int | None, since: datetime, until: datetime,
              only_anomalous: bool, limit: int) -> list[tuple]:
    return conn.run(_ANOMALIES, method=method, device=device_id, since=since, until=until, only=only_anomalous,
                    limit=limit)


_ALERT_COLUMNS = """id, device_id, number, method, direction, status, opened_hour, fired_at, resolved_at, acked_at, peak_wh,
       last_hour,
       (SELECT count(*) FROM alert_notifications n WHERE n.alert_id = a.id AND NOT n.capped) AS told"""
_ALERTS = f"""
SELECT {_ALERT_COLUMNS}
FROM alerts a
WHERE (CAST(:device AS integer) IS NULL OR device_id = :device)
  AND (status = 'firing' OR fired_at >= :since)
  AND (CAST(:status AS text) IS NULL OR status = :status)
ORDER BY fired_at DESC, id DESC LIMIT :limit"""


def alerts(conn: Connection, device_id: int | None, status: str | None, since: datetime, limit: int) -> list[tuple]:
    return conn.run(_ALERTS, device=device_id, status=status, since=since, limit=limit)


def alert(conn: Connection, alert_id: int) -> tuple:
    return conn.run(f"SELECT {_ALERT_COLUMNS} FROM alerts a WHERE id = :id", id=alert_id)[0]


def acknowledge(conn: Connection, alert: int) -> tuple | None:
    """(device_id, number, status, acked_at) of the alert, acknowledged if it fires; None when unknown."""
    rows = conn.run("SELECT device_id, number, status FROM alerts WHERE id = :id", id=alert)
    if not rows:
        return None
    device_id, number, status = rows[0]
    acked = conn.run("UPDATE alerts SET acked_at = COALESCE(acked_at, now()) WHERE id = :id "
                     "RETURNING acked_at", id=alert)
    return device_id, number, status, acked[0][0] if acked else None
