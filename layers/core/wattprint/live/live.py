"""Live updates for dashboards: who is connected, and what a batch of announcements means for them.

Ingest and clustering *announce* changes on the live queue (wattprint.live.announce). The live function (in the VPC)
drains the queue in batches (the event source's batching window bounds pushes to about one a second), turns a
batch into `events` messages (one, or several when its items would not fit API Gateway's 128 KB per message) and
one `run` message per run, and queues them with the connection ids on the push queue. The push function (wattprint.live.push) — the one function outside the VPC, because API Gateway's
`@connections` API is a public endpoint and the VPC has no NAT — posts them, and announces the connections it
found gone, which the live function then forgets. Both hops use SQS, which the VPC already reaches.

Announcements are sent only while a dashboard is connected and at most one per instance a second
(wattprint.announce), so an `events` message holds every event stored since the earliest one announced, up to
the total at the time it is built; each push of events is followed by a delayed tick that pushes what was
stored after it (a skipped announcement's events), and a new connection gets one too.

Messages, as JSON text frames:

    {"type": "events", "total": T, "first_seq": a, "last_seq": b, "items": [...]}   items as in GET /events
    {"type": "run", "run": {...}}                                                    as an item of GET /runs
    {"type": "alert", "alert": {...}}                        an alert notification (wattprint.alerts), as told
    {"type": "appliances", "items": [...], "truncated": b}   appliance states that changed, as in
                                                             GET /appliances/states (wattprint.appliances)
    {"type": "settled"}      to one connection, CONNECT_TICK_DELAY after it connected: from now on every change is
                             announced to it; re-read what was read before (see wattprint.live.announce)
"""

from __future__ import annotations

import json
import logging

from .. import aws, db, observability, settings
from ..report import service as report
from . import announce

log = logging.getLogger(__name__)

MAX_ITEMS = 100  # events per batch: a dashboard shows the newest few; the API has the rest
# API Gateway refuses a WebSocket message over 128 KB: every message is kept to this many bytes of JSON.
MAX_MESSAGE_BYTES = 128_000
# SQS refuses a message over 256 KiB: a push request (messages and connection ids) is kept to this.
MAX_REQUEST_BYTES = 250_000
# API Gateway ends every WebSocket connection after two hours: a row older than that is a connection whose
# $disconnect was lost, and must not hold a place under the per-token cap.
CONNECTION_LIFETIME = "2 hours"


def _size(doc) -> int:
    return len(json.dumps(doc, separators=(",", ":")).encode())


# ------------------------------------------------------------------------------------------------ messages

def events_messages(total: int, first_seq: int, last_seq: int, items: list[dict],
                    limit: int = MAX_MESSAGE_BYTES) -> list[dict]:
    """The `events` messages for a batch's items (in seq order), each at most `limit` bytes as JSON.

    Consecutive messages cover consecutive seq ranges (the first starts at the batch's first_seq, the last ends at
    its last_seq), so a dashboard reading them in order sees no gap that is not one. An item too large for a
    message of its own is left out: its range is still covered, and the API serves it."""
    def message(first, last, chunk):
        return {"type": "events", "total": total, "first_seq": first, "last_seq": last, "items": chunk}

    base = _size(message(last_seq, last_seq, []))  # the widest the numbers get: first_seq <= last_seq
    out, chunk, start, size = [], [], first_seq, base
    for item in items:
        n = _size(item)
        if base + n > limit:
            log.warning("live event %s (%d bytes) is too large for a WebSocket message; left to the API",
                        item.get("seq"), n)
            continue
        if chunk and size + 1 + n > limit:
            out.append(message(start, chunk[-1]["seq"], chunk))
            start, chunk, size = chunk[-1]["seq"] + 1, [], base
        size += n + (1 if chunk else 0)
        chunk.append(item)
    out.append(message(start, last_seq, chunk))
    return out


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
            out += events_messages(stored["total"], first, stored["total"], stored["items"])
    run_ids = {a["run_id"] for a in announcements if a["kind"] == "run"}
    if run_ids:
        out += [{"type": "run", "run": run} for run in report.runs_by_id(run_ids)]
    energy = [a for a in announcements if a["kind"] == "energy"]
    if energy:
        # One message for the batch; a bucket announced twice keeps its later value.
        items = {(i["device_id"], i["datetime"]): i for a in energy for i in a["items"]}
        out.append({"type": "energy", "items": list(items.values()), "truncated": any(a["truncated"] for a in energy)})
    out += [{"type": "alert", "alert": a["alert"]} for a in announcements if a["kind"] == "alert"]
    changed = [a for a in announcements if a["kind"] == "appliances"]
    if changed:
        # One message for the batch; a device x appliance announced twice keeps its later state.
        states = {(i["device_id"], i["appliance"]): i for a in changed for i in a["items"]}
        out.append({"type": "appliances", "items": list(states.values()),
                    "truncated": any(a["truncated"] for a in changed)})
    return out


# ----------------------------------------------------------------------------------------------- connections

# Serialises the $connects of one token, so two at once cannot both take the last place under the cap.
_LOCK_TOKEN = "SELECT pg_advisory_xact_lock(hashtextextended('wattprint.live_connections:' || :token_id, 0))"
_OPEN = f"""
SELECT count(*) FROM live_connections
WHERE token_id = :token_id AND connection_id <> :id AND connected_at > now() - interval '{CONNECTION_LIFETIME}'
"""
_INSERT = """
INSERT INTO live_connections (connection_id, token_id, token_name) VALUES (:id, :token_id, :name)
ON CONFLICT (connection_id) DO NOTHING
"""


