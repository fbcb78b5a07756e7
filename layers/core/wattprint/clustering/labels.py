"""A run's data in and its results out: the data matrix by one binary COPY, and the labels (COPYed into a table
of their own that becomes the run's partition of event_labels), cluster_stats and `done` in one transaction.
"""

from __future__ import annotations

import io
import time

from .. import db
from . import runs
from .features import FEATURE_COLUMNS
from .fit import Fit, LabelStats, centres_literal, chunks, labels_copy, parse_copy, stats_json


def features_sql(threshold: int) -> str:
    """The COPY that reads the data matrix: the eight features of events 1..T, in seq order.

    NULL becomes NaN so one binary row always has eight 8-byte fields; check_data reports it. (COPY takes no
    bind parameters, hence the formatted integer.)"""
    threshold = int(threshold)
    columns = ", ".join(f"coalesce({expr}, 'NaN')" for _, expr in FEATURE_COLUMNS)
    return (f"COPY (SELECT {columns} FROM events WHERE seq BETWEEN 1 AND {threshold} ORDER BY seq) "
            "TO STDOUT WITH (FORMAT binary)")


def load(threshold: int) -> np.ndarray:
    """The data matrix of a run: one binary COPY, parsed by numpy (a read-only transaction: one snapshot)."""
    stream = io.BytesIO()
    with db.transaction() as conn:
        conn.run(features_sql(threshold), stream=stream)
    buffer = stream.getbuffer()
    try:
        return parse_copy(buffer)
    finally:
        buffer.release()


_INSERT_STATS = """
INSERT INTO cluster_stats (run_id, label, events, mean_active_power_w, min_active_power_w, max_active_power_w, centre)
SELECT :run_id, s.label, s.events, s.mean, s.min, s.max, s.centre
FROM json_to_recordset(CAST(:stats AS json)) AS s(label int, events bigint, mean float8, min float8, max float8,
                                                 centre float8[])
"""


def store(run: runs.Claim, result: Fit, stats: list[LabelStats], load_ms: float, fit_ms: float) -> float:
    """Labels, statistics and `done`, in one transaction; returns the store time in ms.

    Fenced: the run row is locked first and must still belong to this claim, so a worker that lost its lease
    writes nothing, and two workers can never build the run's table at the same time."""
    started = time.perf_counter()
    payload = chunks(labels_copy(run.run_id, result.labels))
    with db.transaction() as conn:
        runs.lock(conn, run)
        table = conn.run("SELECT clustering_labels_open(:run_id)", run_id=run.run_id)[0][0]
        conn.run(f"COPY {table} (run_id, seq, label) FROM STDIN WITH (FORMAT binary)", stream=payload)
        conn.run("SELECT clustering_labels_attach(:run_id)", run_id=run.run_id)
        conn.run("DELETE FROM cluster_stats WHERE run_id = :run_id", run_id=run.run_id)
        conn.run(_INSERT_STATS, run_id=run.run_id, stats=stats_json(stats))
        store_ms = (time.perf_counter() - started) * 1000
        runs.finish(conn, run, events=len(result.labels), bandwidth=result.bandwidth, n_clusters=result.n_clusters,
                    centres=centres_literal(result.centres), load_ms=load_ms, fit_ms=fit_ms, store_ms=store_ms)
    return store_ms
