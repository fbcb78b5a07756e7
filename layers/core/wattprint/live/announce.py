"""Announcements on the live queue: small messages saying what changed, for the live function to turn into pushes.

Ingest (events stored), clustering (a run claimed, done or failed) and the push function (connections found
gone) announce; they do it after their change committed and best effort — a lost announcement costs a dashboard
nothing it cannot catch up from the REST API, so announcing never raises. This module stays small on purpose:
the ingest function imports it on every cold start. See wattprint.live.live for what the announcements become.

    {"kind": "events", "first_seq": a, "last_seq": b}
    {"kind": "run", "run_id": r}
    {"kind": "gone", "connection_ids": [...]}
    {"kind": "tick", "after_seq": n}        the live function's own "look again", sent with a delay
    {"kind": "tick", "after_seq": n, "connection_id": c}   the same, sent when c connected: c is told it is settled
    {"kind": "energy", "items": [{"device_id", "datetime", "value", "coverage", "flags"}, ...], "truncated": bool}
                                             buckets POST /energy changed (the sensor feed's are not announced:
                                             a dashboard re-reads a device's series on its `events`)
    {"kind": "alert", "alert": {...}}          a notification's payload, pushed as it is
    {"kind": "appliances", "items": [{"device_id", "appliance", "state", "since", ...}, ...], "truncated": bool}

Announcing only when it can matter: one SQS send per ingest request was most of an ingest request's cost
(issue 18), and a live batch only ever needs one announcement. So an instance (the GATE below) sends nothing
while no dashboard is connected (a connection count it re-reads at most every COUNT_TTL seconds) and at most
one events announcement per INTERVAL while one is. Nothing is lost by skipping: the live function pushes every
event up to the stored total at the time it runs, not just the announced ones, and after each push it sends
itself a tick delayed by TICK_DELAY (>= INTERVAL) seconds that pushes whatever was stored meanwhile — including
the events whose announcement was skipped because one had just been sent. A tick that finds nothing new ends.

What a skipped announcement held besides events (a run's change, energy buckets) no tick can push again, so a new
dashboard learns when it can trust the live channel: the tick sent when it connected (CONNECT_TICK_DELAY later,
when every instance has re-counted and sees it) also tells that connection it is `settled`, and the page then
re-reads from the API what it had read before (a change committed in between may have been announced to nobody).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Callable

from .. import aws, observability, settings

log = logging.getLogger(__name__)

INTERVAL = 1.0  # s: the live queue's batching window; announcing more often than that buys a dashboard nothing
COUNT_TTL = 1.0  # s a connection count is trusted: how late a new dashboard can be noticed
TICK_DELAY = 1  # s, whole (SQS DelaySeconds): at least INTERVAL, see the module docstring
CONNECT_TICK_DELAY = 2  # s: longer than COUNT_TTL, so an instance that had counted no dashboard has re-counted

NO_CONNECTION, THROTTLED = "no_connection", "throttled"


def announce(message: dict, delay_seconds: int = 0) -> bool:
    """Put one announcement on the live queue (LIVE_QUEUE_URL); False if it is off or the send failed."""
    queue = settings.live_settings().queue_url
    if not queue:
        return False
    try:
        aws.client("sqs").send_message(QueueUrl=queue, MessageBody=json.dumps(message),
                                       MessageAttributes=observability.message_attributes(),
                                       **({"DelaySeconds": int(delay_seconds)} if delay_seconds else {}))
        observability.count(observability.ANNOUNCEMENTS_SENT)
        return True
    except aws.errors() as error:
        log.warning("live update not announced (dashboards catch up from the API): %s", error)
        return False


def count_connections() -> int:
    from .. import db  # here, not at import: the push function announces too and has no database

    return db.execute("SELECT count(*) FROM live_connections")[0][0]


def _skipped(reason: str) -> None:
    # Two names, not a dimension: added to the invocation's own metrics, no record of their own per request.
    observability.count(observability.ANNOUNCEMENTS_SKIPPED + ("NoDashboard" if reason == NO_CONNECTION else
                                                               "Throttled"))


class Gate:
    """Whether an announcement can matter now, for one instance (a Lambda instance; the local stack's process,
    whose worker threads share it, hence the lock)."""

    def __init__(self, count: Callable[[], int] = count_connections, clock: Callable[[], float] = time.monotonic,
                 interval: float = INTERVAL, ttl: float = COUNT_TTL):
        self._count, self._clock, self.interval, self.ttl = count, clock, interval, ttl
        self._lock = threading.Lock()
        self._connections, self._counted_at, self._sent_at = 0, float("-inf"), float("-inf")
        self.skipped = {NO_CONNECTION: 0, THROTTLED: 0}

    def connected(self) -> bool:
        with self._lock:
            if self._clock() - self._counted_at < self.ttl:
                return self._connections > 0
        try:
            connections = self._count()
        except Exception as error:  # noqa: BLE001 — best effort: when in doubt, announce
            log.warning("live connections not counted, announcing anyway: %s", error)
            return True
        with self._lock:
            self._connections, self._counted_at = connections, self._clock()
        return connections > 0

    def events(self) -> str | None:
        """None when an events announcement is to be sent now, else why not (NO_CONNECTION or THROTTLED)."""
        reason = None
        if not self.connected():
            reason = NO_CONNECTION
        else:
            with self._lock:
                now = self._clock()
                if now - self._sent_at < self.interval:
                    reason = THROTTLED
                else:
                    self._sent_at = now
        if reason:
            with self._lock:
                self.skipped[reason] += 1
            _skipped(reason)
        return reason

    def run(self) -> str | None:
        """Run changes are few and each one matters: only the connection count holds them back."""
        if self.connected():
            return None
        with self._lock:
            self.skipped[NO_CONNECTION] += 1
        _skipped(NO_CONNECTION)
        return NO_CONNECTION


GATE = Gate()


def events_stored(first_seq: int, last_seq: int) -> bool:
    """Announce stored events if a dashboard can see them and none was announced within INTERVAL."""
    if not settings.live_settings().queue_url or GATE.events() is not None:
        return False
    return announce({"kind": "events", "first_seq": int(first_seq), "last_seq": int(last_seq)})


def run_changed(run_id: int) -> bool:
    if not settings.live_settings().queue_url or GATE.run() is not None:
        return False
    return announce({"kind": "run", "run_id": int(run_id)})


def tick(after_seq: int, delay_seconds: int = TICK_DELAY, connection_id: str | None = None) -> bool:
    """Ask the live function to push, in `delay_seconds`, whatever was stored after `after_seq` (and to tell
    `connection_id`, when given, that it is settled)."""
    message = {"kind": "tick", "after_seq": int(after_seq)}
    if connection_id is not None:
        message["connection_id"] = str(connection_id)
    return announce(message, delay_seconds)


MAX_ENERGY_ITEMS = 200  # buckets per announcement (SQS takes 256 KiB); beyond, dashboards re-read the API


def energy_changed(items: list[dict]) -> bool:
    """Buckets cannot be caught up by a tick: only the connection count holds them back (a dashboard that connected
    a moment ago re-reads the energy view when it is told it is settled)."""
    if not settings.live_settings().queue_url:
        return False
    if not GATE.connected():
        _skipped(NO_CONNECTION)
        return False
    return announce({"kind": "energy", "items": items[:MAX_ENERGY_ITEMS], "truncated": len(items) > MAX_ENERGY_ITEMS})


_ENERGY_ITEM = {"device_id": int, "datetime": str, "value": (int, float), "coverage": (int, float), "flags": list}


MAX_APPLIANCE_ITEMS = 200  # states per announcement; beyond, dashboards re-read GET /appliances/states
_APPLIANCE_ITEM = {"device_id": int, "appliance": str, "state": str, "since": str, "since_seq": int,
                   "seen_at": str, "seen_seq": int}


def appliances_changed(items: list[dict]) -> bool:
    """Appliance states that changed (as GET /appliances/states items). Like energy, no tick can push them again:
    only the connection count holds them back, and a page told it is settled re-reads the states."""
    if not settings.live_settings().queue_url:
        return False
    if not GATE.connected():
        _skipped(NO_CONNECTION)
        return False
    return announce({"kind": "appliances", "items": items[:MAX_APPLIANCE_ITEMS],
                     "truncated": len(items) > MAX_APPLIANCE_ITEMS})


def _items(doc: dict, shape: dict) -> bool:
    items = doc.get("items")
    return isinstance(doc.get("truncated"), bool) and isinstance(items, list) and all(
        isinstance(item, dict) and set(item) == set(shape)
        and all(isinstance(item[k], t) and not isinstance(item[k], bool) for k, t in shape.items())
        for item in items)


def connections_gone(connection_ids: list[str]) -> bool:
    return announce({"kind": "gone", "connection_ids": list(connection_ids)})


def alert(payload: dict) -> bool:
    return announce({"kind": "alert", "alert": payload})


class InvalidAnnouncement(ValueError):
    pass


def parse(body: str) -> dict:
    """One announcement from the queue, checked; anything else raises InvalidAnnouncement."""
    try:
        doc = json.loads(body)
    except ValueError as error:
        raise InvalidAnnouncement(f"not JSON: {error}") from None
    kind = doc.get("kind") if isinstance(doc, dict) else None
    if kind == "gone" and isinstance(doc.get("connection_ids"), list) \
            and all(isinstance(c, str) for c in doc["connection_ids"]):
        return doc
    if kind == "energy" and _items(doc, _ENERGY_ITEM):
        return doc
    if kind == "appliances" and _items(doc, _APPLIANCE_ITEM):
        return doc
    if kind == "alert" and isinstance(doc.get("alert"), dict):
        return doc
    if kind == "tick" and not isinstance(doc.get("connection_id", ""), str):
        raise InvalidAnnouncement(f"not an announcement: {body[:200]!r}")
    keys = {"events": ("first_seq", "last_seq"), "run": ("run_id",), "tick": ("after_seq",)}.get(kind)
    if keys is None or not all(isinstance(doc.get(k), int) and not isinstance(doc.get(k), bool) for k in keys):
        raise InvalidAnnouncement(f"not an announcement: {body[:200]!r}")
    return doc
