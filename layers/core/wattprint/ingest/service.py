"""POST /events: a request body in, stored events (and any clustering runs they open) out. All or nothing.

A body may come gzip-compressed (`Content-Encoding: gzip`); the limits apply to what it inflates to, and it is
inflated in bounded steps, so a small bomb costs at most the limit. A request with an `Idempotency-Key` is answered
once: a retry with the same key and body gets the first answer back and stores nothing (see KEY_TTL).
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

from pg8000.exceptions import DatabaseError

from .. import db, observability
from ..appliances import service as appliances
from ..energy import service as energy
from ..errors import (BadRequest, IdempotencyKeyReused, InvalidBody, InvalidEvent, InvalidIdempotencyKey, InvalidValue,
                      PayloadTooLarge, ServiceError, UnsupportedEncoding, UnsupportedMediaType)
from ..http import GZIP_MAGIC, inflate_gzip
from ..limits import MAX_BODY_BYTES, MAX_EVENTS
from ..live import service as live
from ..settings import Settings
from . import outbox, parser, store
from .record import EventRecord
TEXT_TYPES = ("text/plain", "application/octet-stream")
# How long a key is remembered: far longer than any client retries for, short enough to keep the table small.
KEY_TTL = timedelta(hours=24)
MAX_KEY_LENGTH = 255


def _media_type(content_type: str | None) -> str:
    return (content_type or "text/plain").split(";", 1)[0].strip().lower()


def _too_large(detail: str) -> PayloadTooLarge:
    return PayloadTooLarge(f"the body is {detail}; at most {MAX_BODY_BYTES} bytes per request (after gzip)")


def decode_body(raw: bytes, content_encoding: str | None = None) -> str:
    """The request body as text, inflated if it is gzip, or the reason it cannot be (400, 413, 415).

    API Gateway's REST API inflates a gzip request itself and passes the header on, so a body said to be gzip that
    does not start as one is taken as already inflated (no valid body starts with 0x1f: it is a control character).
    """
    coding = (content_encoding or "").strip().lower()
    if coding in ("gzip", "x-gzip"):
        if raw[:2] == GZIP_MAGIC:
            try:
                raw = inflate_gzip(raw, MAX_BODY_BYTES)
            except PayloadTooLarge:
                raise _too_large(f"more than {MAX_BODY_BYTES} bytes once inflated") from None
    elif coding not in ("", "identity"):
        raise UnsupportedEncoding(f"Content-Encoding {coding!r} is not supported; send gzip or nothing")
    if len(raw) > MAX_BODY_BYTES:
        raise _too_large(f"{len(raw)} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidBody(f"the body is not UTF-8 text (byte {error.start} of {len(raw)})") from None


def _from_json(body: str) -> list[tuple[str, EventRecord]]:
    try:
        doc = json.loads(body)
    except ValueError as error:
        raise InvalidEvent(f"the body is not valid JSON: {error}", line=None) from None
    except RecursionError:  # nesting deeper than the interpreter's stack
        raise InvalidEvent("the body is not an event or a list of events: it is nested too deeply") from None
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
    size = len(body.encode("utf-8", "surrogatepass"))
    if size > MAX_BODY_BYTES:
        raise _too_large(f"{size} bytes")
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


def check_key(key: str | None) -> str | None:
    """The Idempotency-Key header's value, or 400 if it is not 1-255 visible ASCII characters."""
    if key is None:
        return None
    if not 0 < len(key) <= MAX_KEY_LENGTH or not key.isascii() or not key.isprintable() or " " in key:
        raise InvalidIdempotencyKey(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} visible ASCII characters "
                                    "(a UUID is a good choice)")
    return key


# Recorded after the events, in their transaction. A row still live for this client and key means another request
# with it committed first (this one waited for it on the event counter's lock): nothing comes back, and this
# request rolls back. An expired row is taken over.
_REMEMBER = """
INSERT INTO idempotency_keys (principal, key, body_sha256, ids, total) VALUES (:principal, :key, :digest, :ids, :total)
ON CONFLICT (principal, key) DO UPDATE
    SET body_sha256 = EXCLUDED.body_sha256, ids = EXCLUDED.ids, total = EXCLUDED.total, created_at = now()
    WHERE idempotency_keys.created_at < now() - make_interval(secs => :ttl)
RETURNING true"""
_RECALL = """
SELECT body_sha256, ids, total FROM idempotency_keys
WHERE principal = :principal AND key = :key AND created_at >= now() - make_interval(secs => :ttl)"""
_PURGE = "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => :ttl)"


