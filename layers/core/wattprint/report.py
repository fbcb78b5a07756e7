"""The report API's reads: cluster summary, runs, labelled events (keyset pages, JSON or CSV), one event.

Stdlib and pg8000 only (no numpy, no scikit-learn): the report function's cold start stays small.

Every query is an index walk that stops after one page when no other filter rejects rows along the way:

* a page of events walks `events` by `seq` (its UNIQUE index), from the cursor's seq, and looks each event's
  label up by `event_labels`' primary key (run_id, seq) in the one partition of the run;
* a page filtered by label walks `event_labels (run_id, label, seq)` in that partition from the cursor's seq and
  joins each row to `events` by `seq`;
* `device_id` walks `events (device_id, seq)`.

A label page with `device_id`, `since` or `until` as well walks the label's rows and drops those that fail the
other filters, so a page that matches little can visit many rows of that label (known; bounded by the run's size).

The run's id (and threshold) are written into the SQL as integer literals, so the planner prunes event_labels to
that run's partition when it plans, even for a cached generic plan. Statements are prepared once per connection
(one round trip per query afterwards; see db.prepared). Queries with a time range are
planned for their values every time (unnamed statement): whether walking `seq` or `received_at (received_at,
seq)` is cheaper depends on how wide the range is.

Cursors are opaque: a version, the order, the last seq served, the run whose labels the pages show (pinned on
the first page, so a run completing mid-walk does not change labels under the reader), a digest of the filters,
and a checksum (keyed with a constant in this file: it catches edited or damaged cursors, it does not stop
anyone from forging one). They grant nothing: a cursor only says where to resume a walk the read token may
already make from the start.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import re
import struct
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlencode

from . import db
from .errors import BadRequest, NotFound, ServiceError
from .features import FEATURES
from .record import FIELDS

UTC = timezone.utc

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
INT64_MAX = 2**63 - 1
INT32_MIN, INT32_MAX = -2**31, 2**31 - 1
SMALLINT_MAX = 2**15 - 1

SUMMARY_PARAMETERS = ("run",)
EVENTS_PARAMETERS = ("label", "run", "device_id", "since", "until", "order", "limit", "cursor", "format")
CSV_TYPE = "text/csv"


# ------------------------------------------------------------------------------------------------ errors

class InvalidParameter(BadRequest):
    code = "invalid_parameter"


class UnknownParameter(BadRequest):
    code = "unknown_parameter"


class InvalidCursor(BadRequest):
    code = "invalid_cursor"


class CursorMismatch(BadRequest):
    code = "cursor_mismatch"


class RunNotFound(NotFound):
    code = "run_not_found"


class EventNotFound(NotFound):
    code = "event_not_found"


class Conflict(ServiceError):
    status = 409
    code = "conflict"


class RunNotDone(Conflict):
    """?run= names a run that exists but has no labels yet (pending, running) or never will (failed)."""

    code = "run_not_done"


class NoCompletedRun(Conflict):
    """?label= with no run named and no run completed yet: there are no labels to filter on."""

    code = "no_completed_run"


# ---------------------------------------------------------------------------------- query string parsing

def query_params(params: dict | None, allowed: tuple[str, ...]) -> dict[str, str]:
    """The query string as name → value, or 400 on a parameter this route does not take or one given twice.

    `params` is API Gateway's multiValueQueryStringParameters (name → list) or its single-valued form. An unknown
    name is an error rather than ignored: a misspelt filter (?lable=3) must not silently answer unfiltered."""
    out: dict[str, str] = {}
    for name, values in (params or {}).items():
        values = values if isinstance(values, list) else [values]
        if name not in allowed:
            expected = ", ".join(allowed) if allowed else "none"
            raise UnknownParameter(f"unknown query parameter {name!r} (this route takes: {expected})",
                                   parameter=name)
        if len(values) != 1:
            raise InvalidParameter(f"{name} is given {len(values)} times; give it once", parameter=name)
        out[name] = values[0]
    return out


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
            _iso(self.since) if self.since else None, _iso(self.until) if self.until else None))
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
        raise InvalidParameter(f"since ({_iso(query.since)}) must be before until ({_iso(query.until)})",
                               parameter="since")
    if query.cursor is not None and not query.cursor:
        raise InvalidCursor("cursor is empty", parameter="cursor")
    return query


# ----------------------------------------------------------------------------------------------- cursors

@dataclass(frozen=True)
class Cursor:
    desc: bool
    seq: int  # the last seq served; the next page starts after it
    run_id: int  # the run whose labels the walk shows (0: none)
    threshold: int  # that run's threshold (0: none)
    filters: bytes  # EventQuery.digest() of the first page


_CURSOR_VERSION = 1
_CURSOR = struct.Struct(">BBqqq8s")
_MAC_BYTES = 10
# Not a secret (cursors grant nothing): it makes a cursor that was edited or made up fail the check instead of
# silently starting a walk somewhere else.
_CURSOR_KEY = b"wattprint report cursor v1"


def _mac(payload: bytes) -> bytes:
    return hmac.new(_CURSOR_KEY, payload, hashlib.sha256).digest()[:_MAC_BYTES]


def encode_cursor(cursor: Cursor) -> str:
    payload = _CURSOR.pack(_CURSOR_VERSION, int(cursor.desc), cursor.seq, cursor.run_id, cursor.threshold,
                           cursor.filters)
    return base64.urlsafe_b64encode(payload + _mac(payload)).rstrip(b"=").decode("ascii")


def decode_cursor(text: str) -> Cursor:
    invalid = InvalidCursor("cursor is not one this API made; pass the `next` value of a previous page unchanged",
                            parameter="cursor")
    if not text or len(text) > 128 or not re.fullmatch(r"[A-Za-z0-9_-]+", text):
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        raise invalid from None
    if len(raw) != _CURSOR.size + _MAC_BYTES:
        raise invalid
    payload, mac = raw[:_CURSOR.size], raw[_CURSOR.size:]
    if not hmac.compare_digest(mac, _mac(payload)):
        raise invalid
    version, desc, seq, run_id, threshold, filters = _CURSOR.unpack(payload)
    if version != _CURSOR_VERSION or desc not in (0, 1) or min(seq, run_id, threshold) < 0:
        raise invalid
    return Cursor(bool(desc), seq, run_id, threshold, filters)


# ------------------------------------------------------------------------------------------------ shaping

def _iso(t: datetime | None) -> str | None:
    """2026-11-23T01:13:00.123456Z (always microseconds, so values sort and compare as text too)."""
    if t is None:
        return None
    if t.tzinfo is not None:
        t = t.astimezone(UTC)
    return t.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


EVENT_KEYS = ("id", "seq", "received_at", *FIELDS, "run_id", "label")

# The event columns as PostgreSQL sends them to us. Timestamps come pre-formatted and float arrays as plain
# comma-separated text: pg8000 parses array and timestamp text character by character in Python (~0.2 ms per row,
# most of a page's time); splitting and float() is 50 times cheaper, and exact (PostgreSQL 12+ writes the
# shortest text that reads back to the same double, as pg8000's float8 columns already rely on).
_ARRAYS = ("peaks", "fft_re", "fft_img")
_UTC_TEXT = {"received_at": "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'", "sensor_time": "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'"}


def _column(name: str) -> str:
    if name in _ARRAYS:
        return f"array_to_string(e.{name}, ',')"
    if name in _UTC_TEXT:
        return f"to_char(e.{name} AT TIME ZONE 'UTC', {_UTC_TEXT[name]})"
    return f"e.{name}"


_EVENT_COLUMNS = ", ".join(_column(name) for name in ("id", "seq", "received_at", *FIELDS))
_N_EVENT_COLUMNS = 3 + len(FIELDS)
_ARRAY_INDEXES = tuple(3 + FIELDS.index(name) for name in _ARRAYS)


def _event(row, run_id: int | None, label) -> dict:
    values = list(row[:_N_EVENT_COLUMNS])
    for i in _ARRAY_INDEXES:
        values[i] = [float(x) for x in values[i].split(",")]
    return dict(zip(EVENT_KEYS, (*values, run_id, label)))


def _csv_cell(value) -> str:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, list):
        return ";".join(map(repr, value))
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    if isinstance(value, str) and text[:1] in _FORMULA_STARTS:
        return "'" + text  # a spreadsheet would run it as a formula (CSV injection); the JSON form is verbatim
    return text


_FORMULA_STARTS = frozenset("=+-@\t\r")


def to_csv(items: list[dict]) -> str:
    """A header line, then one line per event, in EVENT_KEYS order; lists as `;`-joined numbers, null as an empty
    cell, booleans as true/false, numbers exactly as in the JSON form."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EVENT_KEYS)
    for item in items:
        writer.writerow([_csv_cell(item[key]) for key in EVENT_KEYS])
    return out.getvalue()