def connect(connection_id: str, token_id: int, token_name: str | None, per_token: int) -> bool:
    """Record a connection of the token; False (nothing recorded) if the token holds `per_token` already."""
    with db.transaction() as conn:
        conn.run(_LOCK_TOKEN, token_id=str(token_id))
        if conn.run(_OPEN, token_id=token_id, id=connection_id)[0][0] >= per_token:
            return False
        conn.run(_INSERT, id=connection_id, token_id=token_id, name=token_name)
    # Instances that counted no dashboard a moment ago skip their announcements until they count again: this tick
    # pushes the events they stored meanwhile, and tells the connection it is settled (for the rest).
    announce.tick(report.stored_total(), announce.CONNECT_TICK_DELAY, connection_id)
    return True


def disconnect(connection_ids: list[str]) -> None:
    if connection_ids:
        db.execute("DELETE FROM live_connections WHERE connection_id = ANY(CAST(:ids AS text[]))", ids=connection_ids)


def connections() -> list[str]:
    return [row[0] for row in db.execute("SELECT connection_id FROM live_connections ORDER BY connected_at")]


def forget_token(conn, token_id: int) -> list[str]:
    """In the caller's transaction (the token's revocation): forget the token's connections; their ids."""
    return [row[0] for row in conn.run(
        "DELETE FROM live_connections WHERE token_id = :token_id RETURNING connection_id", token_id=token_id)]


def close(connection_ids: list[str]) -> bool:
    """Ask the push function (the one outside the VPC) to close these connections; False if it cannot be asked.
    They are forgotten already, so nothing is pushed to them even if the request is lost."""
    if not connection_ids:
        return True
    config = settings.live_settings()
    if not (config.push_queue_url and config.management_endpoint):
        log.warning("no push queue: %d revoked connections stay open until they end", len(connection_ids))
        return False
    try:
        for i in range(0, len(connection_ids), CONNECTIONS_PER_PUSH):
            request = {"endpoint": config.management_endpoint,
                       "close": connection_ids[i:i + CONNECTIONS_PER_PUSH]}
            aws.client("sqs", attempts=3).send_message(QueueUrl=config.push_queue_url,
                                                       MessageBody=json.dumps(request, separators=(",", ":")))
    except aws.errors() as error:
        log.warning("revoked connections not closed (nothing is pushed to them): %s", error)
        return False
    return True


# ---------------------------------------------------------------------------------------------- delivery

CONNECTIONS_PER_PUSH = 500  # connection ids per push request


def push_requests(endpoint: str, ids: list[str], payloads: list[dict],
                  limit: int = MAX_REQUEST_BYTES) -> list[dict]:
    """Push requests carrying every payload to every connection, each at most `limit` bytes as JSON (payloads are
    at most MAX_MESSAGE_BYTES each, so a request holds at least one)."""
    out = []
    for i in range(0, len(ids), CONNECTIONS_PER_PUSH):
        connections_ = ids[i:i + CONNECTIONS_PER_PUSH]
        base = _size({"endpoint": endpoint, "connections": connections_, "messages": []})
        group, size = [], base
        for payload in payloads:
            n = _size(payload)
            if group and size + 1 + n > limit:
                out.append({"endpoint": endpoint, "connections": connections_, "messages": group})
                group, size = [], base
            size += n + (1 if group else 0)
            group.append(payload)
        if group:
            out.append({"endpoint": endpoint, "connections": connections_, "messages": group})
    return out


def deliver(announcements: list[dict]) -> dict:
    """The live function's work for one batch: forget connections the push function found gone, build the
    messages, and queue them for the push function (PUSH_QUEUE_URL) with the connection ids and the endpoint it
    posts them to (LIVE_MANAGEMENT_ENDPOINT); after events, a tick to look again (see above). Returns counts."""
    gone = [cid for a in announcements if a["kind"] == "gone" for cid in a["connection_ids"]]
    disconnect(gone)
    ids = connections()
    observability.count(observability.LIVE_CONNECTIONS, len(ids))
    payloads = messages(announcements) if ids else []  # nobody to tell: nothing to read
    open_ = set(ids)
    settled = [a["connection_id"] for a in announcements if a["kind"] == "tick" and a.get("connection_id") in open_]
    requests = []
    if payloads or settled:
        config = settings.live_settings()
        queue, endpoint = config.push_queue_url, config.management_endpoint
        if not (queue and endpoint):
            raise RuntimeError("PUSH_QUEUE_URL and LIVE_MANAGEMENT_ENDPOINT must be set to push live messages")
        requests = push_requests(endpoint, ids, payloads) + push_requests(endpoint, settled, [{"type": "settled"}])
        for request in requests:
            aws.client("sqs", attempts=3).send_message(QueueUrl=queue,
                                                       MessageBody=json.dumps(request, separators=(",", ":")),
                                                       MessageAttributes=observability.message_attributes())
            observability.count(observability.PUSHES)
    pushed = [p["last_seq"] for p in payloads if p["type"] == "events"]
    if pushed:
        announce.tick(pushed[-1])
    return {"messages": len(payloads), "connections": len(ids), "forgotten": len(gone), "requests": len(requests),
            "ticked": bool(pushed)}
