"""POST /events against hostile and retried input (issue 12 §2-4): bodies the database cannot hold, gzip bodies and
bombs, idempotency keys. Real PostgreSQL, the real handler; requests go through the API Gateway stand-in or, where a
body must reach the handler still compressed, straight to the handler as API Gateway would invoke it."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import json
import threading
import tracemalloc
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local.apigw import Gateway
from local.synth import render
from wattprint import tokens
from wattprint.errors import InvalidBody, PayloadTooLarge
from wattprint.ingest import parser, store
from wattprint.ingest import service as ingest

from test_ingest import BASE, DOCUMENTED, counts, lines, sqs  # noqa: F401 - sqs is a fixture


@pytest.fixture
def gateway(app, functions, database, sqs):  # noqa: F811
    gw = Gateway(app, functions, workers=8)
    yield gw
    gw.close()


@pytest.fixture
def token(conn):
    return tokens.create(conn, "ingest", "sensor")[1]


@pytest.fixture
def post(gateway, token):
    def post(body, content_type="text/plain", headers=(), bearer=None):
        data = body.encode() if isinstance(body, str) else body
        reply = gateway.handle("POST", "/events", [("Authorization", f"Bearer {bearer or token}"),
                                                    ("Content-Type", content_type), *headers], data)
        return reply.status, json.loads(reply.body), dict(reply.headers)
    return post


@pytest.fixture
def invoke(functions, database, sqs):  # noqa: F811
    """The ingest handler called as API Gateway calls it, with a body that may be base64 (a binary media type)."""
    def invoke(body: bytes, headers: dict, b64: bool = True, principal: str = "token:1"):
        event = {"resource": "/events", "path": "/events", "httpMethod": "POST", "headers": headers,
                 "multiValueHeaders": {k: [v] for k, v in headers.items()},
                 "requestContext": {"resourcePath": "/events", "httpMethod": "POST", "stage": "v1",
                                    "requestId": "test", "authorizer": {"principalId": principal}},
                 "body": base64.b64encode(body).decode() if b64 else body.decode("utf-8", "surrogateescape"),
                 "isBase64Encoded": b64}
        result = functions.invoke("IngestFunction", event)
        return result["statusCode"], json.loads(result["body"]), result.get("headers") or {}
    return invoke


@pytest.fixture
def thousand(request):
    """1000 events of the real sensors' size: the real file, else rendered ones padded to its line length."""
    try:
        return request.getfixturevalue("real_lines")
    except pytest.skip.Exception:
        record = dataclasses.replace(BASE, firmware="16071801-" + "x" * 40)
        return [render(dataclasses.replace(record, active_power_w=float(i)), "firmware") for i in range(1000)]


# --- §4: size limits and gzip ------------------------------------------------------------------------------------

def test_the_readmes_real_file_fits_in_one_request(post, conn, thousand):
    body = "\n".join(thousand) + "\n"
    assert len(body.encode()) > 256 * 1024  # over the old limit
    status, answer, _ = post(body)
    assert (status, answer["count"], answer["total"]) == (201, 1000, 1000)
    assert counts(conn) == [1000, 1000, 1]


