"""Issue 12's done-when for input: a hostile set of requests through the running local stack (real HTTP, the gateway
stand-in, the authorizer, the handler, PostgreSQL) gets only 4xx answers and stores nothing; 1000 good events posted
afterwards, gzip-compressed and with an idempotency key, still give a `done` clustering run."""

from __future__ import annotations

import gzip
import http.client
import json
import time
from urllib.parse import urlsplit

import pytest

from local import synth

DOC = ("Device: ID=10; Fw=16071801; Evt=2; Alarms: CoilReversed=OFF; Power: Active=289W; Reactive=279var; "
       "Apparent=403VA; Line: Current=1.75A; Voltage=230.08V; Phase=-43,841rad; Peaks: 1041.000; 1051.000; "
       "1058.000; 1051.000; 1049.000; 1047.000; 1054.000; 1059.000; 1057.000; 1060.000; FFT Re: -257863.00; "
       "102815.00; -64043.00; 48516.00; 59599.00; -4223.00; -43441.00; 23559.00; -24518.00; FFT Img: "
       "481910.00; -14891.00; 69871.00; -7130.00; 43860.00; 34204.00; 55951.00; -6945.00; 26131.00; "
       "UTC Time: 2016-10-4 16:47:50; hz: 49.87; WiFi Strength: -62; Dummy: 20")


def request(stack, method, path, body=b"", headers=None, token="ingest"):
    url = urlsplit(stack.info["url"])
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    all_headers = {"Content-Type": "text/plain", **(headers or {})}
    if token in ("ingest", "read"):
        all_headers["Authorization"] = f"Bearer {stack.info['tokens'][token]}"
    elif token is not None:
        all_headers["Authorization"] = token
    try:
        conn.request(method, path, body=body, headers=all_headers)
        reply = conn.getresponse()
        return reply.status, reply.read()
    finally:
        conn.close()


def hostile(good_json):
    deep = "[" * 50_000 + "]" * 50_000
    bomb = gzip.compress(b"\0" * (1 << 20), 9) * 64  # 64 MiB inflated from ~64 KB
    return {
        "1e160 W": DOC.replace("Active=289W", "Active=1e160W").encode(),
        "1e150 W": DOC.replace("Active=289W", "Active=1e150W").encode(),
        "negative apparent power": DOC.replace("Apparent=403VA", "Apparent=-403VA").encode(),
        "a year 1970 clock": DOC.replace("2016-10-4", "1970-1-1").encode(),
        "4000 peaks": DOC.replace("Peaks: ", "Peaks: " + "1; " * 4000).encode(),
        "ID over int32": DOC.replace("ID=10", "ID=1099511627776").encode(),
        "Dummy of 5000 digits": DOC.replace("Dummy: 20", "Dummy: " + "9" * 5000).encode(),
        "NUL": DOC.replace("Fw=16071801", "Fw=1607\x001801").encode(),
        "escape at the end": (DOC + "\x1b[2J").encode(),
        "JSON NUL": json.dumps({**good_json, "firmware": "a\u0000"}).encode(),
        "JSON 2**63": json.dumps({**good_json, "dummy": 2 ** 63}).encode(),
        "deep JSON": deep.encode(),
        "oversize": (DOC + "\n") * 2400,
        "gzip bomb": bomb,
        "bad gzip": gzip.compress(DOC.encode())[:-9],
        "not UTF-8": DOC.encode("utf-16"),
    }


@pytest.mark.slow
def test_hostile_input_gets_only_4xx_and_stores_nothing_then_1000_events_still_cluster(local_stack):
    stack = local_stack
    good_json = synth.generate_records(1, seed=9)[0].to_json()
    answers = {}
    for name, body in hostile(good_json).items():
        body = body.encode() if isinstance(body, str) else body
        headers = {}
        if name.startswith("JSON") or name == "deep JSON":
            headers["Content-Type"] = "application/json"
        if "gzip" in name:
            headers["Content-Encoding"] = "gzip"
        answers[name] = request(stack, "POST", "/events", body, headers)
    for token in ("Bearer ", "Bearer wp_" + "A" * 5000, "Basic dXNlcjpwYXNz", "Bearer ' OR 1=1 --", "bearer",
                  "Bearer " + stack.info["tokens"]["read"]):
        answers[f"token {token[:20]!r}"] = request(stack, "POST", "/events", DOC.encode(), token=token)
    answers["no token"] = request(stack, "POST", "/events", DOC.encode(), token=None)
    status, _ = request(stack, "POST", "/events", DOC.encode(), {"Idempotency-Key": "first"})
    assert status == 201  # one good event, so that a reused key has something to conflict with
    answers["key reused"] = request(stack, "POST", "/events", (DOC + "\n" + DOC).encode(), {"Idempotency-Key": "first"})
    answers["malformed key"] = request(stack, "POST", "/events", DOC.encode(), {"Idempotency-Key": "x" * 300})

    bad = {name: (status, body[:200]) for name, (status, body) in answers.items() if not 400 <= status < 500}
    assert bad == {}
    for name, (status, body) in answers.items():
        if name.startswith("token") or name == "no token":
            continue
        error = json.loads(body)["error"]
        assert error["code"] and error["message"], name
    status, body = request(stack, "GET", "/events?limit=10", token="read")
    assert status == 200 and len(json.loads(body)["items"]) == 1  # only the one good event

    # 999 more, gzip-compressed, sent twice with one key (a retry after a lost answer): stored once, the run done.
    lines = "\n".join(synth.generate(999, seed=4)).encode()
    headers = {"Content-Encoding": "gzip", "Idempotency-Key": "batch-1"}
    first = request(stack, "POST", "/events", gzip.compress(lines), headers)
    again = request(stack, "POST", "/events", gzip.compress(lines), headers)
    assert first[0] == again[0] == 201 and json.loads(first[1]) == json.loads(again[1])
    assert json.loads(first[1])["total"] == 1000
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        status, body = request(stack, "GET", "/runs", token="read")
        runs = json.loads(body)["runs"]
        if runs and runs[0]["status"] in ("done", "failed"):
            break
        time.sleep(1)
    assert [(r["threshold"], r["status"], r["events"]) for r in runs] == [(1000, "done", 1000)], runs
