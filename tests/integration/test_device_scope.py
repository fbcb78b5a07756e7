"""ClusterScope=device (issue 17): each device's events are a set of their own, numbered, thresholded and
clustered on their own, against the real PostgreSQL and scikit-learn."""

from __future__ import annotations

import dataclasses
import json
import threading
from urllib.parse import urlencode

import boto3
import numpy as np
import pytest
from moto import mock_aws

from local import synth
from test_clustering import body, deliver, spec_labels, synthetic
from test_ingest import post, sqs  # noqa: F401 - fixtures
from test_report import client  # noqa: F401 - a fixture
from wattprint import db
from wattprint.clustering import labels as label_store
from wattprint.errors import ClusterScopeMismatch
from wattprint.ingest import store


def of_device(events, device_id: int):
    return [(raw, dataclasses.replace(record, device_id=device_id)) for raw, record in events]


def insert(conn, events, threshold=1000, per_device=True) -> list[store.Run]:
    """Store events in one transaction, as ingest does with ClusterScope=device; the runs they opened."""
    conn.run("BEGIN")
    try:
        stored = store.insert_events(conn, events, threshold, per_device)
        conn.run("COMMIT")
    except BaseException:
        conn.run("ROLLBACK")
        raise
    return stored.runs


def numbering(conn) -> dict[int, list[tuple[int, int]]]:
    """device → [(seq, device_seq)] in seq order."""
    out: dict[int, list[tuple[int, int]]] = {}
    for device, seq, device_seq in conn.run("SELECT device_id, seq, device_seq FROM events ORDER BY seq"):
        out.setdefault(device, []).append((seq, device_seq))
    return out


# ------------------------------------------------------------------------------------------------ numbering