def test_a_gzip_body_is_inflated_and_the_limit_counts_its_inflated_size(invoke, conn, thousand):
    body = ("\n".join(thousand) + "\n").encode()
    status, answer, _ = invoke(gzip.compress(body), {"Content-Type": "text/plain", "Content-Encoding": "gzip"})
    assert (status, answer["count"]) == (201, 1000)
    # Two members (what `cat a.gz b.gz` makes) are one body.
    halves = gzip.compress(body[:len(body) // 2]) + gzip.compress(body[len(body) // 2:])
    status, answer, _ = invoke(halves, {"Content-Type": "text/plain", "Content-Encoding": "GZIP"})
    assert (status, answer["count"], answer["total"]) == (201, 1000, 2000)
    # Small compressed, too large inflated.
    big = gzip.compress(b"\n" * (ingest.MAX_BODY_BYTES + 1))
    assert len(big) < 10_000
    status, answer, _ = invoke(big, {"Content-Type": "text/plain", "Content-Encoding": "gzip"})
    assert (status, answer["error"]["code"]) == (413, "payload_too_large")
    assert counts(conn) == [2000, 2000, 2]


def _bomb(members: int, member_size: int) -> bytes:
    return gzip.compress(b"\0" * member_size, 9) * members


def test_a_gzip_bomb_is_refused_without_inflating_it():
    """1 GiB of zeros in 1024 gzip members (~1 MB) and 64 MiB in one member (~64 KB): each is refused after at most
    the limit's worth of output, in bounded memory."""
    for bomb, inflated in ((_bomb(1024, 1 << 20), 1 << 30), (_bomb(1, 64 << 20), 64 << 20)):
        assert inflated > 50 * ingest.MAX_BODY_BYTES
        tracemalloc.start()
        try:
            with pytest.raises(PayloadTooLarge, match="once inflated"):
                ingest.decode_body(bomb, "gzip")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 4 * ingest.MAX_BODY_BYTES, peak


@pytest.mark.parametrize("name, body, message", [
    ("truncated", gzip.compress(DOCUMENTED.encode())[:-12], "ends before"),
    ("bad checksum", gzip.compress(DOCUMENTED.encode())[:-8] + b"\0\0\0\0" + gzip.compress(b"")[-4:], "not valid gzip"),
    ("corrupt data", gzip.compress(DOCUMENTED.encode())[:12] + b"\xff" * 40, "not valid gzip"),
    ("trailing garbage", gzip.compress(DOCUMENTED.encode()) + b"garbage", "after the last gzip member"),
    ("header only", b"\x1f\x8b", "ends before"),
])
def test_bad_gzip_is_400(invoke, conn, name, body, message):
    status, answer, _ = invoke(body, {"Content-Type": "text/plain", "Content-Encoding": "gzip"})
    assert (status, answer["error"]["code"]) == (400, "invalid_body"), answer
    assert message.split()[-1] in answer["error"]["message"]
    assert counts(conn) == [0, 0, 0]


def test_other_encodings_bodies_and_base64(invoke, conn):
    headers = {"Content-Type": "text/plain"}
    status, answer, _ = invoke(DOCUMENTED.encode(), {**headers, "Content-Encoding": "br"})
    assert (status, answer["error"]["code"]) == (415, "unsupported_content_encoding")
    status, answer, _ = invoke(DOCUMENTED.encode("utf-16"), headers)
    assert (status, answer["error"]["code"]) == (400, "invalid_body") and "UTF-8" in answer["error"]["message"]
    event_body = "not base64!"
    status, answer, _ = invoke(event_body.encode(), headers, b64=False)  # plain text that is not an event
    assert status == 400 and answer["error"]["code"] == "invalid_event"
    # Marked base64 but is not:
    from wattprint import http
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
    with pytest.raises(InvalidBody, match="base64"):
        http.raw_body(APIGatewayProxyEvent({"body": "a$b", "isBase64Encoded": True}))
    # A gzip-labelled body that API Gateway already inflated (it keeps the header) is taken as it is.
    status, answer, _ = invoke(DOCUMENTED.encode(), {**headers, "Content-Encoding": "gzip"}, b64=False)
    assert (status, answer["count"]) == (201, 1)
    assert counts(conn) == [1, 1, 0]


# --- §2: what the database cannot hold ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, body, content_type, field", [
    ("1e160 W", DOCUMENTED.replace("Active=289W", "Active=1e160W"), "text/plain", "active_power_w"),
    ("1e150 W", DOCUMENTED.replace("Active=289W", "Active=1e150W"), "text/plain", "active_power_w"),
    ("ID over int32", DOCUMENTED.replace("ID=10", "ID=1099511627776"), "text/plain", "device_id"),
    ("NUL in the firmware", DOCUMENTED.replace("Fw=16071801", "Fw=1607\x001801"), "text/plain", None),
    ("NUL at the end", DOCUMENTED + "\x00", "text/plain", None),
    ("escape in a number", DOCUMENTED.replace("hz: 49.87", "hz: 49.87\x1b"), "text/plain", None),
    ("JSON ID over int32", json.dumps({**BASE.to_json(), "device_id": 2 ** 40}), "application/json", "device_id"),
    ("JSON NUL in the firmware", json.dumps({**BASE.to_json(), "firmware": "a\u0000b"}), "application/json",
     "firmware"),
    ("JSON huge float", json.dumps({**BASE.to_json(), "voltage_v": 1e300}), "application/json", "voltage_v"),
])
def test_values_the_database_cannot_hold_are_400_naming_line_and_field(post, conn, name, body, content_type, field):
    good = lines(2)
    payload = "\n".join([good[0], body, good[1]]) if content_type == "text/plain" else \
        json.dumps([BASE.to_json(), json.loads(body)])
    status, answer, _ = post(payload, content_type)
    assert (status, answer["error"]["code"], answer["error"]["line"]) == (400, "invalid_event", 2), answer
    assert answer["error"]["field"] == field
    assert counts(conn) == [0, 0, 0]


@pytest.mark.parametrize("depth", [1000, 100_000])
def test_deeply_nested_json_is_400(post, conn, depth):
    for doc in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
        status, answer, _ = post(doc, "application/json")
        assert (status, answer["error"]["code"]) == (400, "invalid_event"), answer
    assert counts(conn) == [0, 0, 0]


