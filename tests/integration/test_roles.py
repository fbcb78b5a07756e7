"""Each function's path works as its own database role (migrate.ROLES, wattprint_<kind> in AWS), and that role can
do nothing else: tested as those roles against the real PostgreSQL. Ingest and cluster: in their own test files."""

import json

import boto3
import pytest
from moto import mock_aws

from local.apigw import Gateway
from local import synth
from wattprint import db, tokens
from wattprint.clustering import service as clustering
from wattprint.clustering import runs
from wattprint.ingest import parser, store

DENIED = "permission denied"


def stored(conn, n, threshold):
    events = [(raw, rec) for _, raw, rec in parser.parse_lines("\n".join(synth.generate(n, seed=8)))]
    conn.run("BEGIN")
    result = store.insert_events(conn, events, threshold)
    conn.run("COMMIT")
    return result


def refused(*statements):
    for statement in statements:
        with pytest.raises(Exception, match=DENIED):
            db.execute(statement)


def test_the_report_role_serves_every_read_route_and_writes_nothing(app, functions, database, conn, login_as):
    (run,) = stored(conn, 25, 20).runs
    assert clustering.process(run.id, run.threshold, 60.0)["status"] == "done"
    _, token = tokens.create(conn, "read", "board")
    gateway = Gateway(app, functions, workers=1)
    try:
        def get(target):
            reply = gateway.handle("GET", target, [("Authorization", f"Bearer {token}")], b"")
            return reply.status, reply.body

        assert get("/runs")[0] == 200  # the authorizer's answer is cached from here on, as in AWS
        login_as("report")
        first_id = conn.run("SELECT min(id) FROM events")[0][0]
        for target in ("/health", "/clusters/summary", f"/clusters/summary?run={run.id}", "/runs", "/events",
                       "/events?label=0", f"/events?run={run.id}&order=desc", "/events?format=csv",
                       f"/events/{first_id}", "/openapi.json", "/dashboard"):
            status, body = get(target)
            assert status == 200, (target, body)
        assert json.loads(get("/clusters/summary")[1])["run"]["id"] == run.id
    finally:
        gateway.close()
    refused("SELECT count(*) FROM api_tokens", "SELECT count(*) FROM live_connections",
            "INSERT INTO clustering_runs (threshold) VALUES (99)", "UPDATE clustering_runs SET status = 'failed'",
            "DELETE FROM events", "UPDATE event_counter SET total = 0", "DELETE FROM event_labels",
            "DELETE FROM cluster_stats", f"SELECT clustering_labels_open({run.id})")


def test_only_the_authorizer_role_reads_tokens_and_it_reads_nothing_else(functions, database, conn, login_as):
    made, token = tokens.create(conn, "read", "board")
    arn = "arn:aws:execute-api:us-east-1:000000000000:local/v1/GET/runs"
    login_as("authorizer")
    answer = functions.invoke("AuthorizerFunction", {"type": "TOKEN", "authorizationToken": f"Bearer {token}",
                                                     "methodArn": arn})
    assert answer["context"] == {"scope": "read", "token_name": "board", "token_id": made.id}
    refused("UPDATE api_tokens SET revoked_at = NULL", "DELETE FROM api_tokens",
            "INSERT INTO api_tokens (name, scope, token_sha256) VALUES ('x', 'read', '\\x00')",
            "SELECT count(*) FROM events", "SELECT count(*) FROM clustering_runs", "SELECT count(*) FROM event_counter",
            "SELECT count(*) FROM live_connections")


@mock_aws
def test_the_sweep_role_sends_and_records_stopped_runs_and_touches_nothing_else(functions, database, conn, login_as,
                                                                               monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = boto3.client("sqs", region_name="us-east-1")
    queue = client.create_queue(QueueName="cluster")["QueueUrl"]
    monkeypatch.setenv("CLUSTER_QUEUE_URL", queue)
    first, second = stored(conn, 40, 20).runs
    runs.claim(first.id, first.threshold, lease=0.0)  # its worker "died": the lease is over
    conn.run("UPDATE clustering_runs SET created_at = now() - interval '1 hour' WHERE id = :id", id=second.id)
    login_as("sweep")
    outcome = functions.invoke("SweepFunction", {})
    # The stopped run goes back to pending and is sent again with the one never sent (issue 12 §5).
    assert (outcome["sent"], outcome["rerun"], outcome["failed"]) == ([first.threshold, second.threshold],
                                                                      [first.threshold], [])
    messages = client.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert sorted(json.loads(m["Body"])["run_id"] for m in messages) == [first.id, second.id]
    refused("SELECT count(*) FROM events", "SELECT count(*) FROM api_tokens", "DELETE FROM clustering_runs",
            "SELECT ids FROM idempotency_keys",
            "INSERT INTO clustering_runs (threshold) VALUES (99)", "SELECT count(*) FROM cluster_stats",
            "SELECT token_id FROM live_connections")


@pytest.mark.parametrize("kind", ["ingest", "energy", "cluster", "sweep", "states"])
def test_every_function_that_announces_can_count_the_dashboards_and_no_more(kind, database, conn, login_as, caplog):
    """The live gate asks for the connection count before announcing; a login that cannot count fails it open, and
    then every ingest request sends to SQS again (the suite's superuser never saw it; as the role it is seen)."""
    from wattprint.live import announce

    conn.run("INSERT INTO live_connections (connection_id, token_id, token_name) VALUES ('c-1', 1, 'dashboard')")
    login_as(kind)
    assert announce.count_connections() == 1
    gate = announce.Gate()
    assert gate.connected() and "not counted" not in caplog.text
    refused("SELECT token_id FROM live_connections", "DELETE FROM live_connections")
