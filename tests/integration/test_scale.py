"""Issue 17: the labels of the newest K runs only (and 410 for retired ones), and supersession instead of a backlog."""

from __future__ import annotations

import random
import threading

import pytest
from test_clustering import (assert_one_label_set, body, deliver, insert, partitions, run_row,
                             spec_labels, standalone_tables, stored_labels, synthetic)
from test_openapi import validate
from test_report import done_run, insert as insert_plain, mod_labels

import numpy as np

from local.apigw import Gateway
from wattprint import db, tokens
from wattprint.clustering import fit, labels as label_store, runs, service
from wattprint.report import queries


def labelled(runs_):
    return sorted(f"event_labels_r{r.id}" for r in runs_)


def retired_at(conn, run_id):
    return conn.run("SELECT labels_retired_at FROM clustering_runs WHERE id = :id", id=run_id)[0][0]


def statuses(conn) -> dict[int, tuple]:
    return {r[0]: tuple(r[1:]) for r in conn.run(
        "SELECT r.threshold, r.status, r.attempts, l.threshold FROM clustering_runs r "
        "LEFT JOIN clustering_runs l ON l.id = r.superseded_by ORDER BY r.threshold")}


# ------------------------------------------------------------------------------------------ label retention

def test_only_the_newest_k_runs_keep_labels_and_every_run_keeps_its_summary(database, conn, functions, monkeypatch):
    monkeypatch.setenv("LABEL_RETENTION", "2")
    monkeypatch.setenv("CLUSTER_RUNS", "every")
    opened = insert(conn, synthetic(1000, seed=40), threshold=200)
    assert [r.threshold for r in opened] == [200, 400, 600, 800, 1000]
    for i, run in enumerate(opened):
        assert deliver(functions, body(run))[0] == {"batchItemFailures": []}
        kept = opened[max(0, i - 1):i + 1]
        assert partitions(conn) == labelled(kept) and standalone_tables(conn) == labelled(kept)
    for run in opened[:3]:
        row = run_row(conn, run.id)
        assert row["status"] == "done" and row["events"] == run.threshold and row["n_clusters"] > 0
        assert retired_at(conn, run.id) is not None
        assert conn.run("SELECT sum(events) FROM cluster_stats WHERE run_id = :id", id=run.id)[0][0] == run.threshold
    for run in opened[3:]:
        assert retired_at(conn, run.id) is None
        assert_one_label_set(conn, run)
    assert conn.run("SELECT count(*) FROM event_labels")[0][0] == 800 + 1000
    served = {r["threshold"]: r["keeps_labels"] for r in queries.runs()["runs"]}
    assert served == {200: False, 400: False, 600: False, 800: True, 1000: True}


def test_retention_zero_keeps_every_run(database, conn, functions, monkeypatch):
    monkeypatch.setenv("LABEL_RETENTION", "0")
    monkeypatch.setenv("CLUSTER_RUNS", "every")
    opened = insert(conn, synthetic(800, seed=41), threshold=200)
    for run in opened:
        assert deliver(functions, body(run))[0] == {"batchItemFailures": []}
    assert partitions(conn) == labelled(opened)
    assert conn.run("SELECT count(*) FROM clustering_runs WHERE labels_retired_at IS NOT NULL")[0][0] == 0


def test_a_run_completing_out_of_order_beyond_the_newest_k_is_retired_at_once(database, conn, functions,
                                                                             monkeypatch):
    monkeypatch.setenv("LABEL_RETENTION", "1")
    monkeypatch.setenv("CLUSTER_RUNS", "every")
    first, second = insert(conn, synthetic(400, seed=42), threshold=200)
    assert deliver(functions, body(second))[0] == {"batchItemFailures": []}
    assert deliver(functions, body(first))[0] == {"batchItemFailures": []}
    assert partitions(conn) == labelled([second])
    assert run_row(conn, first.id)["status"] == "done" and retired_at(conn, first.id) is not None
    assert queries.events(queries.EventQuery())  # the current run (the second) still serves its labels
    np.testing.assert_array_equal(stored_labels(conn, second.id), spec_labels(label_store.load(400).data)[0])


def test_retention_runs_with_the_cluster_functions_rights_and_no_more(conn, functions, login_as, monkeypatch):
    monkeypatch.setenv("LABEL_RETENTION", "1")
    monkeypatch.setenv("CLUSTER_RUNS", "every")
    first, second = insert(conn, synthetic(400, seed=43), threshold=200)
    login_as("cluster")
    assert deliver(functions, body(first))[0] == {"batchItemFailures": []}
    assert deliver(functions, body(second))[0] == {"batchItemFailures": []}
    assert partitions(conn) == labelled([second]) and retired_at(conn, first.id) is not None
    # The helper keeps at least the newest run, and the login cannot drop a partition itself.
    with pytest.raises(Exception, match="keeps at least one run"):
        db.execute("SELECT clustering_labels_retire(0)")
    with pytest.raises(Exception, match="must be owner"):
        db.execute(f"DROP TABLE event_labels_r{second.id}")
    assert_one_label_set(conn, second)


