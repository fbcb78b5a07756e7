"""A run's data in and its results out: the data matrix by one binary COPY, and the labels (COPYed into a table
of their own that becomes the run's partition of event_labels), cluster_stats and `done` in one transaction.

Quarantined events (wattprint.clustering.quarantine) are left out: the run for threshold T clusters exactly the
events with seq ≤ T that are not quarantined in the snapshot its load reads, in seq order. The run records how many
it left out (`excluded`; T = events + excluded) and gives those no label, so which ones were left out is exactly
the seqs ≤ T without a label in the run (while the run keeps its labels: LABEL_RETENTION). A run that is done is never recomputed: quarantining or releasing an event
changes the runs that load after it, never the labels of one already done.

A window (CLUSTER_WINDOW = N > 0, a departure from the spec for sets too large for one invocation) narrows the
events 1..T to the last N of them, T − N + 1..T (first_seq); quarantine applies inside it the same way. The run
records its first seq, and gives the events before it no label. Window 0 is the spec's set, exactly as above.
"""

from __future__ import annotations

import io
import json
import time

from .. import db
from ..appliances import service as appliances
from . import runs
from .features import FEATURE_COLUMNS
from .fit import Fit, LabelStats, Loaded, centres_literal, chunks, labels_copy, parse_copy, stats_json


def first_seq(threshold: int, window: int) -> int:
    """The lowest seq a run for `threshold` takes: 1 (window 0, the spec), else the first of the last `window`."""
    return 1 if window == 0 else max(1, int(threshold) - int(window) + 1)


def scope_sql(threshold: int, device_id: int | None = None, first: int = 1) -> str:
    """Which events a run's set holds, over `events e`: seq first..T (ClusterScope=all; first > 1 for a window), or
    the device's events with device_seq 1..T (ClusterScope=device, which takes no window: settings refuse both;
    in seq order too, as both are numbered in commit order)."""
    if device_id is None:
        return f"e.seq BETWEEN {int(first)} AND {int(threshold)}"
    return f"e.device_id = {int(device_id)} AND e.device_seq BETWEEN 1 AND {int(threshold)}"


def features_sql(threshold: int, device_id: int | None = None, first: int = 1) -> str:
    """The COPY that reads the data matrix: seq and the eight features of the set's events (see scope_sql) that are
    not quarantined, in seq order.

    NULL becomes NaN so one binary row always has eight 8-byte fields; check_data reports it. (COPY takes no
    bind parameters, hence the formatted integers.)"""
    columns = ", ".join(f"coalesce(e.{expr}, 'NaN')" for _, expr in FEATURE_COLUMNS)
    return (f"COPY (SELECT e.seq, {columns} FROM events e WHERE {scope_sql(threshold, device_id, first)} "
            "AND NOT EXISTS (SELECT FROM quarantined_events q WHERE q.seq = e.seq) ORDER BY e.seq) "
            "TO STDOUT WITH (FORMAT binary)")


def excluded_sql(threshold: int, device_id: int | None = None, first: int = 1) -> str:
    if device_id is None:
        return f"SELECT count(*) FROM quarantined_events WHERE seq BETWEEN {int(first)} AND {int(threshold)}"
    return (f"SELECT count(*) FROM quarantined_events q JOIN events e ON e.seq = q.seq "
            f"WHERE {scope_sql(threshold, device_id)}")


def load(threshold: int, device_id: int | None = None, first: int = 1) -> Loaded:
    """The data of a run: one binary COPY parsed by numpy, and the count of quarantined events it left out, both
    from one snapshot (a repeatable-read transaction), so events + excluded = T − first + 1 exactly."""
    stream = io.BytesIO()
    with db.transaction() as conn:
        conn.run("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        excluded = int(conn.run(excluded_sql(threshold, device_id, first))[0][0])
        conn.run(features_sql(threshold, device_id, first), stream=stream)
    buffer = stream.getbuffer()
    try:
        seqs, data = parse_copy(buffer)
    finally:
        buffer.release()
    return Loaded(seqs, data, excluded, int(first))


_INSERT_STATS = """
INSERT INTO cluster_stats (run_id, label, events, mean_active_power_w, min_active_power_w, max_active_power_w, centre,
                           appliance_key)
SELECT :run_id, s.label, s.events, s.mean, s.min, s.max, s.centre,
       CASE WHEN s.label >= 0 THEN (CAST(:keys AS json) ->> s.label)::int END  -- ->> -1 would be the last key
FROM json_to_recordset(CAST(:stats AS json)) AS s(label int, events bigint, mean float8, min float8, max float8,
                                                 centre float8[])
"""


def store(run: runs.Claim, loaded: Loaded, result: Fit, stats: list[LabelStats], load_ms: float,
          fit_ms: float) -> float:
    """Labels, statistics with each cluster's appliance key, and `done`, in one transaction; returns the store time
    in ms.

    Fenced: the run row is locked first and must still belong to this claim, so a worker that lost its lease
    writes nothing, and two workers can never build the run's table at the same time."""
    started = time.perf_counter()
    payload = chunks(labels_copy(run.run_id, result.labels, loaded.seqs))
    with db.transaction() as conn:
        runs.lock(conn, run)
        table = conn.run("SELECT clustering_labels_open(:run_id)", run_id=run.run_id)[0][0]
        conn.run(f"COPY {table} (run_id, seq, label) FROM STDIN WITH (FORMAT binary)", stream=payload)
        conn.run("SELECT clustering_labels_attach(:run_id)", run_id=run.run_id)
        conn.run("DELETE FROM cluster_stats WHERE run_id = :run_id", run_id=run.run_id)
        # Keys go by MeanShift's modes (cluster_centers_, label order), the points the clustering itself keeps apart.
        keys = appliances.assign_keys(conn, run.run_id, run.threshold, result.centres.tolist(),
                                      result.spread.tolist())
        conn.run(_INSERT_STATS, run_id=run.run_id, stats=stats_json(stats), keys=json.dumps(keys))
        store_ms = (time.perf_counter() - started) * 1000
        runs.finish(conn, run, events=len(result.labels), excluded=loaded.excluded, first_seq=loaded.first_seq,
                    bandwidth=result.bandwidth,
                    n_clusters=result.n_clusters, centres=centres_literal(result.centres), load_ms=load_ms,
                    fit_ms=fit_ms, store_ms=store_ms)
    return store_ms


def retire(keep: int, device_id: int | None = None) -> list[int]:
    """Drop the labels of every completed run but the `keep` newest (one DROP each, as the runs are marked retired,
    in one transaction: clustering_labels_retire, 0016), among the runs of `device_id` (ClusterScope=device) or of
    no device (0019); the ids of the runs retired."""
    rows = db.execute("SELECT clustering_labels_retire(:keep, CAST(:device AS integer))", keep=int(keep),
                      device=None if device_id is None else int(device_id))
    return [int(row[0]) for row in rows]