def next_link(params: dict[str, str], cursor: str) -> str:
    """A Link header for the next page: a relative reference (`?query`), so it resolves against whatever base
    path (stage, custom domain) the client called."""
    query = {k: v for k, v in params.items() if k != "cursor"}
    query["cursor"] = cursor
    return f'<?{urlencode(query)}>; rel="next"'


# ------------------------------------------------------------------------------------------ the database

_RUN_COLUMNS = "r.id, r.threshold, r.status, r.events, r.excluded, r.n_clusters, r.bandwidth, r.finished_at"
_CURRENT_RUN = ("SELECT id, threshold, status, events, excluded, n_clusters, bandwidth, finished_at "
                "FROM clustering_runs WHERE status = 'done' ORDER BY threshold DESC LIMIT 1")
# The newest run whatever its status: before any run is done, it tells "in progress" from "failed".
_LATEST_RUN = ("SELECT id, threshold, status, attempts, error FROM clustering_runs ORDER BY threshold DESC "
               "LIMIT 1")
_LATEST_COLUMNS = "n.id, n.threshold, n.status, n.attempts, n.error"
_STATS = ("s.label, s.events, s.mean_active_power_w, s.min_active_power_w, s.max_active_power_w, s.centre")
_N_RUN = 8  # columns of _RUN_COLUMNS
_LATEST_AT = 1 + _N_RUN
_STATS_AT = _LATEST_AT + 5

