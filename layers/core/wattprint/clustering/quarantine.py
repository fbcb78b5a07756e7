"""Quarantine: an operator takes stored events out of clustering, lists them, and releases them.

An event that was stored before the parsers refused implausible values (one `Active=1e160W` makes
estimate_bandwidth return inf, so every later run fails) would otherwise poison every run for good. A quarantined
event stays stored and served by the report API; every run that loads its data while the event is quarantined
leaves it out, records how many it left out (`excluded`) and gives it no label. A run already done keeps its
labels: quarantine changes later runs only. See wattprint.clustering.fit for the exact rule.

Events are picked by id, or by a filter on one field: the events whose value (any element, for a list) is below
`min`, above `max`, NaN or missing. The fields are FILTER_FIELDS. A filter matching more than `max_events`
events (1000 unless given) quarantines nothing: a slip in a bound must not empty the clustering.

SQL only, no numpy: the admin function imports this.
"""

from __future__ import annotations

import math
from datetime import datetime

from .. import db
from ..errors import BadRequest, InvalidQuarantine, TooManyEvents, UnknownEvents
from .features import FEATURE_COLUMNS

MAX_REASON = 500
MAX_IDS = 10_000
DEFAULT_MAX_EVENTS = 1000
LIST_LIMIT = 1000

_FLOAT = ("active_power_w", "reactive_power_var", "apparent_power_va", "current_a", "voltage_v", "phase_rad",
          "frequency_hz")
_INTEGER = ("device_id", "event_type", "wifi_strength_dbm", "dummy")
_LISTS = ("peaks", "fft_re", "fft_img")
_ELEMENTS = {name: expr for name, expr in FEATURE_COLUMNS if name not in _FLOAT}  # peak_1 → peaks[1] …
FILTER_FIELDS = (*_FLOAT, *_ELEMENTS, *_LISTS, *_INTEGER)


# --------------------------------------------------------------------------------------- request checking

def _ids(value, name: str = "ids") -> list[int]:
    if not isinstance(value, list) or not value:
        raise InvalidQuarantine(f"{name} must be a non-empty list of event ids", field=name)
    if len(value) > MAX_IDS:
        raise InvalidQuarantine(f"{name} holds {len(value)} ids; at most {MAX_IDS} at once", field=name)
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or not 1 <= item < 2**63:
            raise InvalidQuarantine(f"{name} must hold positive integer event ids, not {item!r}", field=name)
    return sorted(set(value))


