"""The report routes' query parameters: each one checked, and a GET /events query as one EventQuery.

Pure (no I/O). A value that does not fit is a 400 naming the parameter: a misspelt or out-of-range filter must
not silently answer unfiltered.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from ..errors import InvalidCursor, InvalidParameter
from ..http import query_params

UTC = timezone.utc

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
INT64_MAX = 2**63 - 1
INT32_MIN, INT32_MAX = -2**31, 2**31 - 1
SMALLINT_MAX = 2**15 - 1

SUMMARY_PARAMETERS = ("run",)
EVENTS_PARAMETERS = ("label", "run", "device_id", "since", "until", "order", "limit", "cursor", "format")
CSV_TYPE = "text/csv"


def iso(t: datetime | None) -> str | None:
    """2026-11-23T01:13:00.123456Z (always microseconds, so values sort and compare as text too)."""
    if t is None:
        return None
    if t.tzinfo is not None:
        t = t.astimezone(UTC)
    return t.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


_INTEGER = re.compile(r"-?[0-9]{1,19}", re.ASCII)


def parse_int(name: str, text: str, minimum: int, maximum: int) -> int:
    if not _INTEGER.fullmatch(text):
        raise InvalidParameter(f"{name} must be an integer, not {text!r}", parameter=name)
    value = int(text)
    if not minimum <= value <= maximum:
        raise InvalidParameter(f"{name} must be between {minimum} and {maximum}, not {value}", parameter=name)
    return value


def parse_run(text: str | None) -> int | None:
    return None if text is None else parse_int("run", text, 1, INT64_MAX)


def parse_event_id(text: str) -> int:
    if not _INTEGER.fullmatch(text or ""):
        raise InvalidParameter(f"an event id is a positive integer, not {text!r}", parameter="id")
    return parse_int("id", text, 1, INT64_MAX)


# "+02:00" in a query string that was not percent-encoded arrives as " 02:00".
_SPACED_OFFSET = re.compile(r"(.*[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?) (\d{2}(?::?\d{2})?)")


def parse_time(name: str, text: str) -> datetime:
    """ISO 8601 (2016-10-04, 2016-10-04T16:47:50Z, …T16:47:50.5+02:00); without an offset, UTC."""
    spaced = _SPACED_OFFSET.fullmatch(text)
    if spaced:
        text = f"{spaced.group(1)}+{spaced.group(2)}"
    try:
        value = datetime.fromisoformat(text)
        # Converting 9999-12-31T23:00-05:00 to UTC leaves datetime's range: OverflowError.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidParameter(f"{name} must be an ISO 8601 date or time between years 1 and 9999 in UTC, such as "
                               f"2016-10-04T16:47:50Z, not {text!r}", parameter=name) from None


def wants_csv(format_param: str | None, accept: str | None) -> bool:
    """?format= wins; else the Accept header: CSV when it ranks text/csv above application/json."""
    if format_param is not None:
        if format_param not in ("json", "csv"):
            raise InvalidParameter(f"format must be json or csv, not {format_param!r}", parameter="format")
        return format_param == "csv"
    if not accept:
        return False
    found = {}  # media type → (q, position)
    for position, part in enumerate(accept.split(",")):
        media, *options = [p.strip() for p in part.split(";")]
        q = 1.0
        for option in options:
            key, _, value = option.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        found.setdefault(media.lower(), (q, position))
    csv_q, csv_at = found.get(CSV_TYPE, (0.0, 0))
    json_q, json_at = found.get("application/json", (0.0, 0))
    return csv_q > 0 and (csv_q > json_q or (csv_q == json_q and csv_at < json_at))


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
