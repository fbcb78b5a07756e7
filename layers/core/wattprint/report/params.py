"""The report routes' query parameters: each one checked, and a GET /events query as one EventQuery.

Pure (no I/O). A value that does not fit is a 400 naming the parameter: a misspelt or out-of-range filter must
not silently answer unfiltered.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from ..errors import DeviceRequired, InvalidCursor, InvalidParameter
from ..http import query_params
from ..query import INT32_MAX, INT32_MIN, INT64_MAX, INTEGER, iso, parse_int, parse_time, wants_csv  # noqa: F401


DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
SMALLINT_MAX = 2**15 - 1

SUMMARY_PARAMETERS = ("run", "device_id")
RUNS_PARAMETERS = ("device_id",)
EVENTS_PARAMETERS = ("label", "run", "device_id", "since", "until", "order", "limit", "cursor", "format")


def parse_device(p: dict[str, str], per_device: bool, filters: bool = False) -> int | None:
    """`device_id` of a checked query string. ClusterScope=device (`per_device`): required, every device has its own
    runs and labels. ClusterScope=all: refused where it would select a device's runs (`filters` False: there are
    none), and an ordinary filter of the events where it selects events (`filters`: GET /events)."""
    if "device_id" not in p:
        if per_device:
            raise DeviceRequired("device_id is required: this deployment clusters each device's events as a set of "
                                 "its own (ClusterScope=device), so runs and labels are per device; pass ?device_id=",
                                 parameter="device_id")
        return None
    device = parse_int("device_id", p["device_id"], INT32_MIN, INT32_MAX)
    if not per_device and not filters:
        raise InvalidParameter("device_id does not apply here: this deployment clusters every device's events as "
                               "one set (ClusterScope=all), so its runs and clusters are of no one device; "
                               "GET /events?device_id= filters the events", parameter="device_id")
    return device


def parse_run(text: str | None) -> int | None:
    return None if text is None else parse_int("run", text, 1, INT64_MAX)


def parse_event_id(text: str) -> int:
    if not INTEGER.fullmatch(text or ""):
        raise InvalidParameter(f"an event id is a positive integer, not {text!r}", parameter="id")
    return parse_int("id", text, 1, INT64_MAX)


@dataclass(frozen=True)
class EventQuery:
    label: int | None = None
    run: int | None = None
    device_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    desc: bool = False
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None
    csv: bool = False

    def digest(self) -> bytes:
        """What a cursor must have been made for: the order and every filter (not the limit, not the format)."""
        text = "|".join(str(v) for v in (
            "desc" if self.desc else "asc", self.label, self.run, self.device_id,
            iso(self.since) if self.since else None, iso(self.until) if self.until else None))
        return hashlib.sha256(text.encode()).digest()[:8]


def parse_events_query(params: dict | None, accept: str | None = None, per_device: bool = False) -> EventQuery:
    """GET /events' query; `per_device` (ClusterScope=device): device_id is required (see parse_device)."""
    p = query_params(params, EVENTS_PARAMETERS)
    order = p.get("order", "asc")
    if order not in ("asc", "desc"):
        raise InvalidParameter(f"order must be asc or desc, not {order!r}", parameter="order")
    query = EventQuery(
        label=parse_int("label", p["label"], -1, SMALLINT_MAX) if "label" in p else None,
        run=parse_run(p.get("run")),
        device_id=parse_device(p, per_device, filters=True),
        since=parse_time("since", p["since"]) if "since" in p else None,
        until=parse_time("until", p["until"]) if "until" in p else None,
        desc=order == "desc",
        limit=parse_int("limit", p["limit"], 1, MAX_LIMIT) if "limit" in p else DEFAULT_LIMIT,
        cursor=p.get("cursor"),
        csv=wants_csv(p.get("format"), accept),
    )
    if query.since and query.until and query.since >= query.until:
        raise InvalidParameter(f"since ({iso(query.since)}) must be before until ({iso(query.until)})",
                               parameter="since")
    if query.cursor is not None and not query.cursor:
        raise InvalidCursor("cursor is empty", parameter="cursor")
    return query
