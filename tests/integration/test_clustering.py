"""Clustering runs through the cluster handler (SQS events, Powertools batch) against PostgreSQL."""

import dataclasses
import hashlib
import json
import os
import threading
import uuid
from datetime import datetime, timezone

import boto3
import numpy as np
import pytest
from botocore.exceptions import EndpointConnectionError
from moto import mock_aws
from pg8000.exceptions import InterfaceError
from sklearn.cluster import MeanShift, estimate_bandwidth

from local.pg import free_port
from local.sqs import SqsPoller, sqs_event
from wattprint import db
from wattprint.clustering import fit, labels as label_store, runs, service
from reference import independent_features
from wattprint.ingest import parser, store
from wattprint.errors import DatabaseUnavailable
from wattprint.ingest.record import EventRecord
from wattprint.report import queries

QUEUE_ARN = "arn:aws:sqs:us-east-1:000000000000:cluster"
PUBLISHED = {-1: 101, 0: 322, 1: 281, 2: 145, 3: 133, 4: 18}


# ------------------------------------------------------------------------------------------------ helpers

def current_run(conn) -> dict | None:
    """"The current run" as the report reads it (its one definition, report.queries.CURRENT_RUN)."""
    rows = conn.run(queries.CURRENT_RUN)
    return {"id": rows[0][0], "threshold": rows[0][1], "status": rows[0][2]} if rows else None


def spec_labels(data: np.ndarray):
    bandwidth = estimate_bandwidth(data, quantile=0.2, n_samples=200)
    ms = MeanShift(bandwidth=bandwidth, cluster_all=False, bin_seeding=True)
    return ms.fit_predict(data), bandwidth, ms.cluster_centers_


_BASE = EventRecord(
    device_id=1, firmware="16071801", event_type=1, coil_reversed=False, active_power_w=0.0, reactive_power_var=0.0,
    apparent_power_va=0.0, current_a=0.0, voltage_v=230.0, phase_rad=-0.5, peaks=(0.0,) * 10,
    fft_re=(1.0,) * 9, fft_img=(1.0,) * 9, sensor_time=datetime(2016, 10, 4, 16, 47, 50, tzinfo=timezone.utc),
    frequency_hz=49.87, wifi_strength_dbm=-62, dummy=20)
MODES = ((60.0, 20.0), (120.0, 50.0), (1200.0, 100.0), (1750.0, 279.0), (2200.0, 300.0))


def synthetic(n: int, seed: int = 0, identical: bool = False) -> list[tuple[str, EventRecord]]:
    """n (raw, record) events from five appliance-like modes with 2% noise (or n copies of one event)."""
    rng = np.random.default_rng(seed)
    events = []
    for i in range(n):
        active, reactive = MODES[0] if identical else MODES[rng.integers(len(MODES))]
        noise = np.ones(8) if identical else 1 + rng.normal(0, 0.02, 8)
        current = active / 230.0
        record = dataclasses.replace(
            _BASE, active_power_w=active * noise[0], reactive_power_var=reactive * noise[1],
            apparent_power_va=float(np.hypot(active, reactive)) * noise[2], current_a=current * noise[3],
            voltage_v=230.0 * noise[4], peaks=(current * noise[5], current * noise[6], current * noise[7]) + (1.0,) * 7)
        events.append((f"synthetic event {i}", record))
    return events


def insert(conn, events, threshold=1000) -> list[store.Run]:
    """Store events (raw, record) in one transaction, as ingest does; return the runs they opened."""
    conn.run("BEGIN")
    try:
        stored = store.insert_events(conn, events, threshold)
        conn.run("COMMIT")
    except BaseException:
        conn.run("ROLLBACK")
        raise
    return stored.runs


def message(body) -> dict:
    text = body if isinstance(body, str) else json.dumps(body)
    return {"MessageId": str(uuid.uuid4()), "ReceiptHandle": uuid.uuid4().hex, "Body": text,
            "MD5OfBody": hashlib.md5(text.encode()).hexdigest(), "Attributes": {"ApproximateReceiveCount": "1"}}


def deliver(functions, *bodies):
    """Invoke the cluster handler with one SQS event; return (response, the messages' ids in order)."""
    messages = [message(b) for b in bodies]
    result = functions.invoke("ClusterFunction", sqs_event(messages, QUEUE_ARN, "us-east-1"))
    return result, [m["MessageId"] for m in messages]


