"""Clustering runs: load, fit and store timed separately at 1k…1M events, with the peak memory of each run.

    python -m bench.bench_cluster [SIZE ...]        e.g. 1000 10000; or BENCH_CLUSTER_SIZES=1000,10000
    BENCH_CLUSTER_FIT_CAP=600                        seconds a run may take before its process is stopped

The events are resampled from the real sample file with 2% multiplicative noise on the eight clustering
features (wattprint.synth.iter_from_records; a deterministic stand-in when the file is absent), COPYed straight
into `events` of a fresh embedded PostgreSQL (fsync off: this measures the clustering, not the disk). Every
size is a prefix of the largest set, so one table serves all runs, as in production where run T reads the
events with seq ≤ T of a table that keeps growing.

Each run is processed in a process of its own (`--child`), so its peak RSS (VmHWM) is that run's alone,
numpy's and scikit-learn's C allocations included, and a fit that exceeds the cap can be stopped.
"""

from __future__ import annotations

import csv
import io
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from .common import ROOT, cold_imports, database

REAL = ROOT.parent / "shared" / "data" / "sensor-events-1000.txt"
DEFAULT_SIZES = (1_000, 10_000, 100_000, 1_000_000)
TARGETS = {1_000: ("total", 1.0), 100_000: ("total", 20.0), 1_000_000: ("load", 5.0)}
PEAK_TARGET_MB = 1536  # at 1M
SEED = 20161004


# ------------------------------------------------------------------------------------------------ the data

def _sources():
    """(records, raw lines) the synthetic events are resampled from."""
    from wattprint.ingest import parser

    if REAL.exists():
        lines = REAL.read_text().splitlines()
    else:
        from local import synth

        lines = synth.generate(1000, seed=1, dialect="firmware")
    return [record for _, _, record in parser.parse_lines("\n".join(lines))], lines


def _records(n: int):
    records, lines = _sources()
    try:
        from local import synth
    except ImportError:
        synth = None
    if synth is not None and hasattr(synth, "iter_from_records"):
        return synth.iter_from_records(records, n, seed=SEED, noise=0.02), lines
    return _resample(records, n), lines


def _resample(records, n: int):
    """The fallback: each event a random real one, its eight features times 1 + N(0, 0.02)."""
    import dataclasses
    from random import Random

    rng = Random(SEED)
    for _ in range(n):
        r = rng.choice(records)
        f = [1 + rng.gauss(0, 0.02) for _ in range(8)]
        yield dataclasses.replace(
            r, active_power_w=r.active_power_w * f[0], reactive_power_var=r.reactive_power_var * f[1],
            apparent_power_va=r.apparent_power_va * f[2], current_a=r.current_a * f[3], voltage_v=r.voltage_v * f[4],
            peaks=(r.peaks[0] * f[5], r.peaks[1] * f[6], r.peaks[2] * f[7]) + tuple(r.peaks[3:]))


_COLUMNS = ("seq, device_id, firmware, event_type, coil_reversed, active_power_w, reactive_power_var, "
            "apparent_power_va, current_a, voltage_v, phase_rad, peaks, fft_re, fft_img, sensor_time, frequency_hz, "
            "wifi_strength_dbm, dummy, raw")


def _array(values) -> str:
    return "{" + ",".join(map(repr, values)) + "}"


def _csv_chunks(n: int, rows_per_chunk: int = 20_000):
    """The events as CSV for COPY, in chunks of bytes. `raw` is a real line of the same shape (the clustering never
    reads it; it gives the table its real width) rather than a re-rendered one, which would triple the setup time."""
    records, lines = _records(n)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for seq, r in enumerate(records, start=1):
        writer.writerow((seq, r.device_id, r.firmware, r.event_type, "t" if r.coil_reversed else "f",
                         repr(r.active_power_w), repr(r.reactive_power_var), repr(r.apparent_power_va),
                         repr(r.current_a), repr(r.voltage_v), repr(r.phase_rad), _array(r.peaks), _array(r.fft_re),
                         _array(r.fft_img), r.sensor_time.isoformat(), repr(r.frequency_hz), r.wifi_strength_dbm,
                         r.dummy, lines[seq % len(lines)]))
        if seq % rows_per_chunk == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


