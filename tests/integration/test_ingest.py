"""POST /events through the local API Gateway stand-in, the real authorizer and handler, and PostgreSQL."""

import dataclasses
import json
import math
import threading

import boto3
import pytest
from moto import mock_aws

from local.apigw import Gateway
from local.pg import free_port
from local import synth
from wattprint import db, tokens
from wattprint.ingest import outbox, parser, store

DOCUMENTED = (
    "Device: ID=10; Fw=16071801; Evt=2; Alarms: CoilReversed=OFF; Power: Active=289W; Reactive=279var; "
    "Apparent=403VA; Line: Current=1.75A; Voltage=230.08V; Phase=-43,841rad; Peaks: 1041.000; 1051.000; "
    "1058.000; 1051.000; 1049.000; 1047.000; 1054.000; 1059.000; 1057.000; 1060.000; FFT Re: -257863.00; "
    "102815.00; -64043.00; 48516.00; 59599.00; -4223.00; -43441.00; 23559.00; -24518.00; FFT Img: "
    "481910.00; -14891.00; 69871.00; -7130.00; 43860.00; 34204.00; 55951.00; -6945.00; 26131.00; "
    "UTC Time: 2016-10-4 16:47:50; hz: 49.87; WiFi Strength: -62; Dummy: 20")
BASE = parser.parse_event(DOCUMENTED)


def lines(n, start=0, dialect="firmware"):
    return [synth.render(dataclasses.replace(BASE, active_power_w=float(start + i)), dialect) for i in range(n)]


@pytest.fixture
def sqs(monkeypatch):
    with mock_aws():
        client = boto3.client("sqs", region_name="us-east-1")
        url = client.create_queue(QueueName="cluster")["QueueUrl"]
        monkeypatch.setenv("CLUSTER_QUEUE_URL", url)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        yield client, url


def messages(client, url):
    found = []
    while batch := client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        found += [json.loads(m["Body"]) for m in batch]
    return found


@pytest.fixture
def post(app, functions, database, conn, sqs):
    gateway = Gateway(app, functions, workers=8)
    _, token = tokens.create(conn, "ingest", "sensor")

    def post(body, content_type="text/plain", headers=()):
        data = body.encode() if isinstance(body, str) else body
        reply = gateway.handle("POST", "/events", [("Authorization", f"Bearer {token}"),
                                                    ("Content-Type", content_type), *headers], data)
        return reply.status, json.loads(reply.body), dict(reply.headers)

    yield post
    gateway.close()


def counts(conn):
    return conn.run("SELECT (SELECT count(*) FROM events), (SELECT total FROM event_counter), "
                    "(SELECT count(*) FROM clustering_runs)")[0]


def test_single_event_is_stored_as_the_canonical_record(post, conn):
    status, body, _ = post(DOCUMENTED)
    assert status == 201 and body["count"] == 1 and body["total"] == 1 and len(body["ids"]) == 1
    row = conn.run("SELECT seq, device_id, active_power_w, phase_rad, peaks[2], sensor_time, raw, "
                   "cardinality(fft_img) FROM events WHERE id = :id", id=body["ids"][0])[0]
    assert row[:5] == [1, 10, 289.0, -43.841, 1051.0]
    assert row[5].isoformat() == "2016-10-04T16:47:50+00:00"
    assert row[6] == DOCUMENTED and row[7] == 9


def test_real_file_is_stored_in_order(post, conn, real_lines):
    for start in range(0, 1000, 250):
        status, body, _ = post("\r\n".join(real_lines[start:start + 250]) + "\r\n")
        assert status == 201, body
    assert counts(conn) == [1000, 1000, 1]
    first = conn.run("SELECT active_power_w, current_a, peaks[2], raw FROM events WHERE seq = 1")[0]
    assert first == [1753.0, 7.35900021, 7.311999799999999, real_lines[0]]


