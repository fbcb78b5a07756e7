"""The report's reads from the database: cluster summary, runs, labelled events (keyset pages), one event.
Over 300 lines because it is mostly SQL constants, kept next to the code that runs them.

Stdlib and pg8000 only (no numpy, no scikit-learn): the report function's cold start stays small.

Every query is an index walk that stops after one page when no other filter rejects rows along the way:

* a page of events walks `events` by `seq` (its UNIQUE index), from the cursor's seq, and looks each event's
  label up by `event_labels`' primary key (run_id, seq) in the one partition of the run;
* a page filtered by label walks `event_labels (run_id, label, seq)` in that partition from the cursor's seq and
  joins each row to `events` by `seq`;
* `device_id` walks `events (device_id, seq)`.

ClusterScope=device (wattprint.settings): runs, the current run and labels are per device, so every read but one
event by id takes the device (`device`, required by wattprint.report.params). A device's run counts its threshold in
the device's own numbering (device_seq); the pages' walk stays on the global seq, so a device's run is turned into
the global seq of its last event (its "bound") once, and the page statements are the same as for ClusterScope=all.

A label page with `device_id`, `since` or `until` as well walks the label's rows and drops those that fail the
other filters, so a page that matches little can visit many rows of that label (known; bounded by the run's size).

The run's id (and threshold) are written into the SQL as integer literals, so the planner prunes event_labels to
that run's partition when it plans, even for a cached generic plan. Statements are prepared once per connection
(one round trip per query afterwards; see db.prepared). Queries with a time range are
planned for their values every time (unnamed statement): whether walking `seq` or `received_at (received_at,
seq)` is cheaper depends on how wide the range is.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import db
from ..clustering.features import FEATURES
from ..errors import CursorMismatch, EventNotFound, LabelsRetired, NoCompletedRun, RunNotDone, RunNotFound
from ..ingest.record import FIELDS
from .cursors import Cursor, decode_cursor, encode_cursor
from .params import INT64_MAX, EventQuery, iso

# appliance_key/appliance_name: the label's appliance (wattprint.appliances), the same one from run to run.
EVENT_KEYS = ("id", "seq", "received_at", *FIELDS, "run_id", "label", "appliance_key", "appliance_name")

# The event columns as PostgreSQL sends them to us. Timestamps come pre-formatted and float arrays as plain
# comma-separated text: pg8000 parses array and timestamp text character by character in Python (most of a
# page's time; BENCHMARKS.md, design measurements); splitting and float() is far cheaper, and exact (PostgreSQL
# 12+ writes the shortest text that reads back to the same double, as pg8000's float8 columns already rely on).
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


def _event(row, run_id: int | None, label, appliance: tuple = (None, None)) -> dict:
    values = list(row[:_N_EVENT_COLUMNS])
    for i in _ARRAY_INDEXES:
        values[i] = [float(x) for x in values[i].split(",")]
    return dict(zip(EVENT_KEYS, (*values, run_id, label, *appliance)))


# A run's labels → (appliance key, name): a handful of rows, read once per page rather than joined per event, so
# the page statements below keep the plans they were shaped for.
_APPLIANCES = ("SELECT s.label, s.appliance_key, a.name FROM cluster_stats s "
               "LEFT JOIN appliances a ON a.key = s.appliance_key WHERE s.run_id = :run")


def _appliances(run_id: int) -> dict[int, tuple]:
    if not run_id:
        return {}
    return {label: (key, name) for label, key, name in db.execute(_APPLIANCES, prepare=True, run=run_id)}


# ------------------------------------------------------------------------------------------ the database

_RUN_COLUMNS = ("r.id, r.threshold, r.status, r.events, r.excluded, r.n_clusters, r.bandwidth, r.finished_at, "
                "r.first_seq")
# "The current run", the one definition: the completed run with the highest threshold, whatever order runs
# finished in (of the device `:device`, for ClusterScope=device). Its first three columns are (id, threshold,
# first_seq) for the queries that need only those.
_CURRENT_RUN = ("SELECT id, threshold, coalesce(first_seq, 1) AS first_seq, status, events, excluded, n_clusters, "
                "bandwidth, finished_at FROM clustering_runs WHERE status = 'done'{} ORDER BY threshold DESC LIMIT 1")
CURRENT_RUN = _CURRENT_RUN.format("")
CURRENT_RUN_DEVICE = _CURRENT_RUN.format(" AND device_id = :device")
# The newest run whatever its status: before any run is done, it tells "in progress" from "failed".
_LATEST_RUN = ("SELECT id, threshold, status, attempts, error FROM clustering_runs{} ORDER BY threshold DESC "
               "LIMIT 1")
_LATEST_COLUMNS = "n.id, n.threshold, n.status, n.attempts, n.error"
_STATS = ("s.label, s.events, s.mean_active_power_w, s.min_active_power_w, s.max_active_power_w, s.centre, "
          "s.appliance_key, a.name")
_N_RUN = 9  # columns of _RUN_COLUMNS
_LATEST_AT = 1 + _N_RUN
_STATS_AT = _LATEST_AT + 5

_SUMMARY_CURRENT = f"""
SELECT c.total, {_RUN_COLUMNS}, {_LATEST_COLUMNS}, {_STATS}
FROM event_counter c
LEFT JOIN LATERAL ({CURRENT_RUN}) r ON true
LEFT JOIN LATERAL ({_LATEST_RUN.format("")}) n ON true
LEFT JOIN cluster_stats s ON s.run_id = r.id
LEFT JOIN appliances a ON a.key = s.appliance_key
ORDER BY s.label
"""
_SUMMARY_RUN = f"""
SELECT c.total, {_RUN_COLUMNS}, {_LATEST_COLUMNS}, {_STATS}
FROM event_counter c
JOIN clustering_runs r ON r.id = :run
LEFT JOIN LATERAL ({_LATEST_RUN.format("")}) n ON true
LEFT JOIN cluster_stats s ON s.run_id = r.id AND r.status = 'done'
LEFT JOIN appliances a ON a.key = s.appliance_key
ORDER BY s.label
"""
# ClusterScope=device: the same, of one device (its count of events: none stored yet is 0).
_DEVICE_COUNTER = ("(SELECT coalesce((SELECT total FROM device_counters WHERE device_id = :device), 0) AS total) c")
_DEVICE_LATEST = _LATEST_RUN.format(" WHERE device_id = :device")
_SUMMARY_CURRENT_DEVICE = f"""
SELECT c.total, {_RUN_COLUMNS}, {_LATEST_COLUMNS}, {_STATS}
FROM {_DEVICE_COUNTER}
LEFT JOIN LATERAL ({CURRENT_RUN_DEVICE}) r ON true
LEFT JOIN LATERAL ({_DEVICE_LATEST}) n ON true
LEFT JOIN cluster_stats s ON s.run_id = r.id
LEFT JOIN appliances a ON a.key = s.appliance_key
ORDER BY s.label
"""
_SUMMARY_RUN_DEVICE = f"""
SELECT c.total, {_RUN_COLUMNS}, {_LATEST_COLUMNS}, {_STATS}
FROM {_DEVICE_COUNTER}
JOIN clustering_runs r ON r.id = :run AND r.device_id = :device
LEFT JOIN LATERAL ({_DEVICE_LATEST}) n ON true
LEFT JOIN cluster_stats s ON s.run_id = r.id AND r.status = 'done'
LEFT JOIN appliances a ON a.key = s.appliance_key
ORDER BY s.label
"""


def _run_object(row) -> dict:
    run_id, threshold, status, events, excluded, n_clusters, bandwidth, finished_at, first_seq = row
    return {"id": run_id, "threshold": threshold, "status": status, "events": events, "excluded": excluded,
            "clusters": n_clusters, "bandwidth": bandwidth, "finished_at": iso(finished_at), "first_seq": first_seq}


def _latest_object(row) -> dict | None:
    run_id, threshold, status, attempts, error = row
    if run_id is None:
        return None
    return {"id": run_id, "threshold": threshold, "status": status, "attempts": attempts, "error": error}


def _not_done(run_id: int, status: str) -> RunNotDone:
    return RunNotDone(f"clustering run {run_id} is {status}, not done: it has no labels to report",
                      run=run_id, status=status)


def _no_run(run: int, device: int | None) -> RunNotFound:
    if device is None:
        return RunNotFound(f"there is no clustering run {run}", run=run)
    return RunNotFound(f"device {device} has no clustering run {run}", run=run, device_id=device)


def summary(run: int | None, cluster_threshold: int, device: int | None = None) -> dict:
    """The current run (or `run`) and its clusters; before any run completed, how many events until one can.
    `device`: of that device's set (ClusterScope=device)."""
    if device is None:
        rows = (db.execute(_SUMMARY_CURRENT, prepare=True) if run is None
                else db.execute(_SUMMARY_RUN, prepare=True, run=run))
    else:
        rows = (db.execute(_SUMMARY_CURRENT_DEVICE, prepare=True, device=device) if run is None
                else db.execute(_SUMMARY_RUN_DEVICE, prepare=True, run=run, device=device))
    if not rows:
        raise _no_run(run, device)
    total = rows[0][0]
    latest = _latest_object(rows[0][_LATEST_AT:_STATS_AT])
    counted = {} if device is None else {"device_events": total}
    if rows[0][1] is None:
        return {"run": None, "clusters": [], "events_until_first_run": max(0, cluster_threshold - total),
                "latest_run": latest, **counted}
    run_obj = _run_object(rows[0][1:_LATEST_AT])
    if run_obj["status"] != "done":
        raise _not_done(run_obj["id"], run_obj["status"])
    stats = [row[_STATS_AT:] for row in rows if row[_STATS_AT] is not None]
    events = run_obj["events"] or sum(s[1] for s in stats)
    clusters = [{
        "label": label, "appliance_key": key, "appliance_name": name, "unclustered": label == -1, "events": count,
        "share": count / events if events else 0.0,
        "mean_active_power_w": mean, "min_active_power_w": low, "max_active_power_w": high,
        "centre": dict(zip(FEATURES, centre)),
    } for label, count, mean, low, high, centre, key, name in stats]
    clusters.sort(key=lambda c: (c["unclustered"], c["label"]))  # clusters 0, 1, …, then the unclustered
    return {"run": run_obj, "clusters": clusters, "latest_run": latest, **counted}