_SUMMARY_CURRENT = f"""
SELECT c.total, {_RUN_COLUMNS}, {_LATEST_COLUMNS}, {_STATS}
FROM event_counter c
LEFT JOIN LATERAL ({_CURRENT_RUN}) r ON true
LEFT JOIN LATERAL ({_LATEST_RUN}) n ON true
LEFT JOIN cluster_stats s ON s.run_id = r.id
ORDER BY s.label
"""
_SUMMARY_RUN = f"""
SELECT c.total, {_RUN_COLUMNS}, {_LATEST_COLUMNS}, {_STATS}
FROM event_counter c
JOIN clustering_runs r ON r.id = :run
LEFT JOIN LATERAL ({_LATEST_RUN}) n ON true
LEFT JOIN cluster_stats s ON s.run_id = r.id AND r.status = 'done'
ORDER BY s.label
"""


def _run_object(row) -> dict:
    run_id, threshold, status, events, excluded, n_clusters, bandwidth, finished_at = row
    return {"id": run_id, "threshold": threshold, "status": status, "events": events, "excluded": excluded,
            "clusters": n_clusters, "bandwidth": bandwidth, "finished_at": _iso(finished_at)}


def _latest_object(row) -> dict | None:
    run_id, threshold, status, attempts, error = row
    if run_id is None:
        return None
    return {"id": run_id, "threshold": threshold, "status": status, "attempts": attempts, "error": error}


def _not_done(run_id: int, status: str) -> RunNotDone:
    return RunNotDone(f"clustering run {run_id} is {status}, not done: it has no labels to report",
                      run=run_id, status=status)


def summary(run: int | None, cluster_threshold: int) -> dict:
    """The current run (or `run`) and its clusters; before any run completed, how many events until one can."""
    rows = db.run(_SUMMARY_CURRENT, prepare=True) if run is None else db.run(_SUMMARY_RUN, prepare=True, run=run)
    if not rows:
        raise RunNotFound(f"there is no clustering run {run}", run=run)
    total = rows[0][0]
    latest = _latest_object(rows[0][_LATEST_AT:_STATS_AT])
    if rows[0][1] is None:
        return {"run": None, "clusters": [], "events_until_first_run": max(0, cluster_threshold - total),
                "latest_run": latest}
    run_obj = _run_object(rows[0][1:_LATEST_AT])
    if run_obj["status"] != "done":
        raise _not_done(run_obj["id"], run_obj["status"])
    stats = [row[_STATS_AT:] for row in rows if row[_STATS_AT] is not None]
    events = run_obj["events"] or sum(s[1] for s in stats)
    clusters = [{
        "label": label, "unclustered": label == -1, "events": count, "share": count / events if events else 0.0,
        "mean_active_power_w": mean, "min_active_power_w": low, "max_active_power_w": high,
        "centre": dict(zip(FEATURES, centre)),
    } for label, count, mean, low, high, centre in stats]
    clusters.sort(key=lambda c: (c["unclustered"], c["label"]))  # clusters 0, 1, …, then the unclustered
    return {"run": run_obj, "clusters": clusters, "latest_run": latest}


