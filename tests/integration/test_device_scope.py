"""ClusterScope=device (issue 17): each device's events are a set of their own, numbered, thresholded and
clustered on their own, against the real PostgreSQL and scikit-learn."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest

from test_clustering import body, deliver, spec_labels, synthetic
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
    assert total == conn.run("SELECT total FROM event_counter")[0][0] == len(devices) * (requests * batch + 2 * len(range(0, requests, 3)))
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
