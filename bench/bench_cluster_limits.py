"""Clustering's limits: the fit's time and peak memory at 1M, 2M and 5M events, and MeanShift in 1 vs 2 threads.

    python -m bench cluster_limits                        not in the default `make bench` (see the README's limits)
    python -m bench.bench_cluster_limits [SIZE ...]       e.g. 1000000 2000000; or BENCH_LIMITS_SIZES=...
    BENCH_LIMITS_THREADS_AT=500000 BENCH_LIMITS_ROUNDS=3   the size and rounds of the 1-vs-2-threads comparison
    BENCH_LIMITS_FIT_CAP=3600                              seconds one child may take before it is stopped
    BENCH_LIMITS_FEATURES=path.npy                         keep the generated features there (reused when large
                                                           enough: generating 5M takes about a minute)
    BENCH_LIMITS_REUSE=1                                   no new measurement: the last run's figures
                                                           (.local/bench-results.json) rendered again, e.g. after
                                                           changing an assumption below

The events are the cluster section's (bench.bench_cluster: the real sample resampled with 2% noise on the eight
features, local/synth.py), generated once at the largest size; every size is a prefix of it, so the 1M set here is
the cluster section's 1M set. No database: each size runs in a process of its own (`--child`) that does what a
run's process does between the database's answers: the binary COPY the load receives (built here from the
features, byte for byte the shape PostgreSQL sends) parsed by numpy, the checks, the spec's fit, the per-label
statistics and the labels' binary COPY for the store. Its peak RSS (VmHWM) is the run's memory, numpy's and
scikit-learn's C allocations included; the database's own load and store time is not measured here but added to
the 15-minute limit from the cluster section's figures (DB_SECONDS_PER_EVENT).

The thread comparison runs each worker count `rounds` times, interleaved (1, 2, 1, 2, …) on the same set, and
asserts that every child gave the same labels.

Each step reports wall and CPU seconds. On a machine shared with other work (this one: 2 cores, other sessions'
tests and benchmarks), a one-thread step's wall time is stretched by whatever else runs, its CPU time much less:
the limits are extrapolated from CPU time, and the load average is recorded with the figures. Threads can only be
judged by wall time, so their ratio is as noisy as the machine.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import ROOT, median

DEFAULT_SIZES = (1_000_000, 2_000_000, 5_000_000)
LAMBDA_TIMEOUT_S = 900
LAMBDA_MAX_MB = 10_240
MB_PER_VCPU = 1769
# Assumed, not measured: a Lambda arm64 (Graviton2) vCPU runs this single-threaded CPython + numpy work up to this
# many times slower than one core of the bench machine; the limits below are computed with it.
LAMBDA_SLOWDOWN = 1.5
# What Lambda's memory must hold beyond the run's peak RSS (the runtime, the database driver's buffers, headroom).
MEMORY_MARGIN = 1.25
# The database's part of a run, which this section does not measure: the cluster section's load + store at 1M events
# on this machine (2.21 s + 1.29 s, BENCHMARKS.md), taken as linear in the events and as slow on Lambda.
DB_SECONDS_PER_EVENT = 3.5e-6


# ------------------------------------------------------------------------------------------------ the data

def _features(n: int, path: Path) -> float:
    """The first n events' eight features (bench_cluster's events) saved as one .npy; returns the seconds taken
    (0 when `path` already holds at least n of them)."""
    import numpy as np

    from .bench_cluster import _records

    if path.exists() and np.load(path, mmap_mode="r").shape[0] >= n:
        return 0.0
    started = time.perf_counter()
    records, _ = _records(n)
    data = np.empty((n, 8), dtype=np.float64)
    for i, r in enumerate(records):
        data[i] = (r.active_power_w, r.reactive_power_var, r.apparent_power_va, r.current_a, r.voltage_v,
                   r.peaks[0], r.peaks[1], r.peaks[2])
    np.save(path, data)
    return time.perf_counter() - started


def _received(path: str, size: int, rows_per_message: int = 65_536):
    """The binary COPY PostgreSQL sends for the load (labels.features_sql: seq int8 and the eight float8), written
    message by message into a BytesIO as labels.load's stream receives it; the features are read from the .npy in
    pieces, so none of the file stays resident."""
    import io

    import numpy as np

    from wattprint.clustering import fit

    stream = io.BytesIO()
    stream.write(fit._SIGNATURE + b"\0" * 8)
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, _, _ = read_header(f)
        assert shape[1] == fit.N_FEATURES and shape[0] >= size
        for start in range(0, size, rows_per_message):
            count = min(rows_per_message, size - start)
            data = np.fromfile(f, dtype=np.float64, count=count * fit.N_FEATURES).reshape(count, fit.N_FEATURES)
            rows = np.empty(count, dtype=fit._ROW)
            rows["fields"], rows["len_seq"] = fit.N_FIELDS, 8
            rows["seq"] = np.arange(start + 1, start + count + 1)
            for i in range(fit.N_FEATURES):
                rows[f"len{i}"], rows[f"f{i}"] = 8, data[:, i]
            stream.write(rows.tobytes())
    stream.write(fit._TRAILER)
    return stream


# ------------------------------------------------------------------------------------ one run, in a child

def _child(path: str, size: int, threads: int, labels_out: str) -> None:
    import numpy as np

    from bench.bench_cluster import _peak_rss_mb
    from wattprint.clustering import fit

    clock = [time.perf_counter(), time.process_time()]

    def emit(**fields):
        """A step's wall and CPU seconds since the last; CPU time is what a machine shared with other work still
        measures (a one-thread step's CPU time is its wall time on an idle core)."""
        wall, cpu = time.perf_counter(), time.process_time()
        print(json.dumps({**fields, "seconds": wall - clock[0], "cpu": cpu - clock[1],
                          "peak_rss_mb": round(_peak_rss_mb(), 1)}), flush=True)
        clock[:] = time.perf_counter(), time.process_time()

    emit(step="import")
    stream = _received(path, size)
    emit(step="received", copy_mb=round(stream.tell() / 2**20, 1))
    buffer = stream.getbuffer()
    try:
        seqs, data = fit.parse_copy(buffer)
    finally:  # as labels.load: the received COPY is freed once parsed
        buffer.release()
    del stream
    loaded = fit.Loaded(seqs, data)
    fit.check_data(loaded, size)
    emit(step="parse", events=len(data))
    result = fit.fit(data, threads=threads)
    emit(step="fit", bandwidth=result.bandwidth, n_clusters=result.n_clusters,
         unclustered=int((result.labels == -1).sum()))
    fit.label_stats(data, result.labels)
    copy = fit.chunks(fit.labels_copy(1, result.labels, seqs))
    emit(step="stats", labels_copy_mb=round(sum(map(len, copy)) / 2**20, 1))
    np.save(labels_out, result.labels)


def _measure(path: Path, size: int, threads: int, cap: float, out: Path) -> dict:
    command = [sys.executable, "-m", "bench.bench_cluster_limits", "--child", str(path), str(size), str(threads),
               str(out)]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=cap)
        if done.returncode != 0:
            raise RuntimeError(f"{size} events, {threads} thread(s) failed:\n{done.stderr[-3000:]}")
        text, stopped = done.stdout, False
    except subprocess.TimeoutExpired as expired:
        text = expired.stdout.decode() if isinstance(expired.stdout, bytes) else (expired.stdout or "")
        stopped = True
    steps = {s["step"]: s for s in map(json.loads, filter(None, text.splitlines()))}
    result = {"size": size, "threads": threads, "steps": steps, "stopped": stopped,
              "wall": time.perf_counter() - started,
              "peak_rss_mb": max(s["peak_rss_mb"] for s in steps.values()) if steps else None}
    print(json.dumps(result), file=sys.stderr, flush=True)
    return result


