"""A local stack killed right after a threshold finishes that run by itself once it is started again (issue 12 §5).

Each stack is a real `python -m local` process group, killed with SIGKILL as a closed laptop lid or `kill -9`
would: no handler gets to record anything. The first stack is made to stall where the run is at its most fragile
(its message received but not claimed, or claimed and mid-fit), so the kill always finds the run unfinished;
the second stack is the ordinary one.
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from local.pg import EmbeddedPostgres

ROOT = Path(__file__).resolve().parents[2]
# Pinned dev tokens, of the shape tokens.py makes ('wp_' and 43 URL-safe characters).
INGEST, READ = "wp_" + "restart-test-ingest".ljust(43, "0"), "wp_" + "restart-test-read".ljust(43, "0")
THRESHOLD = 200

# The first stack: `python -m local` with the clustering stalled forever at one point (test code, in the test).
STALLED = """
import sys, threading
from local import stack
from wattprint.clustering import fit, service
forever = threading.Event()
if sys.argv[1] == "claim":  # the message was received from the (in-memory) queue; the run is never claimed
    service.process_message = lambda *args, **kwargs: forever.wait()
else:  # claimed (running, leased for the function's 900 s and more), stalled in the fit
    fit.fit = lambda data, threads=1: forever.wait()
sys.exit(stack.main(sys.argv[2:]))
"""


def start(data_dir: Path, log: Path, stalled: str | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in (
        "DATABASE_URL", "DB_SCHEMA", "PGHOST", "CLUSTER_QUEUE_URL", "AWS_ENDPOINT_URL_SQS", "LIVE_QUEUE_URL",
        "LIVE_WEBSOCKET_URL", "LIVE_MANAGEMENT_ENDPOINT")}
    env.update(CLUSTER_THRESHOLD=str(THRESHOLD), WATTPRINT_INGEST_TOKEN=INGEST, WATTPRINT_READ_TOKEN=READ,
               PYTHONUNBUFFERED="1")
    args = ["--data-dir", str(data_dir), "--port", "0"]
    command = [sys.executable, "-c", STALLED, stalled, *args] if stalled else [sys.executable, "-m", "local", *args]
    with open(log, "ab") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def call(url: str, method: str = "GET", token: str = READ, body: bytes | None = None):
    request = urllib.request.Request(url, method=method, data=body, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "text/plain"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_for(what: str, condition, process: subprocess.Popen, log: Path, seconds: float = 120.0):
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds} s (stack exit {process.poll()})\n"
                                 + log.read_text(errors="replace")[-4000:])
        time.sleep(0.2)


def serving(data_dir: Path, process: subprocess.Popen):
    """The stack's URL once this process wrote its state file and answers /health."""
    def ready():
        try:
            info = json.loads((data_dir / "stack.json").read_text())
        except (OSError, ValueError):
            return None
        if info.get("pid") != process.pid:
            return None  # a killed predecessor's file
        try:
            with urllib.request.urlopen(info["url"] + "/health", timeout=5) as response:
                return info["url"] if response.status == 200 else None
        except OSError:
            return None
    return ready


def the_run(url: str):
    status, body = call(url + "/runs")
    assert status == 200, body
    return next((r for r in body["runs"] if r["threshold"] == THRESHOLD), None)


def kill_group(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(30)


@pytest.mark.slow
@pytest.mark.parametrize("stalled, left", [("claim", "pending"), ("fit", "running")])
def test_a_stack_killed_right_after_a_threshold_finishes_that_run_after_it_is_started_again(tmp_path, stalled, left):
    from local import synth

    data_dir, log = tmp_path / "local", tmp_path / "stack.log"
    first = start(data_dir, log, stalled)
    second = None
    try:
        url = wait_for("the first stack serves", serving(data_dir, first), first, log)
        lines = synth.generate(THRESHOLD, seed=12)
        assert call(url + "/events", "POST", INGEST, "\n".join(lines[:-1]).encode())[0] == 201
        status, stored = call(url + "/events", "POST", INGEST, lines[-1].encode())  # the 200th event
        assert (status, stored["total"]) == (201, THRESHOLD)
        run = wait_for(f"the run is {left}", lambda: (r := the_run(url)) and r["status"] == left and r, first, log)
        os.killpg(first.pid, signal.SIGKILL)  # abruptly, right after the threshold: nothing is recorded
        first.wait(30)

        second = start(data_dir, log)
        url = wait_for("the restarted stack serves", serving(data_dir, second), second, log)
        done = wait_for("the run is done", lambda: (r := the_run(url)) and r["status"] == "done" and r, second, log)
        assert (done["id"], done["events"], done["excluded"], done["error"]) == (run["id"], THRESHOLD, 0, None)
        # Its message was lost: never claimed (one attempt), or claimed by the killed stack (the second attempt).
        assert done["attempts"] == (1 if stalled == "claim" else 2)
        status, summary = call(url + "/clusters/summary")
        assert status == 200 and summary["run"]["id"] == run["id"] and summary["clusters"]
        assert summary["latest_run"]["status"] == "done"
        second.send_signal(signal.SIGINT)  # an orderly stop, as Ctrl-C: it stops the embedded PostgreSQL too
        try:
            assert second.wait(240) == 0  # generous: on a loaded machine its threads take a while to wind down
        except subprocess.TimeoutExpired:
            raise AssertionError("the restarted stack did not stop on SIGINT\n"
                                 + log.read_text(errors="replace")[-4000:]) from None
    finally:
        kill_group(first)
        if second is not None:
            kill_group(second)
        EmbeddedPostgres(data_dir / "pgdata", 0).stop()  # whatever a failed test left running