def _reason(value, default: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_REASON:
        raise InvalidQuarantine(f"reason must be a non-blank text of at most {MAX_REASON} characters",
                                field="reason")
    return value.strip()


def _bound(value, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidQuarantine(f"filter.{name} must be a finite number, not {value!r}", field=f"filter.{name}")
    return float(value)


def _condition(field: str, minimum: float | None, maximum: float | None) -> str:
    """The SQL of "outside [min, max]" for one field: NaN and a missing element count as outside."""
    if field in _LISTS:
        value, missing = "v", "v IS NULL OR v = 'NaN'"
    elif field in _ELEMENTS:
        value = f"e.{_ELEMENTS[field]}"
        missing = f"{value} IS NULL OR {value} = 'NaN'"
    elif field in _FLOAT:
        value, missing = f"e.{field}", f"e.{field} = 'NaN'"
    else:
        value, missing = f"e.{field}", None
    parts = [p for p in (missing,
                         f"{value} < CAST(:min AS float8)" if minimum is not None else None,
                         f"{value} > CAST(:max AS float8)" if maximum is not None else None) if p]
    test = " OR ".join(parts)
    return f"EXISTS (SELECT FROM unnest(e.{field}) v WHERE {test})" if field in _LISTS else f"({test})"


# ----------------------------------------------------------------------------------------------- actions

def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t else None


_FIND = "SELECT id, seq FROM events WHERE id = ANY(CAST(:ids AS bigint[])) ORDER BY seq"
_ADD = """
INSERT INTO quarantined_events (seq, reason) SELECT unnest(CAST(:seqs AS bigint[])), :reason
ON CONFLICT (seq) DO NOTHING RETURNING seq
"""


def _add(conn, found: list[tuple[int, int]], reason: str) -> dict:
    added = {row[0] for row in conn.run(_ADD, seqs=[seq for _, seq in found], reason=reason)} if found else set()
    return {"quarantined": [event_id for event_id, seq in found if seq in added],
            "already_quarantined": [event_id for event_id, seq in found if seq not in added]}


def quarantine(request: dict) -> dict:
    """{"ids": [...]} or {"filter": {field, min, max}}, with optional reason (and dry_run, max_events for a
    filter)."""
    if ("ids" in request) == ("filter" in request):
        raise BadRequest("quarantine takes either ids (a list of event ids) or filter ({field, min, max})",
                         field="ids")
    if "ids" in request:
        return by_ids(request["ids"], request.get("reason"))
    return by_filter(request["filter"], request.get("reason"), request.get("dry_run", False),
                     request.get("max_events"))


def by_ids(ids, reason=None) -> dict:
    """Quarantine these events (all or nothing: an unknown id is 404 and quarantines none)."""
    wanted = _ids(ids)
    text = _reason(reason, "quarantined by id")
    with db.transaction() as conn:
        found = [(int(i), int(s)) for i, s in conn.run(_FIND, ids=wanted)]
        missing = sorted(set(wanted) - {i for i, _ in found})
        if missing:
            raise UnknownEvents(f"no event has id {', '.join(map(str, missing[:20]))}"
                                f"{' …' if len(missing) > 20 else ''}; nothing was quarantined", ids=missing[:100])
        return {"reason": text, **_add(conn, found, text)}


def by_filter(spec, reason=None, dry_run=False, max_events=None) -> dict:
    """Quarantine the events whose `field` is outside [min, max] (or only list them, with dry_run)."""
    if not isinstance(spec, dict):
        raise InvalidQuarantine("filter must be an object {field, min, max}", field="filter")
    unknown = sorted(set(spec) - {"field", "min", "max"})
    if unknown:
        raise InvalidQuarantine(f"filter takes field, min and max, not {', '.join(unknown)}", field="filter")
    field = spec.get("field")
    if field not in FILTER_FIELDS:
        raise InvalidQuarantine(f"filter.field must be one of {', '.join(FILTER_FIELDS)}, not {field!r}",
                                field="filter.field")
    minimum, maximum = _bound(spec.get("min"), "min"), _bound(spec.get("max"), "max")
    if minimum is None and maximum is None:
        raise InvalidQuarantine("filter needs min, max or both", field="filter")
    if minimum is not None and maximum is not None and minimum > maximum:
        raise InvalidQuarantine(f"filter.min ({minimum!r}) is above filter.max ({maximum!r})", field="filter.min")
    if max_events is None:
        max_events = DEFAULT_MAX_EVENTS
    elif isinstance(max_events, bool) or not isinstance(max_events, int) or max_events < 1:
        raise InvalidQuarantine(f"max_events must be a positive integer, not {max_events!r}", field="max_events")
    if not isinstance(dry_run, bool):
        raise InvalidQuarantine(f"dry_run must be true or false, not {dry_run!r}", field="dry_run")
    described = f"{field} outside [{'-inf' if minimum is None else repr(minimum)}, " \
                f"{'inf' if maximum is None else repr(maximum)}]"
    text = _reason(reason, described)
    params = {k: v for k, v in (("min", minimum), ("max", maximum)) if v is not None}
    sql = f"SELECT e.id, e.seq FROM events e WHERE {_condition(field, minimum, maximum)} ORDER BY e.seq"
    with db.transaction() as conn:
        found = [(int(i), int(s)) for i, s in conn.run(sql + " LIMIT CAST(:cap AS bigint)", cap=max_events + 1,
                                                            **params)]
        if len(found) > max_events:
            raise TooManyEvents(f"the filter ({described}) matches more than {max_events} events; nothing was "
                                "quarantined. Check it with dry_run, or raise max_events", max_events=max_events)
        if dry_run:
            return {"filter": described, "dry_run": True, "matched": [event_id for event_id, _ in found]}
        return {"filter": described, "reason": text, **_add(conn, found, text)}


_LIST = """
SELECT e.id, e.seq, e.device_id, e.received_at, q.quarantined_at, q.reason, e.raw
FROM quarantined_events q JOIN events e USING (seq) ORDER BY q.seq LIMIT :limit
"""


def listing(limit: int = LIST_LIMIT) -> dict:
    """The quarantined events, oldest seq first (at most `limit`; `count` is all of them)."""
    with db.transaction() as conn:
        count = conn.run("SELECT count(*) FROM quarantined_events")[0][0]
        rows = conn.run(_LIST, limit=int(limit))
    return {"count": count, "events": [
        {"id": event_id, "seq": seq, "device_id": device_id, "received_at": _iso(received_at),
         "quarantined_at": _iso(quarantined_at), "reason": reason, "raw": raw}
        for event_id, seq, device_id, received_at, quarantined_at, reason, raw in rows]}


_RELEASE = """
DELETE FROM quarantined_events q USING events e
WHERE e.seq = q.seq AND e.id = ANY(CAST(:ids AS bigint[])) RETURNING e.id
"""


def release(ids) -> dict:
    """Let these events into later runs again; ids that were not quarantined are named, not an error."""
    wanted = _ids(ids)
    released = sorted(int(row[0]) for row in db.execute(_RELEASE, ids=wanted))
    return {"released": released, "not_quarantined": sorted(set(wanted) - set(released))}
