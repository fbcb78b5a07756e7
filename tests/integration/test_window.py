"""Issue 17: the windowed mode (CLUSTER_WINDOW = N: a run clusters the last N events of its set), and that the
default (0) is the spec's whole set exactly as before."""

from __future__ import annotations

import numpy as np
import pytest
from test_clustering import body, deliver, insert, spec_labels, synthetic
from test_openapi import validate

from local.apigw import Gateway
from wattprint import tokens
from wattprint.clustering import service
from wattprint.clustering.features import FEATURE_COLUMNS


@pytest.fixture
def gateway(app, functions, database, conn):
    gw = Gateway(app, functions, workers=1)
    _, token = tokens.create(conn, "read", "dashboard")
    def get(target):
        reply = gw.handle("GET", target, [("Authorization", f"Bearer {token}")], b"")
        assert reply.status == 200, reply.body
        path = "/events/{id}" if target.startswith("/events/") else target.split("?")[0]
        return validate(reply, path, "GET")  # the answer as the OpenAPI document declares it

    yield get
    gw.close()


def run_row(conn, run_id) -> dict:
    names = ("status", "events", "excluded", "first_seq", "bandwidth", "error")
    return dict(zip(names, conn.run(f"SELECT {', '.join(names)} FROM clustering_runs WHERE id = :id", id=run_id)[0]))


def features(conn, first: int, last: int, skip=()) -> np.ndarray:
    """The eight features of seq first..last, read here with plain SQL (not the run's load)."""
    columns = ", ".join(expr for _, expr in FEATURE_COLUMNS)
    rows = conn.run(f"SELECT seq, {columns} FROM events WHERE seq BETWEEN :a AND :b ORDER BY seq", a=first, b=last)
    return np.array([row[1:] for row in rows if row[0] not in skip], dtype=np.float64)


def labelled_seqs(conn, run_id) -> list[int]:
    return [r[0] for r in conn.run("SELECT seq FROM event_labels WHERE run_id = :id ORDER BY seq", id=run_id)]


def stored_labels(conn, run_id) -> np.ndarray:
    """The run's labels in seq order (which seqs: labelled_seqs)."""
    rows = conn.run("SELECT label FROM event_labels WHERE run_id = :id ORDER BY seq", id=run_id)
    return np.array([r[0] for r in rows], dtype=np.int64)


def walk(gateway, query: str, limit: int) -> list[dict]:
    items, page = [], gateway(f"/events?{query}&limit={limit}")
    while True:
        items += page["items"]
        if page["next"] is None:
            return items
        page = gateway(f"/events?{query}&limit={limit}&cursor={page['next']}")


def test_a_windowed_run_clusters_exactly_the_last_n_events(database, conn, functions, monkeypatch):
    monkeypatch.setenv("CLUSTER_WINDOW", "400")
    (run,) = insert(conn, synthetic(1000, seed=70))
    assert deliver(functions, body(run))[0] == {"batchItemFailures": []}
    row = run_row(conn, run.id)
    assert (row["status"], row["events"], row["excluded"], row["first_seq"]) == ("done", 400, 0, 601)
    assert labelled_seqs(conn, run.id) == list(range(601, 1001))
    expected, bandwidth, _ = spec_labels(features(conn, 601, 1000))  # the spec's fit, of the window's events only
    np.testing.assert_array_equal(stored_labels(conn, run.id), expected)
    assert row["bandwidth"] == pytest.approx(bandwidth, rel=1e-12)
    assert conn.run("SELECT sum(events) FROM cluster_stats WHERE run_id = :id", id=run.id)[0][0] == 400


def test_quarantine_applies_inside_the_window_only(database, conn, functions, monkeypatch):
    monkeypatch.setenv("CLUSTER_WINDOW", "300")
    (run,) = insert(conn, synthetic(1000, seed=71))
    ids = dict(conn.run("SELECT seq, id FROM events WHERE seq IN (100, 800)"))
    service.quarantine_events({"ids": [ids[100], ids[800]]})
    assert deliver(functions, body(run))[0] == {"batchItemFailures": []}
    row = run_row(conn, run.id)
    assert (row["events"], row["excluded"], row["first_seq"]) == (299, 1, 701)  # events + excluded = the window
    assert labelled_seqs(conn, run.id) == [s for s in range(701, 1001) if s != 800]
    np.testing.assert_array_equal(stored_labels(conn, run.id), spec_labels(features(conn, 701, 1000, {800}))[0])


