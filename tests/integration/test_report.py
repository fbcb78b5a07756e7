"""The report API through the local API Gateway stand-in (read token, real authorizer and handler) and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timezone
from urllib.parse import parse_qsl, urlencode

import boto3
import pytest
from moto import mock_aws

from local.apigw import Gateway
from local.pg import free_port
from reference import independent_features
from local import synth
from wattprint import db, tokens
from wattprint.clustering.features import FEATURE_COLUMNS, FEATURES
from wattprint.ingest import parser, store
from wattprint.ingest.record import FIELDS
from wattprint.report import params, queries

T0 = datetime(2020, 1, 1, tzinfo=timezone.utc)


# ------------------------------------------------------------------------------------------------ arranging

def insert(conn, n: int, seed: int = 0) -> list[dict]:
    """Store n generated events (synth lines → parser → store, as ingest does) in one transaction; return their
    canonical records (to_json) in seq order. No runs are opened: runs are arranged with done_run()."""
    lines = synth.generate(n, seed=seed)
    events = [(raw, record) for _, raw, record in parser.parse_lines("\n".join(lines))]
    conn.run("BEGIN")
    try:
        store.insert_events(conn, events, 10**12)
        conn.run("COMMIT")
    except BaseException:
        conn.run("ROLLBACK")
        raise
    return [record.to_json() for _, record in events]


def spread_received_at(conn):
    """received_at = 2020-01-01 + seq minutes, so time filters have something to select."""
    conn.run("UPDATE events SET received_at = CAST(:t0 AS timestamptz) + seq * interval '1 minute'", t0=T0)


def done_run(conn, threshold: int, label_of, *, bandwidth: float = 1.5, finished_at: datetime | None = None) -> int:
    """A completed run stored the way wattprint.clustering stores one: claimed (running), its labels COPYed into a
    table of their own then attached as event_labels' partition, cluster_stats from the events, marked done."""
    run_id = conn.run("INSERT INTO clustering_runs (threshold, status, attempts, started_at, lease_until) "
                      "VALUES (:t, 'running', 1, now(), now() + interval '1 hour') "
                      "ON CONFLICT (threshold) WHERE device_id IS NULL "
                      "DO UPDATE SET status = 'running', attempts = 1 RETURNING id",
                      t=threshold)[0][0]
    labels = [label_of(seq) for seq in range(1, threshold + 1)]
    conn.run("BEGIN")
    table = conn.run("SELECT clustering_labels_open(:id)", id=run_id)[0][0]
    data = "".join(f"{run_id}\t{seq}\t{label}\n" for seq, label in enumerate(labels, start=1))
    conn.run(f"COPY {table} (run_id, seq, label) FROM STDIN", stream=io.BytesIO(data.encode()))
    conn.run("SELECT clustering_labels_attach(:id)", id=run_id)
    features = ", ".join(f"avg({expr})" for _, expr in FEATURE_COLUMNS)
    conn.run(f"""INSERT INTO cluster_stats (run_id, label, events, mean_active_power_w, min_active_power_w,
                                            max_active_power_w, centre)
                 SELECT :id, l.label, count(*), avg(e.active_power_w), min(e.active_power_w), max(e.active_power_w),
                        ARRAY[{features}]
                 FROM event_labels l JOIN events e ON e.seq = l.seq WHERE l.run_id = :id GROUP BY l.label""",
             id=run_id)
    n_clusters = len({label for label in labels if label >= 0})
    conn.run("UPDATE clustering_runs SET status = 'done', finished_at = coalesce(:f, now()), lease_until = NULL, "
             "events = :t, bandwidth = :b, n_clusters = :k, load_ms = 1.25, fit_ms = 2.5, store_ms = 3.75, "
             "first_seq = 1 "
             "WHERE id = :id", id=run_id, t=threshold, b=bandwidth, k=n_clusters, f=finished_at)
    conn.run("COMMIT")
    return run_id


def other_run(conn, threshold: int, status: str, error: str | None = None) -> int:
    return conn.run("INSERT INTO clustering_runs (threshold, status, attempts, error) VALUES (:t, :s, :a, :e) "
                    "RETURNING id", t=threshold, s=status, a=0 if status == "pending" else 1, e=error)[0][0]


def mod_labels(k: int, offset: int = 0):
    """seq → label: (seq + offset) % k, with every 7th event unclustered."""
    return lambda seq: -1 if seq % 7 == 0 else (seq + offset) % k


# ------------------------------------------------------------------------------------------------ calling