def failed_ids(result) -> list[str]:
    return [item["itemIdentifier"] for item in result["batchItemFailures"]]


def body(run: store.Run) -> dict:
    return {"run_id": run.id, "threshold": run.threshold}


def run_row(conn, run_id) -> dict:
    names = ("status", "attempts", "events", "bandwidth", "n_clusters", "error", "lease_until", "centres",
             "load_ms", "fit_ms", "store_ms", "finished_at")
    row = conn.run(f"SELECT {', '.join(names)} FROM clustering_runs WHERE id = :id", id=run_id)[0]
    return dict(zip(names, row))


def stored_labels(conn, run_id) -> np.ndarray:
    rows = conn.run("SELECT seq, label FROM event_labels WHERE run_id = :id ORDER BY seq", id=run_id)
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))
    return np.array([r[1] for r in rows], dtype=np.int64)


def stats(conn, run_id) -> dict[int, list]:
    return {r[0]: r[1:] for r in conn.run(
        "SELECT label, events, mean_active_power_w, min_active_power_w, max_active_power_w, centre "
        "FROM cluster_stats WHERE run_id = :id ORDER BY label", id=run_id)}


def partitions(conn) -> list[str]:
    return [r[0] for r in conn.run(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass('event_labels') ORDER BY 1")]


def standalone_tables(conn) -> list[str]:
    return [r[0] for r in conn.run(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE 'event_labels_r%' "
        "ORDER BY 1")]


def assert_one_label_set(conn, run: store.Run):
    assert conn.run("SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM event_labels WHERE run_id = :id",
                    id=run.id)[0] == [run.threshold, run.threshold, 1, run.threshold]
    assert conn.run("SELECT sum(events) FROM cluster_stats WHERE run_id = :id", id=run.id)[0][0] == run.threshold
    assert partitions(conn).count(f"event_labels_r{run.id}") == 1


# -------------------------------------------------------------------------------------- 1. the real file

def test_real_file_labels_match_the_spec_event_by_event(database, conn, functions, real_lines):
    events = [(raw, record) for _, raw, record in parser.parse_lines("\n".join(real_lines))]
    (run,) = insert(conn, events)
    assert (run.threshold, run_row(conn, run.id)["status"]) == (1000, "pending")

    result, _ = deliver(functions, body(run))
    assert result == {"batchItemFailures": []}

    expected_data = independent_features(real_lines)
    assert expected_data.shape == (1000, 8)
    np.testing.assert_array_equal(label_store.load(1000).data, expected_data)  # floats round-trip exactly
    expected, bandwidth, centres = spec_labels(expected_data)

    labels = stored_labels(conn, run.id)
    np.testing.assert_array_equal(labels, expected)
    row = run_row(conn, run.id)
    assert row["status"] == "done" and row["attempts"] == 1 and row["error"] is None and row["lease_until"] is None
    assert row["events"] == 1000
    assert row["bandwidth"] == float(bandwidth) and round(row["bandwidth"], 2) == 264.19
    assert row["n_clusters"] == len(centres) == 5
    np.testing.assert_array_equal(np.array(row["centres"]), centres)
    assert min(row["load_ms"], row["fit_ms"], row["store_ms"]) > 0

    counts = dict(zip(*np.unique(labels, return_counts=True)))
    assert {int(k): int(v) for k, v in counts.items()} == PUBLISHED
    by_label = stats(conn, run.id)
    assert {k: v[0] for k, v in by_label.items()} == PUBLISHED
    for label, (events, mean, low, high, centre) in by_label.items():
        rows = expected_data[expected == label]
        assert (events, mean, low, high) == (len(rows), rows[:, 0].mean(), rows[:, 0].min(), rows[:, 0].max())
        assert centre == rows.mean(axis=0).tolist()
    assert current_run(conn)["id"] == run.id


# ---------------------------------------------------------------------------------- 2. at least once

def test_duplicate_message_leaves_one_label_set(database, conn, functions):
    (run,) = insert(conn, synthetic(1000, seed=1))
    result, _ = deliver(functions, body(run))
    assert result == {"batchItemFailures": []}
    first = stored_labels(conn, run.id)
    finished = run_row(conn, run.id)["finished_at"]

    result, _ = deliver(functions, body(run))  # the same message again: the run is done, skipped
    assert result == {"batchItemFailures": []}
    assert_one_label_set(conn, run)
    np.testing.assert_array_equal(stored_labels(conn, run.id), first)
    row = run_row(conn, run.id)
    assert (row["status"], row["attempts"], row["finished_at"]) == ("done", 1, finished)
    assert standalone_tables(conn) == [f"event_labels_r{run.id}"]


def test_two_copies_in_one_batch_are_one_run(database, conn, functions):
    (run,) = insert(conn, synthetic(1000, seed=2))
    result, _ = deliver(functions, body(run), body(run))
    assert result == {"batchItemFailures": []}
    assert_one_label_set(conn, run)
    assert run_row(conn, run.id)["attempts"] == 1


def test_run_leased_to_a_live_worker_is_left_for_redelivery(database, conn, functions):
    (run,) = insert(conn, synthetic(1000, seed=3))
    conn.run("UPDATE clustering_runs SET status = 'running', attempts = 1, started_at = now(), "
             "lease_until = now() + interval '10 minutes' WHERE id = :id", id=run.id)
    result, (message_id,) = deliver(functions, body(run))
    assert failed_ids(result) == [message_id]
    row = run_row(conn, run.id)
    assert (row["status"], row["attempts"], row["error"]) == ("running", 1, None)
    assert conn.run("SELECT count(*) FROM event_labels")[0][0] == 0


def test_killed_worker_is_taken_over_and_its_leftover_table_replaced(database, conn, functions):
    (run,) = insert(conn, synthetic(1000, seed=4))
    # A worker claimed the run, created its table, copied part of the labels and died (lease now expired).
    conn.run("UPDATE clustering_runs SET status = 'running', attempts = 1, started_at = now() - interval '20 minutes', "
             "lease_until = now() - interval '1 minute' WHERE id = :id", id=run.id)
    conn.run(f"CREATE TABLE event_labels_r{run.id} (LIKE event_labels)")
    conn.run(f"INSERT INTO event_labels_r{run.id} SELECT {run.id}, g, 7 FROM generate_series(1, 400) g")

    result, _ = deliver(functions, body(run))
    assert result == {"batchItemFailures": []}
    row = run_row(conn, run.id)
    assert (row["status"], row["attempts"], row["events"]) == ("done", 2, 1000)
    assert_one_label_set(conn, run)
    assert 7 not in set(stored_labels(conn, run.id).tolist())
    expected, _, _ = spec_labels(label_store.load(1000).data)
    np.testing.assert_array_equal(stored_labels(conn, run.id), expected)


def test_lease_is_the_invocations_remaining_time_plus_a_margin(database, conn, functions, monkeypatch):
    (run,) = insert(conn, synthetic(1000, seed=14))
    seen = []
    real_fit = fit.fit

    def watched(data, threads=1):
        seen.append(conn.run("SELECT status, attempts, extract(epoch FROM lease_until - now())::float8 "
                             "FROM clustering_runs WHERE id = :id", id=run.id)[0])
        return real_fit(data, threads)

    monkeypatch.setattr(fit, "fit", watched)
    assert deliver(functions, body(run))[0] == {"batchItemFailures": []}
    ((status, attempts, lease_left),) = seen
    # ClusterFunction's Timeout is 900 s: the lease runs to the end of the invocation plus 60 s.
    assert (status, attempts) == ("running", 1) and 950 < lease_left <= 960
    assert run_row(conn, run.id)["lease_until"] is None


def test_a_worker_that_lost_its_lease_writes_nothing(database, conn):
    (run,) = insert(conn, synthetic(1000, seed=5))
    slow = runs.claim(run.id, run.threshold, lease=0.0)  # its lease is over at once
    taker = runs.claim(run.id, run.threshold, lease=600.0)
    assert (slow.attempt, taker.attempt) == (1, 2)
    with pytest.raises(runs.LeaseLost):
        service.compute(slow)
    assert runs.fail(slow, "too late") is False
    row = run_row(conn, run.id)
    assert (row["status"], row["attempts"], row["error"]) == ("running", 2, None)
    assert partitions(conn) == [] and standalone_tables(conn) == []
    service.compute(taker)
    assert run_row(conn, run.id)["status"] == "done"
    assert_one_label_set(conn, run)


# ----------------------------------------------------------------------------------- 3. poison → DLQ

@mock_aws
def test_poisoned_run_lands_in_the_dead_letter_queue_and_the_next_threshold_completes(
        database, conn, app, functions, monkeypatch):
    monkeypatch.setenv("CLUSTER_RUNS", "every")  # the first run is tried, not superseded by the second
    first, second = insert(conn, synthetic(2000, seed=6))
    assert (first.threshold, second.threshold) == (1000, 2000)
    client = boto3.client("sqs", region_name="us-east-1")
    dlq = client.create_queue(QueueName="cluster-dlq")["QueueUrl"]
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = client.create_queue(QueueName="cluster", Attributes={
        "VisibilityTimeout": "0",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})})["QueueUrl"]
    for run in (first, second):
        client.send_message(QueueUrl=queue, MessageBody=json.dumps(body(run)))

    real_fit = fit.fit

    def poisoned(data, threads=1):
        if len(data) == 1000:
            raise RuntimeError("simulated crash while fitting")
        return real_fit(data, threads)

    monkeypatch.setattr(fit, "fit", poisoned)
    (trigger,) = [t for t in app.sqs_triggers if t.function == "ClusterFunction"]
    assert (trigger.batch_size, trigger.report_failures) == (1, True)
    poller = SqsPoller(client, queue, trigger, functions, "us-east-1", wait_seconds=0)
    for _ in range(10):
        poller.poll_once()

    attributes = client.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert (attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"]) == ("0", "0")
    dead = client.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"]) for m in dead] == [body(first)]

    poisoned_row = run_row(conn, first.id)
    assert (poisoned_row["status"], poisoned_row["attempts"]) == ("failed", 3)
    assert poisoned_row["error"] == "RuntimeError: simulated crash while fitting"
    assert poisoned_row["lease_until"] is None
    assert conn.run("SELECT count(*) FROM event_labels WHERE run_id = :id", id=first.id)[0][0] == 0
    assert (run_row(conn, second.id)["status"], run_row(conn, second.id)["attempts"]) == ("done", 1)
    assert_one_label_set(conn, second)
    assert current_run(conn)["threshold"] == 2000

    # Redriven from the DLQ once the cause is fixed, the failed run is claimed again and completes.
    monkeypatch.setattr(fit, "fit", real_fit)
    result, _ = deliver(functions, body(first))
    assert result == {"batchItemFailures": []}
    assert (run_row(conn, first.id)["status"], run_row(conn, first.id)["attempts"]) == ("done", 4)
    assert_one_label_set(conn, first)


def test_malformed_messages_are_retried_towards_the_dead_letter_queue(database, conn, functions):
    (run,) = insert(conn, synthetic(1000, seed=7))
    result, ids = deliver(functions, "not json", {"run_id": "1", "threshold": 1000}, {"run_id": run.id})
    assert failed_ids(result) == ids
    assert run_row(conn, run.id)["status"] == "pending"


def test_messages_for_no_such_run_are_acknowledged_and_change_nothing(database, conn, functions):
    (run,) = insert(conn, synthetic(1000, seed=7))
    result, _ = deliver(functions, {"run_id": 999, "threshold": 1000}, {"run_id": run.id, "threshold": 2000})
    assert result == {"batchItemFailures": []}  # retrying cannot create the run
    row = run_row(conn, run.id)
    assert (row["status"], row["attempts"]) == ("pending", 0)
    assert conn.run("SELECT count(*) FROM event_labels")[0][0] == 0


# ------------------------------------------------------------- 4. order, degenerate data, transient failures

def test_out_of_order_completion_keeps_the_highest_threshold_current(database, conn, functions, monkeypatch):
    monkeypatch.setenv("CLUSTER_RUNS", "every")
    first, second = insert(conn, synthetic(2000, seed=8))
    assert deliver(functions, body(second))[0] == {"batchItemFailures": []}
    assert current_run(conn)["id"] == second.id
    assert deliver(functions, body(first))[0] == {"batchItemFailures": []}  # finishes last
    current = current_run(conn)
    assert (current["id"], current["threshold"]) == (second.id, 2000)
    assert_one_label_set(conn, first)
    assert_one_label_set(conn, second)
    # Each run labels its own events: run 1000 is the spec on events 1..1000, run 2000 on 1..2000.
    np.testing.assert_array_equal(stored_labels(conn, first.id), spec_labels(label_store.load(1000).data)[0])
    np.testing.assert_array_equal(stored_labels(conn, second.id), spec_labels(label_store.load(2000).data)[0])


def test_degenerate_data_fails_the_run_once_without_retrying(database, conn, functions):
    (run,) = insert(conn, synthetic(1000, identical=True))
    result, _ = deliver(functions, body(run))
    assert result == {"batchItemFailures": []}  # acknowledged: retrying cannot help
    row = run_row(conn, run.id)
    assert (row["status"], row["attempts"], row["lease_until"]) == ("failed", 1, None)
    assert row["error"] == ("degenerate data: estimate_bandwidth gave 0.0 for 1000 events (1 distinct feature rows); "
                            "MeanShift needs a positive bandwidth")
    assert conn.run("SELECT count(*) FROM event_labels")[0][0] == 0
    assert conn.run("SELECT count(*) FROM cluster_stats")[0][0] == 0
    assert standalone_tables(conn) == [] and current_run(conn) is None


def test_fewer_events_than_the_threshold_fails_the_run_without_retrying(database, conn, functions):
    insert(conn, synthetic(1000, seed=9))
    run_id = conn.run("INSERT INTO clustering_runs (threshold) VALUES (3000) RETURNING id")[0][0]
    result, _ = deliver(functions, {"run_id": run_id, "threshold": 3000})
    assert result == {"batchItemFailures": []}
    row = run_row(conn, run_id)
    assert (row["status"], row["attempts"]) == ("failed", 1)
    assert row["error"] == "insufficient events: 1000 stored with seq ≤ 3000, the run needs 3000"


def test_non_finite_features_fail_the_run_without_retrying(database, conn, functions):
    (run,) = insert(conn, synthetic(1000, seed=10))
    conn.run("UPDATE events SET peaks[2] = 'NaN' WHERE seq = 17")
    conn.run("UPDATE events SET peaks[3] = NULL WHERE seq = 30")  # a NULL element: the schema allows it
    result, _ = deliver(functions, body(run))
    assert result == {"batchItemFailures": []}
    row = run_row(conn, run.id)
    assert row["status"] == "failed"
    assert row["error"] == "invalid data: 2 event(s) with a non-finite feature, the first at seq 17 (peak_2 = nan)"


def test_unreachable_database_is_retried_and_leaves_the_run_pending(database, conn, functions, monkeypatch):
    (run,) = insert(conn, synthetic(1000, seed=11))
    reachable = os.environ["DATABASE_URL"]
    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/postgres")  # nobody there
    db.reset()
    result, (message_id,) = deliver(functions, body(run))
    assert failed_ids(result) == [message_id]
    row = run_row(conn, run.id)
    assert (row["status"], row["attempts"], row["error"]) == ("pending", 0, None)

    monkeypatch.setenv("DATABASE_URL", reachable)
    db.reset()
    assert deliver(functions, body(run))[0] == {"batchItemFailures": []}
    assert run_row(conn, run.id)["status"] == "done"


def test_database_lost_mid_run_releases_the_lease_without_failing_the_run(database, conn, functions, monkeypatch):
    (run,) = insert(conn, synthetic(1000, seed=12))
    real_store = label_store.store

    def lost(*args, **kwargs):
        raise DatabaseUnavailable()

    monkeypatch.setattr(label_store, "store", lost)
    result, (message_id,) = deliver(functions, body(run))
    assert failed_ids(result) == [message_id]
    row = run_row(conn, run.id)
    assert (row["status"], row["attempts"], row["error"]) == ("running", 1, None)
    assert conn.run("SELECT lease_until <= now() FROM clustering_runs WHERE id = :id", id=run.id)[0][0] is True

    monkeypatch.setattr(label_store, "store", real_store)
    assert deliver(functions, body(run))[0] == {"batchItemFailures": []}  # taken over at once
    row = run_row(conn, run.id)
    assert (row["status"], row["attempts"]) == ("done", 2)
    assert_one_label_set(conn, run)


# ------------------------------------------------------------------------------ least privilege (AWS role)

def test_runs_as_the_cluster_functions_own_role(conn, functions, login_as):
    (run,) = insert(conn, synthetic(1000, seed=13))
    role = login_as("cluster")
    assert db.execute("SELECT current_user")[0][0] == role
    for statement in ("CREATE TABLE not_allowed (x int)", "SELECT count(*) FROM api_tokens",
                      "DELETE FROM events", "INSERT INTO events (seq) VALUES (0)", "UPDATE event_counter SET total = 0",
                      "SELECT token_id FROM live_connections"):
        with pytest.raises(Exception, match="permission denied"):
            db.execute(statement)
    assert deliver(functions, body(run))[0] == {"batchItemFailures": []}
    assert run_row(conn, run.id)["status"] == "done"
    assert_one_label_set(conn, run)
    # The DDL helpers act only on a run that is running: they cannot be used to drop a finished run's labels.
    with pytest.raises(Exception, match="is not running"):
        db.execute("SELECT clustering_labels_open(:id)", id=run.id)
    assert_one_label_set(conn, run)


# --------------------------------------------------------------------- workers Lambda stops, lost replies (review)

class Killed(BaseException):
    """What a Lambda timeout or out-of-memory stop looks like from the code's side: nothing after it runs."""


@mock_aws
def test_a_worker_stopped_on_every_receive_leaves_a_failed_run_not_a_running_one(database, conn, functions,
                                                                                  monkeypatch):
    (run,) = insert(conn, synthetic(1000, seed=21))
    client = boto3.client("sqs", region_name="us-east-1")
    dlq = client.create_queue(QueueName="cluster-dlq")["QueueUrl"]
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = client.create_queue(QueueName="cluster", Attributes={
        "VisibilityTimeout": "0", "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})
    })["QueueUrl"]
    client.send_message(QueueUrl=queue, MessageBody=json.dumps(body(run)))
    monkeypatch.setenv("CLUSTER_QUEUE_URL", queue)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")

    def stopped(data, threads=1):
        # By the next receive (the visibility timeout is 6x the function's), this worker's lease is long over.
        conn.run("UPDATE clustering_runs SET lease_until = now() - interval '1 second' WHERE id = :id", id=run.id)
        raise Killed()

    monkeypatch.setattr(fit, "fit", stopped)
    for _ in range(5):  # what the event source mapping does; a stopped invocation deletes nothing
        messages = client.receive_message(QueueUrl=queue, AttributeNames=["All"]).get("Messages", [])
        if messages:
            with pytest.raises(Killed):
                functions.invoke("ClusterFunction", sqs_event(messages, "arn:aws:sqs:us-east-1:000000000000:cluster",
                                                              "us-east-1"))
    assert [json.loads(m["Body"]) for m in client.receive_message(QueueUrl=dlq)["Messages"]] == [body(run)]
    assert (run_row(conn, run.id)["status"], run_row(conn, run.id)["attempts"]) == ("running", 3)

    # Its third attempt (RUN_MAX_ATTEMPTS' default) stopped too: the sweep gives it up rather than send it again.
    assert functions.invoke("SweepFunction", {}) == {"sent": [], "rerun": [], "failed": [run.threshold],
                                                     "idempotency_keys_purged": 0,
                                                     "alerts": {"notifications_sent": 0, "energy_changes_resent": 0},
                                                     "asked": {"energy_feed": False, "appliance_states": False}}
    row = run_row(conn, run.id)
    assert row["status"] == "failed" and row["error"].startswith("gave up after 3 attempts: the last stopped "
                                                                 "without finishing"), row
    assert functions.invoke("SweepFunction", {}) == {"sent": [], "rerun": [], "failed": [],
                                                     "idempotency_keys_purged": 0,
                                                     "alerts": {"notifications_sent": 0, "energy_changes_resent": 0},
                                                     "asked": {"energy_feed": False, "appliance_states": False}}
    # A redrive from the dead-letter queue (or a re-sent message) still runs it.
    monkeypatch.undo()
    assert deliver(functions, body(run))[0] == {"batchItemFailures": []}
    assert run_row(conn, run.id)["status"] == "done"
    assert_one_label_set(conn, run)


def test_the_sweep_marks_stopped_runs_even_when_sqs_is_unreachable(database, conn, functions, monkeypatch):
    run, last = insert(conn, synthetic(2000, seed=27))
    runs.claim(run.id, run.threshold, lease=0.0)
    runs.claim(last.id, last.threshold, lease=0.0)
    conn.run("UPDATE clustering_runs SET attempts = 3 WHERE id = :id", id=last.id)
    monkeypatch.setenv("CLUSTER_QUEUE_URL", "http://127.0.0.1:9/000000000000/cluster")  # nothing listens there
    for name, value in (("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "test"),
                        ("AWS_SECRET_ACCESS_KEY", "test"), ("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:9")):
        monkeypatch.setenv(name, value)
    conn.run("UPDATE clustering_runs SET enqueued_at = NULL, created_at = now() - interval '1 hour'")
    with pytest.raises(EndpointConnectionError):  # the re-send fails, and the sweep says so
        functions.invoke("SweepFunction", {})
    assert run_row(conn, run.id)["status"] == "pending"  # for the next sweep to send
    assert run_row(conn, last.id)["status"] == "failed"


def test_the_sweep_leaves_runs_under_a_live_lease_alone(database, conn):
    first, second = insert(conn, synthetic(2000, seed=26))
    runs.claim(first.id, first.threshold, lease=600.0)
    runs.claim(second.id, second.threshold, lease=0.0)
    assert runs.expire(3) == [runs.Expired(second.id, second.threshold, 1, "pending")]
    assert (run_row(conn, first.id)["status"], run_row(conn, second.id)["status"]) == ("running", "pending")


def test_a_claim_whose_reply_was_lost_gets_its_own_attempt_back(database, conn, monkeypatch):
    """db.execute re-sends a statement after a network error, also when the first send committed: the claim must
    recognise its own lease rather than report the run busy."""
    (run,) = insert(conn, synthetic(1000, seed=22))
    connection = db.connection()
    send = connection.run
    lost = []

    def reply_lost_once(sql, **params):
        result = send(sql, **params)
        if not lost and "UPDATE clustering_runs" in sql:
            lost.append(sql)
            raise InterfaceError("network error")  # committed on the server; the reply never came
        return result

    monkeypatch.setattr(connection, "run", reply_lost_once)
    claimed = runs.claim(run.id, run.threshold, 600.0)
    assert lost and claimed == runs.Claim(run.id, run.threshold, 1)
    assert (run_row(conn, run.id)["status"], run_row(conn, run.id)["attempts"]) == ("running", 1)
    with pytest.raises(runs.RunBusy):  # another claim (another token) still finds the run busy
        runs.claim(run.id, run.threshold, 600.0)


def test_a_connection_killed_mid_store_rolls_back_and_the_run_is_taken_over(database, conn, functions, monkeypatch):
    (run,) = insert(conn, synthetic(1000, seed=23))
    finish = runs.finish

    def killed_connection(c, *args, **kwargs):
        conn.run("SELECT pg_terminate_backend(:pid)", pid=c.run("SELECT pg_backend_pid()")[0][0])
        return finish(c, *args, **kwargs)

    monkeypatch.setattr(runs, "finish", killed_connection)
    result, (message_id,) = deliver(functions, body(run))
    assert failed_ids(result) == [message_id]
    row = run_row(conn, run.id)
    assert (row["status"], row["attempts"]) == ("running", 1)
    assert conn.run("SELECT lease_until <= now() FROM clustering_runs WHERE id = :id", id=run.id) == [[True]]
    assert partitions(conn) == [] and standalone_tables(conn) == []
    assert conn.run("SELECT count(*) FROM cluster_stats") == [[0]]
    monkeypatch.setattr(runs, "finish", finish)
    assert deliver(functions, body(run))[0] == {"batchItemFailures": []}
    assert run_row(conn, run.id)["status"] == "done"
    assert_one_label_set(conn, run)


def test_workers_on_two_runs_with_duplicates_at_once(database, conn, monkeypatch):
    monkeypatch.setenv("CLUSTER_RUNS", "every")
    first, second = insert(conn, synthetic(2000, seed=24))
    outcomes, busy = [], []

    def worker(run):
        try:
            outcomes.append(service.process(run.id, run.threshold, 600.0))
        except runs.RunBusy as error:
            busy.append(error)

    threads = [threading.Thread(target=worker, args=(r,)) for r in (first, second, first, second, first)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(outcomes) + len(busy) == 5
    for run in (first, second):
        assert (run_row(conn, run.id)["status"], run_row(conn, run.id)["attempts"]) == ("done", 1)
        assert_one_label_set(conn, run)


def test_a_claim_racing_a_store_in_progress_is_busy_not_a_second_owner(database, conn, monkeypatch):
    (run,) = insert(conn, synthetic(1000, seed=25))
    slow = runs.claim(run.id, run.threshold, lease=0.0)  # its lease is over at once: a takeover would be allowed
    locked, go, results = threading.Event(), threading.Event(), {}
    lock = runs.lock

    def paused_lock(c, r):
        lock(c, r)
        locked.set()
        go.wait(30)

    def attempt(key, work):
        try:
            results[key] = work()
        except Exception as error:  # noqa: BLE001 - the test inspects what each thread got
            results[key] = error

    monkeypatch.setattr(runs, "lock", paused_lock)
    storing = threading.Thread(target=attempt, args=("store", lambda: service.compute(slow)))
    storing.start()
    assert locked.wait(30)
    claiming = threading.Thread(target=attempt, args=("claim", lambda: runs.claim(run.id, run.threshold, 600.0)))
    claiming.start()
    claiming.join(1.0)
    assert claiming.is_alive()  # waiting for the store's row lock
    go.set()
    storing.join(60)
    claiming.join(60)
    assert isinstance(results["store"], dict) and isinstance(results["claim"], runs.RunBusy), results
    assert (run_row(conn, run.id)["status"], run_row(conn, run.id)["attempts"]) == ("done", 1)
    assert_one_label_set(conn, run)


def test_security_definer_helpers_pin_their_search_path(database, conn):
    rows = conn.run("SELECT proname, prosecdef, proconfig FROM pg_proc "
                    "WHERE proname LIKE 'clustering_labels_%' AND pronamespace = current_schema()::regnamespace")
    assert sorted((name, secdef, config) for name, secdef, config in rows) == [
        (name, True, [f"search_path={database}, pg_temp"])
        for name in ("clustering_labels_attach", "clustering_labels_open", "clustering_labels_retire")]


# ------------------------------------------------------------- errors served to read tokens (no driver internals)

INTERNALS = ("'F'", "'L'", "'R'", "'W'", "'D'", ".c'", "SELECT", "plpgsql")


def real_database_error(conn):
    from pg8000.exceptions import DatabaseError

    try:
        conn.run("DO $$ BEGIN PERFORM 1 / (SELECT count(*) FROM events WHERE id < 0); END $$")
    except DatabaseError as error:
        return error
    raise AssertionError("the statement must fail")


def test_a_run_failed_by_a_database_error_serves_its_message_without_driver_internals(database, conn, functions,
                                                                                       monkeypatch):
    from wattprint.report import queries as report

    error = real_database_error(conn)
    assert all(key in str(error) for key in ("'F'", "'L'", "'R'", "'W'"))  # what pg8000 puts in its text
    (run,) = insert(conn, synthetic(1000, seed=31))

    def broken(threshold, device_id=None, first=1):
        db.execute("DO $$ BEGIN PERFORM 1 / (SELECT count(*) FROM events WHERE id < 0); END $$")

    monkeypatch.setattr(label_store, "load", broken)
    assert failed_ids(deliver(functions, body(run))[0])  # left for redelivery, as any unexpected error
    stored = run_row(conn, run.id)["error"]
    served = next(r for r in report.runs()["runs"] if r["id"] == run.id)["error"]
    for text in (stored, served):
        assert text == "DatabaseError: division by zero (SQLSTATE 22012)"

    # A row failed before errors were scrubbed is served scrubbed.
    conn.run("UPDATE clustering_runs SET error = :e WHERE id = :id", e=f"DatabaseError: {error}", id=run.id)
    served = next(r for r in report.runs()["runs"] if r["id"] == run.id)["error"]
    assert served == "DatabaseError: division by zero (SQLSTATE 22012)"
    assert not any(marker in served for marker in INTERNALS)


@pytest.mark.parametrize("text,expected", [
    ("plain words stay", "plain words stay"),
    ("X: {'S': 'ERROR', 'C': '23505', 'M': 'duplicate key', 'D': 'Key (id)=(7) exists.', 'F': 'nbtinsert.c', "
     "'L': '666', 'R': '_bt_check_unique'} and more", "X: duplicate key (SQLSTATE 23505) and more"),
    ("{'S': 'ERROR', 'M': \"it's quoted\", 'F': 'x.c'}", "it's quoted (SQLSTATE unknown)"),
])
def test_scrub_keeps_the_message_and_sqlstate_only(text, expected):
    assert db.scrub(text) == expected
