"""Announcements on the live queue: small messages saying what changed, for the live function to turn into pushes.

Ingest (events stored), clustering (a run claimed, done or failed) and the push function (connections found
gone) announce; they do it after their change committed and best effort — a lost announcement costs a dashboard
nothing it cannot catch up from the REST API, so announcing never raises. This module stays small on purpose:
the ingest function imports it on every cold start. See wattprint.live.live for what the announcements become.

    {"kind": "events", "first_seq": a, "last_seq": b}
    {"kind": "run", "run_id": r}
    {"kind": "gone", "connection_ids": [...]}
    {"kind": "energy", "items": [{"device_id", "datetime", "value", "coverage", "flags"}, ...], "truncated": bool}
"""

from __future__ import annotations

import json
import logging

from .. import aws, settings

log = logging.getLogger(__name__)


def announce(message: dict) -> bool:
    """Put one announcement on the live queue (LIVE_QUEUE_URL); False if it is off or the send failed."""
    queue = settings.live_settings().queue_url
    if not queue:
        return False
    try:
        aws.client("sqs").send_message(QueueUrl=queue, MessageBody=json.dumps(message))
        return True
    except aws.errors() as error:
        log.warning("live update not announced (dashboards catch up from the API): %s", error)
        return False


def events_stored(first_seq: int, last_seq: int) -> bool:
    return announce({"kind": "events", "first_seq": int(first_seq), "last_seq": int(last_seq)})


def run_changed(run_id: int) -> bool:
    return announce({"kind": "run", "run_id": int(run_id)})


MAX_ENERGY_ITEMS = 200  # buckets per announcement (SQS takes 256 KiB); beyond, dashboards re-read the API


def energy_changed(items: list[dict]) -> bool:
    return announce({"kind": "energy", "items": items[:MAX_ENERGY_ITEMS], "truncated": len(items) > MAX_ENERGY_ITEMS})


_ENERGY_ITEM = {"device_id": int, "datetime": str, "value": (int, float), "coverage": (int, float), "flags": list}


def _energy(doc: dict) -> bool:
    items = doc.get("items")
    return isinstance(doc.get("truncated"), bool) and isinstance(items, list) and all(
        isinstance(item, dict) and set(item) == set(_ENERGY_ITEM)
        and all(isinstance(item[k], t) and not isinstance(item[k], bool) for k, t in _ENERGY_ITEM.items())
        for item in items)


def connections_gone(connection_ids: list[str]) -> bool:
    return announce({"kind": "gone", "connection_ids": list(connection_ids)})


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
    if kind == "energy" and _energy(doc):
        return doc
    keys = {"events": ("first_seq", "last_seq"), "run": ("run_id",)}.get(kind)
    if keys is None or not all(isinstance(doc.get(k), int) and not isinstance(doc.get(k), bool) for k in keys):
        raise InvalidAnnouncement(f"not an announcement: {body[:200]!r}")
    return doc