def test_any_data_exception_from_the_database_is_400_and_stores_nothing(post, conn, monkeypatch):
    """A value the parsers let through but PostgreSQL refuses (here a NUL the parsers would have refused, put in
    behind their back) is a 400, whichever way the events travel."""
    real_parse = ingest.parse_body

    def smuggle(body, content_type):
        return [(raw, dataclasses.replace(r, firmware="bad\x00")) for raw, r in real_parse(body, content_type)]

    monkeypatch.setattr(ingest, "parse_body", smuggle)
    for n in (1, store.COPY_FROM + 1):  # one JSON statement, then the binary COPY
        status, answer, _ = post("\n".join(lines(n)), headers=[("Idempotency-Key", f"k{n}")])
        assert (status, answer["error"]["code"]) == (400, "invalid_value"), answer
    assert counts(conn) == [0, 0, 0]
    assert conn.run("SELECT count(*) FROM idempotency_keys") == [[0]]


# Mutations of a valid line: a character inserted (controls, digits, separators, letters), one dropped, or a number
# swapped for an extreme one.
EXTREMES = ["1e308", "-1e308", "1e160", "1099511627776", "-2147483649", "9" * 400, "nan", "-0", "0x10", "1_0",
            "\u0661", "", "1e-400"]
text_mutation = st.tuples(st.integers(min_value=0, max_value=600), st.sampled_from(["insert", "drop", "number"]),
                          st.sampled_from(list("\x00\x01\x0b\x1f\x7f\x85\u200b;:=,.-+e9 \tWAV\r") + EXTREMES))


def _mutate_line(line: str, mutations) -> str:
    for at, kind, what in mutations:
        at %= len(line) + 1
        if kind == "insert":
            line = line[:at] + what + line[at:]
        elif kind == "drop":
            line = line[:at] + line[at + 1:]
        else:  # the number around position `at`, replaced
            start = at
            while start > 0 and line[start - 1] in "0123456789.-":
                start -= 1
            end = at
            while end < len(line) and line[end] in "0123456789.-":
                end += 1
            line = line[:start] + what + line[end:]
    return line


json_value = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2 ** 70), max_value=2 ** 70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=10)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_lines_and_records_are_201_or_4xx_and_never_half_stored(post, conn, data):
    if data.draw(st.booleans(), "text?"):
        good = lines(data.draw(st.integers(min_value=1, max_value=store.COPY_FROM + 3), "events"),
                     dialect=data.draw(st.sampled_from(parser.DIALECTS), "dialect"))
        victim = data.draw(st.integers(min_value=0, max_value=len(good) - 1), "victim")
        good[victim] = _mutate_line(good[victim], data.draw(st.lists(text_mutation, min_size=1, max_size=3)))
        body, content_type, n = "\n".join(good), "text/plain", sum(1 for g in good if g.strip())
    else:
        records = [BASE.to_json() for _ in range(data.draw(st.integers(min_value=1, max_value=store.COPY_FROM + 3)))]
        victim = records[data.draw(st.integers(min_value=0, max_value=len(records) - 1), "victim")]
        field = data.draw(st.sampled_from(sorted(victim)), "field")
        victim[field] = data.draw(json_value, "value")
        body, content_type, n = json.dumps(records), "application/json", len(records)
    before = counts(conn)
    status, answer, _ = post(body, content_type)
    after = counts(conn)
    assert status == 201 or 400 <= status < 500, (status, answer)
    if status == 201:
        assert after[0] == before[0] + n == answer["total"] and after[1] == after[0]
    else:
        assert after == before and set(answer["error"]) >= {"code", "message"}


# --- §3: idempotency keys ----------------------------------------------------------------------------------------

def test_a_retry_with_the_same_key_and_body_gets_the_first_answer_and_stores_nothing(post, conn):
    body = "\n".join(lines(20))
    first = post(body, headers=[("Idempotency-Key", "batch-0001")])
    assert first[0] == 201 and "Idempotent-Replayed" not in first[2]
    again = post(body, headers=[("Idempotency-Key", "batch-0001")])
    assert again[0] == 201 and again[1] == first[1] and again[2]["Idempotent-Replayed"] == "true"
    assert counts(conn) == [20, 20, 0]
    # The same body compressed is the same body; a later request without a key is new events.
    assert post(gzip.compress(body.encode()), headers=[("Idempotency-Key", "batch-0001"),
                                                       ("Content-Encoding", "gzip")])[1] == first[1]
    assert post(body)[1]["total"] == 40
    assert counts(conn) == [40, 40, 0]