# ------------------------------------------------------------------------------------------------- limits

def power_law(points: list[tuple[float, float]]) -> tuple[float, float]:
    """(a, b) of y = a·x^b, least squares in log-log space."""
    xs, ys = [math.log(x) for x, _ in points], [math.log(y) for _, y in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return math.exp(my - b * mx), b


def linear(points: list[tuple[float, float]]) -> tuple[float, float]:
    """(intercept, slope) of y = c + s·x, least squares."""
    mx, my = sum(x for x, _ in points) / len(points), sum(y for _, y in points) / len(points)
    s = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)
    return my - s * mx, s


def lambda_memory_mb(peak_mb: float) -> int:
    """The MemorySize to give a run of this peak: the peak with MEMORY_MARGIN, in 64 MB steps, at least one vCPU's
    1769 MB (the fit is CPU-bound), at most Lambda's 10,240."""
    return min(LAMBDA_MAX_MB, max(MB_PER_VCPU, int(math.ceil(peak_mb * MEMORY_MARGIN / 64) * 64)))


def _cpu(result: dict) -> float:
    """A run's in-memory CPU seconds: parse, fit, statistics and the labels' COPY (one thread: its wall time on an
    idle core)."""
    return sum(result["steps"][k]["cpu"] for k in ("parse", "fit", "stats"))