class Client:
    def __init__(self, gateway: Gateway, token: str):
        self.gateway, self.token = gateway, token

    def get(self, path: str, params: dict | None = None, headers: list | None = None):
        target = path + ("?" + urlencode(params) if params else "")
        reply = self.gateway.handle("GET", target, [("Authorization", f"Bearer {self.token}")] + (headers or []),
                                    b"")
        hdrs = dict(reply.headers)
        ctype = hdrs.get("Content-Type", "")
        body = json.loads(reply.body) if ctype.startswith("application/json") else reply.body.decode()
        return reply.status, body, hdrs

    def ok(self, path, params=None, headers=None):
        status, body, hdrs = self.get(path, params, headers)
        assert status == 200, body
        return body


@pytest.fixture
def client(app, functions, database, conn):
    gateway = Gateway(app, functions, workers=1)  # one handler connection: the reconnect test kills exactly it
    _, token = tokens.create(conn, "read", "dashboard")
    yield Client(gateway, token)
    gateway.close()


def walk(client, params: dict, limit: int, between=None) -> list[dict]:
    """Every page of /events from the first; `between(page_number)` runs after each page."""
    items, cursor, pages = [], None, 0
    while True:
        body = client.ok("/events", {**params, "limit": limit, **({"cursor": cursor} if cursor else {})})
        assert len(body["items"]) <= limit
        items += body["items"]
        pages += 1
        cursor = body["next"]
        if cursor is None:
            return items
        assert len(body["items"]) == limit
        if between:
            between(pages)
        assert pages < 1000


# ------------------------------------------------------------------------------------------ /clusters/summary

def test_summary_before_any_run(client, conn, monkeypatch):
    insert(conn, 5)
    assert client.ok("/clusters/summary") == {"run": None, "clusters": [], "events_until_first_run": 995,
                                              "latest_run": None}
    monkeypatch.setenv("CLUSTER_THRESHOLD", "4")  # the first run is under way (pending): nothing left to wait for
    first = other_run(conn, 4, "pending")
    assert client.ok("/clusters/summary") == {"run": None, "clusters": [], "events_until_first_run": 0, "latest_run": {
        "id": first, "threshold": 4, "status": "pending", "attempts": 0, "error": None}}


def test_summary_after_a_failed_first_run_says_so(client, conn, monkeypatch):
    insert(conn, 5)
    monkeypatch.setenv("CLUSTER_THRESHOLD", "4")
    failed = other_run(conn, 4, "failed", "degenerate data: estimate_bandwidth gave inf for 4 events")
    body = client.ok("/clusters/summary")
    assert body == {"run": None, "clusters": [], "events_until_first_run": 0, "latest_run": {
        "id": failed, "threshold": 4, "status": "failed", "attempts": 1,
        "error": "degenerate data: estimate_bandwidth gave inf for 4 events"}}


def test_summary_of_the_current_run_with_runs_done_out_of_order(client, conn):
    records = insert(conn, 30)
    late = datetime(2030, 1, 1, tzinfo=timezone.utc)
    high = done_run(conn, 20, mod_labels(3), bandwidth=2.5)  # done first…
    low = done_run(conn, 10, mod_labels(2), finished_at=late)  # …then the lower threshold finishes later
    other_run(conn, 30, "pending")
    assert high < low

    body = client.ok("/clusters/summary")
    assert body["run"]["id"] == high
    assert {k: v for k, v in body["run"].items() if k != "finished_at"} == {
        "id": high, "threshold": 20, "status": "done", "events": 20, "excluded": None, "clusters": 3,
        "bandwidth": 2.5, "first_seq": 1}
    assert body["latest_run"] == {"id": body["latest_run"]["id"], "threshold": 30, "status": "pending", "attempts": 0,
                                  "error": None}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", body["run"]["finished_at"])
    assert "events_until_first_run" not in body

    labels = [mod_labels(3)(seq) for seq in range(1, 21)]
    assert [c["label"] for c in body["clusters"]] == [0, 1, 2, -1]
    assert [c["unclustered"] for c in body["clusters"]] == [False, False, False, True]
    for cluster in body["clusters"]:
        rows = [records[i] for i, label in enumerate(labels) if label == cluster["label"]]
        active = [r["active_power_w"] for r in rows]
        assert cluster["events"] == len(rows) > 0
        assert cluster["share"] == len(rows) / 20
        assert cluster["min_active_power_w"] == min(active) and cluster["max_active_power_w"] == max(active)
        assert cluster["mean_active_power_w"] == pytest.approx(sum(active) / len(active), rel=1e-12)
        assert list(cluster["centre"]) == list(FEATURES)
        assert cluster["centre"]["active_power_w"] == pytest.approx(sum(active) / len(active), rel=1e-12)
        assert cluster["centre"]["peak_2"] == pytest.approx(sum(r["peaks"][1] for r in rows) / len(rows), rel=1e-12)
        assert cluster["centre"]["voltage_v"] == pytest.approx(sum(r["voltage_v"] for r in rows) / len(rows),
                                                               rel=1e-12)
    assert sum(c["events"] for c in body["clusters"]) == 20
    assert sum(c["share"] for c in body["clusters"]) == pytest.approx(1.0, abs=1e-12)

    # ?run= selects the other run.
    other = client.ok("/clusters/summary", {"run": low})
    assert (other["run"]["id"], other["run"]["threshold"], other["run"]["clusters"]) == (low, 10, 2)
    assert other["run"]["finished_at"] == "2030-01-01T00:00:00.000000Z"
    assert {c["label"]: c["events"] for c in other["clusters"]} == {0: 5, 1: 4, -1: 1}  # 7 unclustered


