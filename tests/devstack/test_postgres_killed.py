"""kill -9 of PostgreSQL's postmaster while sensors post through the local stack: every answer is 201 or 503 (no
500, no hang), the server comes back on restart, and every event that got a 201 is stored exactly once."""

import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from local import synth
from local.pg import alive, postmaster_pid
from wattprint import db

POSTERS = 6
PER_REQUEST = 5
ANSWER_TIMEOUT = 60  # seconds: a request still unanswered by then counts as a hang


def post(url, token, lines):
    request = urllib.request.Request(url, data="\n".join(lines).encode(), method="POST", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "text/plain"})
    try:
        with urllib.request.urlopen(request, timeout=ANSWER_TIMEOUT) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null"), dict(error.headers)
    except TimeoutError:
        return "hang", None, {}


def restart(pg, seconds=90):
    """Start the killed server again: its orphaned backends may hold the shared memory for a moment."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            pg.start()
            return
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.fixture
def stack(monkeypatch, request):
    monkeypatch.setenv("CLUSTER_THRESHOLD", "100000")  # no clustering run: this is about ingest alone
    return request.getfixturevalue("local_stack")


def test_kill_9_of_postgres_during_ingest_gives_503s_and_keeps_every_acknowledged_event_once(stack):
    url, token = stack.info["url"] + "/events", stack.info["tokens"]["ingest"]
    pg = next(thing for kind, thing in stack.started if kind == "postgres")
    lines = synth.generate(120 * PER_REQUEST, seed=12)
    assert len(set(lines)) == len(lines)  # each stored row can be traced to its line
    batches = [lines[i:i + PER_REQUEST] for i in range(0, len(lines), PER_REQUEST)]
    before, during, after = batches[:60], batches[60:80], batches[80:]
    answers: dict[int, tuple] = {}
    lock = threading.Lock()

    def send(index):
        answer = post(url, token, batches[index])
        with lock:
            answers[index] = answer

    server = postmaster_pid(pg.datadir)
    with ThreadPoolExecutor(POSTERS) as pool:
        # Mid-stream: the kill lands while requests of the first part are in flight.
        futures = [pool.submit(send, i) for i in range(len(before))]
        while sum(1 for f in futures if f.done()) < 20:
            time.sleep(0.005)
        os.kill(server, signal.SIGKILL)
        answered_before_the_kill = sum(1 for f in futures if f.done())
        for f in futures:
            f.result()
        assert answered_before_the_kill < len(before) and not alive(server)
        # While it is down: every request is answered, 503 with Retry-After.
        list(pool.map(send, range(len(before), len(before) + len(during))))
        restart(pg)
        list(pool.map(send, range(len(before) + len(during), len(batches))))

    statuses = {index: answer[0] for index, answer in answers.items()}
    assert len(statuses) == len(batches)
    assert set(statuses.values()) <= {201, 503}, sorted(set(map(str, statuses.values())))
    for index in range(len(before), len(before) + len(during)):
        status, body, headers = answers[index]
        assert status == 503 and body["error"]["code"] == "database_unavailable" and int(headers["Retry-After"]) > 0
    assert all(statuses[i] == 201 for i in range(len(before) + len(during), len(batches)))  # back by itself
    print("answers to the requests in flight at the kill:",
          {s: [statuses[i] for i in range(len(before))].count(s) for s in (201, 503)})

    acknowledged = [line for i, status in statuses.items() if status == 201 for line in batches[i]]
    refused = [line for i, status in statuses.items() if status == 503 for line in batches[i]]
    conn = db.connect()
    stored = dict(conn.run("SELECT raw, count(*) FROM events GROUP BY raw"))
    assert all(stored.get(line) == 1 for line in acknowledged)
    # A 503 may come after a commit whose answer was lost with the connection (in doubt): stored once at most.
    assert all(stored.get(line, 0) <= 1 for line in refused)
    assert set(stored) <= set(acknowledged) | set(refused)
    # Numbering stayed gapless across the crash: seq 1..N, the counter at N.
    (count, highest, total), = conn.run("SELECT count(*), max(seq), (SELECT total FROM event_counter) FROM events")
    conn.close()
    assert count == highest == total == sum(stored.values())
