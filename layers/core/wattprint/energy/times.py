"""Instants as integer microseconds since the Unix epoch (exact, unlike float seconds), and 15-minute buckets."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SECOND = 1_000_000
MICROSECOND = timedelta(microseconds=1)
BUCKET = 15 * 60 * SECOND
HOUR = 3600 * SECOND
DAY = 24 * HOUR
WEEK = 7 * DAY
RESOLUTIONS = {"15m": BUCKET, "1h": HOUR, "1d": DAY}

# FleetEnergyManagement's query form, 2018-08-24T00-00-00Z: dashes where ISO 8601 has colons.
_DASHED = re.compile(r"(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2}(?:\.\d+)?)(Z|[+-]\d{2}:?\d{2})?")
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,6})?)?)?(Z|[+-]\d{2}(?::?\d{2})?)?")


def parse(text: str, *, require_offset: bool) -> datetime | None:
    """An ISO 8601 instant (or the dashed form) as an aware UTC datetime; None when it is not one.

    Stricter than datetime.fromisoformat: exactly one zone designator (`04:42:00ZZ` is refused), and
    `require_offset` refuses a time without one (a meter's local time must not pass as UTC)."""
    if not isinstance(text, str):
        return None
    dashed = _DASHED.fullmatch(text)
    if dashed:
        text = f"{dashed.group(1)}T{dashed.group(2)}:{dashed.group(3)}:{dashed.group(4)}{dashed.group(5) or ''}"
    match = _ISO.fullmatch(text)
    if not match or (require_offset and not match.group(1)):
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace(",", "."))
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def to_us(value: datetime) -> int:
    return (value - EPOCH) // MICROSECOND


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def iso(us: int) -> str:
    """UTC with Z; microseconds only when there are any."""
    return (EPOCH + timedelta(microseconds=us)).isoformat().replace("+00:00", "Z")


def floor(us: int, step: int = BUCKET) -> int:
    return us - us % step


def ceil(us: int, step: int = BUCKET) -> int:
    return -((-us) // step) * step