_RUNS = """
SELECT id, threshold, status, events, excluded, n_clusters, bandwidth, attempts, error, created_at,
       load_ms, fit_ms, store_ms, started_at, finished_at,
       status = 'done' AND labels_retired_at IS NULL, labels_retired_at, superseded_by, first_seq, device_id
FROM clustering_runs{} ORDER BY threshold DESC, id DESC
"""


def events_total() -> int:
    """Events stored so far (the counter ingest numbers them with)."""
    return db.execute("SELECT total FROM event_counter", prepare=True)[0][0]


def runs(device: int | None = None, ids: set[int] | None = None) -> dict:
    """Every run (of `device`, for ClusterScope=device; only `ids` when given), newest first."""
    if ids is not None:
        rows = db.execute(_RUNS.format(" WHERE id = ANY(CAST(:ids AS bigint[]))"), prepare=True, ids=sorted(ids))
    elif device is None:
        rows = db.execute(_RUNS.format(""), prepare=True)
    else:
        rows = db.execute(_RUNS.format(" WHERE device_id = :device"), prepare=True, device=device)
    return {"runs": [{
        "id": run_id, "threshold": threshold, "status": status, "events": events, "excluded": excluded,
        "clusters": n_clusters, "bandwidth": bandwidth, "attempts": attempts,
        "error": db.scrub(error) if error else error,  # rows failed before errors were scrubbed when stored
        "created_at": iso(created_at),
        "timings": {"load_ms": load_ms, "fit_ms": fit_ms, "store_ms": store_ms, "started_at": iso(started_at),
                    "finished_at": iso(finished_at)},
        "keeps_labels": keeps_labels, "labels_retired_at": iso(retired_at), "superseded_by": superseded_by,
        "first_seq": first_seq,
        **({} if device_id is None else {"device_id": device_id}),  # ClusterScope=all answers as it always did
    } for (run_id, threshold, status, events, excluded, n_clusters, bandwidth, attempts, error, created_at, load_ms,
           fit_ms, store_ms, started_at, finished_at, keeps_labels, retired_at, superseded_by, first_seq, device_id)
        in rows]}


