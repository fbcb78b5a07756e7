"""Energy API: the handler in-process against 100 devices × 90 days of one-minute readings in PostgreSQL, and what
whether the feed of sensor events keeps up with ingest.

    python -m bench energy          BENCH_ENERGY_DEVICES=100, BENCH_ENERGY_DAYS=90 by default

Setup: a fresh embedded PostgreSQL (fsync off), migrated. The readings are made by the server (generate_series, one
INSERT … SELECT; primary key built after): device d, minute t, kW = a base load of 0.2 + 0.1·(d mod 10), plus on
weekdays 08:00–18:00 a working load of 0.5·(1 + d mod 3), plus 0.3·|sin(t/7 + d)|. Their buckets and day totals
are summed by SQL (one-minute kW readings: 15 per bucket, each 1/60 h) and the last minute is marked estimated;
the notes say whether that agrees with wattprint.energy.integrate on one device's readings. ANALYZE.

Measured: the energy handler (`functions/energy/app.py`, imported once: a warm Lambda) called in-process with API
Gateway proxy events, as the report bench does; time = the handler call. Each case draws a new device (and week)
per call. The feed case posts 20 × the same 500-event batch (real lines: one device, its clock repeating) and then
times the feed function's entry (energy.service.feed_new) over those events; repeated BENCH_ENERGY_COST_REPEATS
(5) times, a database each.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import time
import uuid
from datetime import datetime, timedelta, timezone

from .common import ROOT, database, percentile

DEVICES = int(os.environ.get("BENCH_ENERGY_DEVICES", "100"))
DAYS = int(os.environ.get("BENCH_ENERGY_DAYS", "90"))
ITERATIONS = int(os.environ.get("BENCH_ENERGY_ITERATIONS", "200"))
COST_REPEATS = int(os.environ.get("BENCH_ENERGY_COST_REPEATS", "5"))
START = datetime(2026, 1, 5, tzinfo=timezone.utc)  # a Monday
END = START + timedelta(days=DAYS)
REAL = ROOT.parent / "shared" / "data" / "sensor-events-1000.txt"
TARGETS_MS = {"week": 20.0, "fleet": 50.0, "top": 100.0, "forecast": 100.0}

_VALUE = ("0.2 + 0.1 * (d % 10) + CASE WHEN extract(isodow FROM t) < 6 AND extract(hour FROM t) BETWEEN 8 AND 17 "
          "THEN 0.5 * (1 + d % 3) ELSE 0 END + 0.3 * abs(sin(extract(epoch FROM t) / 420 + d))")


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _setup(conn) -> dict:
    timings = {}
    started = time.perf_counter()
    conn.run("ALTER TABLE energy_readings DROP CONSTRAINT energy_readings_pkey")
    conn.run(f"""
        INSERT INTO energy_readings (device_id, ts, source, units, value, flags)
        SELECT d, t, 1, 0, {_VALUE}, 0
        FROM generate_series(1, CAST(:devices AS int)) AS d,
             generate_series(CAST(:start AS timestamptz), CAST(:end AS timestamptz) - interval '1 minute',
                             interval '1 minute') AS t""", devices=DEVICES, start=START, end=END)
    timings["readings_s"] = time.perf_counter() - started
    started = time.perf_counter()
    conn.run("ALTER TABLE energy_readings ADD PRIMARY KEY (device_id, ts, source)")
    timings["index_s"] = time.perf_counter() - started
    started = time.perf_counter()
    conn.run("""
        INSERT INTO energy_buckets (device_id, bucket_start, kwh, covered_us)
        SELECT device_id, date_bin('15 minutes', ts, timestamptz 'epoch'), sum(value) / 60, count(*) * 60000000
        FROM energy_readings GROUP BY 1, 2""")
    conn.run("UPDATE energy_buckets SET estimated_us = 60000000 WHERE bucket_start = CAST(:last AS timestamptz)",
             last=END - timedelta(minutes=15))
    conn.run("""
        INSERT INTO energy_days (device_id, day, kwh, covered_us, estimated_us)
        SELECT device_id, date_trunc('day', bucket_start, 'UTC'), sum(kwh), sum(covered_us), sum(estimated_us)
        FROM energy_buckets GROUP BY 1, 2""")
    conn.run("VACUUM ANALYZE energy_readings")
    conn.run("VACUUM ANALYZE energy_buckets")
    conn.run("VACUUM ANALYZE energy_days")
    timings["buckets_s"] = time.perf_counter() - started
    timings["readings"] = conn.run("SELECT count(*) FROM energy_readings")[0][0]
    timings["buckets"] = conn.run("SELECT count(*) FROM energy_buckets")[0][0]
    return timings


def _agrees(conn) -> bool:
    """The SQL-summed buckets of device 7's last two days equal wattprint.energy.integrate over its readings."""
    from wattprint.energy import integrate, times

    lo = END - timedelta(days=2)
    rows = conn.run("SELECT CAST(extract(epoch FROM ts) * 1000000 AS bigint), value FROM energy_readings "
                    "WHERE device_id = 7 AND ts >= :lo ORDER BY ts", lo=lo)
    out = integrate.buckets([integrate.Reading(ts, value) for ts, value in rows], 7200 * times.SECOND,
                            60 * times.SECOND)
    stored = conn.run("SELECT CAST(extract(epoch FROM bucket_start) * 1000000 AS bigint), kwh, covered_us, "
                      "estimated_us FROM energy_buckets WHERE device_id = 7 AND bucket_start >= :lo "
                      "ORDER BY bucket_start", lo=lo)
    return len(stored) == len(out) and all(
        abs(kwh - out[start].kwh) < 1e-9 and (covered, estimated) == (out[start].covered, out[start].estimated)
        for start, kwh, covered, estimated in stored)