def test_a_failed_retirement_leaves_the_run_done_and_the_next_completion_catches_up(database, conn, functions,
                                                                                   monkeypatch, caplog):
    monkeypatch.setenv("LABEL_RETENTION", "1")
    monkeypatch.setenv("CLUSTER_RUNS", "every")
    first, second, third = insert(conn, synthetic(600, seed=44), threshold=200)
    assert deliver(functions, body(first))[0] == {"batchItemFailures": []}
    real_retire = label_store.retire

    def broken(keep):
        raise RuntimeError("simulated failure while dropping")

    monkeypatch.setattr(label_store, "retire", broken)
    assert deliver(functions, body(second))[0] == {"batchItemFailures": []}  # acknowledged: the run is done
    assert run_row(conn, second.id)["status"] == "done"
    assert partitions(conn) == labelled([first, second])
    assert "retiring old runs' labels failed" in caplog.text
    monkeypatch.setattr(label_store, "retire", real_retire)
    assert deliver(functions, body(third))[0] == {"batchItemFailures": []}
    assert partitions(conn) == labelled([third])
    assert all(retired_at(conn, r.id) is not None for r in (first, second))


# ------------------------------------------------------------------------------------- 410 for retired labels

@pytest.fixture
def gateway(app, functions, database, conn):
    gw = Gateway(app, functions, workers=1)
    _, token = tokens.create(conn, "read", "dashboard")
    yield lambda target: gw.handle("GET", target, [("Authorization", f"Bearer {token}")], b"")
    gw.close()


def test_retired_runs_answer_410_naming_the_runs_that_keep_labels(gateway, conn):
    import json

    insert_plain(conn, 40)
    r10, r20, r30 = (done_run(conn, t, mod_labels(3)) for t in (10, 20, 30))
    first_page = validate(gateway(f"/events?run={r20}&limit=5"), "/events", "GET")
    current_page = validate(gateway("/events?limit=5"), "/events", "GET")
    assert current_page["items"][0]["run_id"] == r30
    assert [row[0] for row in conn.run("SELECT clustering_labels_retire(2)")] == [r10]

    reply = gateway(f"/events?run={r10}")
    assert reply.status == 410
    error = validate(reply, "/events", "GET")["error"]
    assert (error["code"], error["run"], error["runs_with_labels"]) == ("labels_retired", r10, [r30, r20])
    assert f"run {r10} were retired" in error["message"] and f"{r30}, {r20}" in error["message"]
    # Its summary and statistics stay.
    summary = json.loads(gateway(f"/clusters/summary?run={r10}").body)
    assert summary["run"]["id"] == r10 and sum(c["events"] for c in summary["clusters"]) == 10
    # A walk pinned to a run whose labels are retired meanwhile: 410, for a named run and for the current one.
    r40 = done_run(conn, 40, mod_labels(2))
    conn.run("SELECT clustering_labels_retire(1)")
    for page in (first_page, current_page):
        reply = gateway(f"/events?{'run=%d&' % r20 if page is first_page else ''}limit=5&cursor={page['next']}")
        assert reply.status == 410, reply.body
        assert validate(reply, "/events", "GET")["error"]["runs_with_labels"] == [r40]
    runs_ = validate(gateway("/runs"), "/runs", "GET")["runs"]
    assert [(r["id"], r["keeps_labels"], r["labels_retired_at"] is not None) for r in runs_] == [
        (r40, True, False), (r30, False, True), (r20, False, True), (r10, False, True)]
    event = json.loads(gateway("/events/1").body)
    assert [entry["run_id"] for entry in event["labels"]] == [r40]
    assert validate(gateway("/events?limit=5"), "/events", "GET")["items"][0]["run_id"] == r40


