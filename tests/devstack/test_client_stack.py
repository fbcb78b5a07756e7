"""The sensor-side client (wattprint.client) against the local stack: batches, retries through a flaky network in
front of it, idempotency keys, refused lines, and the command line."""

import http.client
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from local import synth
from wattprint import client

ROOT = Path(__file__).resolve().parents[2]


class Flaky:
    """An HTTP hop in front of the stack that answers from a script before passing a request on: ("status", code,
    retry_after) answers that status itself, "drop" closes the connection unanswered, "pass" forwards it. It records
    every request's Idempotency-Key and number of lines."""

    def __init__(self, upstream_port: int, script=(), too_large_over: int | None = None):
        self.script, self.seen, self.too_large_over = list(script), [], too_large_over
        flaky = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                flaky.seen.append((self.headers.get("Idempotency-Key"), body.count(b"\n") + 1))
                step = flaky.script.pop(0) if flaky.script else "pass"
                if flaky.too_large_over and len(body) > flaky.too_large_over:
                    step = ("status", 413, None)
                if step == "drop":
                    self.close_connection = True
                    self.connection.close()
                    return
                if step == "pass":
                    upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=30)
                    upstream.request("POST", self.path, body=body, headers=dict(self.headers.items()))
                    reply = upstream.getresponse()
                    status, data = reply.status, reply.read()
                    after = reply.getheader("Retry-After")
                    headers = [("Retry-After", after)] if after else []
                    upstream.close()
                else:
                    _, status, retry_after = step
                    data = json.dumps({"error": {"code": "busy", "message": "try again"}}).encode()
                    headers = [("Retry-After", str(retry_after))] if retry_after is not None else []
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stack(monkeypatch, request):
    monkeypatch.setenv("CLUSTER_THRESHOLD", str(10**9))
    return request.getfixturevalue("local_stack")


def stored(stack) -> int:
    from wattprint import db

    return db.execute("SELECT total FROM event_counter")[0][0]


def test_batches_retries_and_one_key_per_batch(stack):
    lines = synth.generate(2500, seed=6)
    sizes = [len(batch) for batch in client.batches(lines)]  # as many as the limits need (bytes bind first here)
    assert len(sizes) >= 3
    flaky = Flaky(stack.port, script=[("status", 503, 0), ("status", 429, 0), "drop", "pass", ("status", 503, None)])
    pauses = []
    try:
        summary = client.send(lines, flaky.url, stack.info["tokens"]["ingest"], backoff=0.01, sleep=pauses.append)
    finally:
        flaky.close()
    assert (summary.sent, summary.batches, summary.retries, summary.total) == (2500, len(sizes), 4, 2500)
    assert stored(stack) == 2500  # each batch exactly once
    assert [n for _, n in flaky.seen] == [sizes[0]] * 4 + [sizes[1]] * 2 + sizes[2:]
    keys = [key for key, _ in flaky.seen]
    assert len(set(keys[:4])) == 1 and len(set(keys[4:6])) == 1  # the same key on every retry of a batch
    assert len(set(keys)) == len(sizes)  # and a new one for each batch
    assert pauses[:2] == [0, 0] and len(pauses) == 4  # Retry-After honoured; otherwise a jittered backoff


def test_a_batch_that_keeps_failing_stops_with_what_was_stored(stack):
    lines = synth.generate(1500, seed=7)
    first, second = [batch for batch in client.batches(lines)][:2]
    flaky = Flaky(stack.port, script=["pass"] + [("status", 503, 0)] * 3)
    try:
        with pytest.raises(client.SendError, match=f"gave up on lines {second[0][0]}–{second[-1][0]} after 3 "
                                                   "attempts: 503"):
            client.send(lines, flaky.url, stack.info["tokens"]["ingest"], attempts=3, sleep=lambda s: None)
    finally:
        flaky.close()
    assert stored(stack) == len(first)


def test_a_server_with_lower_limits_gets_halves(stack):
    flaky = Flaky(stack.port, too_large_over=100_000)
    try:
        summary = client.send(synth.generate(1000, seed=8), flaky.url, stack.info["tokens"]["ingest"])
    finally:
        flaky.close()
    assert summary.sent == 1000 and stored(stack) == 1000 and summary.batches > 1


def test_a_refused_line_is_named_by_its_number_in_the_input(stack):
    lines = synth.generate(500, seed=9)
    lines[319] = lines[319].replace("Active=", "Active=lots")  # line 320: the second batch's 20th
    token = stack.info["tokens"]["ingest"]
    with pytest.raises(client.SendError, match=r"line 320 \(active_power_w\).*300 events before"):
        client.send(lines, stack.info["url"], token, max_events=300)
    assert stored(stack) == 300  # the first batch; the second is all or nothing
    summary = client.send(lines[300:], stack.info["url"], token, max_events=300, skip_invalid=True)
    assert summary.sent == 199 and [n for n, _ in summary.skipped] == [20] and stored(stack) == 499


def test_a_bad_token_is_not_retried(stack):
    with pytest.raises(client.SendError, match="HTTP 401"):
        client.send(synth.generate(3, seed=1), stack.info["url"], "wp_nobody", sleep=pytest.fail)


def test_the_command_line_sends_a_file_and_stdin(stack, tmp_path):
    path = tmp_path / "events.txt"
    path.write_text("\n".join(synth.generate(1200, seed=10)) + "\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "layers" / "core")}
    command = [sys.executable, "-m", "wattprint.client", "send"]
    args = ["--url", stack.info["url"] + "/", "--token", stack.info["tokens"]["ingest"]]
    out = subprocess.run(command + [str(path)] + args, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    batches = len(list(client.batches(path.read_text().splitlines())))
    assert json.loads(out.stdout) == {"sent": 1200, "batches": batches, "retries": 0, "skipped": 0, "total": 1200}
    assert "100% 1,200/1,200 events" in out.stderr
    out = subprocess.run(command + ["-", "--no-progress", "--batch-events", "100"] + args, env=env,
                         input="\n".join(synth.generate(250, seed=11)), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stderr == "" and json.loads(out.stdout)["batches"] == 3
    assert stored(stack) == 1450
    missing = subprocess.run(command + [str(tmp_path / "nope.txt")] + args, env=env, capture_output=True, text=True)
    assert missing.returncode == 1 and "No such file" in missing.stderr
