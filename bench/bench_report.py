"""Report API: the handler in-process against 1M events and 10 completed runs in PostgreSQL.

    python -m bench.bench_report                 BENCH_REPORT_EVENTS=1000000, BENCH_REPORT_RUNS=10 by default

Setup: a fresh embedded PostgreSQL (fsync off), migrated. 1M events COPYed in as CSV (each a real event of the
sample file, or a synthetic one when the file is absent, with its raw line, so rows have their real width;
received_at 100 ms apart), then 10 done runs at thresholds N/10, 2N/10, …, N: each run's labels COPYed in binary
into a table of its own that is attached to event_labels as the run's partition (as wattprint.clustering does),
its cluster_stats computed with numpy, ANALYZE.

Measured: the report handler (`functions/report/app.py`, imported once: a warm Lambda) called in-process with API
Gateway proxy events shaped like local.apigw builds them, authorizer context included; time = the handler call.
The query plans at this size are printed into the notes (EXPLAIN ANALYZE).
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
import uuid

from .common import ROOT, cold_import, database, percentile

REAL = ROOT.parent / "shared" / "data" / "sensor-events-1000.txt"
N_EVENTS = int(os.environ.get("BENCH_REPORT_EVENTS", "1000000"))
N_RUNS = int(os.environ.get("BENCH_REPORT_RUNS", "10"))
ITERATIONS = int(os.environ.get("BENCH_REPORT_ITERATIONS", "300"))
SEED = 20161004
TARGETS_MS = {"summary": 5.0, "first": 15.0, "deep": 15.0, "label": 15.0, "label_deep": 15.0}

_COLUMNS = ("seq, received_at, device_id, firmware, event_type, coil_reversed, active_power_w, reactive_power_var, "
            "apparent_power_va, current_a, voltage_v, phase_rad, peaks, fft_re, fft_img, sensor_time, frequency_hz, "
            "wifi_strength_dbm, dummy, raw")


# ------------------------------------------------------------------------------------------------- the data

def _pool():
    """(records, raw lines) of the events the table is made of."""
    from local import synth
    from wattprint.ingest import parser

    lines = REAL.read_text().splitlines() if REAL.exists() else synth.generate(1000, seed=1)
    return [record for _, _, record in parser.parse_lines("\n".join(lines))], lines


def _array(values) -> str:
    return "{" + ",".join(map(repr, values)) + "}"


def _tails(records, lines) -> list[str]:
    """Each pool event as the CSV text of every column after seq and received_at."""
    out = []
    for r, raw in zip(records, lines):
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="").writerow((
            r.device_id, r.firmware, r.event_type, "t" if r.coil_reversed else "f", repr(r.active_power_w),
            repr(r.reactive_power_var), repr(r.apparent_power_va), repr(r.current_a), repr(r.voltage_v),
            repr(r.phase_rad), _array(r.peaks), _array(r.fft_re), _array(r.fft_img), r.sensor_time.isoformat(),
            repr(r.frequency_hz), r.wifi_strength_dbm, r.dummy, raw))
        out.append(buffer.getvalue())
    return out


def _events_csv(pick, tails, chunk: int = 50_000):
    import numpy as np

    start = np.datetime64("2026-01-01T00:00:00.000")
    for first in range(0, len(pick), chunk):
        seqs = np.arange(first + 1, min(first + chunk, len(pick)) + 1)
        stamps = np.datetime_as_string(start + seqs * np.timedelta64(100, "ms"), unit="ms")
        yield "".join(f"{s},{t}Z,{tails[p]}\n" for s, t, p in
                      zip(seqs.tolist(), stamps.tolist(), pick[first:first + len(seqs)].tolist())).encode()


def _labels_copy(run_id: int, labels) -> bytes:
    """event_labels (run_id, seq, label) rows as a binary COPY, seq = index + 1."""
    import numpy as np

    row = np.dtype([("fields", ">i2"), ("len_run", ">i4"), ("run_id", ">i8"), ("len_seq", ">i4"), ("seq", ">i8"),
                    ("len_label", ">i4"), ("label", ">i2")])
    rows = np.empty(len(labels), dtype=row)
    rows["fields"], rows["len_run"], rows["len_seq"], rows["len_label"] = 3, 8, 8, 2
    rows["run_id"], rows["seq"], rows["label"] = run_id, np.arange(1, len(labels) + 1), labels
    return b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8 + rows.tobytes() + b"\xff\xff"


def _setup(conn) -> dict:
    import numpy as np

    from wattprint.clustering.features import FEATURE_COLUMNS

    timings = {}
    started = time.perf_counter()
    records, lines = _pool()
    rng = np.random.default_rng(SEED)
    pick = rng.integers(0, len(records), N_EVENTS)
    conn.run("BEGIN")
    conn.run(f"COPY events ({_COLUMNS}) FROM STDIN WITH (FORMAT csv)", stream=_events_csv(pick, _tails(records, lines)))
    conn.run("UPDATE event_counter SET total = :n", n=N_EVENTS)
    conn.run("COMMIT")
    timings["events"] = time.perf_counter() - started

    # Labels: each pool event belongs to an appliance-like mode; each run relabels 5% at random, and numbers its
    # clusters its own way (a permutation), as independent MeanShift runs would.
    started = time.perf_counter()
    features = np.array([[r.active_power_w, r.reactive_power_var, r.apparent_power_va, r.current_a, r.voltage_v,
                          *r.peaks[:3]] for r in records], dtype=np.float64)[pick]
    assert len(FEATURE_COLUMNS) == features.shape[1]
    modes = np.digitize(features[:, 0], [30, 90, 600, 1500, 2000])  # 6 modes by active power
    run_ids = []
    for k in range(1, N_RUNS + 1):
        threshold = N_EVENTS * k // N_RUNS
        labels = np.random.default_rng(SEED + k).permutation(6)[modes[:threshold]].astype(np.int16)
        noise = rng.random(threshold)
        labels[noise < 0.05] = rng.integers(0, 6, int((noise < 0.05).sum()))
        labels[noise > 0.92] = -1
        run_id = conn.run("INSERT INTO clustering_runs (threshold, status, attempts, started_at, finished_at, events, "
                          "bandwidth, n_clusters, load_ms, fit_ms, store_ms) VALUES (:t, 'done', 1, now(), now(), :t, "
                          "264.19, 6, 1, 1, 1) RETURNING id", t=threshold)[0][0]
        table = f"event_labels_r{run_id}"
        conn.run("BEGIN")
        conn.run(f"CREATE TABLE {table} (LIKE event_labels, CONSTRAINT {table}_run CHECK (run_id = {run_id}))")
        conn.run(f"COPY {table} (run_id, seq, label) FROM STDIN WITH (FORMAT binary)",
                 stream=io.BytesIO(_labels_copy(run_id, labels)))
        conn.run(f"ALTER TABLE event_labels ATTACH PARTITION {table} FOR VALUES IN ({run_id})")
        stats = []
        for label in np.unique(labels).tolist():
            rows = features[:threshold][labels == label]
            stats.append({"label": label, "events": len(rows), "mean": float(rows[:, 0].mean()),
                          "min": float(rows[:, 0].min()), "max": float(rows[:, 0].max()),
                          "centre": rows.mean(axis=0).tolist()})
        conn.run("INSERT INTO cluster_stats (run_id, label, events, mean_active_power_w, min_active_power_w, "
                 "max_active_power_w, centre) SELECT :id, s.label, s.events, s.mean, s.min, s.max, s.centre "
                 "FROM json_to_recordset(CAST(:stats AS json)) AS s(label int, events bigint, mean float8, "
                 "min float8, max float8, centre float8[])", id=run_id, stats=json.dumps(stats))
        conn.run("COMMIT")
        run_ids.append((run_id, threshold))
    timings["labels"] = time.perf_counter() - started
    started = time.perf_counter()
    conn.run("VACUUM ANALYZE events")
    conn.run("ANALYZE event_labels")
    conn.run("ANALYZE cluster_stats")
    timings["analyze"] = time.perf_counter() - started
    return {"timings": timings, "runs": run_ids}


# ------------------------------------------------------------------------------------------------ measuring

def api_event(path: str, query: dict | None = None, resource: str | None = None,
              path_params: dict | None = None, headers: dict | None = None) -> dict:
    """A REST API (payload 1.0) proxy event as local.apigw.Gateway.handle builds it, read token authorized."""
    hdrs = {"Host": "local", "Authorization": "Bearer wp_bench_read_token", **(headers or {})}
    query = {k: str(v) for k, v in (query or {}).items()}
    return {
        "resource": resource or path, "path": path, "httpMethod": "GET",
        "headers": hdrs, "multiValueHeaders": {k: [v] for k, v in hdrs.items()},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} or None,
        "pathParameters": path_params, "stageVariables": None,
        "requestContext": {
            "accountId": "000000000000", "apiId": "local", "resourceId": "local", "stage": "v1",
            "resourcePath": resource or path, "httpMethod": "GET", "path": f"/v1{path}",
            "requestId": str(uuid.uuid4()), "requestTimeEpoch": int(time.time() * 1000), "protocol": "HTTP/1.1",
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "bench"},
            "authorizer": {"principalId": "token:1", "scope": "read", "token_name": "bench"},
        },
        "body": None, "isBase64Encoded": False,
    }


def _time(functions, event: dict, iterations: int) -> tuple[list[float], dict]:
    for _ in range(20):  # warm: plans, prepared statements
        result = functions.invoke("ReportFunction", event)
    if result["statusCode"] != 200:
        raise RuntimeError(f"{event['path']} {event['queryStringParameters']}: {result}")
    samples = []
    for _ in range(iterations):
        started = time.perf_counter()
        functions.invoke("ReportFunction", event)
        samples.append(time.perf_counter() - started)
    return samples, result


def _plans(conn, runs) -> str:
    from wattprint.report import params, queries

    run_id, threshold = runs[-1]
    cases = [("first page", params.EventQuery(), 0), ("deep page (seq > 900,000)", params.EventQuery(),
                                                       N_EVENTS * 9 // 10),
             ("label page", params.EventQuery(label=2), 0),
             ("deep label page", params.EventQuery(label=2), N_EVENTS * 9 // 10)]
    out = []
    for name, query, key in cases:
        sql = queries.events_sql(query, run_id, threshold)
        lines = conn.run("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + sql,
                         **queries.events_params(query, key, 101))
        plan = "\n".join(row[0] for row in lines)
        if "Seq Scan" in plan or "Sort" in plan:
            raise RuntimeError(f"{name}: not an index walk at {N_EVENTS:,} events:\n{plan}")
        out.append(f"{name}:\n\n```\n{plan}\n```")
    return "\n\n".join(out)


def run() -> dict:
    from local import template
    from local.runtime import Functions
    from wattprint import db
    from wattprint.report import cursors, params, queries

    total_started = time.perf_counter()
    with database(durable=False):
        conn = db.connect()
        arranged = _setup(conn)
        setup_s = time.perf_counter() - total_started
        runs = arranged["runs"]
        current_id, current_threshold = runs[-1]
        older_id, _ = runs[len(runs) // 2]
        plans = _plans(conn, runs)
        deep_seq = N_EVENTS * 9 // 10
        event_id = conn.run("SELECT id FROM events WHERE seq = :s", s=deep_seq // 2)[0][0]
        conn.close()

        functions = Functions(template.load(ROOT / "template.yaml").functions)

        def cursor(query: params.EventQuery, seq: int) -> str:
            return cursors.encode_cursor(cursors.Cursor(query.desc, seq, current_id, current_threshold, query.digest()))

        cases = [
            ("summary", "GET /clusters/summary", api_event("/clusters/summary")),
            ("first", "GET /events?limit=100 (first page)", api_event("/events", {"limit": 100})),
            ("deep", "GET /events?limit=100&cursor=… (after seq 900,000)",
             api_event("/events", {"limit": 100, "cursor": cursor(params.EventQuery(), deep_seq)})),
            ("label", "GET /events?label=2&limit=100 (first page)", api_event("/events", {"label": 2, "limit": 100})),
            ("label_deep", "GET /events?label=2&limit=100&cursor=… (after seq 900,000)",
             api_event("/events", {"label": 2, "limit": 100,
                                   "cursor": cursor(params.EventQuery(label=2), deep_seq)})),
            ("desc", "GET /events?order=desc&limit=100", api_event("/events", {"order": "desc", "limit": 100})),
            ("run", f"GET /events?run={older_id}&label=-1&limit=100 (an older run's unclustered)",
             api_event("/events", {"run": older_id, "label": -1, "limit": 100})),
            ("device", "GET /events?device_id=…&limit=100", None),
            ("csv", "GET /events?limit=100 as text/csv", api_event("/events", {"limit": 100},
                                                                     headers={"Accept": "text/csv"})),
            ("max", "GET /events?limit=1000", api_event("/events", {"limit": 1000})),
            ("runs", f"GET /runs ({len(runs)} runs)", api_event("/runs")),
            ("event", f"GET /events/{{id}} (labelled by {len(runs)} runs)",
             api_event(f"/events/{event_id}", resource="/events/{id}", path_params={"id": str(event_id)})),
        ]
        first = json.loads(functions.invoke("ReportFunction", api_event("/events", {"limit": 1}))["body"])
        device = first["items"][0]["device_id"]
        cases[7] = ("device", f"GET /events?device_id={device}&limit=100",
                    api_event("/events", {"device_id": device, "limit": 100}))

        rows, figures = [], {}
        for key, name, event in cases:
            samples, result = _time(functions, event, ITERATIONS)
            p50, p95 = percentile(samples, 50) * 1000, percentile(samples, 95) * 1000
            figures[key] = {"p50_ms": round(p50, 3), "p95_ms": round(p95, 3)}
            body = result["body"]
            if key in ("first", "deep", "label", "label_deep", "desc", "run", "device", "max"):
                items = json.loads(body)["items"]
                figures[key]["items"] = len(items)
                figures[key]["seq_range"] = [items[0]["seq"], items[-1]["seq"]] if items else None
            target = TARGETS_MS.get(key)
            rows.append({"metric": f"{name}: p50 / p95", "value": f"{p50:.2f} ms / {p95:.2f} ms",
                         "target": f"p50 ≤ {target:g} ms" if target else "report",
                         "met": (p50 <= target) if target else None})
    cold, heavy = cold_import("report")
    rows.append({"metric": "cold import of the report handler (best of 5)", "value": f"{cold * 1000:.0f} ms",
                 "target": "report", "met": None})
    rows.append({"metric": "numpy/scikit-learn loaded by the report handler", "value": ", ".join(heavy) or "no",
                 "target": "no", "met": not heavy})
    t = arranged["timings"]
    rows.append({"metric": f"setup: {N_EVENTS:,} events COPYed / {N_RUNS} runs' labels attached / ANALYZE",
                 "value": f"{t['events']:.1f} s / {t['labels']:.1f} s / {t['analyze']:.1f} s "
                          f"(total with server start {setup_s:.0f} s)", "target": "report", "met": None})
    notes = (f"{N_EVENTS:,} events, {N_RUNS} done runs (thresholds {runs[0][1]:,} … {runs[-1][1]:,}; "
             f"{sum(th for _, th in runs):,} label rows in {N_RUNS} partitions), embedded PostgreSQL 18 with fsync "
             f"off, on loopback. Each figure: {ITERATIONS} calls of the warm handler after 20 warm-up calls. "
             f"Plans at this size (EXPLAIN ANALYZE, current run):\n\n{plans}")
    return {"title": "Report API (GET /clusters/summary, /events …)", "rows": rows, "notes": notes,
            "figures": figures, "setup_seconds": round(setup_s, 1), "setup": {k: round(v, 1) for k, v in t.items()}}


if __name__ == "__main__":
    result = run()
    for row in result["rows"]:
        print(f"{row['metric']}: {row['value']} (target {row['target']})")
    print(json.dumps(result["figures"], indent=2))
    print(result["notes"])