def test_summary_of_an_unknown_or_unfinished_run(client, conn):
    insert(conn, 12)
    pending = other_run(conn, 10, "pending")
    failed = other_run(conn, 20, "failed", "degenerate data")
    status, body, _ = client.get("/clusters/summary", {"run": pending})
    assert (status, body["error"]["code"], body["error"]["status"]) == (409, "run_not_done", "pending")
    status, body, _ = client.get("/clusters/summary", {"run": failed})
    assert (status, body["error"]["code"], body["error"]["status"]) == (409, "run_not_done", "failed")
    status, body, _ = client.get("/clusters/summary", {"run": failed + 100})
    assert (status, body["error"]["code"]) == (404, "run_not_found")
    assert str(failed + 100) in body["error"]["message"]


# --------------------------------------------------------------------------------------------------- /runs

def test_runs_newest_first_with_every_field(client, conn):
    insert(conn, 25)
    r20 = done_run(conn, 20, mod_labels(2), bandwidth=3.0)
    r10 = done_run(conn, 10, mod_labels(2))
    r40 = other_run(conn, 40, "pending")
    r30 = other_run(conn, 30, "failed", "insufficient events: 25 stored")
    body = client.ok("/runs")
    assert [r["id"] for r in body["runs"]] == [r40, r30, r20, r10]
    assert [r["threshold"] for r in body["runs"]] == [40, 30, 20, 10]
    assert [r["status"] for r in body["runs"]] == ["pending", "failed", "done", "done"]
    pending, failed, done, _ = body["runs"]
    assert set(done) == {"id", "threshold", "status", "events", "excluded", "clusters", "bandwidth", "attempts",
                         "error", "created_at", "timings", "keeps_labels", "labels_retired_at", "superseded_by",
                         "first_seq"}
    assert [r["first_seq"] for r in body["runs"]] == [None, None, 1, 1]  # known once a run is done
    assert [r["keeps_labels"] for r in body["runs"]] == [False, False, True, True]
    assert {(r["labels_retired_at"], r["superseded_by"]) for r in body["runs"]} == {(None, None)}
    assert (done["events"], done["clusters"], done["bandwidth"], done["attempts"], done["error"]) == (20, 2, 3.0, 1,
                                                                                                      None)
    assert {k: v for k, v in done["timings"].items() if not k.endswith("_at")} == {
        "load_ms": 1.25, "fit_ms": 2.5, "store_ms": 3.75}
    assert done["timings"]["started_at"] <= done["timings"]["finished_at"]
    assert failed["error"] == "insufficient events: 25 stored" and failed["attempts"] == 1
    assert pending["timings"] == {"load_ms": None, "fit_ms": None, "store_ms": None, "started_at": None,
                                  "finished_at": None}
    assert (pending["events"], pending["clusters"], pending["bandwidth"]) == (None, None, None)


def test_runs_before_any(client, conn):
    assert client.ok("/runs") == {"runs": []}


# ------------------------------------------------------------------------------------------------- /events

def record_of(item: dict) -> dict:
    return {k: item[k] for k in FIELDS}


