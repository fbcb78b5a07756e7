"""No run is stranded: the sweep sends lost runs again, re-runs attempts that stopped, gives up after a bound, and
every run marked failed adds to the RunsFailed metric (CloudWatch embedded metric format) that an alarm watches."""

import json

import boto3
import pytest
from moto import mock_aws
from pg8000.exceptions import InterfaceError

from local.sqs import sqs_event
from test_clustering import Killed, assert_one_label_set, body, deliver, insert, run_row, synthetic
from wattprint import db, observability
from wattprint.clustering import fit as clustering, runs, sweep

QUEUE_ARN = "arn:aws:sqs:us-east-1:000000000000:cluster"


def emitted(capsys) -> list[dict]:
    """The embedded-metric-format documents printed since the last call: {namespace, dimensions, metric: value}."""
    out = []
    for line in capsys.readouterr().out.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and "_aws" in doc:
            (directive,) = doc["_aws"]["CloudWatchMetrics"]
            names = [m["Name"] for m in directive["Metrics"]]
            dimensions = {name: doc[name] for group in directive["Dimensions"] for name in group}
            out.append({"namespace": directive["Namespace"], "dimensions": dimensions,
                        **{name: doc[name] for name in names}})
    return out


RUNS_FAILED = {"namespace": "wattprint", "dimensions": {"service": "wattprint"}}