def test_the_report_says_which_events_a_windowed_run_labelled(database, conn, functions, gateway, monkeypatch):
    monkeypatch.setenv("CLUSTER_WINDOW", "250")
    (run,) = insert(conn, synthetic(1000, seed=72))
    assert deliver(functions, body(run))[0] == {"batchItemFailures": []}
    labels = dict(zip(range(751, 1001), stored_labels(conn, run.id).tolist()))

    (listed,) = [r for r in gateway("/runs")["runs"] if r["id"] == run.id]
    assert (listed["first_seq"], listed["events"], listed["threshold"]) == (751, 250, 1000)
    assert gateway("/clusters/summary")["run"]["first_seq"] == 751
    # ?run= answers for the events the run labelled, and no others: in pages (the cursor keeps the window), both ways.
    for order in ("asc", "desc"):
        items = walk(gateway, f"run={run.id}&order={order}", 60)
        seqs = [item["seq"] for item in items]
        assert seqs == (list(range(751, 1001)) if order == "asc" else list(range(1000, 750, -1)))
        assert all(item["run_id"] == run.id and item["label"] == labels[item["seq"]] for item in items)
    # The current run's walk lists every event; those before the window have no label in it.
    items = walk(gateway, "order=asc", 300)
    assert [item["seq"] for item in items] == list(range(1, 1001))
    assert all((item["run_id"], item["label"]) == (None, None) for item in items[:750])
    assert all((item["run_id"], item["label"]) == (run.id, labels[item["seq"]]) for item in items[750:])
    # One event before the window: no label in the current run, and the run is not among its labels.
    before, inside = (conn.run("SELECT id FROM events WHERE seq = :s", s=s)[0][0] for s in (750, 751))
    assert (gateway(f"/events/{before}")["label"], gateway(f"/events/{before}")["labels"]) == (None, [])
    assert gateway(f"/events/{inside}")["labels"][0]["label"] == labels[751]


def test_without_a_window_a_run_takes_every_event_as_the_spec_says(database, conn, functions, gateway, monkeypatch):
    monkeypatch.setenv("CLUSTER_RUNS", "every")
    first, second = insert(conn, synthetic(1000, seed=73), threshold=500)
    assert deliver(functions, body(first))[0] == {"batchItemFailures": []}
    monkeypatch.setenv("CLUSTER_WINDOW", "2000")  # a window wider than the set is the whole set
    assert deliver(functions, body(second))[0] == {"batchItemFailures": []}
    for run in (first, second):
        row = run_row(conn, run.id)
        assert (row["events"], row["first_seq"]) == (run.threshold, 1)
        assert labelled_seqs(conn, run.id) == list(range(1, run.threshold + 1))
        np.testing.assert_array_equal(stored_labels(conn, run.id), spec_labels(features(conn, 1, run.threshold))[0])
    assert [r["first_seq"] for r in gateway("/runs")["runs"]] == [1, 1]
    assert [item["seq"] for item in walk(gateway, f"run={first.id}", 200)] == list(range(1, 501))


def test_a_window_short_of_events_fails_the_run_naming_its_range(database, conn, functions, monkeypatch):
    monkeypatch.setenv("CLUSTER_WINDOW", "300")
    (run,) = insert(conn, synthetic(1000, seed=74))
    conn.run("DELETE FROM events WHERE seq IN (900, 901)")  # what a broken restore would leave
    result, _ = deliver(functions, body(run))
    assert result == {"batchItemFailures": []}  # permanent: not retried
    row = run_row(conn, run.id)
    assert row["status"] == "failed" and row["first_seq"] is None
    assert "298 stored with 701 ≤ seq ≤ 1000, the run needs 300" in row["error"]