class _Answered(Exception):
    """Rolls back a request whose key another request already used."""


def _replay(principal: str, key: str, digest: bytes) -> store.Stored | None:
    rows = db.execute(_RECALL, principal=principal, key=key, ttl=KEY_TTL.total_seconds())
    if not rows:
        return None
    first_digest, ids, total = rows[0]
    if bytes(first_digest) != digest:
        raise IdempotencyKeyReused(f"Idempotency-Key {key!r} was already used with another body; use a new key "
                                   "for new events")
    return store.Stored(ids=list(ids), total=total, runs=[], replayed=True)


def accept(raw: bytes, content_type: str | None, settings: Settings, *, content_encoding: str | None = None,
           idempotency_key: str | None = None, principal: str = "") -> store.Stored:
    """POST /events, with what operators watch: events accepted, requests rejected by reason, runs opened."""
    try:
        stored = _accept(raw, content_type, settings, content_encoding, idempotency_key, principal)
    except ServiceError as error:
        observability.count(observability.EVENTS_REJECTED, reason=error.code)  # one per request: all or nothing
        raise
    if not stored.replayed:
        observability.count(observability.EVENTS_ACCEPTED, len(stored.ids))
        if stored.runs:
            observability.count(observability.RUNS_OPENED, len(stored.runs))
    return stored


def _accept(raw: bytes, content_type: str | None, settings: Settings, content_encoding: str | None,
            idempotency_key: str | None, principal: str) -> store.Stored:
    """POST /events (the ingest function): decode and parse the body (bytes as received), store it in one
    transaction, once per idempotency key, send the runs it opened, announce."""
    key = check_key(idempotency_key)
    body = decode_body(raw, content_encoding)
    events = parse_body(body, content_type)
    digest = hashlib.sha256(body.encode("utf-8", "surrogatepass")).digest()
    # A few events without a key are one statement (store.insert_events): no BEGIN and COMMIT to wait for, and the
    # event counter's lock, which serialises ingest, is held for that statement alone.
    single = key is None and len(events) <= store.COPY_FROM
    for _ in range(2):  # the second pass only if the row it lost to expired in between
        try:
            with db.one_statement() if single else db.transaction() as conn:
                stored = store.insert_events(conn, events, settings.cluster_threshold,
                                            settings.clustering.per_device)
                if key is not None and not db.prepared(conn, _REMEMBER).run(
                        principal=principal, key=key, digest=digest, ids=stored.ids, total=stored.total,
                        ttl=KEY_TTL.total_seconds()):
                    raise _Answered()
        except _Answered:
            replayed = _replay(principal, key, digest)
            if replayed is not None:
                return replayed
            continue
        except DatabaseError as error:
            # A data exception: something in the events that the parsers let through and the database cannot hold.
            if (db.sqlstate(error) or "").startswith("22"):
                raise InvalidValue(f"a value cannot be stored: {error.args[0].get('M', 'data exception')}") from None
            raise
        break
    else:
        raise AssertionError("an idempotency key was both live and expired")
    if stored.runs:
        outbox.publish(stored.runs, lambda: outbox.sqs_sender(settings.cluster_queue_url, settings.region))
    live.events_stored(stored.total - len(stored.ids) + 1, stored.total)
    energy.events_stored(settings.energy_feed_queue_url, stored.total)
    appliances.events_stored(stored.total, settings.appliance_states_queue_url)
    return stored


def resend_unsent(settings: Settings) -> list[store.Run]:
    """For the hourly sweep: send the pending runs whose message was never sent or was lost (see outbox)."""
    return outbox.sweep(outbox.sqs_sender(settings.cluster_queue_url, settings.region),
                        resend_after_seconds=settings.run_resend_after_seconds)


def purge_idempotency_keys() -> int:
    """Delete the keys older than KEY_TTL (the sweep calls this hourly); return how many."""
    return len(db.execute(_PURGE + " RETURNING 1", ttl=KEY_TTL.total_seconds()))