_RUNS = """
SELECT id, threshold, status, events, excluded, n_clusters, bandwidth, attempts, error, created_at,
       load_ms, fit_ms, store_ms, started_at, finished_at
FROM clustering_runs ORDER BY threshold DESC
"""


def runs() -> dict:
    return {"runs": [{
        "id": run_id, "threshold": threshold, "status": status, "events": events, "excluded": excluded,
        "clusters": n_clusters, "bandwidth": bandwidth, "attempts": attempts, "error": error,
        "created_at": _iso(created_at),
        "timings": {"load_ms": load_ms, "fit_ms": fit_ms, "store_ms": store_ms, "started_at": _iso(started_at),
                    "finished_at": _iso(finished_at)},
    } for (run_id, threshold, status, events, excluded, n_clusters, bandwidth, attempts, error, created_at, load_ms,
           fit_ms, store_ms, started_at, finished_at) in db.run(_RUNS, prepare=True)]}


_RUN_BY_ID = "SELECT id, threshold, status FROM clustering_runs WHERE id = :run"
_CURRENT_ID = "SELECT id, threshold FROM clustering_runs WHERE status = 'done' ORDER BY threshold DESC LIMIT 1"


def events_sql(query: EventQuery, run_id: int, threshold: int) -> str:
    """The page statement for these filters. `run_id`/`threshold` (0: no run) are written in as literals so the
    planner prunes event_labels to the run's partition; every other value is a bind parameter (:key, :limit,
    :label, :device_id, :since, :until).

    The statements are prepared, so after a few calls PostgreSQL may run a generic plan, made without knowing the
    cursor's seq or the limit; for an ordinary join it then picks a merge join that reads the other table from its
    first row (a deep page read 900,000 label rows). The shapes below leave it no join to choose: a page's labels
    are a correlated subquery (one primary-key lookup per row served), and a label page fetches each event in a
    LATERAL subquery kept out of the join search by OFFSET 0 (one `events.seq` lookup per label row walked)."""
    run_id, threshold = int(run_id), int(threshold)
    op, direction = ("<", "DESC") if query.desc else (">", "ASC")
    filters = []
    if query.device_id is not None:
        filters.append("e.device_id = :device_id")
    if query.since is not None:
        filters.append("e.received_at >= :since")
    if query.until is not None:
        filters.append("e.received_at < :until")
    if query.label is not None:
        fetch = " AND ".join(["e.seq = l.seq", *filters])
        return (f"SELECT {_EVENT_COLUMNS}, l.label FROM event_labels l "
                f"CROSS JOIN LATERAL (SELECT e.* FROM events e WHERE {fetch} OFFSET 0) e "
                f"WHERE l.run_id = {run_id} AND l.label = :label AND l.seq {op} :key "
                f"ORDER BY l.seq {direction} LIMIT :limit")
    label = (f"(SELECT l.label FROM event_labels l WHERE l.run_id = {run_id} AND l.seq = e.seq)" if run_id
             else "NULL::smallint")
    where = [f"e.seq {op} :key"]
    if query.run is not None:
        where.append(f"e.seq <= {threshold}")
    where += filters
    return (f"SELECT {_EVENT_COLUMNS}, {label} FROM events e WHERE {' AND '.join(where)} "
            f"ORDER BY e.seq {direction} LIMIT :limit")


def events_params(query: EventQuery, key: int, limit: int) -> dict:
    params = {"key": key, "limit": limit}
    for name in ("label", "device_id", "since", "until"):
        if getattr(query, name) is not None:
            params[name] = getattr(query, name)
    return params


@dataclass(frozen=True)
class Page:
    items: list[dict]
    next: str | None


