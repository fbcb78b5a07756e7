"""The energy series' change feed (see migration 0014): writers mark the earliest changed bucket per device in
the statement that writes the buckets (energy_write_buckets, migration 0017) and, after it commits, send one
message per newly marked device; a reader takes a device's row (deleting it) in the transaction that acts on the
change, so a redelivered message finds nothing to do. The sweep re-sends the rows whose message was lost."""

from __future__ import annotations

import json
import logging
from datetime import datetime

from .. import aws, db, settings
from ..db import Connection
from . import times

log = logging.getLogger(__name__)

def take(conn: Connection, device_id: int) -> datetime | None:
    """The device's earliest changed instant since the last take, the row deleted; None if nothing changed."""
    rows = conn.run("DELETE FROM energy_changes WHERE device_id = :d RETURNING since", d=device_id)
    return rows[0][0] if rows else None


def stale(conn: Connection, older_than_s: float) -> list[int]:
    return [r[0] for r in conn.run("SELECT device_id FROM energy_changes WHERE marked_at < now() - "
                                   "make_interval(secs => :s) ORDER BY device_id", s=older_than_s)]


def send(device_ids: list[int]) -> int:
    """After the commit: one message per device on the energy-changes queue. Best effort — a lost one is re-sent
    by the sweep from the rows still marked."""
    if not device_ids:  # before the settings: every ingest request comes here, and they are not free to read
        return 0
    queue = settings.load().energy_changes_queue_url
    if not queue:
        return 0
    sent = 0
    try:
        sqs = aws.client("sqs")
        for i in range(0, len(device_ids), 10):
            batch = device_ids[i:i + 10]
            answer = sqs.send_message_batch(QueueUrl=queue, Entries=[
                {"Id": str(d), "MessageBody": json.dumps({"device_id": d})} for d in batch])
            sent += len(answer.get("Successful", []))
    except aws.errors() as error:
        log.warning("energy changes not announced (the sweep re-sends them): %s", error)
    return sent


_HOURLY = f"""
SELECT date_trunc('hour', bucket_start, 'UTC'), sum(kwh) * 1000, sum(covered_us), sum(estimated_us)
FROM energy_buckets
WHERE device_id = :d AND bucket_start >= CAST(:lo AS timestamptz)
  AND bucket_start < COALESCE(CAST(:hi AS timestamptz), 'infinity')
GROUP BY 1 ORDER BY 1"""


def hourly(conn: Connection, device_id: int, start: datetime, end: datetime | None) -> list[tuple]:
    """(hour start, Wh, coverage 0..1) of the device's hours in [start, end); an hour that holds the estimated end
    of the device's last interval has coverage 0: its energy is not known yet."""
    out = []
    for hour, wh, covered, estimated in db.prepared(conn, _HOURLY).run(d=device_id, lo=start, hi=end):
        coverage = 0.0 if estimated else covered / times.HOUR
        out.append((hour, wh, coverage))
    return out
