"""Live updates for dashboards: who is connected, and what a batch of announcements means for them.

Ingest and clustering *announce* changes on the live queue (wattprint.live.announce). The live function (in the VPC)
drains the queue in batches (the event source's batching window bounds pushes to about one a second), turns a
batch into at most one `events` message and one `run` message per run, and queues them with the connection ids
on the push queue. The push function (wattprint.live.push) — the one function outside the VPC, because API Gateway's
`@connections` API is a public endpoint and the VPC has no NAT — posts them, and announces the connections it
found gone, which the live function then forgets. Both hops use SQS, which the VPC already reaches.

Messages, as JSON text frames:

    {"type": "events", "total": T, "first_seq": a, "last_seq": b, "items": [...]}   items as in GET /events
    {"type": "run", "run": {...}}                                                    as an item of GET /runs
"""

from __future__ import annotations

import json

from .. import aws, db, settings
from ..report import service as report

MAX_ITEMS = 100  # events per message: a dashboard shows the newest few; the API has the rest


# ------------------------------------------------------------------------------------------------ messages

def messages(announcements: list[dict]) -> list[dict]:
    """What a batch of announcements means for a dashboard, read now from the database."""
    out = []
    spans = [(a["first_seq"], a["last_seq"]) for a in announcements if a["kind"] == "events"]
    if spans:
        first, last = min(s[0] for s in spans), max(s[1] for s in spans)
        # The batch's own events (the newest MAX_ITEMS of them); first_seq stays the true first, so a dashboard
        # that sees a gap fetches it from the API.
        stored = report.events_between(max(first, last - MAX_ITEMS + 1), last)
        out.append({"type": "events", "total": stored["total"], "first_seq": first, "last_seq": last,
                    "items": stored["items"]})
    run_ids = {a["run_id"] for a in announcements if a["kind"] == "run"}
    if run_ids:
        out += [{"type": "run", "run": run} for run in report.runs_by_id(run_ids)]
    return out


# ----------------------------------------------------------------------------------------------- connections

def connect(connection_id: str, token_name: str | None) -> None:
    db.execute("INSERT INTO live_connections (connection_id, token_name) VALUES (:id, :name) "
           "ON CONFLICT (connection_id) DO NOTHING", id=connection_id, name=token_name)


def disconnect(connection_ids: list[str]) -> None:
    if connection_ids:
        db.execute("DELETE FROM live_connections WHERE connection_id = ANY(CAST(:ids AS text[]))", ids=connection_ids)


def connections() -> list[str]:
    return [row[0] for row in db.execute("SELECT connection_id FROM live_connections ORDER BY connected_at")]


# ---------------------------------------------------------------------------------------------- delivery

CONNECTIONS_PER_PUSH = 500  # connection ids per push message (SQS messages are at most 256 KiB)


def deliver(announcements: list[dict]) -> dict:
    """The live function's work for one batch: forget connections the push function found gone, build the
    messages, and queue them for the push function (PUSH_QUEUE_URL) with the connection ids and the endpoint it
    posts them to (LIVE_MANAGEMENT_ENDPOINT). Returns counts."""
    gone = [cid for a in announcements if a["kind"] == "gone" for cid in a["connection_ids"]]
    disconnect(gone)
    payloads = messages(announcements)
    ids = connections()
    if payloads and ids:
        config = settings.live_settings()
        queue, endpoint = config.push_queue_url, config.management_endpoint
        if not (queue and endpoint):
            raise RuntimeError("PUSH_QUEUE_URL and LIVE_MANAGEMENT_ENDPOINT must be set to push live messages")
        for i in range(0, len(ids), CONNECTIONS_PER_PUSH):
            request = {"endpoint": endpoint, "connections": ids[i:i + CONNECTIONS_PER_PUSH], "messages": payloads}
            aws.client("sqs", attempts=3).send_message(QueueUrl=queue,
                                                       MessageBody=json.dumps(request, separators=(",", ":")))
    return {"messages": len(payloads), "connections": len(ids), "forgotten": len(gone)}