_RUN_BY_ID = ("SELECT id, threshold, coalesce(first_seq, 1), status, labels_retired_at IS NOT NULL "
              "FROM clustering_runs WHERE id = :run")
_RETIRED = "SELECT labels_retired_at IS NOT NULL FROM clustering_runs WHERE id = :run"
_LABELLED = ("SELECT id FROM clustering_runs WHERE status = 'done' AND labels_retired_at IS NULL{} "
             "ORDER BY threshold DESC")
# A device's run as the walk uses it: its threshold in the device's numbering turned into the global seq of that
# event (its bound: the run labels the device's events with seq ≤ bound).
_BOUND = "(SELECT e.seq FROM events e WHERE e.device_id = :device AND e.device_seq = r.threshold)"
_RUN_BY_ID_DEVICE = (f"SELECT r.id, {_BOUND}, 1, r.status, r.labels_retired_at IS NOT NULL FROM clustering_runs r "
                     "WHERE r.id = :run AND r.device_id = :device")
_CURRENT_BOUND_DEVICE = f"SELECT r.id, {_BOUND}, 1 FROM ({CURRENT_RUN_DEVICE}) r"  # no window per device


def _retired(run_id: int, device: int | None = None) -> LabelsRetired:
    if device is None:
        labelled = [row[0] for row in db.execute(_LABELLED.format(""), prepare=True)]
    else:
        labelled = [row[0] for row in db.execute(_LABELLED.format(" AND device_id = :device"), prepare=True,
                                                 device=device)]
    which = ", ".join(str(r) for r in labelled) if labelled else "none"
    return LabelsRetired(f"the labels of clustering run {run_id} were retired (only the newest completed runs keep "
                         f"their labels; its summary and statistics remain): runs that still have labels: {which}",
                         run=run_id, runs_with_labels=labelled)