def test_json_records_single_and_list(post, conn):
    record = BASE.to_json()
    assert post(json.dumps(record), "application/json")[0] == 201
    status, body, _ = post(json.dumps([record, {**record, "active_power_w": 5.5}]), "application/json; charset=utf-8")
    assert (status, body["count"], body["total"]) == (201, 2, 3)
    assert conn.run("SELECT active_power_w FROM events ORDER BY seq") == [[289.0], [289.0], [5.5]]


REJECTIONS = [
    ("missing section", DOCUMENTED.replace("Power: ", ""), None),
    ("missing field", DOCUMENTED.replace(" Reactive=279var;", ""), "reactive_power_var"),
    ("not a number", DOCUMENTED.replace("Active=289W", "Active=abcW"), "active_power_w"),
    ("nan", DOCUMENTED.replace("Voltage=230.08V", "Voltage=nanV"), "voltage_v"),
    ("infinity", DOCUMENTED.replace("hz: 49.87", "hz: inf"), "frequency_hz"),
    ("impossible date", DOCUMENTED.replace("2016-10-4", "2016-2-30"), "sensor_time"),
    ("too few peaks", DOCUMENTED.replace("Peaks: 1041.000; 1051.000; 1058.000; 1051.000; 1049.000; 1047.000; "
                                         "1054.000; 1059.000; 1057.000; 1060.000;", "Peaks: 1041.000; 1051.000;"),
     "peaks"),
    ("unequal fft", DOCUMENTED.replace("FFT Img: 481910.00; ", "FFT Img: "), "fft_img"),
    ("duplicate key", DOCUMENTED.replace("Active=289W;", "Active=289W; Active=290W;"), "active_power_w"),
    ("trailing garbage", DOCUMENTED + "; junk", None),
]


@pytest.mark.parametrize("name,bad,field", REJECTIONS, ids=[r[0] for r in REJECTIONS])
def test_rejection_names_line_and_field_and_stores_nothing(post, conn, name, bad, field):
    good = lines(3)
    status, body, _ = post("\n".join([good[0], "", good[1], bad, good[2]]))
    assert status == 400, body
    error = body["error"]
    assert error["code"] == "invalid_event" and error["line"] == 4 and error["message"]
    if field is not None:
        assert error["field"] == field
    else:
        assert error["field"] in (None, "Power")
    assert counts(conn) == [0, 0, 0]


def test_json_rejection_names_the_record(post, conn):
    record = BASE.to_json()
    status, body, _ = post(json.dumps([record, {**record, "voltage_v": "230"}]), "application/json")
    assert status == 400 and body["error"]["line"] == 2 and body["error"]["field"] == "voltage_v"
    status, body, _ = post("{not json", "application/json")
    assert status == 400 and body["error"]["code"] == "invalid_event"
    assert counts(conn) == [0, 0, 0]


def test_limits(post, conn):
    status, body, _ = post("x" * (1024 * 1024 + 1))
    assert (status, body["error"]["code"]) == (413, "payload_too_large")
    status, body, _ = post("\n".join(["e"] * 1001))
    assert status == 413 and "1000" in body["error"]["message"]
    status, body, _ = post(json.dumps([{}] * 1001), "application/json")
    assert status == 413
    status, body, _ = post(DOCUMENTED, "application/x-www-form-urlencoded")
    assert (status, body["error"]["code"]) == (415, "unsupported_media_type")
    status, body, _ = post("\n \n")
    assert (status, body["error"]["code"]) == (400, "bad_request")
    assert counts(conn) == [0, 0, 0]


def test_the_event_limit_counts_events_not_lines(post, conn):
    short = synth.render(dataclasses.replace(BASE, firmware="1", active_power_w=1.0, voltage_v=230.0, phase_rad=-1.0,
                                              peaks=(1.0, 2.0, 3.0), fft_re=(1.0,), fft_img=(2.0,)), "firmware")
    status, body, _ = post("\n\n".join([short] * 1000) + "\n")  # 2000 newlines, 1000 events
    assert (status, body["count"]) == (201, 1000)
    status, body, _ = post("\n\n".join([short] * 1001))
    assert status == 413 and body["error"]["message"] == "at most 1000 events per request, got 1001"
    assert counts(conn) == [1000, 1000, 1]  # the first 1000 opened their run; the 413 stored nothing


