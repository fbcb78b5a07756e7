"""What operators watch (wattprint.observability): metrics as CloudWatch EMF lines on stdout, each function's log
lines under its own name, a request's correlation id carried through SQS into the work it triggers, and tracing
that works with no X-Ray daemon."""

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from local import synth
from local.apigw import Gateway
from local.sqs import sqs_event
from wattprint import tokens

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def stack(app, functions, database, conn, monkeypatch):
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.delenv("LIVE_QUEUE_URL", raising=False)
    monkeypatch.setenv("CLUSTER_THRESHOLD", "20")
    with mock_aws():
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        client = boto3.client("sqs", region_name="us-east-1")
        url = client.create_queue(QueueName="cluster")["QueueUrl"]
        monkeypatch.setenv("CLUSTER_QUEUE_URL", url)
        gateway = Gateway(app, functions, workers=2)
        _, token = tokens.create(conn, "ingest", "sensor")

        def post(body, **headers):
            reply = gateway.handle("POST", "/events", [("Authorization", f"Bearer {token}"),
                                                        ("Content-Type", "text/plain"), *headers.items()],
                                   body.encode())
            return reply.status

        yield post, client, url
        gateway.close()


def emitted(text: str) -> tuple[list[dict], list[dict]]:
    """(EMF records, log lines) among stdout's JSON lines."""
    docs = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return [d for d in docs if "_aws" in d], [d for d in docs if "_aws" not in d]


def total(records, name, **dimensions) -> float:
    return sum(sum(r[name]) if isinstance(r[name], list) else r[name] for r in records
               if name in r and all(r.get(k) == v for k, v in dimensions.items()))


def test_ingest_metrics_and_the_correlation_id_into_the_clustering_run(stack, functions, capsys):
    post, client, url = stack
    capsys.readouterr()
    assert post("\n".join(synth.generate(18, seed=1))) == 201
    assert post("Device: nonsense") == 400
    assert post("\n".join(synth.generate(2, seed=2)), **{"X-Correlation-Id": "corr-42"}) == 201  # crosses 20
    records, logs = emitted(capsys.readouterr().out)
    for record in records:  # each one a valid EMF document in the service's namespace
        (directive,) = record["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "wattprint" and ["service"] == directive["Dimensions"][0][:1]
        assert record["service"] == "wattprint"
    assert total(records, "EventsAccepted") == 20 and total(records, "RunsOpened") == 1
    assert total(records, "EventsRejected", reason="invalid_event") == 1
    assert total(records, "Requests", status="201") == 2 and total(records, "Requests", status="400") == 1

    (message,) = client.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"]
    assert message["MessageAttributes"]["correlation_id"]["StringValue"] == "corr-42"
    arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    functions.handler("ClusterFunction")  # this thread's instance, whose log handler is pointed at a buffer
    handler = logging.getLogger("wattprint.ClusterFunction").handlers[0]
    previous = handler.setStream(io.StringIO())
    try:
        result = functions.invoke("ClusterFunction", sqs_event([message], arn, "us-east-1"))
        written = handler.stream.getvalue()
    finally:
        handler.setStream(previous)
    assert result == {"batchItemFailures": []}
    records, _ = emitted(capsys.readouterr().out)
    _, logs = emitted(written)
    settled = [line for line in logs if line.get("message") == "clustering message settled"]
    assert settled and all(line["correlation_id"] == "corr-42" and line["function_name"] == "ClusterFunction"
                           and line["service"] == "wattprint.ClusterFunction" for line in settled)
    assert total(records, "RunsDone") == 1 and total(records, "RunsFailed") == 0
    assert total(records, "FitDuration") > 0 and total(records, "RunDuration") >= total(records, "FitDuration")
    assert total(records, "EventsBehindNewestRun") == 0


def test_no_metric_line_when_metrics_are_disabled(stack, capsys, monkeypatch):
    """POWERTOOLS_METRICS_DISABLED=true (the local stack's setting) silences every metric, the ones with a
    dimension of their own too (Powertools' single_metric prints regardless): one EMF line per request on the
    local stack's stdout was noise in its terminal and interpreter time under load."""
    post, _, _ = stack
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    capsys.readouterr()
    assert post("\n".join(synth.generate(3, seed=5))) == 201
    assert post("Device: nonsense") == 400
    records, _ = emitted(capsys.readouterr().out)
    assert records == []


def test_a_failed_run_is_counted(stack, functions, capsys, conn):
    post, client, url = stack
    assert post("\n".join(synth.generate(20, seed=3))) == 201
    conn.run("DELETE FROM events")  # the run cannot find its events: failed for good
    (message,) = client.receive_message(QueueUrl=url)["Messages"]
    arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    capsys.readouterr()
    functions.invoke("ClusterFunction", sqs_event([message], arn, "us-east-1"))
    records, _ = emitted(capsys.readouterr().out)
    assert total(records, "RunsFailed") == 1 and total(records, "RunsDone") == 0


TRACED = """
import json, sys
sys.path[:0] = ["layers/core", "."]
from local import template, synth
from local.runtime import Functions
from wattprint import observability
functions = Functions(template.load("template.yaml").functions)
event = json.load(open("events/ingest-text.json"))
event["body"] = synth.generate(1, seed=4)[0]
result = functions.invoke("IngestFunction", event)
from aws_xray_sdk.core import patcher
before = "botocore" in patcher._PATCHED_MODULES  # this request made no AWS client
from wattprint import aws
aws.client("sqs", region="us-east-1")
print(json.dumps({"status": result["statusCode"], "traced": observability.tracer() is not None,
                  "botocore_before": before, "botocore": "botocore" in patcher._PATCHED_MODULES}))
"""


def test_tracing_on_works_with_no_xray_daemon(database, pg_url, conn):
    """As in Lambda (LAMBDA_TASK_ROOT set, tracing not disabled), in a process of its own: botocore is patched for
    the whole process once the first AWS client is made, not before (patching imports botocore.client: most of
    tracing's cold-start cost). Nothing listens on the daemon's port; the request still succeeds."""
    env = {**os.environ, "DATABASE_URL": pg_url, "DB_SCHEMA": database, "LAMBDA_TASK_ROOT": str(ROOT),
           "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}
    env.pop("POWERTOOLS_TRACE_DISABLED", None)
    out = subprocess.run([sys.executable, "-c", TRACED], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"status": 201, "traced": True, "botocore_before": False,
                                                            "botocore": True}


def test_tracing_is_off_outside_lambda_and_when_disabled():
    from wattprint import settings

    assert not settings.tracing_enabled({})
    assert settings.tracing_enabled({"LAMBDA_TASK_ROOT": "/var/task"})
    assert not settings.tracing_enabled({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"})