def events_sql(query: EventQuery, run_id: int, threshold: int, first: int = 1) -> str:
    """The page statement for these filters. `run_id`/`threshold` (0: no run) are written in as literals so the
    planner prunes event_labels to the run's partition; every other value is a bind parameter (:key, :limit,
    :label, :device_id, :since, :until). A walk of one run (`run`) takes the events that run covered, seq
    `first`..`threshold` (`first` > 1 for a windowed run: CLUSTER_WINDOW).

    The statements are prepared, so after a few calls PostgreSQL may run a generic plan, made without knowing the
    cursor's seq or the limit; for an ordinary join it then picks a merge join that reads the other table from its
    first row (a deep page read 900,000 label rows). The shapes below leave it no join to choose: a page's labels
    are a correlated subquery (one primary-key lookup per row served), and a label page fetches each event in a
    LATERAL subquery kept out of the join search by OFFSET 0 (one `events.seq` lookup per label row walked)."""
    run_id, threshold, first = int(run_id), int(threshold), int(first)
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
        if first > 1:
            where.append(f"e.seq >= {first}")
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


def _resolve_run(query: EventQuery, device: int | None = None) -> tuple[int, int, int]:
    """(run id, threshold, first seq) whose labels the walk shows; (0, 0, 1) when there is none yet. With `device`
    (ClusterScope=device, query.device_id): that device's run, and its bound for threshold (see the docstring)."""
    if query.run is not None:
        rows = (db.execute(_RUN_BY_ID, prepare=True, run=query.run) if device is None
                else db.execute(_RUN_BY_ID_DEVICE, prepare=True, run=query.run, device=device))
        if not rows:
            raise _no_run(query.run, device)
        run_id, threshold, first, status, retired = rows[0]
        if status != "done":
            raise _not_done(run_id, status)
        if retired:
            raise _retired(run_id, device)
        return run_id, threshold, first
    rows = (db.execute(CURRENT_RUN, prepare=True) if device is None
            else db.execute(_CURRENT_BOUND_DEVICE, prepare=True, device=device))
    if rows:
        return rows[0][0], rows[0][1], rows[0][2]
    if query.label is not None:
        raise NoCompletedRun("no clustering run has completed yet, so no event has a label to filter on; "
                             "omit label or wait for the first run", parameter="label")
    return 0, 0, 1