def test_each_threshold_opens_one_run_and_sends_one_message(post, conn, sqs, monkeypatch):
    monkeypatch.setenv("CLUSTER_THRESHOLD", "5")
    assert post("\n".join(lines(4)))[1]["total"] == 4
    assert post("\n".join(lines(1, 4)))[1]["total"] == 5  # reaches 5 exactly
    assert post("\n".join(lines(11, 5)))[1]["total"] == 16  # one batch crossing 10 and 15
    runs = conn.run("SELECT threshold, enqueued_at IS NOT NULL, sends FROM clustering_runs ORDER BY threshold")
    assert runs == [[5, True, 1], [10, True, 1], [15, True, 1]]
    assert sorted(m["threshold"] for m in messages(*sqs)) == [5, 10, 15]


def test_concurrent_writers_get_gapless_seq_and_exactly_three_runs(post, conn, sqs, real_lines_or_synth):
    pool = real_lines_or_synth * 3  # 3000 events
    chunks, i, sizes = [], 0, [1, 7, 1, 50, 1, 1, 120, 3]
    while i < len(pool):
        size = sizes[len(chunks) % len(sizes)]
        chunks.append(pool[i:i + size])
        i += size
    errors, answers = [], []

    def writer(k):
        for chunk in chunks[k::8]:
            status, body, _ = post("\n".join(chunk))
            (answers if status == 201 else errors).append(body)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert conn.run("SELECT min(seq), max(seq), count(DISTINCT seq), count(*) FROM events") == [[1, 3000, 3000, 3000]]
    assert conn.run("SELECT total FROM event_counter") == [[3000]]
    # Every request's events are contiguous in seq (a batch is numbered as one unit), the ids it was told are the
    # rows stored at those seqs (batches reserve theirs, single events take identity defaults, all under the
    # counter's lock), and ids ascend with seq.
    stored = dict(conn.run("SELECT seq, id FROM events"))
    for answer in answers:
        first = answer["total"] - answer["count"] + 1
        assert answer["ids"] == [stored[seq] for seq in range(first, answer["total"] + 1)]
    ids = [stored[seq] for seq in range(1, 3001)]
    assert ids == sorted(set(ids))
    assert conn.run("SELECT threshold, sends FROM clustering_runs ORDER BY threshold") == [
        [1000, 1], [2000, 1], [3000, 1]]
    assert sorted(m["threshold"] for m in messages(*sqs)) == [1000, 2000, 3000]


@pytest.fixture
def real_lines_or_synth(request):
    try:
        return request.getfixturevalue("real_lines")
    except pytest.skip.Exception:
        return lines(1000)


def test_failed_send_is_recovered_by_the_sweep(post, conn, sqs, monkeypatch):
    client, url = sqs
    monkeypatch.setenv("CLUSTER_THRESHOLD", "2")
    monkeypatch.setenv("CLUSTER_QUEUE_URL", url + "-missing")  # SQS answers QueueDoesNotExist after the commit
    status, body, _ = post("\n".join(lines(3)))
    assert status == 201 and body["total"] == 3  # the events are stored all the same
    assert conn.run("SELECT threshold, enqueued_at IS NULL FROM clustering_runs") == [[2, True]]
    assert messages(client, url) == []

    assert outbox.sweep(outbox.sqs_sender(url, "us-east-1")) == []  # still inside the grace period
    sent = outbox.sweep(outbox.sqs_sender(url, "us-east-1"), grace_seconds=0)
    assert [r.threshold for r in sent] == [2]
    assert messages(client, url) == [{"run_id": sent[0].id, "threshold": 2}]
    assert outbox.sweep(outbox.sqs_sender(url, "us-east-1"), grace_seconds=0) == []  # sent once