def test_a_first_page_whose_current_run_retires_while_it_is_read_is_read_again(database, conn, monkeypatch):
    insert_plain(conn, 20)
    old = done_run(conn, 10, mod_labels(2))
    execute = db.execute

    def retiring_meanwhile(sql, **params):
        rows = execute(sql, **params)
        if sql.startswith("SELECT e.id") and params.get("limit") == 6 and not retiring_meanwhile.done:
            retiring_meanwhile.done = True  # another run completes and retires the one this page read
            done_run(conn, 20, mod_labels(3))
            conn.run("SELECT clustering_labels_retire(1)")
        return rows

    retiring_meanwhile.done = False
    monkeypatch.setattr(db, "execute", retiring_meanwhile)
    page = queries.events(queries.EventQuery(limit=5))
    new = conn.run("SELECT id FROM clustering_runs WHERE threshold = 20")[0][0]
    assert retiring_meanwhile.done and new != old
    assert [(item["run_id"], item["label"]) for item in page.items] == [(new, mod_labels(3)(s)) for s in range(1, 6)]


# --------------------------------------------------------------------------------------------- supersession

def test_thresholds_opened_while_a_run_works_are_superseded_by_the_newest(database, conn, functions, monkeypatch):
    (first,) = insert(conn, synthetic(200, seed=45), threshold=200)
    later = []
    real_fit = fit.fit

    def burst_meanwhile(data, threads=1):
        if not later:
            later.extend(insert(conn, synthetic(600, seed=46), threshold=200))
        return real_fit(data, threads)

    monkeypatch.setattr(fit, "fit", burst_meanwhile)
    assert deliver(functions, body(first))[0] == {"batchItemFailures": []}
    second, third, fourth = later
    result, _ = deliver(functions, body(second), body(third))
    assert result == {"batchItemFailures": []}  # acknowledged
    assert deliver(functions, body(fourth))[0] == {"batchItemFailures": []}
    assert statuses(conn) == {200: ("done", 1, None), 400: ("superseded", 0, 600), 600: ("superseded", 0, 800),
                              800: ("done", 1, None)}
    np.testing.assert_array_equal(stored_labels(conn, fourth.id), spec_labels(label_store.load(800).data)[0])
    assert deliver(functions, body(second))[0] == {"batchItemFailures": []}  # a duplicate: still superseded
    assert statuses(conn)[400] == ("superseded", 0, 600)
    served = {r["threshold"]: (r["status"], r["superseded_by"]) for r in queries.runs()["runs"]}
    assert served[400] == ("superseded", third.id) and served[800] == ("done", None)
    with pytest.raises(Exception, match="superseded, not done"):
        queries.events(queries.EventQuery(run=second.id))


def test_every_mode_runs_every_threshold(database, conn, functions, monkeypatch):
    monkeypatch.setenv("CLUSTER_RUNS", "every")
    opened = insert(conn, synthetic(600, seed=47), threshold=200)
    for run in opened:
        assert deliver(functions, body(run))[0] == {"batchItemFailures": []}
    assert statuses(conn) == {t: ("done", 1, None) for t in (200, 400, 600)}


def test_a_failed_run_redriven_is_run_not_superseded(database, conn, functions):
    first, second = insert(conn, synthetic(400, seed=48), threshold=200)
    conn.run("UPDATE clustering_runs SET status = 'failed', attempts = 3, error = 'x' WHERE id = :id", id=first.id)
    assert deliver(functions, body(first))[0] == {"batchItemFailures": []}
    assert statuses(conn)[200] == ("done", 4, None)


def test_a_burst_drained_by_two_workers_ends_with_the_newest_done_and_nothing_stuck(database, conn, monkeypatch):
    monkeypatch.setenv("LABEL_RETENTION", "0")
    opened = insert(conn, synthetic(2000, seed=49), threshold=200)
    assert len(opened) == 10
    queue = [r for r in opened] + random.Random(7).sample(opened, 5)  # duplicates, as at-least-once delivery gives
    random.Random(1).shuffle(queue)
    assert queue[0].threshold != 2000  # the first message taken finds the newest run waiting: it is superseded
    lock, settled, queue_first = threading.Lock(), [], queue[0].threshold

    def worker():
        while True:
            with lock:
                if not queue:
                    return
                run = queue.pop(0)
            try:
                settled.append(service.process(run.id, run.threshold, 600.0))
            except runs.RunBusy:
                with lock:
                    queue.append(run)  # SQS redelivers it

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not any(t.is_alive() for t in threads)
    final = statuses(conn)
    assert final[2000] == ("done", 1, None) and final[queue_first][0] == "superseded"
    for threshold, (status, attempts, by) in final.items():
        assert (status, attempts) in (("done", 1), ("superseded", 0)), (threshold, final)
        assert by is None if status == "done" else by > threshold
    for run in opened:
        if final[run.threshold][0] == "done":
            assert_one_label_set(conn, run)
    assert sum(1 for s in settled if s["status"] == "done" and not s.get("skipped")) == \
        sum(1 for s, *_ in final.values() if s == "done")
