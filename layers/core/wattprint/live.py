"""Live updates for dashboards: who is connected, what changed, and the messages pushed to them.

Ingest and clustering *announce* changes on the live queue (small messages, best effort: a lost announcement
costs a dashboard nothing it cannot catch up from the REST API). The live function (in the VPC) drains the queue
in batches (the event source's batching window bounds pushes to about one a second), turns a batch into at most
one `events` message and one `run` message per run, and queues them with the connection ids on the push queue.
The push function — the one function outside the VPC, because API Gateway's `@connections` API is a public
endpoint and the VPC has no NAT — posts them, and announces the connections it found gone, which the live
function then forgets. Both hops use SQS, which the VPC already reaches through its endpoint.

Messages, as JSON text frames:

    {"type": "events", "total": T, "first_seq": a, "last_seq": b, "items": [...]}   items as in GET /events
    {"type": "run", "run": {...}}                                                    as an item of GET /runs
"""

from __future__ import annotations

import json
import logging
import os
import threading

from . import db, report

log = logging.getLogger(__name__)

MAX_ITEMS = 100  # events per message: a dashboard shows the newest few; the API has the rest

_client_lock = threading.Lock()
_clients: dict[tuple, object] = {}


def _client(service: str, endpoint: str | None = None):
    """One client per service and endpoint, kept while warm (creating one costs tens of ms). The endpoint
    variables are part of the key: the local stack and tests point services at servers that come and go."""
    import boto3  # only where something is published or pushed

    key = (service, endpoint, os.environ.get("AWS_ENDPOINT_URL_" + service.upper()), os.environ.get("AWS_ENDPOINT_URL"),
           os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))
    with _client_lock:
        if key not in _clients:
            _clients[key] = boto3.client(service, endpoint_url=endpoint, config=_fast_config())
        return _clients[key]


# Live updates are best effort and sit on the ingest path: fail in seconds, once, rather than botocore's 60 s
# timeouts with retries (an ingest request must answer within API Gateway's 29 s).
def _fast_config():
    from botocore.config import Config

    return Config(connect_timeout=1, read_timeout=3, retries={"max_attempts": 1, "mode": "standard"})


def _send_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return BotoCoreError, ClientError


# --------------------------------------------------------------------------------------------- announcing

def announce(message: dict) -> bool:
    """Put one announcement on the live queue (LIVE_QUEUE_URL); never raises: the change is committed already."""
    queue = os.environ.get("LIVE_QUEUE_URL")
    if not queue:
        return False
    try:
        _client("sqs").send_message(QueueUrl=queue, MessageBody=json.dumps(message))
        return True
    except _send_errors() as error:
        log.warning("live update not announced (dashboards catch up from the API): %s", error)
        return False


def events_stored(first_seq: int, last_seq: int) -> bool:
    return announce({"kind": "events", "first_seq": int(first_seq), "last_seq": int(last_seq)})


def run_changed(run_id: int) -> bool:
    return announce({"kind": "run", "run_id": int(run_id)})


# ------------------------------------------------------------------------------------------------ messages

class InvalidAnnouncement(ValueError):
    pass


def parse(body: str) -> dict:
    try:
        doc = json.loads(body)
    except ValueError as error:
        raise InvalidAnnouncement(f"not JSON: {error}") from None
    kind = doc.get("kind") if isinstance(doc, dict) else None
    if kind == "gone" and isinstance(doc.get("connection_ids"), list) \
            and all(isinstance(c, str) for c in doc["connection_ids"]):
        return doc
    keys = {"events": ("first_seq", "last_seq"), "run": ("run_id",)}.get(kind)
    if keys is None or not all(isinstance(doc.get(k), int) and not isinstance(doc.get(k), bool) for k in keys):
        raise InvalidAnnouncement(f"not an announcement: {body[:200]!r}")
    return doc


def messages(announcements: list[dict]) -> list[dict]:
    """What a batch of announcements means for a dashboard, read now from the database."""
    out = []
    spans = [(a["first_seq"], a["last_seq"]) for a in announcements if a["kind"] == "events"]
    if spans:
        first, last = min(s[0] for s in spans), max(s[1] for s in spans)
        # The batch's own events (the newest MAX_ITEMS of them); first_seq stays the true first, so a dashboard
        # that sees a gap fetches it from the API.
        items = report.events_between(max(first, last - MAX_ITEMS + 1), last)
        total = db.run("SELECT total FROM event_counter")[0][0]
        out.append({"type": "events", "total": total, "first_seq": first, "last_seq": last, "items": items})
    run_ids = {a["run_id"] for a in announcements if a["kind"] == "run"}
    if run_ids:
        out += [{"type": "run", "run": run} for run in report.runs()["runs"] if run["id"] in run_ids]
    return out


# ----------------------------------------------------------------------------------------------- connections

def connect(connection_id: str, token_name: str | None) -> None:
    db.run("INSERT INTO live_connections (connection_id, token_name) VALUES (:id, :name) "
           "ON CONFLICT (connection_id) DO NOTHING", id=connection_id, name=token_name)


def disconnect(connection_ids: list[str]) -> None:
    if connection_ids:
        db.run("DELETE FROM live_connections WHERE connection_id = ANY(CAST(:ids AS text[]))", ids=connection_ids)


def connections() -> list[str]:
    return [row[0] for row in db.run("SELECT connection_id FROM live_connections ORDER BY connected_at")]


# ----------------------------------------------------------------------------------------------------- push

def push(endpoint: str, connection_ids: list[str], payloads: list[dict]) -> list[str]:
    """Post every message to every connection through the management API; return the connections that are gone."""
    client = _client("apigatewaymanagementapi", endpoint)
    gone = []
    texts = [json.dumps(m, separators=(",", ":")).encode() for m in payloads]
    for connection_id in connection_ids:
        for text in texts:
            try:
                client.post_to_connection(ConnectionId=connection_id, Data=text)
            except client.exceptions.GoneException:
                gone.append(connection_id)
                break
    return gone


CONNECTIONS_PER_PUSH = 500  # connection ids per push message (SQS messages are at most 256 KiB)


def deliver(announcements: list[dict], endpoint: str) -> dict:
    """The live function's work for one batch: forget connections the push function found gone, build the
    messages, and queue them for the push function (PUSH_QUEUE_URL) with the connection ids. Returns counts."""
    gone = [cid for a in announcements if a["kind"] == "gone" for cid in a["connection_ids"]]
    disconnect(gone)
    payloads = messages(announcements)
    ids = connections()
    if payloads and ids:
        queue = os.environ["PUSH_QUEUE_URL"]
        for i in range(0, len(ids), CONNECTIONS_PER_PUSH):
            request = {"endpoint": endpoint, "connections": ids[i:i + CONNECTIONS_PER_PUSH], "messages": payloads}
            _client("sqs").send_message(QueueUrl=queue, MessageBody=json.dumps(request, separators=(",", ":")))
    return {"messages": len(payloads), "connections": len(ids), "forgotten": len(gone)}


def pushed(request: dict) -> list[str]:
    """The push function's work for one push message; reports the gone connections back on the live queue
    (the push function is outside the VPC: it cannot reach the database, but it can reach SQS)."""
    gone = push(request["endpoint"], request["connections"], request["messages"])
    if gone:
        announce({"kind": "gone", "connection_ids": gone})
    return gone