def _items(rows, run_id: int, threshold: int, first: int = 1) -> list[dict]:
    """Rows of events_sql's shape as GET /events items: the run's label only for events the run covered (seq
    `first`..`threshold`); the others have none in it (run_id and label null)."""
    items = []
    appliances = _appliances(run_id) if rows else {}
    for row in rows:
        label = row[_N_EVENT_COLUMNS]
        labelled = run_id and first <= row[1] <= threshold
        items.append(_event(row, run_id if labelled else None, label if labelled else None,
                            appliances.get(label, (None, None)) if labelled else (None, None)))
    return items


# One statement whatever the run (run 0 has no labels: the label is NULL), so one prepared plan serves every run.
_EVENTS_BETWEEN = (f"SELECT {_EVENT_COLUMNS}, (SELECT l.label FROM event_labels l WHERE l.run_id = :run "
                   f"AND l.seq = e.seq) FROM events e WHERE e.seq BETWEEN :first AND :last ORDER BY e.seq")


# ClusterScope=device: each event with its own device's current run (a live batch holds few events, of any devices).
_EVENTS_BETWEEN_DEVICE = f"""
SELECT {_EVENT_COLUMNS}, l.label, r.id, e.device_seq <= r.threshold
FROM events e
LEFT JOIN LATERAL ({_CURRENT_RUN.format(" AND device_id = e.device_id")}) r ON true
LEFT JOIN event_labels l ON l.run_id = r.id AND l.seq = e.seq
WHERE e.seq BETWEEN :first AND :last ORDER BY e.seq"""


def events_between(first: int, last: int, per_device: bool = False) -> list[dict]:
    """The events with seq in [first, last], oldest first, as GET /events items (the current run's labels: of each
    event's device when `per_device`)."""
    if not per_device:
        run_id, threshold, run_first = _resolve_run(EventQuery())
        rows = db.execute(_EVENTS_BETWEEN, prepare=True, run=run_id, first=int(first), last=int(last))
        return _items(rows, run_id, threshold, run_first)
    rows = db.execute(_EVENTS_BETWEEN_DEVICE, prepare=True, first=int(first), last=int(last))
    appliances = {run_id: _appliances(run_id) for run_id in {row[_N_EVENT_COLUMNS + 1] for row in rows} if run_id}
    items = []
    for row in rows:
        label, run_id, covered = row[_N_EVENT_COLUMNS:]
        run_id = run_id if covered else None
        items.append(_event(row, run_id, label if run_id else None,
                            appliances[run_id].get(label, (None, None)) if run_id else (None, None)))
    return items


