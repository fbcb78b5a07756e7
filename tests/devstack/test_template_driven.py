"""What the local stack serves comes from the template alone: a route and an SQS trigger declared only here."""

import dataclasses
import json
import sys
import threading

import boto3
import pytest
from moto import mock_aws

from local import template as template_module
from local.apigw import Gateway
from local.runtime import Functions
from local.sqs import SqsPoller, create_queues

TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Parameters:
  Visibility:
    Type: Number
    Default: 0
Globals:
  Function:
    Runtime: python3.13
    Handler: app.handler
    Environment:
      Variables:
        GREETING: hello
Resources:
  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageName: v9
  EchoFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn/echo
      Events:
        Get:
          Type: Api
          Properties: {RestApiId: !Ref Api, Path: "/things/{id}", Method: GET}
        Literal:
          Type: Api
          Properties: {RestApiId: !Ref Api, Path: /things/special, Method: GET}
  WorkerFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn/worker
      Handler: app.handler
      Events:
        Jobs:
          Type: SQS
          Properties:
            Queue: !GetAtt JobQueue.Arn
            BatchSize: 5
            FunctionResponseTypes: [ReportBatchItemFailures]
  JobQueue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: !Ref Visibility
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt JobDeadLetters.Arn
        maxReceiveCount: 2
  JobDeadLetters:
    Type: AWS::SQS::Queue
"""

ECHO = """\
import json, os
def handler(event, context):
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"event": event, "greeting": os.environ.get("GREETING"),
                                "function": context.function_name})}
"""

WORKER = """\
seen = []
def handler(event, context):
    seen.append([r["body"] for r in event["Records"]])
    return {"batchItemFailures": [{"itemIdentifier": r["messageId"]}
                                  for r in event["Records"] if r["body"] == "poison"]}