def test_database_down_is_503_with_retry_after(app, functions, database, conn, monkeypatch):
    gateway = Gateway(app, functions, workers=1)
    _, token = tokens.create(conn, "ingest", "sensor")
    try:
        gateway.handle("GET", "/health", [], b"")
        # The authorizer answer is cached; now the database goes away under the ingest function.
        assert gateway.handle("POST", "/events", [("Authorization", f"Bearer {token}"),
                                                  ("Content-Type", "text/plain")], b"").status == 400
        monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/postgres")
        monkeypatch.setenv("DB_CONNECT_TIMEOUT", "2")
        db.reset()
        reply = gateway.handle("POST", "/events", [("Authorization", f"Bearer {token}"),
                                                   ("Content-Type", "text/plain")], DOCUMENTED.encode())
        assert reply.status == 503
        assert dict(reply.headers)["Retry-After"] == "5"
        assert json.loads(reply.body)["error"]["code"] == "database_unavailable"
        # A token not in the authorizer's cache: the authorizer itself cannot reach the database.
        reply = gateway.handle("POST", "/events", [("Authorization", "Bearer wp_uncached-token-" + "0" * 28),
                                                   ("Content-Type", "text/plain")], DOCUMENTED.encode())
        assert (reply.status, dict(reply.headers)["Retry-After"]) == (503, "5")
        assert json.loads(reply.body)["error"]["code"] == "database_unavailable"
    finally:
        gateway.close()
        db.reset()


def test_single_and_batch_paths_store_identical_rows(post, conn, real_lines_or_synth):
    """A few events travel as JSON, a batch by binary COPY (wattprint.ingest.store): both must store the same."""
    sample = real_lines_or_synth[:12] + lines(3, dialect="documented")
    for line in sample:
        assert post(line)[0] == 201
    status, body, _ = post("\n".join(sample))
    assert status == 201 and body["count"] == 15 and body["total"] == 30
    assert body["ids"] == [row[0] for row in conn.run("SELECT id FROM events WHERE seq > 15 ORDER BY seq")]
    columns = ("device_id, firmware, event_type, coil_reversed, active_power_w, reactive_power_var, "
               "apparent_power_va, current_a, voltage_v, phase_rad, peaks, fft_re, fft_img, sensor_time, "
               "frequency_hz, wifi_strength_dbm, dummy, raw")
    singles = conn.run(f"SELECT {columns} FROM events WHERE seq <= 15 ORDER BY seq")
    batch = conn.run(f"SELECT {columns} FROM events WHERE seq > 15 ORDER BY seq")
    assert singles == batch and len(batch) == 15
    expected = [parser.parse_event(line) for line in sample]
    assert [tuple(row[10]) for row in batch] == [r.peaks for r in expected]
    assert [row[13] for row in batch] == [r.sensor_time for r in expected]


