"""POST /events: a request body in, stored events (and any clustering runs they open) out. All or nothing."""

from __future__ import annotations

import json

from ..errors import BadRequest, InvalidEvent, PayloadTooLarge, UnsupportedMediaType
from ..live import service as live
from ..settings import Settings
from . import outbox, parser, store
from ..limits import MAX_BODY_BYTES, MAX_EVENTS
from .record import EventRecord
TEXT_TYPES = ("text/plain", "application/octet-stream")


def _media_type(content_type: str | None) -> str:
    return (content_type or "text/plain").split(";", 1)[0].strip().lower()


def _from_json(body: str) -> list[tuple[str, EventRecord]]:
    try:
        doc = json.loads(body)
    except ValueError as error:
        raise InvalidEvent(f"the body is not valid JSON: {error}", line=None) from None
    objects = doc if isinstance(doc, list) else [doc]
    if len(objects) > MAX_EVENTS:
        raise PayloadTooLarge(f"at most {MAX_EVENTS} events per request, got {len(objects)}")
    events = []
    for number, obj in enumerate(objects, start=1):
        try:
            record = EventRecord.from_json(obj)
        except InvalidEvent as error:
            error.line = number
            raise
        events.append((json.dumps(obj, separators=(",", ":")), record))
    return events


def _from_text(body: str) -> list[tuple[str, EventRecord]]:
    # Fewer newlines than MAX_EVENTS cannot make more lines than that; only a longer body has its events counted.
    if body.count("\n") >= MAX_EVENTS and (lines := sum(1 for line in body.split("\n") if line.strip())) > MAX_EVENTS:
        raise PayloadTooLarge(f"at most {MAX_EVENTS} events per request, got {lines}")
    return [(raw, record) for _, raw, record in parser.parse_lines(body)]


def parse_body(body: str, content_type: str | None) -> list[tuple[str, EventRecord]]:
    """The (raw, record) pairs of a request body, or the first reason it cannot be accepted."""
    size = len(body.encode("utf-8"))
    if size > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the body is {size} bytes; at most {MAX_BODY_BYTES} per request")
    media = _media_type(content_type)
    if media == "application/json":
        events = _from_json(body)
    elif media in TEXT_TYPES:
        events = _from_text(body)
    else:
        raise UnsupportedMediaType(f"send events as text/plain (one per line) or application/json, not {media}")
    if not events:
        raise BadRequest("the body holds no events")
    return events


def accept(body: str, content_type: str | None, settings: Settings) -> store.Stored:
    """POST /events (the ingest function): parse, store in one transaction, send the runs it opened, announce."""
    events = parse_body(body, content_type)
    stored = store.insert(events, settings.cluster_threshold)
    if stored.runs:
        outbox.publish(stored.runs, lambda: outbox.sqs_sender(settings.cluster_queue_url, settings.region))
    live.events_stored(stored.total - len(stored.ids) + 1, stored.total)
    return stored


def resend_unsent(settings: Settings) -> list[store.Run]:
    """For the hourly sweep: send the runs ingest committed but whose message was never sent (see outbox)."""
    return outbox.sweep(outbox.sqs_sender(settings.cluster_queue_url, settings.region))