def test_pages_return_every_event_once_while_events_and_runs_arrive(client, conn):
    records = insert(conn, 25)
    first = done_run(conn, 10, mod_labels(3))
    added = []

    def between(page):
        added.extend(insert(conn, 3, seed=100 + page))
        if page == 2:
            done_run(conn, 20, mod_labels(4, 1))  # completes mid-walk: this walk keeps the first run's labels

    items = walk(client, {}, 7, between)
    everything = records + added
    assert [i["seq"] for i in items] == list(range(1, len(everything) + 1))
    assert len(everything) > 25 + 9
    assert [record_of(i) for i in items] == everything
    assert len({i["id"] for i in items}) == len(items)
    assert [i["label"] for i in items] == [mod_labels(3)(s) if s <= 10 else None for s in range(1, len(items) + 1)]
    assert [i["run_id"] for i in items] == [first if s <= 10 else None for s in range(1, len(items) + 1)]

    # A new walk uses the new current run.
    current = conn.run("SELECT id FROM clustering_runs WHERE threshold = 20")[0][0]
    fresh = walk(client, {}, 100)
    assert [i["label"] for i in fresh[:22]] == [mod_labels(4, 1)(s) if s <= 20 else None for s in range(1, 23)]
    assert {i["run_id"] for i in fresh[:20]} == {current}


def test_items_are_the_canonical_records_with_id_seq_and_received_at(client, conn):
    records = insert(conn, 3)
    spread_received_at(conn)
    ids = [r[0] for r in conn.run("SELECT id FROM events ORDER BY seq")]
    body = client.ok("/events")
    assert body["next"] is None
    assert [list(i) for i in body["items"]] == [list(queries.EVENT_KEYS)] * 3
    assert [i["id"] for i in body["items"]] == ids
    assert [i["received_at"] for i in body["items"]] == [f"2020-01-01T00:0{s}:00.000000Z" for s in (1, 2, 3)]
    assert [record_of(i) for i in body["items"]] == records
    assert body["items"][0]["sensor_time"].endswith("Z") and body["items"][0]["label"] is None


def test_desc_order_pages_newest_first(client, conn):
    insert(conn, 23)
    done_run(conn, 10, mod_labels(2))
    items = walk(client, {"order": "desc"}, 5, lambda page: insert(conn, 2, seed=page))
    assert [i["seq"] for i in items] == list(range(23, 0, -1))  # events after the first page are above the walk
    assert [i["label"] for i in items[-10:]] == [mod_labels(2)(s) for s in range(10, 0, -1)]


def test_filters(client, conn):
    records = insert(conn, 40)
    spread_received_at(conn)
    current = done_run(conn, 30, mod_labels(3))
    older = done_run(conn, 20, mod_labels(2, 1))
    label3 = mod_labels(3)
    label2 = mod_labels(2, 1)

    def seqs(params, limit=4):
        return [i["seq"] for i in walk(client, params, limit)]

    # label in the current run: only events it labelled (seq ≤ 30)
    assert seqs({"label": 1}) == [s for s in range(1, 31) if label3(s) == 1]
    assert seqs({"label": -1}) == [7, 14, 21, 28]
    assert seqs({"label": 1, "order": "desc"}) == [s for s in range(30, 0, -1) if label3(s) == 1]
    # label with run: that run's labels
    items = walk(client, {"label": 0, "run": older}, 3)
    assert [i["seq"] for i in items] == [s for s in range(1, 21) if label2(s) == 0]
    assert {(i["run_id"], i["label"]) for i in items} == {(older, 0)}
    # run alone: events with seq ≤ its threshold, its labels
    items = walk(client, {"run": older}, 6)
    assert [(i["seq"], i["run_id"], i["label"]) for i in items] == [(s, older, label2(s)) for s in range(1, 21)]
    # device_id
    for device in (1, 2, 3):
        expected = [s for s, r in enumerate(records, start=1) if r["device_id"] == device]
        assert expected and seqs({"device_id": device}) == expected
    assert seqs({"device_id": 99}) == []
    # since (inclusive) / until (exclusive), with any ISO 8601 offset
    assert seqs({"since": "2020-01-01T00:35:00Z"}) == list(range(35, 41))
    assert seqs({"until": "2020-01-01T00:03:00Z"}) == [1, 2]
    assert seqs({"since": "2020-01-01T02:10:00+02:00", "until": "2020-01-01T00:15:00.000001"}) == list(range(10, 16))
    assert seqs({"since": "2020-01-01"}) == list(range(1, 41))
    # combined
    expected = [s for s, r in enumerate(records, start=1) if s <= 30 and label3(s) == 2 and r["device_id"] == 1
                and s >= 5]
    items = walk(client, {"label": 2, "device_id": 1, "since": "2020-01-01T00:05:00Z"}, 2)
    assert [i["seq"] for i in items] == expected
    assert {i["run_id"] for i in items} == {current}


def test_a_query_string_offset_sent_unencoded_still_parses(client, conn):
    insert(conn, 10)
    spread_received_at(conn)
    # "+" in a raw query string is a space after decoding; the API reads it back as the offset sign
    status, body, _ = client.get("/events?since=2020-01-01T01:05:00+01:00")
    assert status == 200, body
    assert [i["seq"] for i in body["items"]] == list(range(5, 11))


