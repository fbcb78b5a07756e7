"""Quarantine: stored events an operator takes out of clustering (admin function and CLI), against PostgreSQL."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from test_clustering import body, deliver, insert, run_row, spec_labels, synthetic
from wattprint import admin, db, errors
from wattprint.clustering import labels as label_store, service

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def operate(request):
    """An operator request as the admin function and the CLI make it."""
    return admin.handle(request, more=service.OPERATOR_ACTIONS)


def poisoned(n, seed, at, **values):
    """n synthetic events; the one at index `at` carries `values` (e.g. active_power_w=1e160)."""
    events = synthetic(n, seed=seed)
    raw, record = events[at]
    events[at] = (raw + " (poisoned)", dataclasses.replace(record, **values))
    return events


def ids_of(conn, *seqs):
    return [conn.run("SELECT id FROM events WHERE seq = :s", s=s)[0][0] for s in seqs]


def labelled_seqs(conn, run_id):
    return [r[0] for r in conn.run("SELECT seq FROM event_labels WHERE run_id = :id ORDER BY seq", id=run_id)]


def test_one_implausible_event_fails_every_run_until_it_is_quarantined(database, conn, functions, monkeypatch):
    # Every run tried (CLUSTER_RUNS=every): by default the first, still pending, would be superseded by the second.
    monkeypatch.setenv("CLUSTER_RUNS", "every")
    # Reproduced first: one Active=1e160W event stored (before the parsers refused it) breaks the fit of every run
    # that includes it (estimate_bandwidth gives inf when the event is in its sample, MeanShift's seeding overflows
    # when it is not). The run now fails before fitting, naming the event, and the message is acknowledged.
    (first,) = insert(conn, poisoned(1000, seed=31, at=416, active_power_w=1e160))
    (second,) = insert(conn, synthetic(1000, seed=32))
    for run in (first, second):
        assert deliver(functions, body(run))[0] == {"batchItemFailures": []}
        row = run_row(conn, run.id)
        assert (row["status"], row["attempts"]) == ("failed", 1)
        assert row["error"] == ("invalid data: 1 event(s) with a feature beyond ±1e+15, too large to cluster, the "
                                "first at seq 417 (active_power_w = 1e+160); quarantine them (admin action quarantine) "
                                "and later runs leave them out")

    found = operate({"action": "quarantine", "filter": {"field": "active_power_w", "min": -1e5, "max": 1e5},
                       "reason": "Active=1e160W: a broken sensor"})
    (bad_id,) = ids_of(conn, 417)
    assert found == {"filter": "active_power_w outside [-100000.0, 100000.0]",
                     "reason": "Active=1e160W: a broken sensor", "quarantined": [bad_id], "already_quarantined": []}

    (third,) = insert(conn, synthetic(1000, seed=33))
    assert deliver(functions, body(third))[0] == {"batchItemFailures": []}
    row = run_row(conn, third.id)
    assert (row["status"], row["events"], row["error"]) == ("done", 2999, None)
    assert conn.run("SELECT excluded FROM clustering_runs WHERE id = :id", id=third.id) == [[1]]
    # Exactly the events with seq ≤ 3000 but the quarantined one, labelled as the spec labels them.
    assert labelled_seqs(conn, third.id) == [s for s in range(1, 3001) if s != 417]
    loaded = label_store.load(3000)
    assert loaded.excluded == 1 and 417 not in loaded.seqs.tolist() and len(loaded.data) == 2999
    labels = np.array([r[0] for r in conn.run("SELECT label FROM event_labels WHERE run_id = :id ORDER BY seq",
                                              id=third.id)])
    np.testing.assert_array_equal(labels, spec_labels(loaded.data)[0])
    assert conn.run("SELECT sum(events) FROM cluster_stats WHERE run_id = :id", id=third.id) == [[2999]]

    # The failed runs, sent again (a DLQ redrive, or the operator), now leave it out and complete too.
    assert deliver(functions, body(second))[0] == {"batchItemFailures": []}
    assert (run_row(conn, second.id)["status"], run_row(conn, second.id)["events"]) == ("done", 1999)

    listed = operate({"action": "list_quarantine"})
    assert listed["count"] == 1
    (entry,) = listed["events"]
    assert (entry["id"], entry["seq"], entry["reason"], entry["raw"]) == (
        bad_id, 417, "Active=1e160W: a broken sensor", "synthetic event 416 (poisoned)")
    assert entry["quarantined_at"] and entry["received_at"] and entry["device_id"] == 1

    # Released, it is in the next run again (which fails again: the value is still there); runs done keep theirs.
    assert operate({"action": "release_quarantine", "ids": [bad_id, bad_id + 1]}) == {
        "released": [bad_id], "not_quarantined": [bad_id + 1]}
    assert operate({"action": "list_quarantine"}) == {"count": 0, "events": []}
    (fourth,) = insert(conn, synthetic(1000, seed=34))
    deliver(functions, body(fourth))
    assert run_row(conn, fourth.id)["status"] == "failed"
    assert conn.run("SELECT excluded FROM clustering_runs WHERE id = :id", id=fourth.id) == [[0]]
    assert run_row(conn, third.id)["status"] == "done" and len(labelled_seqs(conn, third.id)) == 2999


def test_quarantine_by_ids_is_all_or_nothing_and_idempotent(database, conn):
    insert(conn, synthetic(20, seed=35), threshold=1000)
    a, b, c = ids_of(conn, 3, 5, 8)
    with pytest.raises(errors.UnknownEvents) as raised:
        operate({"action": "quarantine", "ids": [a, 10_000, 10_001]})
    assert raised.value.status == 404 and raised.value.details == {"ids": [10_000, 10_001]}
    assert "10000, 10001" in raised.value.message and "nothing was quarantined" in raised.value.message
    assert conn.run("SELECT count(*) FROM quarantined_events") == [[0]]

    assert operate({"action": "quarantine", "ids": [b, a]}) == {
        "reason": "quarantined by id", "quarantined": [a, b], "already_quarantined": []}
    assert operate({"action": "quarantine", "ids": [a, c], "reason": "again"}) == {
        "reason": "again", "quarantined": [c], "already_quarantined": [a]}
    assert [e["seq"] for e in operate({"action": "list_quarantine"})["events"]] == [3, 5, 8]
    assert [e["reason"] for e in operate({"action": "list_quarantine"})["events"]] == [
        "quarantined by id", "quarantined by id", "again"]


@pytest.mark.parametrize("field, values, bounds, picked", [
    ("voltage_v", {"voltage_v": float("nan")}, {"min": 100, "max": 300}, True),       # NaN is outside any range
    ("voltage_v", {"voltage_v": 1e9}, {"max": 300}, True),
    ("voltage_v", {"voltage_v": -1e9}, {"max": 300}, False),                          # only the bound given
    ("peak_2", {"peaks": (1.0, 1e200) + (1.0,) * 8}, {"max": 1e4}, True),
    ("fft_re", {"fft_re": (1.0,) * 8 + (-5e30,)}, {"min": -1e6}, True),              # any element of the list
    ("wifi_strength_dbm", {"wifi_strength_dbm": 40}, {"min": -120, "max": 0}, True),  # an integer column
    ("phase_rad", {"phase_rad": 3.0}, {"min": -3.1416, "max": 3.1416}, False),
])
def test_quarantine_by_filter_finds_the_offenders(database, conn, field, values, bounds, picked):
    insert(conn, poisoned(30, seed=36, at=11, **values), threshold=1000)
    (target,) = ids_of(conn, 12)
    preview = operate({"action": "quarantine", "filter": {"field": field, **bounds}, "dry_run": True})
    assert preview["dry_run"] is True and preview["matched"] == ([target] if picked else [])
    assert conn.run("SELECT count(*) FROM quarantined_events") == [[0]]  # a dry run stores nothing
    done = operate({"action": "quarantine", "filter": {"field": field, **bounds}})
    assert done["quarantined"] == ([target] if picked else []) and done["reason"] == done["filter"]


def test_a_filter_matching_too_many_events_quarantines_none(database, conn):
    insert(conn, synthetic(40, seed=37), threshold=1000)
    request = {"action": "quarantine", "filter": {"field": "voltage_v", "max": 0}}  # a slip: every event
    with pytest.raises(errors.TooManyEvents) as raised:
        operate({**request, "max_events": 39})
    assert raised.value.status == 409 and "matches more than 39 events" in raised.value.message
    assert conn.run("SELECT count(*) FROM quarantined_events") == [[0]]
    assert len(operate({**request, "max_events": 40})["quarantined"]) == 40


@pytest.mark.parametrize("request_, field", [
    ({}, "ids"),
    ({"ids": [1], "filter": {"field": "voltage_v", "max": 1}}, "ids"),
    ({"ids": []}, "ids"),
    ({"ids": [0]}, "ids"),
    ({"ids": ["7"]}, "ids"),
    ({"ids": [True]}, "ids"),
    ({"ids": [1], "reason": " "}, "reason"),
    ({"ids": [1], "reason": "x" * 501}, "reason"),
    ({"filter": "voltage_v>1"}, "filter"),
    ({"filter": {"field": "raw", "max": 1}}, "filter.field"),
    ({"filter": {"field": "voltage_v"}}, "filter"),
    ({"filter": {"field": "voltage_v", "max": float("inf")}}, "filter.max"),
    ({"filter": {"field": "voltage_v", "min": "1"}}, "filter.min"),
    ({"filter": {"field": "voltage_v", "min": 5, "max": 1}}, "filter.min"),
    ({"filter": {"field": "voltage_v", "max": 1, "below": 3}}, "filter"),
    ({"filter": {"field": "voltage_v", "max": 1}, "max_events": 0}, "max_events"),
    ({"filter": {"field": "voltage_v", "max": 1}, "dry_run": "yes"}, "dry_run"),
])
def test_bad_quarantine_requests_are_400_naming_the_field(database, conn, request_, field):
    insert(conn, synthetic(3, seed=38), threshold=1000)
    with pytest.raises(Exception) as raised:
        operate({"action": "quarantine", **request_})
    assert (raised.value.status, raised.value.details["field"]) == (400, field), raised.value.message
    assert conn.run("SELECT count(*) FROM quarantined_events") == [[0]]


def test_release_needs_ids(database):
    with pytest.raises(errors.InvalidQuarantine):
        operate({"action": "release_quarantine"})


def test_the_admin_function_answers_errors_in_the_error_shape(database, conn, functions):
    insert(conn, synthetic(3, seed=39), threshold=1000)
    (first,) = ids_of(conn, 1)
    assert functions.invoke("AdminFunction", {"action": "quarantine", "ids": [first]})["quarantined"] == [first]
    answer = functions.invoke("AdminFunction", {"action": "quarantine", "ids": [999]})
    assert answer["error"]["code"] == "event_not_found" and answer["error"]["ids"] == [999]
    assert functions.invoke("AdminFunction", {"action": "list_quarantine"})["count"] == 1


def test_the_local_cli_quarantines_lists_and_releases(database, conn, pg_url):
    insert(conn, poisoned(10, seed=40, at=4, active_power_w=1e160), threshold=1000)
    env = {**os.environ, "DATABASE_URL": pg_url, "DB_SCHEMA": database}

    def cli(*args):
        done = subprocess.run([sys.executable, "-m", "local.admin", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60)
        return done.returncode, json.loads(done.stdout) if done.returncode == 0 else done.stderr

    (bad,) = ids_of(conn, 5)
    assert cli("quarantine", "--field", "active_power_w", "--max", "1e5", "--dry-run")[1]["matched"] == [bad]
    code, out = cli("quarantine", "--field", "active_power_w", "--max", "1e5", "--reason", "1e160 W")
    assert (code, out["quarantined"], out["reason"]) == (0, [bad], "1e160 W")
    assert [e["id"] for e in cli("list_quarantine")[1]["events"]] == [bad]
    code, err = cli("quarantine", "--id", "99999")
    assert code == 2 and "no event has id 99999" in err
    assert cli("release_quarantine", "--id", str(bad))[1] == {"released": [bad], "not_quarantined": []}
    assert cli("list_quarantine")[1]["count"] == 0


def test_the_cluster_functions_role_reads_the_quarantine_and_cannot_change_it(database, conn, functions, login_as):
    (run,) = insert(conn, poisoned(1000, seed=41, at=9, voltage_v=5e20))
    conn.run("INSERT INTO quarantined_events (seq, reason) VALUES (10, 'by hand')")
    login_as("cluster")
    for statement in ("DELETE FROM quarantined_events", "INSERT INTO quarantined_events (seq, reason) VALUES (1, 'x')"):
        with pytest.raises(Exception, match="permission denied"):
            db.execute(statement)
    assert deliver(functions, body(run))[0] == {"batchItemFailures": []}
    row = run_row(conn, run.id)
    assert (row["status"], row["events"]) == ("done", 999)
    assert conn.run("SELECT excluded FROM clustering_runs WHERE id = :id", id=run.id) == [[1]]