@pytest.fixture
def queue(monkeypatch):
    with mock_aws():
        client = boto3.client("sqs", region_name="us-east-1")
        url = client.create_queue(QueueName="cluster", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
        monkeypatch.setenv("CLUSTER_QUEUE_URL", url)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        yield client, url


def sweep_outcome(functions) -> dict:
    """The sweep function's clustering answer without the idempotency keys it purged (ingest's business, tested
    there); the alerts' housekeeping of the same wake has nothing to do here."""
    outcome = functions.invoke("SweepFunction", {})
    assert outcome.pop("idempotency_keys_purged") == 0
    assert outcome.pop("alerts") == {"notifications_sent": 0, "energy_changes_resent": 0}
    assert outcome.pop("asked") == {"energy_feed": False, "appliance_states": False}  # no queues to ask here
    return outcome


def drain(client, url) -> list[dict]:
    """Every message waiting in the queue (received and deleted)."""
    bodies = []
    while True:
        messages = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        for m in messages:
            bodies.append(json.loads(m["Body"]))
            client.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def died(conn, run):
    """What a worker that Lambda stopped leaves: the run running under its claim, the lease over."""
    def stopped(data, threads=1):
        conn.run("UPDATE clustering_runs SET lease_until = now() - interval '1 second' WHERE id = :id", id=run.id)
        raise Killed()
    return stopped


def test_a_transient_crash_heals_by_itself(database, conn, functions, queue, monkeypatch, capsys):
    client, url = queue
    (run,) = insert(conn, synthetic(1000, seed=41))
    real_fit = clustering.fit
    monkeypatch.setattr(clustering, "fit", died(conn, run))
    with pytest.raises(Killed):
        deliver(functions, body(run))
    assert (run_row(conn, run.id)["status"], run_row(conn, run.id)["attempts"]) == ("running", 1)
    monkeypatch.setattr(clustering, "fit", real_fit)  # the cause was transient

    assert sweep_outcome(functions) == {"sent": [1000], "rerun": [1000], "failed": []}
    row = run_row(conn, run.id)
    assert row["status"] == "pending" and row["error"] == ("attempt 1 stopped without finishing (a Lambda timeout, "
                                                           "out of memory or a crash); sent again by the sweep")
    assert [d for d in emitted(capsys) if "RunsFailed" in d] == []  # nothing failed
    (message,) = drain(client, url)
    assert deliver(functions, message)[0] == {"batchItemFailures": []}
    row = run_row(conn, run.id)
    assert (row["status"], row["attempts"], row["error"]) == ("done", 2, None)
    assert_one_label_set(conn, run)
    assert sweep_outcome(functions) == {"sent": [], "rerun": [], "failed": []}


def test_a_poisonous_run_is_tried_a_bounded_number_of_times_then_failed_with_the_metric(
        database, conn, functions, queue, monkeypatch, capsys):
    client, url = queue
    monkeypatch.setenv("RUN_MAX_ATTEMPTS", "2")
    (run,) = insert(conn, synthetic(1000, seed=42))
    monkeypatch.setattr(clustering, "fit", died(conn, run))  # every attempt dies (out of memory, say)
    pending = [body(run)]
    sweeps = []
    for _ in range(6):  # the original message, then whatever the sweep sends: it must stop on its own
        for message in pending:
            with pytest.raises(Killed):
                deliver(functions, message)
        sweeps.append(sweep_outcome(functions))
        pending = drain(client, url)
        if not pending:
            break
    assert sweeps == [{"sent": [1000], "rerun": [1000], "failed": []}, {"sent": [], "rerun": [], "failed": [1000]}]
    row = run_row(conn, run.id)
    assert (row["status"], row["attempts"]) == ("failed", 2)
    assert row["error"] == ("gave up after 2 attempts: the last stopped without finishing (a Lambda timeout, out of "
                            "memory, a crash or a lost database connection; see the cluster function's logs)")
    assert emitted(capsys) == [{**RUNS_FAILED, "RunsFailed": [1.0]}]  # one run failed: one count, from the sweep


def test_the_claim_gives_up_a_run_whose_last_allowed_attempt_died(database, conn, functions, capsys):
    (run,) = insert(conn, synthetic(1000, seed=43))
    for _ in range(3):
        runs.claim(run.id, run.threshold, lease=0.0)  # three attempts, each stopped (lease over at once)
    assert deliver(functions, body(run))[0] == {"batchItemFailures": []}  # acknowledged: no fourth attempt
    row = run_row(conn, run.id)
    assert (row["status"], row["attempts"]) == ("failed", 3) and row["error"].startswith("gave up after 3 attempts")
    assert emitted(capsys) == [{**RUNS_FAILED, "RunsFailed": [1.0]}]
    # An operator's redrive (or any later message) still runs a failed run.
    assert deliver(functions, body(run))[0] == {"batchItemFailures": []}
    assert (run_row(conn, run.id)["status"], run_row(conn, run.id)["attempts"]) == ("done", 4)


def test_a_give_up_whose_reply_was_lost_answers_the_same_when_re_sent(database, conn, monkeypatch):
    (run,) = insert(conn, synthetic(1000, seed=44))
    for _ in range(3):
        runs.claim(run.id, run.threshold, lease=0.0)
    connection = db.connection()
    send = connection.run
    lost = []

    def reply_lost_once(sql, **params):
        result = send(sql, **params)
        if not lost and "given_up" in sql:
            lost.append(sql)
            raise InterfaceError("network error")  # committed on the server; the reply never came
        return result

    monkeypatch.setattr(connection, "run", reply_lost_once)
    assert runs.claim(run.id, run.threshold, 600.0) == runs.Skipped(run.id, run.threshold, "failed")
    assert lost and (run_row(conn, run.id)["status"], run_row(conn, run.id)["attempts"]) == ("failed", 3)


def test_every_run_marked_failed_adds_to_the_metric_and_a_done_run_does_not(database, conn, functions, capsys,
                                                                            monkeypatch):
    monkeypatch.setenv("CLUSTER_RUNS", "every")  # the first run is done, not superseded by the second
    first, second = insert(conn, synthetic(2000, seed=45))
    assert deliver(functions, body(first))[0] == {"batchItemFailures": []}
    assert run_row(conn, first.id)["status"] == "done"
    assert [d for d in emitted(capsys) if "RunsFailed" in d] == []  # (RunsDone and the durations are emitted)
    conn.run("UPDATE events SET voltage_v = 'NaN' WHERE seq = 1500")  # permanent: invalid data
    assert deliver(functions, body(second))[0] == {"batchItemFailures": []}
    assert run_row(conn, second.id)["status"] == "failed"
    assert [d for d in emitted(capsys) if "RunsFailed" in d] == [{**RUNS_FAILED, "RunsFailed": [1.0]}]


def test_an_unexpected_error_marks_the_run_failed_with_the_metric_and_leaves_it_for_retry(
        database, conn, functions, monkeypatch, capsys):
    (run,) = insert(conn, synthetic(1000, seed=46))

    def bug(data, threads=1):
        raise RuntimeError("a bug")

    monkeypatch.setattr(clustering, "fit", bug)
    result, (message_id,) = deliver(functions, body(run))
    assert result == {"batchItemFailures": [{"itemIdentifier": message_id}]}
    assert run_row(conn, run.id)["error"] == "RuntimeError: a bug"
    assert emitted(capsys) == [{**RUNS_FAILED, "RunsFailed": [1.0]}]


def test_a_run_left_pending_is_sent_again_after_the_bound_only(database, conn, functions, queue, monkeypatch):
    client, url = queue
    first, second = insert(conn, synthetic(2000, seed=47))
    conn.run("UPDATE clustering_runs SET enqueued_at = now() - interval '2 hours', sends = 1 WHERE id = :id",
             id=first.id)
    conn.run("UPDATE clustering_runs SET enqueued_at = now() - interval '10 minutes', sends = 1 WHERE id = :id",
             id=second.id)
    assert sweep_outcome(functions)["sent"] == [1000]  # lost an hour ago; 2000 may still be queued
    assert drain(client, url) == [body(first)]
    assert sweep_outcome(functions)["sent"] == []  # sent just now: not again at once
    assert conn.run("SELECT sends FROM clustering_runs ORDER BY threshold") == [[2], [1]]

    monkeypatch.setenv("RUN_RESEND_AFTER_SECONDS", "300")
    assert sweep_outcome(functions)["sent"] == [2000]
    assert deliver(functions, body(second))[0] == {"batchItemFailures": []}  # done: never sent again
    monkeypatch.setenv("RUN_RESEND_AFTER_SECONDS", "0")
    assert sweep_outcome(functions)["sent"] == [1000]


@pytest.mark.parametrize("mode", ["every", "latest"])
def test_after_a_local_restart_the_first_sweep_runs_every_stranded_run(database, conn, functions, queue, monkeypatch,
                                                                      mode):
    monkeypatch.setenv("CLUSTER_RUNS", mode)
    client, url = queue
    done, running, pending, sent = insert(conn, synthetic(4000, seed=48))
    assert deliver(functions, body(done))[0] == {"batchItemFailures": []}
    runs.claim(running.id, running.threshold, lease=900.0)  # a worker of the process that was killed
    conn.run("UPDATE clustering_runs SET enqueued_at = now(), sends = 1 WHERE id IN (:a, :b)", a=pending.id,
             b=running.id)  # the message went to the in-memory queue, which died with the process
    conn.run("UPDATE clustering_runs SET enqueued_at = NULL WHERE id = :id", id=sent.id)  # ingest died before sending

    assert sweep_outcome(functions) == {"sent": [], "rerun": [], "failed": []}  # nothing looks lost
    assert sweep.after_restart() == {"leases_ended": 1, "messages_lost": 2}
    assert sweep_outcome(functions) == {"sent": [2000, 3000, 4000], "rerun": [2000], "failed": []}
    for message in drain(client, url):
        assert deliver(functions, message)[0] == {"batchItemFailures": []}
    statuses = [tuple(r) for r in conn.run("SELECT status, superseded_by FROM clustering_runs ORDER BY threshold")]
    if mode == "every":
        assert statuses == [("done", None)] * 4
    else:  # each run delivered while a later one waited was superseded by the next: none stranded, none run twice
        ids = [r[0] for r in conn.run("SELECT id FROM clustering_runs ORDER BY threshold")]
        assert statuses == [("superseded", ids[1]), ("superseded", ids[2]), ("superseded", ids[3]), ("done", None)]
    # Settled runs, superseded ones included, are never sent again, however stale their last message.
    monkeypatch.setenv("RUN_RESEND_AFTER_SECONDS", "0")
    assert sweep_outcome(functions) == {"sent": [], "rerun": [], "failed": []}
    if mode == "every":  # the stranded running run was run again, the done one never
        assert run_row(conn, running.id)["attempts"] == 2 and run_row(conn, done.id)["attempts"] == 1
    else:  # superseded before any claim: the done-to-be run never started, the stranded one not again
        assert run_row(conn, running.id)["attempts"] == 1 and run_row(conn, done.id)["attempts"] == 0


def test_the_failed_run_alarm_watches_the_metric_the_code_emits(app):
    from local.template import _Loader  # the template's short-form tags
    import yaml

    from tests.conftest import ROOT

    resources = yaml.load((ROOT / "template.yaml").read_text(), Loader=_Loader)["Resources"]
    alarm = resources["RunsFailedAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (observability.NAMESPACE, observability.RUNS_FAILED)
    assert alarm["Dimensions"] == [{"Name": "service", "Value": observability.SERVICE}]
    assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == ("Sum", 0, "GreaterThanThreshold")
    assert alarm["TreatMissingData"] == "notBreaching"
    assert [a.value for a in alarm["AlarmActions"]] == ["AlarmTopic"]
    # The same topic and shape as the dead-letter queue's alarm.
    dlq = resources["DeadLetterQueueAlarm"]["Properties"]
    assert [a.value for a in dlq["AlarmActions"]] == ["AlarmTopic"]


def test_the_sweep_functions_role_re_runs_and_gives_up(database, conn, functions, queue, login_as):
    client, url = queue
    first, second = insert(conn, synthetic(2000, seed=49))
    for run in (first, second):
        runs.claim(run.id, run.threshold, lease=0.0)  # each attempt stopped
    conn.run("UPDATE clustering_runs SET attempts = 3 WHERE id = :id", id=second.id)
    login_as("sweep")
    assert sweep_outcome(functions) == {"sent": [1000], "rerun": [1000], "failed": [2000]}
    assert drain(client, url) == [body(first)]
    assert [r[0] for r in conn.run("SELECT status FROM clustering_runs ORDER BY threshold")] == ["pending", "failed"]