def test_label_filter_needs_a_run(client, conn):
    insert(conn, 5)
    status, body, _ = client.get("/events", {"label": 0})
    assert (status, body["error"]["code"]) == (409, "no_completed_run")
    pending = other_run(conn, 5, "pending")
    status, body, _ = client.get("/events", {"run": pending})
    assert (status, body["error"]["code"], body["error"]["status"]) == (409, "run_not_done", "pending")
    status, body, _ = client.get("/events", {"run": pending + 1})
    assert (status, body["error"]["code"]) == (404, "run_not_found")


def parse_csv(text: str) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], rows[1:]


def from_csv(header, row) -> dict:
    out = {}
    for key, cell in zip(header, row):
        if cell == "":
            value = None
        elif key in ("peaks", "fft_re", "fft_img"):
            value = [float(x) for x in cell.split(";")]
        elif key == "coil_reversed":
            value = {"true": True, "false": False}[cell]
        elif key in ("firmware", "received_at", "sensor_time"):
            value = cell
        elif key in ("id", "seq", "device_id", "event_type", "wifi_strength_dbm", "dummy", "run_id", "label"):
            value = int(cell)
        else:
            value = float(cell)
        out[key] = value
    return out


def test_csv_cells_that_a_spreadsheet_would_run_are_defused(client, conn):
    insert(conn, 3)
    conn.run("UPDATE events SET firmware = CASE seq WHEN 1 THEN '=HYPERLINK(\"http://x\",\"y\")' "
             "WHEN 2 THEN '@SUM(1)' ELSE 'v1=2' END")
    _, text, _ = client.get("/events", {"format": "csv"})
    header, rows = parse_csv(text)
    column = header.index("firmware")
    assert [row[column] for row in rows] == ["'=HYPERLINK(\"http://x\",\"y\")", "'@SUM(1)", "v1=2"]
    assert client.ok("/events")["items"][0]["firmware"] == '=HYPERLINK("http://x","y")'  # JSON stays verbatim
    assert not [cell for row in rows for i, cell in enumerate(row) if i != column and cell.startswith("'")]


def test_csv_has_the_same_rows_as_json(client, conn):
    insert(conn, 12)
    done_run(conn, 8, mod_labels(3))
    conn.run("UPDATE events SET coil_reversed = (seq = 2)")
    params = {"limit": 5, "label": 1}
    body = client.ok("/events", params)
    status, text, headers = client.get("/events", {**params, "format": "csv"})
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    header, rows = parse_csv(text)
    assert header == list(queries.EVENT_KEYS)
    assert [from_csv(header, row) for row in rows] == body["items"]
    assert headers.get("X-Next-Cursor") == body["next"]  # None: a single page

    params = {"limit": 5}
    body = client.ok("/events", params)
    status, text, headers = client.get("/events", params, headers=[("Accept", "text/csv")])
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    header, rows = parse_csv(text)
    assert [from_csv(header, row) for row in rows] == body["items"]
    assert body["items"][1]["coil_reversed"] is True and rows[1][header.index("coil_reversed")] == "true"
    assert headers["X-Next-Cursor"] == body["next"] is not None
    link = re.fullmatch(r'<\?(.*)>; rel="next"', headers["Link"])
    assert dict(parse_qsl(link.group(1))) == {"limit": "5", "cursor": body["next"]}
    # The cursor works for the CSV walk too, and the JSON preference wins when ranked higher.
    status, body2, _ = client.get("/events", {"limit": 5, "cursor": body["next"]},
                                  headers=[("Accept", "text/csv;q=0.5, application/json")])
    assert [i["seq"] for i in body2["items"]] == [6, 7, 8, 9, 10]
    status, text, _ = client.get("/events", {"limit": 5, "cursor": body["next"], "format": "csv"})
    header, rows = parse_csv(text)
    assert [from_csv(header, row) for row in rows] == body2["items"]
    assert [r[header.index("seq")] for r in rows] == ["6", "7", "8", "9", "10"]
    assert [r[header.index("label")] for r in rows] == ["0", "-1", "2", "", ""]  # 9, 10: after the run's threshold


def test_csv_of_an_empty_page_is_the_header(client, conn):
    status, text, headers = client.get("/events", {"format": "csv"})
    assert (status, text) == (200, ",".join(queries.EVENT_KEYS) + "\r\n")
    assert "X-Next-Cursor" not in headers


# --------------------------------------------------------------------------------------------- /events/{id}

