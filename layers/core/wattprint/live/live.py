"""Live updates for dashboards: who is connected, and what a batch of announcements means for them.

Ingest and clustering *announce* changes on the live queue (wattprint.live.announce). The live function (in the VPC)
drains the queue in batches (the event source's batching window bounds pushes to about one a second), turns a
batch into at most one `events` message and one `run` message per run, and queues them with the connection ids
on the push queue. The push function (wattprint.live.push) — the one function outside the VPC, because API Gateway's
`@connections` API is a public endpoint and the VPC has no NAT — posts them, and announces the connections it
found gone, which the live function then forgets. Both hops use SQS, which the VPC already reaches.

Announcements are sent only while a dashboard is connected and at most one per instance a second
(wattprint.announce), so an `events` message holds every event stored since the earliest one announced, up to
the total at the time it is built; each push of events is followed by a delayed tick that pushes what was
stored after it (a skipped announcement's events), and a new connection gets one too.

Messages, as JSON text frames:

    {"type": "events", "total": T, "first_seq": a, "last_seq": b, "items": [...]}   items as in GET /events
    {"type": "run", "run": {...}}                                                    as an item of GET /runs
"""

from __future__ import annotations

import json

from .. import aws, db, observability, settings
from ..report import service as report
from . import announce

MAX_ITEMS = 100  # events per message: a dashboard shows the newest few; the API has the rest


# ------------------------------------------------------------------------------------------------ messages

def messages(announcements: list[dict]) -> list[dict]:
    """What a batch of announcements means for a dashboard, read now from the database."""
    out = []
    starts = [a["first_seq"] for a in announcements if a["kind"] == "events"]
    starts += [a["after_seq"] + 1 for a in announcements if a["kind"] == "tick"]
    if starts:
        first = min(starts)
        # Up to the total now, not the announced last_seq: announcements skipped since are covered (see above).
        # The newest MAX_ITEMS of them; first_seq stays the true first, so a dashboard that sees a gap fetches it
        # from the API.
        stored = report.events_since(first, MAX_ITEMS)
        if stored["total"] >= first:
            out.append({"type": "events", "total": stored["total"], "first_seq": first, "last_seq": stored["total"],
                        "items": stored["items"]})
    run_ids = {a["run_id"] for a in announcements if a["kind"] == "run"}
    if run_ids:
        out += [{"type": "run", "run": run} for run in report.runs_by_id(run_ids)]
    return out


# ----------------------------------------------------------------------------------------------- connections

def connect(connection_id: str, token_name: str | None) -> None:
    db.execute("INSERT INTO live_connections (connection_id, token_name) VALUES (:id, :name) "
           "ON CONFLICT (connection_id) DO NOTHING", id=connection_id, name=token_name)
    # Ingest instances that counted no dashboard a moment ago skip their announcements until they count again:
    # this tick pushes what they stored meanwhile.
    announce.tick(report.stored_total(), announce.CONNECT_TICK_DELAY)


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
    posts them to (LIVE_MANAGEMENT_ENDPOINT); after events, a tick to look again (see above). Returns counts."""
    gone = [cid for a in announcements if a["kind"] == "gone" for cid in a["connection_ids"]]
    disconnect(gone)
    ids = connections()
    observability.count(observability.LIVE_CONNECTIONS, len(ids))
    payloads = messages(announcements) if ids else []  # nobody to tell: nothing to read
    if payloads:
        config = settings.live_settings()
        queue, endpoint = config.push_queue_url, config.management_endpoint
        if not (queue and endpoint):
            raise RuntimeError("PUSH_QUEUE_URL and LIVE_MANAGEMENT_ENDPOINT must be set to push live messages")
        for i in range(0, len(ids), CONNECTIONS_PER_PUSH):
            request = {"endpoint": endpoint, "connections": ids[i:i + CONNECTIONS_PER_PUSH], "messages": payloads}
            aws.client("sqs", attempts=3).send_message(QueueUrl=queue,
                                                       MessageBody=json.dumps(request, separators=(",", ":")),
                                                       MessageAttributes=observability.message_attributes())
            observability.count(observability.PUSHES)
    pushed = [p["last_seq"] for p in payloads if p["type"] == "events"]
    if pushed:
        announce.tick(pushed[0])
    return {"messages": len(payloads), "connections": len(ids), "forgotten": len(gone), "ticked": bool(pushed)}