"""


@pytest.fixture
def app(tmp_path):
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    for name, code in (("echo", ECHO), ("worker", WORKER)):
        (tmp_path / "fn" / name).mkdir(parents=True)
        (tmp_path / "fn" / name / "app.py").write_text(code)
    yield template_module.load(tmp_path / "template.yaml")
    for name in [m for m in sys.modules if m.startswith(("wattprint_fn_EchoFunction", "wattprint_fn_WorkerFunction"))]:
        sys.modules.pop(name, None)


def test_template_is_read(app):
    assert {(r.method, r.path, r.function) for r in app.routes} == {
        ("GET", "/things/{id}", "EchoFunction"), ("GET", "/things/special", "EchoFunction")}
    assert app.queues["JobQueue"].dead_letter == "JobDeadLetters"
    assert app.queues["JobQueue"].max_receive_count == 2
    (trigger,) = app.sqs_triggers
    assert (trigger.function, trigger.queue, trigger.batch_size, trigger.report_failures) == (
        "WorkerFunction", "JobQueue", 5, True)
    assert app.functions["EchoFunction"].environment == {"GREETING": "hello"}


def test_route_declared_only_in_the_template_is_served(app, monkeypatch):
    monkeypatch.setenv("GREETING", "hello")
    gateway = Gateway(app, Functions(app.functions), workers=1)
    try:
        reply = gateway.handle("GET", "/things/42?tag=a&tag=b", [("X-Trace", "1")], b"")
        assert reply.status == 200
        payload = json.loads(reply.body)
        event = payload["event"]
        assert payload["function"] == "EchoFunction"
        assert event["resource"] == "/things/{id}" and event["pathParameters"] == {"id": "42"}
        assert event["multiValueQueryStringParameters"] == {"tag": ["a", "b"]}
        assert event["queryStringParameters"] == {"tag": "b"}
        assert event["requestContext"]["path"] == "/v9/things/42"
        assert event["headers"]["X-Trace"] == "1" and event["body"] is None
        literal = json.loads(gateway.handle("GET", "/things/special", [], b"").body)["event"]
        assert literal["resource"] == "/things/special"  # the literal route wins over {id}
        assert gateway.handle("POST", "/things/42", [], b"").status == 403  # not declared
    finally:
        gateway.close()


@mock_aws
def test_sqs_trigger_redelivers_exactly_the_failed_record(app):
    client = boto3.client("sqs", region_name="us-east-1")
    urls = create_queues(client, app)
    for body in ("a", "poison", "c"):
        client.send_message(QueueUrl=urls["JobQueue"], MessageBody=body)
    functions = Functions(app.functions)
    poller = SqsPoller(client, urls["JobQueue"], app.sqs_triggers[0], functions, "us-east-1", wait_seconds=0)

    assert poller.poll_once() == 3
    worker = sys.modules[f"wattprint_fn_WorkerFunction_{threading.get_ident()}"]  # the poll ran on this thread
    assert sorted(worker.seen[0]) == ["a", "c", "poison"]
    # Only the failed record is still on the queue (visibility 0 in this template: visible again at once).
    assert poller.poll_once() == 1 and worker.seen[1] == ["poison"]
    # maxReceiveCount 2 reached: the next receive moves it to the dead-letter queue.
    assert poller.poll_once() == 0
    dead = client.receive_message(QueueUrl=urls["JobDeadLetters"], MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in dead] == ["poison"]


@mock_aws
def test_batching_window_gathers_by_long_polls(app):
    """A trigger with a batching window gathers what arrives while it is open, waiting in long polls (answered when
    a message comes) rather than looking on a short timer: each look is a call into moto, under the stack's GIL."""
    client = boto3.client("sqs", region_name="us-east-1")
    # Not the template's queue: its visibility timeout of 0 would show a received message again within the window.
    queue = client.create_queue(QueueName="gathered", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    trigger = dataclasses.replace(app.sqs_triggers[0], batch_size=10, batching_window=2)
    poller = SqsPoller(client, queue, trigger, Functions(app.functions), "us-east-1", wait_seconds=1)
    calls = []
    receive = poller._receive
    poller._receive = lambda wait, at_most: calls.append(wait) or receive(wait, at_most)
    client.send_message(QueueUrl=queue, MessageBody="first")
    later = threading.Timer(0.5, lambda: client.send_message(QueueUrl=queue, MessageBody="second"))
    later.start()
    try:
        assert poller.poll_once() == 2  # both in one batch: the window was open when the second came
    finally:
        later.join()
    worker = sys.modules[f"wattprint_fn_WorkerFunction_{threading.get_ident()}"]
    assert sorted(worker.seen[0]) == ["first", "second"]
    # The first receive, long polls of at most wait_seconds, and a few short looks in the window's last second
    # (a 50 ms timer made about 40 calls of this 2 s window).
    assert len(calls) <= 8 and calls.count(1) >= 1, calls


@mock_aws
def test_crashing_handler_leaves_the_whole_batch(app, tmp_path):
    client = boto3.client("sqs", region_name="us-east-1")
    urls = create_queues(client, app)
    client.send_message(QueueUrl=urls["JobQueue"], MessageBody="x")
    functions = Functions(app.functions)
    poller = SqsPoller(client, urls["JobQueue"], app.sqs_triggers[0], functions, "us-east-1", wait_seconds=0)
    worker_handler = functions.handler("WorkerFunction")
    worker_handler.__globals__["seen"] = None  # .append on None: the handler raises
    assert poller.poll_once() == 1
    attrs = client.get_queue_attributes(QueueUrl=urls["JobQueue"], AttributeNames=["All"])["Attributes"]
    assert int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"]) == 1


def test_each_thread_is_its_own_warm_instance(app):
    """Handler modules keep per-invocation state (Powertools' resolver holds the current event): concurrent local
    invocations must not share it, as two Lambda instances share nothing."""
    functions = Functions(app.functions)
    here = functions.handler("EchoFunction")
    assert functions.handler("EchoFunction") is here  # warm: the same module on the same thread
    elsewhere = []
    worker = threading.Thread(target=lambda: elsewhere.append(functions.handler("EchoFunction")))
    worker.start()
    worker.join()
    assert elsewhere[0] is not here and elsewhere[0].__globals__ is not here.__globals__
