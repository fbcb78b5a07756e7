"""The report routes' query parameters: each one checked, and a GET /events query as one EventQuery.

Pure (no I/O). A value that does not fit is a 400 naming the parameter: a misspelt or out-of-range filter must
not silently answer unfiltered.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from ..errors import InvalidCursor, InvalidParameter
from ..http import query_params
from ..query import INT32_MAX, INT32_MIN, INT64_MAX, INTEGER, iso, parse_int, parse_time, wants_csv  # noqa: F401


DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
SMALLINT_MAX = 2**15 - 1

SUMMARY_PARAMETERS = ("run",)
EVENTS_PARAMETERS = ("label", "run", "device_id", "since", "until", "order", "limit", "cursor", "format")


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


def parse_events_query(params: dict | None, accept: str | None = None) -> EventQuery:
    p = query_params(params, EVENTS_PARAMETERS)
    order = p.get("order", "asc")
    if order not in ("asc", "desc"):
        raise InvalidParameter(f"order must be asc or desc, not {order!r}", parameter="order")
    query = EventQuery(
        label=parse_int("label", p["label"], -1, SMALLINT_MAX) if "label" in p else None,
        run=parse_run(p.get("run")),
        device_id=parse_int("device_id", p["device_id"], INT32_MIN, INT32_MAX) if "device_id" in p else None,
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