def api_event(method: str, path: str, query: dict | None = None, body: str | None = None,
              scope: str = "read") -> dict:
    hdrs = {"Host": "local", "Authorization": "Bearer wp_bench_token", "Content-Type": "application/json"}
    query = {k: str(v) for k, v in (query or {}).items()}
    return {
        "resource": path, "path": path, "httpMethod": method,
        "headers": hdrs, "multiValueHeaders": {k: [v] for k, v in hdrs.items()},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} or None,
        "pathParameters": None, "stageVariables": None,
        "requestContext": {
            "accountId": "000000000000", "apiId": "local", "resourceId": "local", "stage": "v1",
            "resourcePath": path, "httpMethod": method, "path": f"/v1{path}",
            "requestId": str(uuid.uuid4()), "requestTimeEpoch": int(time.time() * 1000), "protocol": "HTTP/1.1",
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "bench"},
            "authorizer": {"principalId": "token:1", "scope": scope, "token_name": "bench"},
        },
        "body": body, "isBase64Encoded": False,
    }


def _time(functions, make, iterations: int) -> tuple[list[float], dict]:
    for i in range(10):  # warm: plans, prepared statements
        result = functions.invoke("EnergyFunction", make(i))
        if result["statusCode"] != 200:
            raise RuntimeError(f"{result}")
    samples = []
    for i in range(iterations):
        event = make(i)
        started = time.perf_counter()
        result = functions.invoke("EnergyFunction", event)
        samples.append(time.perf_counter() - started)
        if result["statusCode"] != 200:
            raise RuntimeError(f"{result}")
    return samples, json.loads(result["body"])