def limits(results: list[dict]) -> dict:
    """The growth fitted to the measured sizes, and the set sizes where one invocation's 15 minutes (with
    LAMBDA_SLOWDOWN) and 10 GB (with MEMORY_MARGIN) stop sufficing."""
    done = [r for r in results if "stats" in r["steps"]]
    seconds = [(r["size"], _cpu(r)) for r in done]
    memory = [(r["size"], r["peak_rss_mb"]) for r in done]
    a, b = power_law(seconds)
    c, s = linear(memory)

    def run_seconds(n: float) -> float:  # one invocation's time on Lambda for n events
        return a * n ** b * LAMBDA_SLOWDOWN + DB_SECONDS_PER_EVENT * n

    low, high = 1.0, 1e12
    while high / low > 1.0001:  # run_seconds grows with n: bisect for where it reaches the timeout
        mid = math.sqrt(low * high)
        low, high = (mid, high) if run_seconds(mid) < LAMBDA_TIMEOUT_S else (low, mid)
    time_limit = low
    memory_limit = (LAMBDA_MAX_MB / MEMORY_MARGIN - c) / s
    return {"seconds_a": a, "seconds_b": b, "memory_base_mb": c, "memory_mb_per_million": s * 1e6,
            "time_limit_events": time_limit, "memory_limit_events": memory_limit,
            "limit_events": min(time_limit, memory_limit)}


# ------------------------------------------------------------------------------------------------- report

def _sizes(argv: list[str]) -> list[int]:
    given = [a for a in argv if a.isdigit()] or [s for s in os.environ.get("BENCH_LIMITS_SIZES", "").split(",") if s]
    return sorted({int(s) for s in given}) if given else list(DEFAULT_SIZES)


def _s(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds:.1f} s"


def _measure_all(sizes: list[int], threads_at: int, rounds: int, cap: float) -> tuple[list, list, float]:
    """(the thread comparison's children, one child per size, seconds spent generating the events); asserts that
    every child of the comparison gave the first one's labels."""
    import numpy as np

    with tempfile.TemporaryDirectory(prefix="wattprint-limits-") as tmp:
        folder = Path(tmp)
        data = Path(os.environ.get("BENCH_LIMITS_FEATURES") or folder / "features.npy")
        generate_s = _features(max(sizes + [threads_at]), data)
        compared = []
        for i in range(rounds):
            for threads in (1, 2):
                compared.append(_measure(data, threads_at, threads, cap, folder / f"t{threads}-{i}.npy"))
        reference = np.load(folder / "t1-0.npy")
        for i in range(rounds):
            for threads in (1, 2):
                assert np.array_equal(np.load(folder / f"t{threads}-{i}.npy"), reference), \
                    f"{threads} thread(s), round {i + 1}: other labels than 1 thread"
        measured = [next((r for r in compared if r["size"] == size and r["threads"] == 1), None)
                    or _measure(data, size, 1, cap, folder / f"s{size}.npy") for size in sizes]
    return compared, measured, generate_s


