"""The alerts routes' query parameters (pure): a value that does not fit is a 400 naming the parameter."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from ..errors import InvalidParameter
from ..http import query_params
from ..query import INT32_MAX, INT32_MIN, INT64_MAX, iso, parse_int, parse_time
from .scoring import METHODS

UTC = timezone.utc
ANOMALIES = ("device_id", "since", "until", "method", "anomalous", "limit")
ALERTS = ("device_id", "status", "since", "limit")
DEFAULT_WINDOW = timedelta(days=7)
MAX_LIMIT = 5000


@dataclass(frozen=True)
class AnomalyQuery:
    device_id: int | None
    since: datetime
    until: datetime
    method: str
    only_anomalous: bool
    limit: int


@dataclass(frozen=True)
class AlertQuery:
    device_id: int | None
    status: str | None
    since: datetime
    limit: int


def _device(p: dict) -> int | None:
    return parse_int("device_id", p["device_id"], INT32_MIN, INT32_MAX) if "device_id" in p else None


def _limit(p: dict, default: int) -> int:
    return parse_int("limit", p["limit"], 1, MAX_LIMIT) if "limit" in p else default


def anomalies(query: dict | None, now: datetime) -> AnomalyQuery:
    p = query_params(query, ANOMALIES)
    until = parse_time("until", p["until"]) if "until" in p else now
    since = parse_time("since", p["since"]) if "since" in p else until - DEFAULT_WINDOW
    if since >= until:
        raise InvalidParameter(f"since ({iso(since)}) must be before until ({iso(until)})", parameter="since")
    method = p.get("method", "robust")
    if method not in METHODS:
        raise InvalidParameter(f"method must be one of {', '.join(METHODS)}, not {method!r}", parameter="method")
    anomalous = p.get("anomalous", "false")
    if anomalous not in ("true", "false"):
        raise InvalidParameter(f"anomalous must be true or false, not {anomalous!r}", parameter="anomalous")
    return AnomalyQuery(_device(p), since, until, method, anomalous == "true", _limit(p, 1000))


def alerts(query: dict | None, now: datetime) -> AlertQuery:
    p = query_params(query, ALERTS)
    status = p.get("status")
    if status not in (None, "firing", "resolved"):
        raise InvalidParameter(f"status must be firing or resolved, not {status!r}", parameter="status")
    since = parse_time("since", p["since"]) if "since" in p else now - DEFAULT_WINDOW
    return AlertQuery(_device(p), status, since, _limit(p, 100))


def alert_id(text: str) -> int:
    return parse_int("id", text, 1, INT64_MAX)