def events(query: EventQuery, per_device: bool = False) -> Page:
    """One page of events, oldest first (or newest first), each with its label in the walk's run (the run of
    query.device_id's set when `per_device`: ClusterScope=device).

    A run's labels are dropped in the transaction that marks it retired, so whether the page was read before or
    after that commit is known only by asking after reading it: a page read without its partition is refused
    (410), or, for a first page of the current run that retired meanwhile, read again with the new current run."""
    device = query.device_id if per_device else None
    digest = query.digest()
    pinned = query.cursor is not None or query.run is not None
    if query.cursor is not None:
        cursor = decode_cursor(query.cursor)
        if cursor.filters != digest:
            raise CursorMismatch("this cursor was made for other filters or another order; repeat the first "
                                 "page's order, label, run, device_id, since and until with it", parameter="cursor")
        run_id, threshold, first, key = cursor.run_id, cursor.threshold, cursor.first_seq, cursor.seq
    else:
        run_id, threshold, first = _resolve_run(query, device)
        key = INT64_MAX if query.desc else 0
    timed = query.since is not None or query.until is not None
    for _ in range(2):
        rows = db.execute(events_sql(query, run_id, threshold, first), prepare=not timed,
                          **events_params(query, key, query.limit + 1))
        if not run_id or not db.execute(_RETIRED, prepare=True, run=run_id)[0][0]:
            break
        if pinned:
            raise _retired(run_id, device)
        run_id, threshold, first = _resolve_run(query, device)
    else:
        raise _retired(run_id, device)
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    items = _items(rows, run_id, threshold, first)
    next_cursor = None
    if more:
        next_cursor = encode_cursor(Cursor(query.desc, rows[-1][1], run_id, threshold, digest, first))
    return Page(items, next_cursor)


_EVENT = f"""
SELECT {_EVENT_COLUMNS}, r.id, r.threshold, r.first_seq
FROM events e LEFT JOIN LATERAL ({CURRENT_RUN}) r ON true
WHERE e.id = :id
"""
# Not prepared: run_id is not a constant here, so a custom plan (pruning per joined run) is what we want.
_EVENT_LABELS = """
SELECT r.id, r.threshold, l.label, s.appliance_key, a.name
FROM clustering_runs r JOIN event_labels l ON l.run_id = r.id AND l.seq = :seq
LEFT JOIN cluster_stats s ON s.run_id = r.id AND s.label = l.label
LEFT JOIN appliances a ON a.key = s.appliance_key
WHERE r.status = 'done' AND r.labels_retired_at IS NULL AND r.threshold >= :seq
ORDER BY r.threshold DESC
"""


# ClusterScope=device: the event's own device's runs, whose thresholds count in its numbering (device_seq).
_EVENT_DEVICE = f"""
SELECT {_EVENT_COLUMNS}, r.id, r.threshold, 1, e.device_id, e.device_seq
FROM events e LEFT JOIN LATERAL ({_CURRENT_RUN.format(" AND device_id = e.device_id")}) r ON true
WHERE e.id = :id
"""
_EVENT_LABELS_DEVICE = _EVENT_LABELS.replace("r.threshold >= :seq", "r.device_id = :device AND r.threshold >= :number")


def event(event_id: int, per_device: bool = False) -> dict:
    """One event, its label in the current run (like a list item) and in every completed run (newest first): the
    runs of its device's set when `per_device` (ClusterScope=device)."""
    rows = db.execute(_EVENT_DEVICE if per_device else _EVENT, prepare=True, id=event_id)
    if not rows:
        raise EventNotFound(f"there is no event {event_id}", id=event_id)
    row = rows[0]
    seq, (current_id, current_threshold, current_first) = row[1], row[_N_EVENT_COLUMNS:_N_EVENT_COLUMNS + 3]
    if per_device:  # seq ≤ threshold below compares the event's number in its device's set
        device, seq = row[_N_EVENT_COLUMNS + 3:]
        found = db.execute(_EVENT_LABELS_DEVICE, seq=row[1], device=device, number=seq)
    else:
        found = db.execute(_EVENT_LABELS, seq=seq)
    labels = [{"run_id": run_id, "threshold": threshold, "label": label, "appliance_key": key, "appliance_name": name}
              for run_id, threshold, label, key, name in found]
    current = next((entry for entry in labels if entry["run_id"] == current_id), None)
    labelled = current_id is not None and current_first <= seq <= current_threshold
    known = labelled and current
    item = _event(row, current_id if labelled else None, current["label"] if known else None,
                  (current["appliance_key"], current["appliance_name"]) if known else (None, None))
    item["labels"] = labels
    return item