def test_one_event_with_its_label_in_every_run(client, conn):
    records = insert(conn, 15)
    r5 = done_run(conn, 5, mod_labels(2))
    r10 = done_run(conn, 10, mod_labels(3))
    other_run(conn, 15, "failed", "boom")
    ids = [r[0] for r in conn.run("SELECT id FROM events ORDER BY seq")]

    body = client.ok(f"/events/{ids[3]}")  # seq 4: labelled by both runs
    assert record_of(body) == records[3] and (body["id"], body["seq"]) == (ids[3], 4)
    # These runs were written by hand, without appliance keys (test_appliance_keys has runs that have them).
    none = {"appliance_key": None, "appliance_name": None}
    assert body["labels"] == [{"run_id": r10, "threshold": 10, "label": mod_labels(3)(4), **none},
                              {"run_id": r5, "threshold": 5, "label": mod_labels(2)(4), **none}]
    assert (body["run_id"], body["label"]) == (r10, mod_labels(3)(4))

    body = client.ok(f"/events/{ids[7]}")  # seq 8: only the run at 10
    assert body["labels"] == [{"run_id": r10, "threshold": 10, "label": mod_labels(3)(8), **none}]
    body = client.ok(f"/events/{ids[12]}")  # seq 13: in no run yet
    assert (body["labels"], body["run_id"], body["label"]) == ([], None, None)

    status, body, _ = client.get(f"/events/{ids[-1] + 1000}")
    assert (status, body["error"]["code"]) == (404, "event_not_found")
    for bad in ("abc", "1.5", "-3", "0", "99999999999999999999"):
        status, body, _ = client.get(f"/events/{bad}")
        assert (status, body["error"]["code"]) == (400, "invalid_parameter"), bad


# ------------------------------------------------------------------------------------------- bad requests

BAD = [
    ("/events", {"since": "9999-12-31T23:00:00-05:00"}, 400, "invalid_parameter"),
    ("/events", {"until": "0001-01-01T00:00:00+05:00"}, 400, "invalid_parameter"),
    ("/events", {"label": "x"}, 400, "invalid_parameter"),
    ("/events", {"label": "1.0"}, 400, "invalid_parameter"),
    ("/events", {"label": "-2"}, 400, "invalid_parameter"),
    ("/events", {"label": "40000"}, 400, "invalid_parameter"),
    ("/events", {"limit": "0"}, 400, "invalid_parameter"),
    ("/events", {"limit": "5000"}, 400, "invalid_parameter"),
    ("/events", {"limit": ""}, 400, "invalid_parameter"),
    ("/events", {"run": "abc"}, 400, "invalid_parameter"),
    ("/events", {"run": "0"}, 400, "invalid_parameter"),
    ("/events", {"run": "424242"}, 404, "run_not_found"),
    ("/events", {"device_id": "99999999999"}, 400, "invalid_parameter"),
    ("/events", {"since": "yesterday"}, 400, "invalid_parameter"),
    ("/events", {"until": "2020-02-30T00:00:00Z"}, 400, "invalid_parameter"),
    ("/events", {"since": "2020-01-02", "until": "2020-01-01"}, 400, "invalid_parameter"),
    ("/events", {"order": "up"}, 400, "invalid_parameter"),
    ("/events", {"format": "xml"}, 400, "invalid_parameter"),
    ("/events", {"cursor": "not-a-cursor"}, 400, "invalid_cursor"),
    ("/events", {"cursor": ""}, 400, "invalid_cursor"),
    ("/events", {"cursor": "A" * 59}, 400, "invalid_cursor"),
    ("/events", {"cursor": "!!"}, 400, "invalid_cursor"),
    ("/events", {"lable": "1"}, 400, "unknown_parameter"),
    ("/events?label=1&label=2", None, 400, "invalid_parameter"),
    ("/clusters/summary", {"run": "x"}, 400, "invalid_parameter"),
    ("/clusters/summary", {"run": "-1"}, 400, "invalid_parameter"),
    ("/clusters/summary", {"run": "424242"}, 404, "run_not_found"),
    ("/clusters/summary", {"label": "1"}, 400, "unknown_parameter"),
    ("/runs", {"limit": "10"}, 400, "unknown_parameter"),
    ("/events/1", {"verbose": "1"}, 400, "unknown_parameter"),
    ("/openapi.json", {"x": "1"}, 400, "unknown_parameter"),
]


@pytest.mark.parametrize("path,params,status,code", BAD, ids=[f"{p}-{q}" for p, q, _, _ in BAD])
def test_bad_query_values(client, conn, path, params, status, code):
    insert(conn, 3)
    done_run(conn, 2, mod_labels(2))
    got, body, headers = client.get(path, params)
    assert (got, body["error"]["code"]) == (status, code), body
    assert headers["Content-Type"] == "application/json"
    assert set(body) == {"error"} and body["error"]["message"]
    if code in ("invalid_parameter", "unknown_parameter", "invalid_cursor"):
        assert body["error"]["parameter"] in path + json.dumps(params)