def _last_run() -> dict:
    """This section's last measurements, as `python -m bench` saved them (its STATE file: bench/__main__.py, which
    cannot be imported without running the bench)."""
    saved = json.loads((ROOT / ".local" / "bench-results.json").read_text())["cluster_limits"]
    return {**saved, **saved.get("measured", {})}  # re-rendered more than once: still the first measurement's


def run(argv: list[str] | None = None) -> dict:
    sizes = _sizes(sys.argv[1:] if argv is None else argv)
    threads_at = int(os.environ.get("BENCH_LIMITS_THREADS_AT", "500000"))
    rounds = int(os.environ.get("BENCH_LIMITS_ROUNDS", "3"))
    cap = float(os.environ.get("BENCH_LIMITS_FIT_CAP", "3600"))
    rows: list[dict] = []
    load_before = os.getloadavg()
    reused = _last_run() if os.environ.get("BENCH_LIMITS_REUSE") else None
    if reused:
        compared, measured, (load_before, load_after) = reused["threads"], reused["results"], reused["load"]
        threads_at, rounds, generate_s = compared[0]["size"], len(compared) // 2, 0.0
    else:
        compared, measured, generate_s = _measure_all(sizes, threads_at, rounds, cap)
        load_after = os.getloadavg()
    fits = {t: [r["steps"]["fit"]["seconds"] for r in compared if r["threads"] == t] for t in (1, 2)}
    cpus = {t: [r["steps"]["fit"]["cpu"] for r in compared if r["threads"] == t] for t in (1, 2)}
    peaks = {t: max(r["peak_rss_mb"] for r in compared if r["threads"] == t) for t in (1, 2)}
    ratio = median(fits[2]) / median(fits[1])
    found = limits(measured)

    def listed(values):
        return f"{median(values):.1f} s (each: {', '.join(f'{v:.1f}' for v in values)})"

    rows += [
        {"metric": f"{threads_at:,} events: fit in 1 thread, wall (median of {rounds}, interleaved with 2)",
         "value": listed(fits[1]), "target": "report", "met": None},
        {"metric": f"{threads_at:,} events: fit in 2 joblib threads, wall", "value": listed(fits[2]),
         "target": "report", "met": None},
        {"metric": "2 threads / 1 thread, fit wall time (median / median)", "value": f"{ratio:.2f}",
         "target": "< 1 to use threads", "met": None},
        {"metric": "fit CPU time, 1 / 2 threads (median)",
         "value": f"{median(cpus[1]):.1f} s / {median(cpus[2]):.1f} s", "target": "report", "met": None},
        {"metric": "labels of 2 threads = labels of 1 thread (every event, every round)", "value": "identical",
         "target": "identical", "met": True},
        {"metric": "peak RSS, 1 / 2 threads", "value": f"{peaks[1]:,.0f} MB / {peaks[2]:,.0f} MB", "target": "report",
         "met": None},
    ]
    table = ["| events | fit, CPU (wall) | parse + stats + labels' COPY, CPU | in-memory CPU | peak RSS | "
             "Lambda memory | clusters (-1 events) |", "|---:|---:|---:|---:|---:|---:|---|"]
    for r in measured:
        steps = r["steps"]
        if "stats" not in steps:
            table.append(f"| {r['size']:,} | {'stopped after ' + _s(cap) if r['stopped'] else 'failed'} | — | — | "
                         f"{r['peak_rss_mb'] or 0:,.0f} MB | — | — |")
            continue
        fit_step = steps["fit"]
        other = steps["parse"]["cpu"] + steps["stats"]["cpu"]
        table.append(f"| {r['size']:,} | {_s(fit_step['cpu'])} ({_s(fit_step['seconds'])}) | {_s(other)} | "
                     f"{_s(_cpu(r))} | {r['peak_rss_mb']:,.0f} MB | {lambda_memory_mb(r['peak_rss_mb']):,} MB | "
                     f"{fit_step['n_clusters']} ({fit_step['unclustered']:,}) |")
        rows.append({"metric": f"{r['size']:,} events: in-memory CPU (fit's wall), peak RSS",
                     "value": f"{_s(_cpu(r))} ({_s(fit_step['seconds'])}), {r['peak_rss_mb']:,.0f} MB",
                     "target": "report", "met": None})
    rows += [
        {"metric": "growth: in-memory CPU seconds ≈ a·n^b", "value": f"b = {found['seconds_b']:.2f}",
         "target": "report", "met": None},
        {"metric": "growth: peak RSS ≈ c + s·n",
         "value": f"c = {found['memory_base_mb']:,.0f} MB, s = {found['memory_mb_per_million']:,.0f} MB per 1M",
         "target": "report", "met": None},
        {"metric": f"set size where 15 min no longer suffice (vCPU ×{LAMBDA_SLOWDOWN:g} slower)",
         "value": f"≈ {found['time_limit_events'] / 1e6:.1f}M events", "target": "report", "met": None},
        {"metric": f"set size where 10 GB no longer suffice (×{MEMORY_MARGIN:g} margin)",
         "value": f"≈ {found['memory_limit_events'] / 1e6:.1f}M events", "target": "report", "met": None},
    ]
    remeasured = f" Measurements of {reused['when']} (commit {reused['commit']}), rendered again." if reused else ""
    notes = ("Not in `make bench`'s default run: `python -m bench cluster_limits`. No database: each size in its own "
             "process, from the COPY the load receives to the labels' COPY the "
             f"store sends (bench/bench_cluster_limits.py); the events are the cluster section's "
             f"({max(sizes):,}{f' generated in {generate_s:.0f} s' if generate_s else ', reused'}). Load average "
             f"{load_before[0]:.1f} at the start, {load_after[0]:.1f} at the end (2 cores shared with other "
             f"sessions): wall times are stretched by that, so the limits use CPU time. Peak RSS = VmHWM of the "
             f"run's process. Lambda memory = peak × {MEMORY_MARGIN:g}, at least {MB_PER_VCPU} MB (one vCPU). "
             f"Limits extrapolated from the measured sizes: CPU time as a power law fitted in log-log space "
             f"(b = {found['seconds_b']:.2f}), times {LAMBDA_SLOWDOWN:g} (an arm64 vCPU assumed up to "
             f"{LAMBDA_SLOWDOWN:g}× slower than a core here; not measured), plus the database's load and store "
             f"({DB_SECONDS_PER_EVENT * 1e6:g} s per 1M events, the cluster section's, linear), against "
             f"{LAMBDA_TIMEOUT_S} s; memory as a straight line against {LAMBDA_MAX_MB:,} MB / {MEMORY_MARGIN:g}. "
             f"The table's times are this machine's, without the database.{remeasured}\n\n" + "\n".join(table))
    return {"title": "Clustering limits (fit time and memory at 1M–5M events; threads)", "rows": rows,
            "notes": notes, "table": table, "results": measured, "threads": compared, "limits": found,
            "ratio": ratio, "load": [load_before, load_after],
            **({"seconds": reused["seconds"], "measured": {"when": reused["when"], "commit": reused["commit"]}}
               if reused else {})}


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    else:
        figures = run()
        for row in figures["rows"]:
            print(f"{row['metric']}: {row['value']}")
        print("\n".join(figures["table"]))