def _insert(conn, n: int) -> float:
    started = time.perf_counter()
    conn.run("BEGIN")
    conn.run(f"COPY events ({_COLUMNS}) FROM STDIN WITH (FORMAT csv)", stream=_csv_chunks(n))
    conn.run("UPDATE event_counter SET total = :n", n=n)
    conn.run("COMMIT")
    conn.run("VACUUM ANALYZE events")
    return time.perf_counter() - started


# ------------------------------------------------------------------------------------ one run, in a child

def _peak_rss_mb() -> float:
    """This process's peak resident set. Linux's VmHWM belongs to the process image, while ru_maxrss carries the
    parent's peak over fork and exec (the parent holds the generated events), so prefer VmHWM."""
    try:
        status = Path("/proc/self/status").read_text()
        return int(status.split("VmHWM:")[1].split()[0]) / 1024
    except (OSError, IndexError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(run_id: int, threshold: int) -> None:
    """Claim, load, fit, store one run; one JSON line per step (so a stopped fit still reports its load)."""
    def emit(**fields):
        print(json.dumps({**fields, "peak_rss_mb": round(_peak_rss_mb(), 1)}), flush=True)

    started = time.perf_counter()
    from wattprint.clustering import fit, labels as label_store, runs

    emit(step="import", seconds=time.perf_counter() - started)
    started = time.perf_counter()
    claim = runs.claim(run_id, threshold, lease=3600.0)
    data = label_store.load(claim.threshold)
    fit.check_data(data, claim.threshold)
    loaded = time.perf_counter()
    emit(step="load", seconds=loaded - started, events=len(data))
    result = fit.fit(data)
    stats = fit.label_stats(data, result.labels)
    fitted = time.perf_counter()
    emit(step="fit", seconds=fitted - loaded, bandwidth=result.bandwidth, n_clusters=result.n_clusters,
         unclustered=int((result.labels == -1).sum()))
    label_store.store(claim, result, stats, (loaded - started) * 1000, (fitted - loaded) * 1000)
    done = time.perf_counter()
    emit(step="store", seconds=done - fitted, total=done - started)


def _measure(run_id: int, threshold: int, cap: float) -> dict:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "bench.bench_cluster", "--child", str(run_id), str(threshold)]
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=cap)
        out, stopped = done.stdout, False
        if done.returncode != 0:
            raise RuntimeError(f"run {threshold} failed:\n{done.stderr[-3000:]}")
    except subprocess.TimeoutExpired as expired:
        out = expired.stdout.decode() if isinstance(expired.stdout, bytes) else (expired.stdout or "")
        stopped = True
    steps = {s["step"]: s for s in map(json.loads, filter(None, out.splitlines()))}
    return {"size": threshold, "steps": steps, "stopped": stopped}


def _cold_import() -> dict:
    found = cold_imports("cluster", ("app", "numpy, sklearn.cluster"), layers=("core", "sklearn"))
    return {"handler": found["app"][0], "numpy_sklearn": found["numpy, sklearn.cluster"][0]}


def _handler_warm(conn, threshold: int) -> float:
    """One run through the real handler (SQS event, Powertools batch), module already imported: warm Lambda.
    The run measured above is reset to pending and run again (its old partition is replaced in the same way)."""
    import hashlib
    import uuid

    from local import template
    from local.runtime import Functions
    from local.sqs import sqs_event

    run_id = conn.run("UPDATE clustering_runs SET status = 'pending' WHERE threshold = :t RETURNING id",
                      t=threshold)[0][0]
    functions = Functions(template.load(ROOT / "template.yaml").functions)
    functions.handler("ClusterFunction")  # the cold import, not timed here
    text = json.dumps({"run_id": run_id, "threshold": threshold})
    event = sqs_event([{"MessageId": str(uuid.uuid4()), "ReceiptHandle": "r", "Body": text,
                        "MD5OfBody": hashlib.md5(text.encode()).hexdigest()}], "arn:aws:sqs:::bench", "us-east-1")
    started = time.perf_counter()
    result = functions.invoke("ClusterFunction", event)
    elapsed = time.perf_counter() - started
    if result != {"batchItemFailures": []}:
        raise RuntimeError(f"handler run failed: {result}")
    return elapsed


# ------------------------------------------------------------------------------------------------- report

def _sizes(argv: list[str]) -> list[int]:
    given = [a for a in argv if a.isdigit()] or [s for s in os.environ.get("BENCH_CLUSTER_SIZES", "").split(",") if s]
    return sorted({int(s) for s in given}) if given else list(DEFAULT_SIZES)