def test_cursors_must_be_unchanged_and_used_with_their_filters(client, conn):
    insert(conn, 30)
    done_run(conn, 20, mod_labels(2))
    cursor = client.ok("/events", {"limit": 5, "label": 1})["next"]
    assert cursor and len(cursor) < 80
    assert client.ok("/events", {"limit": 3, "label": 1, "cursor": cursor})["items"][0]["seq"] == 13  # limit may vary
    for params in ({"label": 0}, {}, {"label": 1, "device_id": 1}, {"label": 1, "order": "desc"},
                   {"label": 1, "since": "2020-01-01"}):
        status, body, _ = client.get("/events", {**params, "cursor": cursor})
        assert (status, body["error"]["code"]) == (400, "cursor_mismatch"), params
    # One character changed (a forged seq, run or filter) fails the checksum.
    for i in range(0, len(cursor), 7):
        forged = cursor[:i] + ("B" if cursor[i] != "B" else "C") + cursor[i + 1:]
        status, body, _ = client.get("/events", {"label": 1, "cursor": forged})
        assert (status, body["error"]["code"]) == (400, "invalid_cursor"), i


def test_database_down_is_503_with_retry_after(client, conn, monkeypatch):
    assert client.ok("/runs") == {"runs": []}  # the read token's policy is now cached by the gateway
    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/postgres")
    monkeypatch.setenv("DB_CONNECT_TIMEOUT", "2")
    db.reset()
    try:
        for path in ("/clusters/summary", "/runs", "/events", "/events/1"):
            status, body, headers = client.get(path)
            assert (status, body["error"]["code"], headers["Retry-After"]) == (503, "database_unavailable", "5")
    finally:
        db.reset()


def test_reconnects_when_the_cached_connection_died(client, conn):
    insert(conn, 2)
    assert len(client.ok("/events")["items"]) == 2
    # Kill the handler's cached connection (the session whose last statement was the page).
    killed = conn.run("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE pid <> pg_backend_pid() AND query LIKE '%ORDER BY e.seq ASC LIMIT%'")
    assert killed == [[True]]
    assert len(client.ok("/events")["items"]) == 2


# --------------------------------------------------------------------------------------------------- plans

def _nodes(explained) -> list[dict]:
    plan = json.loads(explained) if isinstance(explained, str) else explained
    nodes, stack = [], [plan[0]["Plan"]]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(node.get("Plans", []))
    return nodes


def plan_nodes(conn, sql: str, params: dict) -> list[dict]:
    return _nodes(conn.run("EXPLAIN (FORMAT JSON) " + sql, **params)[0][0])


def generic_plan_nodes(conn, sql: str, params: dict) -> list[dict]:
    """The plan PostgreSQL may cache for the prepared statement: made without the parameters' values."""
    names = list(params)
    numbered = re.sub(r"(?<![:\w]):(" + "|".join(names) + r")\b", lambda m: f"${names.index(m.group(1)) + 1}", sql)
    return _nodes(conn.run("EXPLAIN (GENERIC_PLAN, FORMAT JSON) " + numbered)[0][0])


