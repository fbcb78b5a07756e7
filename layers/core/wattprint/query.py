"""Query-string values every API capability reads the same way (pure): integers in a range, ISO 8601 times, the
answer's format, and the one way times are written back. A value that does not fit is a 400 naming the parameter.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from .errors import InvalidParameter

UTC = timezone.utc
INT64_MAX = 2**63 - 1
INT32_MIN, INT32_MAX = -2**31, 2**31 - 1
CSV_TYPE = "text/csv"


def iso(t: datetime | None) -> str | None:
    """2026-11-23T01:13:00.123456Z (always microseconds, so values sort and compare as text too)."""
    if t is None:
        return None
    if t.tzinfo is not None:
        t = t.astimezone(UTC)
    return t.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


INTEGER = re.compile(r"-?[0-9]{1,19}", re.ASCII)


def parse_int(name: str, text: str, minimum: int, maximum: int) -> int:
    if not INTEGER.fullmatch(text):
        raise InvalidParameter(f"{name} must be an integer, not {text!r}", parameter=name)
    value = int(text)
    if not minimum <= value <= maximum:
        raise InvalidParameter(f"{name} must be between {minimum} and {maximum}, not {value}", parameter=name)
    return value


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