def _fmt(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds:.2f} s" if seconds >= 1 else f"{seconds * 1000:.0f} ms"


def run(argv: list[str] | None = None) -> dict:
    from wattprint import db

    sizes = _sizes(sys.argv[1:] if argv is None else argv)
    cap = float(os.environ.get("BENCH_CLUSTER_FIT_CAP", "600"))
    results, rows = [], []
    with database(durable=False):
        conn = db.connect()
        insert_s = _insert(conn, max(sizes))
        for size in sizes:
            run_id = conn.run("INSERT INTO clustering_runs (threshold) VALUES (:t) RETURNING id", t=size)[0][0]
            results.append(_measure(run_id, size, cap))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
        handler_1k = _handler_warm(conn, min(sizes)) if min(sizes) == 1000 else None
        counts = conn.run("SELECT threshold, status, n_clusters FROM clustering_runs ORDER BY id")
        conn.close()
    imports = _cold_import()

    table = ["| events | load | fit (+ stats) | store | total | peak RSS | clusters (-1 events) |",
             "|---:|---:|---:|---:|---:|---:|---|"]
    for result in results:
        steps, size = result["steps"], result["size"]
        load, fit, store = (steps.get(k, {}).get("seconds") for k in ("load", "fit", "store"))
        total = steps.get("store", {}).get("total")
        peak = max((s["peak_rss_mb"] for s in steps.values()), default=None)
        fit_text = _fmt(fit) if fit is not None else (f"> {cap:.0f} s (stopped)" if result["stopped"] else "—")
        clusters = (f"{steps['fit']['n_clusters']} ({steps['fit']['unclustered']:,})" if "fit" in steps else "—")
        table.append(f"| {size:,} | {_fmt(load)} | {fit_text} | {_fmt(store)} | {_fmt(total)} | "
                     f"{peak:,.0f} MB | {clusters} |")
        label = f"{size:,} events"
        if size in TARGETS:
            key, limit = TARGETS[size]
            value = {"total": total, "load": load}[key]
            rows.append({"metric": f"{label}: {'end to end (claim, load, fit, store)' if key == 'total' else 'load'}",
                         "value": _fmt(value), "target": f"≤ {limit:g} s",
                         "met": value is not None and value <= limit})
        rows.append({"metric": f"{label}: load / fit / store", "value": f"{_fmt(load)} / {fit_text} / {_fmt(store)}",
                     "target": "report", "met": None})
        rows.append({"metric": f"{label}: peak RSS of the run's process", "value": f"{peak:,.0f} MB",
                     "target": f"≤ {PEAK_TARGET_MB:,} MB" if size == 1_000_000 else "report",
                     "met": peak <= PEAK_TARGET_MB if size == 1_000_000 else None})
    if handler_1k is not None:
        rows.append({"metric": "1,000 events through the cluster handler (SQS event, warm)", "value": _fmt(handler_1k),
                     "target": "≤ 1 s", "met": handler_1k <= 1.0})
    rows.append({"metric": "cold import of the cluster handler (best of 5)", "value": _fmt(imports["handler"]),
                 "target": "report", "met": None})
    rows.append({"metric": "… of which numpy + scikit-learn", "value": _fmt(imports["numpy_sklearn"]),
                 "target": "report", "met": None})
    notes = ("Each run in its own process against embedded PostgreSQL 18 (fsync off), events resampled from the real "
             f"file with 2% noise and COPYed in ({max(sizes):,} events in {insert_s:.0f} s). Load = one binary COPY "
             "parsed by numpy; fit = the spec's estimate_bandwidth + MeanShift, plus per-label statistics; store = "
             "labels COPYed into the run's own table, attached as its partition, cluster_stats, `done`, one "
             "transaction. Peak RSS = VmHWM of the run's process (interpreter and imports included; ru_maxrss "
             "would carry the parent's peak over fork and exec).\n\n"
             + "\n".join(table))
    return {"title": "Clustering runs", "rows": rows, "notes": notes, "table": table, "results": results,
            "runs": [list(r) for r in counts], "insert_seconds": insert_s, "cold_import": imports}


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _child(int(sys.argv[2]), int(sys.argv[3]))
    else:
        figures = run()
        for row in figures["rows"]:
            print(f"{row['metric']}: {row['value']} (target {row['target']})")
        print("\n".join(figures["table"]))