def _posts(functions, rng) -> tuple[float, float]:
    """readings/s of POST /energy with 1000 one-minute kW readings: appended after a device's last reading, and
    rewriting 1000 stored ones with new values (corrections: the general recompute)."""
    def body(device: int, start: datetime) -> str:
        return json.dumps({"device_id": device, "units": "kW", "data": [
            {"datetime": _iso(start + timedelta(minutes=m)), "value": round(rng.uniform(0, 3), 3)}
            for m in range(1000)]})

    rates = {}
    for kind in ("append", "correct"):
        samples = []
        for i in range(30):
            device = 1 + i % DEVICES
            if kind == "append":
                start = END + timedelta(minutes=1000 * (i // DEVICES))
            else:
                start = START + timedelta(days=rng.randrange(1, DAYS - 2))
            event = api_event("POST", "/energy", body=body(device, start), scope="ingest")
            started = time.perf_counter()
            result = functions.invoke("EnergyFunction", event)
            elapsed = time.perf_counter() - started
            if result["statusCode"] != 200:
                raise RuntimeError(f"{result}")
            if i >= 5:
                samples.append(1000 / elapsed)
        rates[kind] = statistics.median(samples)
    return rates["append"], rates["correct"]


def _feed_rate(advancing: bool, batches: int = 20) -> tuple[float, float]:
    """(events/s ingest stores in 500-event POST /events batches, events/s the feed function's entry then feeds
    them with), one database: the feed follows ingest, so it keeps up while the second is the larger. Not
    `advancing`: the real lines (one device, its clock repeating: a reading per request); `advancing`: generated
    lines whose clocks advance (a reading per event, over a few devices)."""
    from local import template
    from local.runtime import Functions
    from wattprint import settings
    from wattprint.energy import service

    from . import bench_ingest

    os.environ["CLUSTER_THRESHOLD"] = str(10**12)
    functions = Functions(template.load(ROOT / "template.yaml").functions)
    if advancing:
        from local import synth

        lines = synth.generate(500 * (batches + 5), seed=7)
    else:
        lines = bench_ingest._lines(500) * (batches + 5)
    bodies = ["\n".join(lines[i:i + 500]) for i in range(0, len(lines), 500)]
    with database(durable=False):
        for body in bodies[:5]:  # warm: imports, connection, plans
            functions.invoke("IngestFunction", bench_ingest._event(body))
        service.feed_new(settings.load())
        started = time.perf_counter()
        for body in bodies[5:]:
            assert functions.invoke("IngestFunction", bench_ingest._event(body))["statusCode"] == 201
        stored = time.perf_counter() - started
        started, fed = time.perf_counter(), 0
        while True:
            outcome = service.feed_new(settings.load())
            fed += outcome["fed"]
            if not outcome["more"]:
                break
        feeding = time.perf_counter() - started
    assert fed == 500 * batches, fed
    return 500 * batches / stored, fed / feeding


def run() -> dict:
    from local import template
    from local.runtime import Functions
    from wattprint import db

    rng = random.Random(20261205)
    with database(durable=False):
        conn = db.connect()
        setup = _setup(conn)
        agrees = _agrees(conn)
        conn.close()
        functions = Functions(template.load(ROOT / "template.yaml").functions)

        def week(_):
            start = START + timedelta(days=rng.randrange(0, DAYS - 7))
            return api_event("GET", "/energy", {"device_id": rng.randint(1, DEVICES), "start": _iso(start),
                                                "end": _iso(start + timedelta(days=7))})

        def fleet(_):
            start = START + timedelta(days=rng.randrange(0, DAYS))
            return api_event("GET", "/energy/fleet", {"start": _iso(start), "end": _iso(start + timedelta(days=1))})

        def top(_):
            return api_event("GET", "/energy/top", {"count": 10, "start": _iso(START), "end": _iso(END)})

        def forecast(_):
            return api_event("GET", "/energy/forecast", {"device_id": rng.randint(1, DEVICES), "start": _iso(END),
                                                         "end": _iso(END + timedelta(days=1))})

        cases = [("week", "GET /energy: one device, 7 days at 15 min (672 buckets)", week),
                 ("fleet", f"GET /energy/fleet: one day at 15 min ({DEVICES} devices)", fleet),
                 ("top", f"GET /energy/top?count=10 over {DAYS} days", top),
                 ("forecast", "GET /energy/forecast: one device, the next day", forecast)]
        rows, answers = [], {}
        for key, label, make in cases:
            samples, answers[key] = _time(functions, make, ITERATIONS)
            p50 = percentile(samples, 50) * 1000
            rows.append({"metric": f"{label}, p50 of {ITERATIONS}", "value": f"{p50:.2f} ms",
                         "target": f"≤ {TARGETS_MS[key]:.0f} ms", "met": p50 <= TARGETS_MS[key]})
        append, correct = _posts(functions, rng)
    rows.append({"metric": "POST /energy, 1000 one-minute kW readings appended (median of 25)",
                 "value": f"{append:,.0f} readings/s", "target": "≥ 20,000 readings/s", "met": append >= 20000})
    rows.append({"metric": "POST /energy, 1000 readings correcting stored ones (median of 25)",
                 "value": f"{correct:,.0f} readings/s", "target": "report", "met": None})
    # The feed runs after ingest's commit (the feed function): ingest's cost is one SQS send a second per instance
    # at most (none here: no queue); what matters is that the feed keeps up with what ingest stores.
    for advancing, what in ((False, "real lines: a repeating clock"), (True, "generated: advancing clocks")):
        rates = [_feed_rate(advancing) for _ in range(COST_REPEATS)]
        stored, fed = sorted(rates, key=lambda r: r[1] / r[0])[len(rates) // 2]
        rows.append({"metric": f"the feed function's entry over 10,000 stored events ({what}; 500 per request) / "
                               f"ingest storing them (median of {COST_REPEATS} runs)",
                     "value": f"{fed:,.0f} / {stored:,.0f} events/s ({fed / stored:.1f}×; runs "
                              f"{', '.join(f'{f / s_:.1f}×' for s_, f in rates)})",
                     "target": "≥ 1× (keeps up)", "met": fed >= stored})
    backtest = answers["forecast"]["backtest"]
    notes = (f"{setup['readings']:,} readings ({DEVICES} devices × {DAYS} days × 1440), {setup['buckets']:,} buckets; "
             f"setup: readings {setup['readings_s']:.0f} s, primary key {setup['index_s']:.0f} s, buckets and days "
             f"{setup['buckets_s']:.0f} s. SQL-summed buckets agree with wattprint.energy.integrate on device 7's last "
             f"two days: {'yes' if agrees else 'NO'}. A forecast's backtest on this synthetic load: MAE "
             f"{backtest['mae_kwh']:.4f} kWh per bucket, sMAPE {backtest['smape_percent']:.1f}% over "
             f"{backtest['weeks']} weeks.")
    return {"title": "Energy API (POST /energy, GET /energy …)", "rows": rows, "notes": notes}


if __name__ == "__main__":
    from . import common  # noqa: F401

    result = run()
    for row in result["rows"]:
        print(row)
    print(result["notes"])