def test_the_copy_path_stores_varied_list_lengths_and_edge_floats_exactly(database, conn):
    """The COPY encoder packs every list of a batch into one buffer and slices each row's arrays out of it: rows
    whose lists differ in length must each get their own values, bit for bit (-0.0, the smallest subnormal)."""
    shapes = [(3, 1), (20, 40), (10, 9), (4, 1), (12, 2), (3, 33)] * 2
    edge = (-0.0, 5e-324, -1.7976931348623157e308, 0.1 + 0.2, 0.0)
    records = [dataclasses.replace(BASE, firmware=f"fw-{i}-é", device_id=i, phase_rad=-0.0 if i % 2 else 1e-300,
                                   peaks=tuple(edge[(i + k) % 5] + k for k in range(n_peaks)),
                                   fft_re=tuple(float(i * 100 + k) for k in range(n_fft)),
                                   fft_img=tuple(edge[(i + k) % 5] - k for k in range(n_fft)))
               for i, (n_peaks, n_fft) in enumerate(shapes)]
    assert len(records) > store.COPY_FROM
    events = [(synth.render(r), r) for r in records]
    with db.transaction() as c:
        stored = store.insert_events(c, events, 1000)
    rows = conn.run("SELECT id, device_id, firmware, phase_rad, peaks, fft_re, fft_img, raw FROM events ORDER BY seq")
    assert [row[0] for row in rows] == stored.ids
    for row, (raw, r) in zip(rows, events):
        assert row[1:4] + [tuple(row[4]), tuple(row[5]), tuple(row[6]), row[7]] == \
            [r.device_id, r.firmware, r.phase_rad, r.peaks, r.fft_re, r.fft_img, raw]
        signs = [math.copysign(1, x) for x in (row[3], *row[4], *row[6])]
        assert signs == [math.copysign(1, x) for x in (r.phase_rad, *r.peaks, *r.fft_img)]


def test_both_paths_run_as_the_ingest_functions_own_role(post, conn, login_as, sqs, monkeypatch):
    """The batch path reserves ids with setval on the identity sequence: the ingest login must be allowed to. It
    may not read tokens, nor delete, change or read back events."""
    monkeypatch.setenv("CLUSTER_THRESHOLD", "20")
    assert post("")[0] == 400  # the authorizer (the superuser here) has run: its answer is cached, as in AWS
    role = login_as("ingest")
    assert db.execute("SELECT current_user")[0][0] == role
    status, single, _ = post(lines(1)[0])
    assert status == 201
    status, batch, _ = post("\n".join(lines(store.COPY_FROM + 20, 1)))
    assert status == 201 and batch["total"] == store.COPY_FROM + 21
    assert single["ids"] + batch["ids"] == [row[0] for row in conn.run("SELECT id FROM events ORDER BY seq")]
    assert conn.run("SELECT threshold, enqueued_at IS NOT NULL FROM clustering_runs") == [[20, True]]
    assert [m["threshold"] for m in messages(*sqs)] == [20]
    keyed = [("Idempotency-Key", "retry-1")]
    status, first, _ = post(lines(1, 50)[0], headers=keyed)
    assert status == 201 and post(lines(1, 50)[0], headers=keyed)[1]["ids"] == first["ids"]  # the retry: no new row
    assert conn.run("SELECT count(*) FROM events")[0][0] == store.COPY_FROM + 22
    for statement in ("SELECT count(*) FROM api_tokens", "DELETE FROM events", "UPDATE events SET dummy = 0",
                      "SELECT raw FROM events", "SELECT count(*) FROM event_labels", "DELETE FROM clustering_runs",
                      "UPDATE clustering_runs SET status = 'done'", "SELECT token_id FROM live_connections"):
        with pytest.raises(Exception, match="permission denied"):
            db.execute(statement)


def test_a_rolled_back_batch_leaves_no_rows_and_later_ids_stay_unique(database, conn, real_lines_or_synth):
    events = [(line, parser.parse_event(line)) for line in real_lines_or_synth[:store.COPY_FROM + 5]]
    with pytest.raises(RuntimeError, match="after the COPY"):
        with db.transaction() as c:
            store.insert_events(c, events, 1000)
            raise RuntimeError("after the COPY")
    assert counts(conn) == [0, 0, 0]
    with db.transaction() as c:
        batch = store.insert_events(c, events, 1000)
    with db.transaction() as c:
        single = store.insert_events(c, events[:1], 1000)
    ids = batch.ids + single.ids
    assert len(set(ids)) == len(ids) == len(events) + 1 and ids == sorted(ids)
    assert ids == [row[0] for row in conn.run("SELECT id FROM events ORDER BY seq")]
    assert conn.run("SELECT min(seq), max(seq) FROM events") == [[1, len(events) + 1]]