def _resolve_run(query: EventQuery) -> tuple[int, int]:
    """(run id, threshold) whose labels the walk shows; (0, 0) when there is none yet."""
    if query.run is not None:
        rows = db.run(_RUN_BY_ID, prepare=True, run=query.run)
        if not rows:
            raise RunNotFound(f"there is no clustering run {query.run}", run=query.run)
        run_id, threshold, status = rows[0]
        if status != "done":
            raise _not_done(run_id, status)
        return run_id, threshold
    rows = db.run(_CURRENT_ID, prepare=True)
    if rows:
        return rows[0][0], rows[0][1]
    if query.label is not None:
        raise NoCompletedRun("no clustering run has completed yet, so no event has a label to filter on; "
                             "omit label or wait for the first run", parameter="label")
    return 0, 0


def _items(rows, run_id: int, threshold: int) -> list[dict]:
    """Rows of events_sql's shape as GET /events items: the run's label only for events the run covered."""
    items = []
    for row in rows:
        label = row[_N_EVENT_COLUMNS]
        labelled = run_id and row[1] <= threshold
        items.append(_event(row, run_id if labelled else None, label if labelled else None))
    return items


# One statement whatever the run (run 0 has no labels: the label is NULL), so one prepared plan serves every run.
_EVENTS_BETWEEN = (f"SELECT {_EVENT_COLUMNS}, (SELECT l.label FROM event_labels l WHERE l.run_id = :run "
                   f"AND l.seq = e.seq) FROM events e WHERE e.seq BETWEEN :first AND :last ORDER BY e.seq")


def events_between(first: int, last: int) -> list[dict]:
    """The events with seq in [first, last], oldest first, as GET /events items (the current run's labels)."""
    run_id, threshold = _resolve_run(EventQuery())
    rows = db.run(_EVENTS_BETWEEN, prepare=True, run=run_id, first=int(first), last=int(last))
    return _items(rows, run_id, threshold)


def events(query: EventQuery) -> Page:
    """One page of events, oldest first (or newest first), each with its label in the walk's run."""
    digest = query.digest()
    if query.cursor is not None:
        cursor = decode_cursor(query.cursor)
        if cursor.filters != digest:
            raise CursorMismatch("this cursor was made for other filters or another order; repeat the first "
                                 "page's order, label, run, device_id, since and until with it", parameter="cursor")
        run_id, threshold, key = cursor.run_id, cursor.threshold, cursor.seq
    else:
        run_id, threshold = _resolve_run(query)
        key = INT64_MAX if query.desc else 0
    timed = query.since is not None or query.until is not None
    rows = db.run(events_sql(query, run_id, threshold), prepare=not timed,
                  **events_params(query, key, query.limit + 1))
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    items = _items(rows, run_id, threshold)
    next_cursor = None
    if more:
        next_cursor = encode_cursor(Cursor(query.desc, rows[-1][1], run_id, threshold, digest))
    return Page(items, next_cursor)


_EVENT = f"""
SELECT {_EVENT_COLUMNS}, r.id, r.threshold
FROM events e LEFT JOIN LATERAL ({_CURRENT_ID}) r ON true
WHERE e.id = :id
"""
# Not prepared: run_id is not a constant here, so a custom plan (pruning per joined run) is what we want.
_EVENT_LABELS = """
SELECT r.id, r.threshold, l.label
FROM clustering_runs r JOIN event_labels l ON l.run_id = r.id AND l.seq = :seq
WHERE r.status = 'done' AND r.threshold >= :seq
ORDER BY r.threshold DESC
"""


def event(event_id: int) -> dict:
    """One event, its label in the current run (like a list item) and in every completed run (newest first)."""
    rows = db.run(_EVENT, prepare=True, id=event_id)
    if not rows:
        raise EventNotFound(f"there is no event {event_id}", id=event_id)
    row = rows[0]
    seq, current_id, current_threshold = row[1], row[_N_EVENT_COLUMNS], row[_N_EVENT_COLUMNS + 1]
    labels = [{"run_id": run_id, "threshold": threshold, "label": label}
              for run_id, threshold, label in db.run(_EVENT_LABELS, seq=seq)]
    current = next((entry for entry in labels if entry["run_id"] == current_id), None)
    labelled = current_id is not None and seq <= current_threshold
    item = _event(row, current_id if labelled else None, current["label"] if labelled and current else None)
    item["labels"] = labels
    return item
