"""Label storage with retention (issue 17): bytes per label row, what LabelRetention = K costs per million events,
and how long retiring a run's labels takes.

    python -m bench.bench_storage [EVENTS]        default 1000000

Runs' labels are stored as wattprint.clustering stores them (the run claimed, clustering_labels_open, a binary COPY,
clustering_labels_attach, marked done), then the older run is retired by clustering_labels_retire (one DROP).
The size is pg_total_relation_size of the run's partition: heap, primary key and the (run_id, label, seq) index.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from .common import database

K = 3


def _store_run(conn, threshold: int, labels: np.ndarray) -> int:
    from wattprint.clustering import fit

    run_id = conn.run("INSERT INTO clustering_runs (threshold, status, attempts) VALUES (:t, 'running', 1) "
                      "RETURNING id", t=threshold)[0][0]
    conn.run("BEGIN")
    table = conn.run("SELECT clustering_labels_open(:id)", id=run_id)[0][0]
    conn.run(f"COPY {table} (run_id, seq, label) FROM STDIN WITH (FORMAT binary)",
             stream=fit.chunks(fit.labels_copy(run_id, labels)))
    conn.run("SELECT clustering_labels_attach(:id)", id=run_id)
    conn.run("UPDATE clustering_runs SET status = 'done', finished_at = now(), events = :n WHERE id = :id",
             n=len(labels), id=run_id)
    conn.run("COMMIT")
    return run_id


def run(events: int = 1_000_000) -> dict:
    from wattprint import db

    rng = np.random.default_rng(17)
    with database(durable=False):
        conn = db.connection()
        # Six clusters and the unclustered, as the real data gives: the label index's size depends on it little.
        labels = rng.integers(-1, 6, events).astype(np.int16)
        first = _store_run(conn, events - 1, labels[:-1])
        second = _store_run(conn, events, labels)
        size = conn.run("SELECT pg_total_relation_size(:t)", t=f"event_labels_r{second}")[0][0]
        started = time.perf_counter()
        retired = [row[0] for row in conn.run("SELECT clustering_labels_retire(1)")]
        drop_ms = (time.perf_counter() - started) * 1000
        assert retired == [first], retired
    per_row = size / events
    kept = K * per_row * 1_000_000 / 1e9
    return {"title": "Label storage and retention (issue 17)", "rows": [
        {"metric": f"label partition of {events:,} rows (pg_total_relation_size)", "value": f"{size / 1e6:.1f} MB"},
        {"metric": "bytes per label row (heap + both indexes)", "value": f"{per_row:.1f} B"},
        {"metric": f"labels kept per million events, LabelRetention = {K} (≈ {K} runs of 1M rows)",
         "value": f"{kept:.2f} GB", "target": "< 1 GB", "met": kept < 1.0},
        {"metric": f"retiring one run of {events:,} labels (clustering_labels_retire: one DROP)",
         "value": f"{drop_ms:.0f} ms"},
    ]}


if __name__ == "__main__":
    for row in run(*(int(a) for a in sys.argv[1:]))["rows"]:
        print(f"{row['metric']}: {row['value']}")
