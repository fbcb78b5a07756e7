"""ClusterScope=device at fleet size (issue 17): DEVICES devices × PER_DEVICE events posted concurrently, then every
run they open, each over its own device's events.

    python -m bench devices                        (or python -m bench.bench_devices)
    BENCH_DEVICES=100 BENCH_PER_DEVICE=3000 BENCH_POSTERS=8 BENCH_WORKERS=<cores>

In-process with the real handlers, no HTTP: POSTERS threads invoke the ingest function's handler with API Gateway
proxy events (text bodies of BATCH events, every device's batches interleaved, so every request races the others
for the event counter and the device counters), against a fresh embedded PostgreSQL (fsync off), with the runs'
messages sent to an in-process moto SQS queue. Then WORKERS processes, each loading the cluster function's
handler as a Lambda instance would, take the queue's messages one at a time (the template's BatchSize 1): in AWS
these are concurrent invocations of the cluster function, here at most one per core of this machine.

ClusterRuns = every, so that every threshold's run is done (with `latest`, a device's runs still pending when its
later threshold's run is waiting are superseded, by design). The events are resampled from the real sample file
with 2% noise (local.synth.iter_from_records), a seed per device. Checked at the end, in SQL: every run done, its
`events` = its threshold, and its labels exactly the device's events with device_seq ≤ threshold.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid

from .common import ROOT, database, median

REAL = ROOT.parent / "shared" / "data" / "sensor-events-1000.txt"
SAMPLE = json.loads((ROOT / "events" / "ingest-text.json").read_text())
THRESHOLD = 1000
BATCH = 500
QUEUE_ARN = "arn:aws:sqs:us-east-1:000000000000:cluster"


def _settings() -> tuple[int, int, int, int]:
    env = os.environ
    return (int(env.get("BENCH_DEVICES", "100")), int(env.get("BENCH_PER_DEVICE", "3000")),
            int(env.get("BENCH_POSTERS", "8")), int(env.get("BENCH_WORKERS", str(os.cpu_count() or 2))))


def _bodies(devices: int, per_device: int) -> list[str]:
    """Every request body, device batches interleaved (batch 1 of every device, then batch 2 …)."""
    from local import synth
    from wattprint.ingest import parser

    if REAL.exists():
        lines = REAL.read_text().splitlines()
    else:
        lines = synth.generate(1000, seed=1, dialect="firmware")
    sources = [record for _, _, record in parser.parse_lines("\n".join(lines))]
    per_device_bodies = []
    for device in range(1, devices + 1):
        rendered = [synth.render(dataclasses.replace(r, device_id=device))
                    for r in synth.iter_from_records(sources, per_device, seed=device, noise=0.02)]
        per_device_bodies.append(["\n".join(rendered[i:i + BATCH]) for i in range(0, per_device, BATCH)])
    return [bodies[k] for k in range(len(per_device_bodies[0])) for bodies in per_device_bodies]


def _post_all(functions, bodies: list[str], posters: int) -> float:
    todo = list(reversed(bodies))
    lock = threading.Lock()
    errors = []

    def poster():
        while True:
            with lock:
                if not todo:
                    return
                body = todo.pop()
            event = {**SAMPLE, "body": body,
                     "headers": {**SAMPLE.get("headers", {}), "Idempotency-Key": uuid.uuid4().hex}}
            result = functions.invoke("IngestFunction", event)
            if result["statusCode"] != 201:
                errors.append(result)

    started = time.perf_counter()
    threads = [threading.Thread(target=poster) for _ in range(posters)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise AssertionError(f"{len(errors)} requests refused, the first: {errors[0]}")
    return time.perf_counter() - started


def _worker() -> None:
    """One cluster function instance: an SQS body per stdin line in, one JSON line per invocation out."""
    from local import template
    from local.runtime import Functions
    from local.sqs import sqs_event

    # The handlers log and write metrics to stdout: answers go to the pipe stdout was, the rest to stderr.
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    functions = Functions(template.load(ROOT / "template.yaml").functions)
    functions.handler("ClusterFunction")  # the instance's init (numpy, scikit-learn), before its first message
    print(json.dumps({"ready": True}), file=answers, flush=True)
    for line in sys.stdin:
        body = line.strip()
        message = {"MessageId": str(uuid.uuid4()), "ReceiptHandle": uuid.uuid4().hex, "Body": body,
                   "MD5OfBody": hashlib.md5(body.encode()).hexdigest(),
                   "Attributes": {"ApproximateReceiveCount": "1"}}
        started = time.perf_counter()
        result = functions.invoke("ClusterFunction", sqs_event([message], QUEUE_ARN, "us-east-1"))
        print(json.dumps({"failures": len(result["batchItemFailures"]), "seconds": time.perf_counter() - started}),
              file=answers, flush=True)


def _cluster_all(bodies: list[str], workers: int) -> tuple[float, list[float], int]:
    """(wall seconds, each invocation's seconds, failures) with `workers` instances taking the messages in turn."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "core"), str(ROOT)])}
    log = open(tempfile.mkstemp(prefix="wattprint-bench-devices-", suffix=".log")[1], "w")  # the handlers' logs
    procs = [subprocess.Popen([sys.executable, "-m", "bench.bench_devices", "--worker"], cwd=ROOT, env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True)
             for _ in range(workers)]
    for proc in procs:  # their imports (numpy, scikit-learn) are a cold start, not part of the runs' time
        json.loads(proc.stdout.readline())
    todo = list(reversed(bodies))
    lock = threading.Lock()
    durations, failures, last = [], [0], []

    def feed(proc):
        while True:
            with lock:
                if not todo:
                    break
                body = todo.pop()
            proc.stdin.write(body + "\n")
            proc.stdin.flush()
            outcome = json.loads(proc.stdout.readline())
            with lock:
                durations.append(outcome["seconds"])
                failures[0] += outcome["failures"]
                last.append(time.perf_counter())
        proc.stdin.close()
        proc.wait()  # an interpreter's exit is not the runs' time: the wall time ends with the last answer

    started = time.perf_counter()
    threads = [threading.Thread(target=feed, args=(proc,)) for proc in procs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    return max(last) - started, durations, failures[0]


_CHECK = """
SELECT count(*),
       count(*) FILTER (WHERE status = 'done'),
       count(*) FILTER (WHERE status = 'done' AND events = threshold AND excluded = 0
                          AND (SELECT count(*) FROM event_labels l JOIN events e ON e.seq = l.seq
                               WHERE l.run_id = r.id AND e.device_id = r.device_id
                                 AND e.device_seq <= r.threshold) = r.threshold),
       count(DISTINCT device_id)
FROM clustering_runs r
"""


def _whole_set_fit(n: int) -> float:
    """Seconds to load and fit the fleet's events as one set, as ClusterScope=all's run at threshold n would (the
    same load and MeanShift call; its store is left out)."""
    from wattprint.clustering import fit, labels

    started = time.perf_counter()
    fit.fit(labels.load(n).data)
    return time.perf_counter() - started


def run() -> dict:
    import boto3
    from moto import mock_aws

    from local import template
    from local.runtime import Functions
    from wattprint import db

    devices, per_device, posters, workers = _settings()
    os.environ.update({"CLUSTER_SCOPE": "device", "CLUSTER_THRESHOLD": str(THRESHOLD), "CLUSTER_RUNS": "every",
                       "LABEL_RETENTION": "3", "AWS_DEFAULT_REGION": "us-east-1"})
    for name in ("LIVE_QUEUE_URL", "LIVE_WEBSOCKET_URL"):  # no dashboard: nothing to announce
        os.environ.pop(name, None)
    bodies = _bodies(devices, per_device)
    functions = Functions(template.load(ROOT / "template.yaml").functions)
    with database(durable=False), mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue = sqs.create_queue(QueueName="cluster")["QueueUrl"]
        os.environ["CLUSTER_QUEUE_URL"] = queue
        ingest_s = _post_all(functions, bodies, posters)
        messages = []
        while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
            messages += [m["Body"] for m in batch]
        cluster_s, durations, failures = _cluster_all(messages, workers)
        runs, done, exact, run_devices = db.execute(_CHECK)[0]
        stored = db.execute("SELECT total FROM event_counter")[0][0]
        whole_s = _whole_set_fit(stored)
    expected_runs = devices * (per_device // THRESHOLD)
    rate = len(durations) / cluster_s
    busy = sum(durations)
    rows = [
        {"metric": f"events posted ({devices} devices × {per_device}, {len(bodies)} requests of {BATCH}, "
                   f"{posters} posters at once)", "value": f"{stored:,} in {ingest_s:.1f} s "
                                                           f"({stored / ingest_s:,.0f} events/s)"},
        {"metric": "runs opened (messages) / done / each over exactly its device's events",
         "value": f"{len(messages)} / {done} / {exact} (of {runs} runs, {run_devices} devices)",
         "target": f"{expected_runs}, all done, all exact",
         "met": len(messages) == runs == done == exact == expected_runs and failures == 0},
        {"metric": f"clustering wall time, {workers} cluster instances at once (1 per core here)",
         "value": f"{cluster_s:.1f} s = {rate:.2f} runs/s"},
        {"metric": "one run (invocation), median / max", "value": f"{median(durations):.2f} s / "
                                                                 f"{max(durations):.2f} s"},
        {"metric": "runs in parallel (sum of invocation times / wall time)", "value": f"{busy / cluster_s:.2f} of "
                                                                                    f"{workers}"},
        {"metric": "posting to all runs done, wall time", "value": f"{ingest_s + cluster_s:.1f} s"},
        {"metric": f"for comparison, ClusterScope=all: the one run at {stored:,} events (load + fit, main process)",
         "value": f"{whole_s:.1f} s, {whole_s / median(durations):.0f}× a device's median run"},
    ]
    notes = ("In-process with the real handlers (ingest from threads, the cluster function in one process per "
             "instance), an embedded PostgreSQL and moto SQS on this machine; no HTTP. A device's run takes its "
             "own events only, so run T costs a T-event fit whatever the fleet's size: the runs' total work grows "
             "with devices × events per device, and their wall time shrinks with the cluster function's "
             "concurrency (the template's ClusterQueue event source allows 2 at once: raise MaximumConcurrency "
             "for a fleet). ClusterRuns = every, so every threshold's run is done.")
    return {"title": "Clustering per device (ClusterScope=device)", "rows": rows, "notes": notes}


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        _worker()
    else:
        print(json.dumps(run(), indent=2))