def test_the_same_key_with_another_body_is_422(post, conn):
    assert post("\n".join(lines(3)), headers=[("Idempotency-Key", "k-1")])[0] == 201
    status, answer, _ = post("\n".join(lines(3, 100)), headers=[("Idempotency-Key", "k-1")])
    assert (status, answer["error"]["code"]) == (422, "idempotency_key_reused")
    assert "k-1" in answer["error"]["message"]
    assert counts(conn) == [3, 3, 0]


def test_keys_are_per_client(post, conn):
    _, other = tokens.create(conn, "ingest", "sensor-2")
    body = "\n".join(lines(2))
    a = post(body, headers=[("Idempotency-Key", "same")])[1]
    b = post(body, headers=[("Idempotency-Key", "same")], bearer=other)[1]
    assert a["ids"] != b["ids"] and b["total"] == 4


@pytest.mark.parametrize("key", ["", "x" * 256, "naïve", "two words", "tab\there"])
def test_a_malformed_key_is_400(post, conn, key):
    status, answer, _ = post(DOCUMENTED, headers=[("Idempotency-Key", key)])
    assert (status, answer["error"]["code"]) == (400, "invalid_idempotency_key")
    assert counts(conn) == [0, 0, 0]


def test_keys_expire_and_are_purged(post, conn):
    body = "\n".join(lines(2))
    assert post(body, headers=[("Idempotency-Key", "old")])[1]["total"] == 2
    assert post(body, headers=[("Idempotency-Key", "young")])[1]["total"] == 4
    conn.run("UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'old'")
    # Past its time a key is new again (its row taken over), and so is any body with it.
    status, answer, _ = post("\n".join(lines(1)), headers=[("Idempotency-Key", "old")])
    assert (status, answer["total"]) == (201, 5)
    assert post("\n".join(lines(1)), headers=[("Idempotency-Key", "old")])[1] == answer  # and answered once again
    conn.run("UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'young'")
    assert ingest.purge_idempotency_keys() == 1
    assert conn.run("SELECT key FROM idempotency_keys") == [["old"]]


def test_concurrent_first_requests_with_one_key_store_once(post, conn, sqs, monkeypatch):  # noqa: F811
    monkeypatch.setenv("CLUSTER_THRESHOLD", "30")
    body = "\n".join(lines(30))  # a batch that also opens a run: it must open it once
    start, answers = threading.Barrier(8), []

    def client():
        start.wait()
        answers.append(post(body, headers=[("Idempotency-Key", "race")]))

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a[0] for a in answers] == [201] * 8
    assert len({json.dumps(a[1]) for a in answers}) == 1
    assert sum(a[2].get("Idempotent-Replayed") == "true" for a in answers) == 7
    assert counts(conn) == [30, 30, 1]


def test_the_gateway_stand_in_inflates_gzip_as_api_gateway_does(post, conn):
    """API Gateway inflates a gzip request itself (header kept), answers 415 for a body that is not the gzip it says
    and 413 past its 10 MB: the stand-in does the same, bounded like the handler."""
    gz = [("Content-Encoding", "gzip")]
    status, answer, _ = post(gzip.compress("\n".join(lines(3)).encode()), headers=gz)
    assert (status, answer["count"]) == (201, 3)
    status, answer, _ = post(gzip.compress(DOCUMENTED.encode())[:-5], headers=gz)
    assert (status, answer) == (415, {"error": {"code": "invalid_body", "message": "Unsupported Media Type"}})
    status, answer, _ = post(_bomb(1024, 1 << 20), headers=gz)
    assert status == 413
    assert counts(conn) == [3, 3, 0]


def test_a_statement_over_its_timeout_is_503_and_stores_nothing(post, conn, monkeypatch):
    """The ingest function's statements are bounded (DB_STATEMENT_TIMEOUT) so that a request blocked in the database
    ends as a 503 the client retries, not as a Lambda killed at its timeout while it might still commit."""
    from wattprint import db

    monkeypatch.setenv("DB_STATEMENT_TIMEOUT", "0.3")
    db.reset()
    blocker = db.connect()
    blocker.run("BEGIN")
    blocker.run("UPDATE event_counter SET total = total")  # holds the counter's row lock
    try:
        status, answer, headers = post("\n".join(lines(2)), headers=[("Idempotency-Key", "blocked")])
        assert (status, answer["error"]["code"], headers["Retry-After"]) == (503, "database_unavailable", "5")
    finally:
        blocker.run("ROLLBACK")
        blocker.close()
    assert counts(conn) == [0, 0, 0]
    status, answer, _ = post("\n".join(lines(2)), headers=[("Idempotency-Key", "blocked")])  # the retry
    assert (status, answer["total"]) == (201, 2)