@pytest.mark.parametrize("batch", [3, 40], ids=["json", "copy"])  # store.COPY_FROM: both ways in
def test_per_device_numbering_is_gapless_under_concurrent_ingest(database, conn, batch):
    devices, requests = (11, 12, 13, 14), 12
    threshold = 50
    errors, opened = [], []

    def sensor(device: int, mixed_with: int):
        c = db.connect()
        try:
            for i in range(requests):
                events = of_device(synthetic(batch, seed=device * 100 + i), device)
                if i % 3 == 0:  # some requests carry two devices' events, interleaved
                    other = of_device(synthetic(2, seed=i), mixed_with)
                    events = [events[0], other[0], *events[1:], other[1]]
                opened.extend(insert(c, events, threshold))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            c.close()

    threads = [threading.Thread(target=sensor, args=(d, devices[(k + 1) % len(devices)]))
               for k, d in enumerate(devices)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    numbers = numbering(conn)
    total = 0
    for device, rows in numbers.items():
        assert [n for _, n in rows] == list(range(1, len(rows) + 1))  # gapless, in commit (seq) order
        total += len(rows)
        counter = conn.run("SELECT total FROM device_counters WHERE device_id = :d", d=device)[0][0]
        assert counter == len(rows)
        expected = list(range(threshold, len(rows) + 1, threshold))
        assert sorted(r.threshold for r in opened if r.device_id == device) == expected
        assert [t for (t,) in conn.run("SELECT threshold FROM clustering_runs WHERE device_id = :d "
                                       "ORDER BY threshold", d=device)] == expected
    mixed = 2 * len(range(0, requests, 3))  # the other device's events in every third request
    assert total == conn.run("SELECT total FROM event_counter")[0][0] == len(devices) * (requests * batch + mixed)
    assert [s for s, in conn.run("SELECT seq FROM events ORDER BY seq")] == list(range(1, total + 1))
    assert conn.run("SELECT count(*) FROM clustering_runs WHERE device_id IS NULL")[0][0] == 0


def test_a_scope_is_fixed_by_the_first_events(database, conn):
    insert(conn, synthetic(2), per_device=True)
    for n in (2, 20):  # both ways in refuse, and store nothing
        with pytest.raises(ClusterScopeMismatch) as refused:
            insert(conn, synthetic(n), per_device=False)
        assert refused.value.status == 409 and "ClusterScope=device" in refused.value.message
    assert conn.run("SELECT count(*), (SELECT total FROM event_counter) FROM events")[0] == [2, 2]


def test_an_all_scope_database_refuses_device_scope(database, conn):
    insert(conn, synthetic(3), per_device=False)
    for n in (3, 30):
        with pytest.raises(ClusterScopeMismatch) as refused:
            insert(conn, synthetic(n), per_device=True)
        assert refused.value.details == {"stored_scope": "all", "scope": "device"}
    assert conn.run("SELECT count(*), count(device_seq), (SELECT scope FROM event_counter) FROM events")[0] == \
        [3, 0, "all"]


# ------------------------------------------------------------------------------------------------ runs

def run_rows(conn, device: int) -> list[dict]:
    names = ("id", "threshold", "status", "events", "superseded_by", "labels_retired_at")
    return [dict(zip(names, row)) for row in conn.run(
        f"SELECT {', '.join(names)} FROM clustering_runs WHERE device_id = :d ORDER BY threshold", d=device)]


def test_each_run_covers_exactly_its_devices_events(database, conn, functions, monkeypatch):
    monkeypatch.setenv("CLUSTER_SCOPE", "device")
    a = of_device(synthetic(1200, seed=1), 7)
    b = of_device(synthetic(1000, seed=2), 8)
    mixed = [e for pair in zip(a, b) for e in pair] + a[1000:]  # the two devices interleaved in seq
    runs = []
    for i in range(0, len(mixed), 100):
        runs += insert(conn, mixed[i:i + 100])
    assert sorted((r.device_id, r.threshold) for r in runs) == [(7, 1000), (8, 1000)]
    result, _ = deliver(functions, *[body(r) for r in runs])
    assert result == {"batchItemFailures": []}
    for run, events in ((r, a if r.device_id == 7 else b) for r in runs):
        row = run_rows(conn, run.device_id)[0]
        assert row["status"] == "done" and row["events"] == 1000
        seqs = [s for s, in conn.run("SELECT seq FROM event_labels WHERE run_id = :r ORDER BY seq", r=run.id)]
        devices = {d for d, in conn.run("SELECT DISTINCT e.device_id FROM event_labels l JOIN events e "
                                        "ON e.seq = l.seq WHERE l.run_id = :r", r=run.id)}
        assert devices == {run.device_id}
        assert seqs == [s for s, in conn.run("SELECT seq FROM events WHERE device_id = :d AND device_seq <= 1000 "
                                            "ORDER BY seq", d=run.device_id)]
        # The labels are the spec's computation over that device's first 1000 events, and nothing else.
        data = np.array([[getattr(r, name) for name in ("active_power_w", "reactive_power_var", "apparent_power_va",
                                                         "current_a", "voltage_v")] + list(r.peaks[:3])
                         for _, r in events[:1000]])
        expected, bandwidth, _ = spec_labels(data)
        got = [label for label, in conn.run("SELECT label FROM event_labels WHERE run_id = :r ORDER BY seq",
                                            r=run.id)]
        assert got == expected.tolist()
        assert conn.run("SELECT bandwidth FROM clustering_runs WHERE id = :r", r=run.id)[0][0] == \
            pytest.approx(bandwidth)


def test_runs_of_two_devices_proceed_independently(database, conn, functions, monkeypatch):
    """Device 1's runs are superseded and retired among themselves only: device 2's newer and later runs never
    supersede nor retire them, and device 2's run completes while device 1's first run still waits."""
    monkeypatch.setenv("CLUSTER_SCOPE", "device")
    monkeypatch.setenv("LABEL_RETENTION", "1")
    threshold = 100
    runs = insert(conn, of_device(synthetic(300, seed=3), 1), threshold)
    runs += insert(conn, of_device(synthetic(500, seed=4), 2), threshold)
    one = [r for r in runs if r.device_id == 1]
    two = [r for r in runs if r.device_id == 2]
    assert [r.threshold for r in one] == [100, 200, 300] and [r.threshold for r in two] == [100, 200, 300, 400, 500]
    # Device 2's newest run first, then its older ones (superseded by it): device 1's runs are neither superseded
    # nor waited for, and still pending.
    assert deliver(functions, body(two[-1]))[0] == {"batchItemFailures": []}
    assert deliver(functions, *[body(r) for r in two[:-1]])[0] == {"batchItemFailures": []}
    assert [r["status"] for r in run_rows(conn, 1)] == ["pending"] * 3
    assert [r["status"] for r in run_rows(conn, 2)] == ["superseded"] * 4 + ["done"]
    # each by the next of its own device's runs (device 1's pending runs have lower ids, and are not named)
    assert [r["superseded_by"] for r in run_rows(conn, 2)[:4]] == [r.id for r in two[1:]]
    # Device 1's first run is superseded by its own later pending runs; its last does the work.
    assert deliver(functions, body(one[0]))[0] == {"batchItemFailures": []}
    assert [r["status"] for r in run_rows(conn, 1)] == ["superseded", "pending", "pending"]
    assert deliver(functions, body(one[2]))[0] == {"batchItemFailures": []}
    assert [r["status"] for r in run_rows(conn, 1)] == ["superseded", "pending", "done"]
    # Retention (K = 1) counts each device's runs: both devices' newest runs keep their labels.
    assert [r["labels_retired_at"] for r in run_rows(conn, 1)][2] is None
    assert [r["labels_retired_at"] for r in run_rows(conn, 2)][4] is None
    assert conn.run("SELECT count(*) FROM event_labels WHERE run_id = :r", r=two[-1].id)[0][0] == 500
    assert conn.run("SELECT count(*) FROM event_labels WHERE run_id = :r", r=one[2].id)[0][0] == 300


def test_retention_keeps_each_devices_newest_runs(database, conn, functions, monkeypatch):
    monkeypatch.setenv("CLUSTER_SCOPE", "device")
    monkeypatch.setenv("LABEL_RETENTION", "1")
    monkeypatch.setenv("CLUSTER_RUNS", "every")
    threshold = 100
    one = insert(conn, of_device(synthetic(200, seed=5), 1), threshold)
    two = insert(conn, of_device(synthetic(100, seed=6), 2), threshold)
    for run in (*one, *two):
        assert deliver(functions, body(run))[0] == {"batchItemFailures": []}
    first, second = run_rows(conn, 1)
    assert first["labels_retired_at"] is not None and second["labels_retired_at"] is None
    assert run_rows(conn, 2)[0]["labels_retired_at"] is None  # device 1's newer run does not retire it
    assert label_store.retire(1, 2) == []


# ------------------------------------------------------------------------------------------------ the report

@pytest.fixture
def fleet(database, conn, functions, monkeypatch):
    """ClusterScope=device, threshold 100: device 7 with 250 events (runs at 100 and 200, done), device 8 with 120
    (its run at 100, done), interleaved in seq; device 9 with 40 (no run yet). Returns {device: [run ids]}."""
    monkeypatch.setenv("CLUSTER_SCOPE", "device")
    monkeypatch.setenv("CLUSTER_THRESHOLD", "100")
    monkeypatch.setenv("CLUSTER_RUNS", "every")
    a, b, c = (of_device(synthetic(n, seed=s), d) for n, s, d in ((250, 21, 7), (120, 22, 8), (40, 23, 9)))
    mixed = [e for trio in zip(a, b, c) for e in trio] + [e for pair in zip(a[40:], b[40:]) for e in pair] + a[120:]
    runs = []
    for i in range(0, len(mixed), 37):
        runs += insert(conn, mixed[i:i + 37], 100)
    assert deliver(functions, *[body(r) for r in runs])[0] == {"batchItemFailures": []}
    return {d: [r.id for r in runs if r.device_id == d] for d in (7, 8)}


def labels_of(conn, run_id: int) -> dict[int, int]:
    return dict(conn.run("SELECT seq, label FROM event_labels WHERE run_id = :r", r=run_id))


def test_device_scope_reads_need_a_device(fleet, client, conn):
    for path in ("/clusters/summary", "/runs", "/events"):
        status, body_, _ = client.get(path)
        assert status == 400, (path, body_)
        assert body_["error"]["code"] == "device_id_required" and body_["error"]["parameter"] == "device_id"
        assert "ClusterScope=device" in body_["error"]["message"]
        status, body_, _ = client.get(path, {"device_id": "seven"})
        assert status == 400 and body_["error"]["parameter"] == "device_id"
    event_id = conn.run("SELECT id FROM events WHERE device_id = 8 AND device_seq = 50")[0][0]
    item = client.ok(f"/events/{event_id}")  # an event names its device: no device_id needed
    assert item["run_id"] == fleet[8][0] and [entry["run_id"] for entry in item["labels"]] == fleet[8]
    assert item["label"] == labels_of(conn, fleet[8][0])[item["seq"]]


def test_device_scope_summary_and_runs_are_the_devices(fleet, client, conn):
    summary = client.ok("/clusters/summary", {"device_id": 7})
    assert summary["run"]["id"] == fleet[7][1] and summary["run"]["threshold"] == 200
    assert sum(cluster["events"] for cluster in summary["clusters"]) == 200
    assert client.ok("/clusters/summary", {"device_id": 7, "run": fleet[7][0]})["run"]["threshold"] == 100
    status, body_, _ = client.get("/clusters/summary", {"device_id": 7, "run": fleet[8][0]})  # another device's
    assert status == 404 and body_["error"]["code"] == "run_not_found" and body_["error"]["device_id"] == 7
    waiting = client.ok("/clusters/summary", {"device_id": 9})
    assert waiting["run"] is None and waiting["events_until_first_run"] == 60 and waiting["latest_run"] is None
    unknown = client.ok("/clusters/summary", {"device_id": 12345})
    assert unknown["events_until_first_run"] == 100
    runs = client.ok("/runs", {"device_id": 7})["runs"]
    assert [(r["id"], r["threshold"], r["device_id"], r["status"]) for r in runs] == \
        [(fleet[7][1], 200, 7, "done"), (fleet[7][0], 100, 7, "done")]
    assert client.ok("/runs", {"device_id": 9})["runs"] == []


def test_device_scope_events_carry_their_devices_labels(fleet, client, conn):
    seqs7 = [s for s, in conn.run("SELECT seq FROM events WHERE device_id = 7 ORDER BY seq")]
    current = labels_of(conn, fleet[7][1])
    items, cursor = [], None
    while True:  # pages of 30: cursors keep the device and its run
        page = client.ok("/events", {"device_id": 7, "limit": 30, **({"cursor": cursor} if cursor else {})})
        items += page["items"]
        cursor = page["next"]
        if cursor is None:
            break
    assert [i["seq"] for i in items] == seqs7 and {i["device_id"] for i in items} == {7}
    for item in items:  # the first 200 of the device carry run 200's label, the 50 after it none yet
        if item["seq"] in current:
            assert (item["run_id"], item["label"]) == (fleet[7][1], current[item["seq"]])
        else:
            assert (item["run_id"], item["label"]) == (None, None)
    assert sum(1 for i in items if i["run_id"]) == 200
    # ?run= of the device's older run: its 100 events labelled, the rest of the walk not
    older = client.ok("/events", {"device_id": 7, "run": fleet[7][0], "limit": 1000})["items"]
    assert [i["seq"] for i in older] == seqs7[:100]
    assert all(i["label"] == labels_of(conn, fleet[7][0])[i["seq"]] for i in older)
    # a label filter walks the device's run's labels only
    label = next(iter(current.values()))
    labelled = client.ok("/events", {"device_id": 7, "label": label, "limit": 1000})["items"]
    assert [i["seq"] for i in labelled] == sorted(s for s, v in current.items() if v == label)
    # another device's run, or a cursor made for another device, is refused
    status, body_, _ = client.get("/events", {"device_id": 7, "run": fleet[8][0]})
    assert status == 404 and body_["error"]["code"] == "run_not_found"
    first = client.ok("/events", {"device_id": 7, "limit": 5})
    status, body_, _ = client.get("/events", {"device_id": 8, "limit": 5, "cursor": first["next"]})
    assert status == 400 and body_["error"]["code"] == "cursor_mismatch"
    # CSV: the same rows
    status, text, _ = client.get("/events", {"device_id": 8, "format": "csv", "limit": 1000})
    assert status == 200 and len(text.strip().splitlines()) == 1 + 120
    # device 9: no run yet, no labels; a label filter has nothing to filter on
    assert {i["label"] for i in client.ok("/events", {"device_id": 9, "limit": 1000})["items"]} == {None}
    status, body_, _ = client.get("/events", {"device_id": 9, "label": 0})
    assert status == 409 and body_["error"]["code"] == "no_completed_run"


def test_device_scope_retired_labels_name_the_devices_runs(fleet, client, conn, functions, monkeypatch):
    monkeypatch.setenv("LABEL_RETENTION", "1")
    runs = insert(conn, of_device(synthetic(60, seed=24), 9), 100)  # device 9's first run
    assert deliver(functions, *[body(r) for r in runs])[0] == {"batchItemFailures": []}
    assert conn.run("SELECT count(*) FROM clustering_runs WHERE labels_retired_at IS NOT NULL")[0][0] == 0
    more = insert(conn, of_device(synthetic(100, seed=25), 7), 100)  # device 7's run at 300 retires its 100, 200
    assert deliver(functions, *[body(r) for r in more])[0] == {"batchItemFailures": []}
    status, body_, _ = client.get("/events", {"device_id": 7, "run": fleet[7][0]})
    assert status == 410 and body_["error"]["runs_with_labels"] == [more[0].id]
    assert client.ok("/events", {"device_id": 8, "run": fleet[8][0], "limit": 1})["items"]  # device 8 keeps its own


def test_all_scope_refuses_a_device_for_runs_and_filters_events_by_it(database, conn, client, functions,
                                                                      monkeypatch):
    monkeypatch.setenv("CLUSTER_SCOPE", "all")
    runs = insert(conn, of_device(synthetic(60, seed=26), 3) + of_device(synthetic(60, seed=27), 4), 100,
                  per_device=False)
    assert deliver(functions, *[body(r) for r in runs])[0] == {"batchItemFailures": []}
    for path in ("/clusters/summary", "/runs"):
        status, body_, _ = client.get(path, {"device_id": 3})
        assert status == 400 and body_["error"]["code"] == "invalid_parameter", body_
        assert body_["error"]["parameter"] == "device_id" and "ClusterScope=all" in body_["error"]["message"]
    assert "device_id" not in client.ok("/runs")["runs"][0]  # answers as before the scope existed
    items = client.ok("/events", {"device_id": 4, "limit": 1000})["items"]
    assert [i["seq"] for i in items] == list(range(61, 121)) and all(i["run_id"] == runs[0].id for i in items[:40])


# ------------------------------------------------------------------------------------------------ live messages

def test_live_messages_carry_each_events_own_devices_labels_and_each_runs_device(fleet, conn):
    from wattprint.live import live

    first, last = conn.run("SELECT min(seq), max(seq) FROM events WHERE seq > (SELECT max(seq) FROM events) - 90")[0]
    messages = live.messages([{"kind": "events", "first_seq": first, "last_seq": last},
                              {"kind": "run", "run_id": fleet[8][0]}])
    events = [m for m in messages if m["type"] == "events"]
    items = [item for m in events for item in m["items"]]
    assert [i["seq"] for i in items] == list(range(first, last + 1))
    current = {7: labels_of(conn, fleet[7][1]), 8: labels_of(conn, fleet[8][0]), 9: {}}
    for item in items:
        labels = current[item["device_id"]]
        expected_run = {7: fleet[7][1], 8: fleet[8][0]}.get(item["device_id"]) if item["seq"] in labels else None
        assert (item["run_id"], item["label"]) == (expected_run, labels.get(item["seq"]))
    assert any(i["run_id"] for i in items) and any(i["run_id"] is None for i in items)
    (run,) = [m["run"] for m in messages if m["type"] == "run"]
    assert (run["id"], run["device_id"], run["threshold"]) == (fleet[8][0], 8, 100)


def test_device_scope_answers_match_the_openapi_document(fleet, client):
    from test_openapi import validate

    for path, params_, route in (("/clusters/summary", {"device_id": 7}, "/clusters/summary"),
                                 ("/clusters/summary", {"device_id": 9}, "/clusters/summary"),
                                 ("/clusters/summary", {}, "/clusters/summary"),
                                 ("/runs", {"device_id": 7}, "/runs"), ("/runs", {}, "/runs"),
                                 ("/events", {"device_id": 8, "limit": 3}, "/events"), ("/events", {}, "/events"),
                                 ("/dashboard/config.json", {}, "/dashboard/{asset}")):
        target = path + ("?" + urlencode(params_) if params_ else "")
        reply = client.gateway.handle("GET", target, [("Authorization", f"Bearer {client.token}")], b"")
        validate(reply, route, "get")
    reply = client.gateway.handle("GET", "/dashboard/config.json", [], b"")
    assert json.loads(reply.body)["cluster_scope"] == "device"


# ------------------------------------------------------------------------------------------------ POST /events

def test_post_events_numbers_per_device_and_refuses_a_switch_of_scope(post, sqs, conn, monkeypatch):
    from test_ingest import messages

    monkeypatch.setenv("CLUSTER_SCOPE", "device")
    monkeypatch.setenv("CLUSTER_THRESHOLD", "3")
    lines = "\n".join(synth.render(dataclasses.replace(r, device_id=d))
                      for d, r in zip((5, 6, 5, 5, 6), synth.generate_records(5, seed=9)))
    status, answer, _ = post(lines)
    assert status == 201 and answer["total"] == 5
    assert conn.run("SELECT device_id, device_seq FROM events ORDER BY seq") == [[5, 1], [6, 1], [5, 2], [5, 3], [6, 2]]
    run_id = conn.run("SELECT id FROM clustering_runs WHERE device_id = 5 AND threshold = 3")[0][0]
    assert messages(*sqs) == [{"run_id": run_id, "threshold": 3, "device_id": 5}]
    monkeypatch.setenv("CLUSTER_SCOPE", "all")  # the parameter changed on a database with events
    status, answer, _ = post(lines)
    assert status == 409 and answer["error"]["code"] == "cluster_scope_mismatch"
    assert answer["error"]["stored_scope"] == "device" and "a scope cannot change" in answer["error"]["message"]
    assert conn.run("SELECT count(*) FROM events")[0][0] == 5


def test_the_scope_setting_is_all_or_device():
    from wattprint import settings

    assert settings.clustering_settings({}).scope == "all" and not settings.clustering_settings({}).per_device
    assert settings.clustering_settings({"CLUSTER_SCOPE": "device"}).per_device
    with pytest.raises(ValueError, match="CLUSTER_SCOPE must be one of all, device"):
        settings.clustering_settings({"CLUSTER_SCOPE": "devices"})


# ------------------------------------------------------------------------------------------------ the sweep

def test_the_sweep_sends_a_devices_lost_run_again_and_it_runs_on_its_devices_events(database, conn, functions,
                                                                                      monkeypatch):
    from test_sweep import drain, sweep_outcome

    with mock_aws():
        client = boto3.client("sqs", region_name="us-east-1")
        url = client.create_queue(QueueName="cluster", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
        monkeypatch.setenv("CLUSTER_QUEUE_URL", url)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("CLUSTER_SCOPE", "device")
        insert(conn, of_device(synthetic(40, seed=41), 4), 50)
        (lost,) = insert(conn, of_device(synthetic(50, seed=42), 3), 50)  # committed, its message never sent
        conn.run("UPDATE clustering_runs SET created_at = now() - interval '1 hour' WHERE id = :id", id=lost.id)
        assert sweep_outcome(functions)["sent"] == [50]
        (message,) = drain(client, url)
        assert message == {"run_id": lost.id, "threshold": 50, "device_id": 3}
        assert deliver(functions, message)[0] == {"batchItemFailures": []}
    row = run_rows(conn, 3)[0]
    assert (row["status"], row["events"]) == ("done", 50)
    assert {d for d, in conn.run("SELECT DISTINCT e.device_id FROM event_labels l JOIN events e ON e.seq = l.seq "
                                 "WHERE l.run_id = :r", r=lost.id)} == {3}