def test_page_queries_are_index_walks(client, conn):
    """In a test-sized table (analyzed), every page statement walks an index in seq order: no Seq Scan, no Sort
    (a rare device's few events may come by bitmap on events_device_seq)."""
    insert(conn, 3000)
    run_id = done_run(conn, 2500, mod_labels(6))
    conn.run("UPDATE events SET device_id = 77 WHERE seq % 500 = 0")  # a rare device: its index is the way in
    conn.run("ANALYZE events")
    conn.run("ANALYZE event_labels")
    partition = f"event_labels_r{run_id}"
    cases = [
        (params.EventQuery(), {"events_seq_key"}),
        (params.EventQuery(desc=True), {"events_seq_key"}),
        (params.EventQuery(label=3), {f"{partition}_run_id_label_seq_idx", "events_seq_key"}),
        (params.EventQuery(label=3, desc=True), {f"{partition}_run_id_label_seq_idx", "events_seq_key"}),
        (params.EventQuery(run=run_id), {"events_seq_key"}),
        (params.EventQuery(device_id=77), {"events_device_seq"}),
    ]
    for query, indexes in cases:
        for key in ((10**18 if query.desc else 0), 1500):
            sql = queries.events_sql(query, run_id, 2500)
            nodes = plan_nodes(conn, sql, queries.events_params(query, key, 101))
            kinds = [n["Node Type"] for n in nodes]
            used = {n.get("Index Name") for n in nodes if "Index Name" in n}
            assert "Seq Scan" not in kinds, (query, kinds)
            if query.device_id is None:  # the walk is the page: no sort, no bitmap of every match
                assert "Sort" not in kinds and "Bitmap Heap Scan" not in kinds, (query, kinds)
            else:  # a rare device: its few events fetched by (device_id, seq), a top-N sort of those few is fine
                assert nodes[0]["Plan Rows"] <= 101
            assert indexes <= used, (query, used)
            # event_labels is pruned to the run's partition when planned
            touched = {n.get("Relation Name") for n in nodes if n.get("Relation Name", "").startswith("event_labels")}
            assert touched <= {partition}, touched
            if query.label is None:
                assert any(n.get("Relation Name") == partition for n in nodes), kinds
        # The generic plan (what a prepared statement may run after its fifth call) must walk too: no merge or
        # hash join that would read one side from its start, whatever the cursor's seq.
        generic = generic_plan_nodes(conn, sql, queries.events_params(query, 1500, 101))
        kinds = [n["Node Type"] for n in generic]
        assert not {"Seq Scan", "Merge Join", "Hash Join", "Sort", "Bitmap Heap Scan"} & set(kinds) or (
            query.device_id is not None and "Seq Scan" not in kinds and "Merge Join" not in kinds), (query, kinds)
        assert {n.get("Relation Name") for n in generic if n.get("Relation Name", "").startswith("event_labels")} \
            <= {partition}


# -------------------------------------------------------------------------------------- done when: real file



@pytest.mark.slow
def test_real_file_summary_matches_an_independent_meanshift(app, functions, database, conn, client, real_lines,
                                                              monkeypatch):
    import numpy as np
    import sklearn.cluster as cluster_mod

    from wattprint.clustering import service

    with mock_aws():
        queue = boto3.client("sqs", region_name="us-east-1").create_queue(QueueName="cluster")["QueueUrl"]
        monkeypatch.setenv("CLUSTER_QUEUE_URL", queue)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        _, ingest_token = tokens.create(conn, "ingest", "sensor")
        for start in range(0, 1000, 250):
            reply = client.gateway.handle("POST", "/events", [("Authorization", f"Bearer {ingest_token}"),
                                                              ("Content-Type", "text/plain")],
                                          "\n".join(real_lines[start:start + 250]).encode())
            assert reply.status == 201, reply.body
    assert client.ok("/clusters/summary")["run"] is None
    (run_id, threshold), = conn.run("SELECT id, threshold FROM clustering_runs")
    outcome = service.process(run_id, threshold, 900)
    assert outcome["status"] == "done", outcome

    data = independent_features(real_lines)
    bandwidth = cluster_mod.estimate_bandwidth(data, quantile=0.2, n_samples=200)
    ms = cluster_mod.MeanShift(bandwidth=bandwidth, cluster_all=False, bin_seeding=True)
    labels = ms.fit_predict(data)

    body = client.ok("/clusters/summary")
    assert (body["run"]["id"], body["run"]["threshold"], body["run"]["events"]) == (run_id, 1000, 1000)
    assert body["run"]["clusters"] == len(ms.cluster_centers_) == 5
    assert body["run"]["bandwidth"] == pytest.approx(float(bandwidth), rel=1e-12)
    expected = {int(k): int((labels == k).sum()) for k in np.unique(labels)}
    assert {c["label"]: c["events"] for c in body["clusters"]} == expected
    assert expected == {-1: 101, 0: 322, 1: 281, 2: 145, 3: 133, 4: 18}  # the published figures
    for cluster in body["clusters"]:
        rows = data[labels == cluster["label"]]
        assert cluster["mean_active_power_w"] == pytest.approx(rows[:, 0].mean(), rel=1e-12)
        assert (cluster["min_active_power_w"], cluster["max_active_power_w"]) == (rows[:, 0].min(), rows[:, 0].max())
        assert list(cluster["centre"].values()) == pytest.approx(rows.mean(axis=0).tolist(), rel=1e-12)
        assert cluster["share"] == pytest.approx(len(rows) / 1000, rel=1e-12)
        assert cluster["unclustered"] is (cluster["label"] == -1)

    # Every event carries its label: a label page agrees with the independent fit event by event.
    items = walk(client, {"label": 2}, 1000)
    assert [i["seq"] for i in items] == [int(s) + 1 for s in np.flatnonzero(labels == 2)]
