"""Every sample in events/ (the ones `sam local invoke -e` uses) runs through its real handler."""

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from wattprint import tokens

EVENTS = Path(__file__).resolve().parents[2] / "events"
FUNCTION_BY_PREFIX = {"ingest": "IngestFunction", "report": "ReportFunction", "cluster": "ClusterFunction",
                      "authorizer": "AuthorizerFunction", "admin": "AdminFunction", "sweep": "SweepFunction",
                      "live_socket": "LiveSocketFunction", "live": "LiveFunction", "push": "PushFunction",
                      "appliances": "ApplianceFunction", "energy": "EnergyFunction", "alerts": "AlertsFunction",
                      "score": "ScoreFunction", "notify": "NotifyFunction", "states": "ApplianceStatesFunction"}
SAMPLE_TOKEN = "wp_sample_ingest_token_for_sam_local_012345678"  # the token in authorizer-token.json and the ingest samples


def samples():
    return sorted(p.name for p in EVENTS.glob("*.json"))


def test_every_function_has_a_sample(app):
    prefixes = {name.split("-")[0] for name in samples()}
    assert {FUNCTION_BY_PREFIX[p] for p in prefixes} == set(FUNCTION_BY_PREFIX.values())
    routes = {(r.method, r.path) for r in app.routes}
    api_samples = [json.loads((EVENTS / n).read_text()) for n in samples() if "httpMethod" in (EVENTS / n).read_text()]
    covered = {(e["httpMethod"], e["resource"]) for e in api_samples}
    assert covered <= routes, covered - routes
    assert ("POST", "/events") in covered


@pytest.mark.parametrize("name", samples())
def test_sample_runs_through_its_handler(name, functions, database, conn, monkeypatch):
    tokens.create(conn, "ingest", "sample-sensor", SAMPLE_TOKEN)
    event = json.loads((EVENTS / name).read_text())
    function = FUNCTION_BY_PREFIX[name.split("-")[0]]
    with mock_aws():
        queue = boto3.client("sqs", region_name="us-east-1").create_queue(QueueName="cluster")["QueueUrl"]
        monkeypatch.setenv("CLUSTER_QUEUE_URL", queue)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("LIVE_MANAGEMENT_ENDPOINT", "https://abc123.execute-api.us-east-1.amazonaws.com/v1")
        boto3.client("sns", region_name="us-east-1").create_topic(Name="wattprint-AlertTopic")  # the notify sample
        if function == "ReportFunction":
            # The report samples read what a sensor stored (report-event.json asks for event 1).
            seeded = functions.invoke("IngestFunction", json.loads((EVENTS / "ingest-text.json").read_text()))
            assert seeded["statusCode"] == 201, seeded
        result = functions.invoke(function, event)
    if "httpMethod" in event:
        assert 200 <= result["statusCode"] < 300, result
        if function == "IngestFunction":
            assert json.loads(result["body"])["count"] >= 1
        if function == "ApplianceFunction":
            assert [s["name"] for s in json.loads(result["body"])["states"]] == ["OFF", "ON"]
    elif function == "AuthorizerFunction":
        assert result["policyDocument"]["Statement"][0]["Effect"] == "Allow"
        assert result["context"]["scope"] == "ingest"
    elif function == "AdminFunction":
        assert [t["name"] for t in result["tokens"]] == ["sample-sensor"]
    elif function == "SweepFunction":
        assert result == {"sent": [], "rerun": [], "failed": [], "idempotency_keys_purged": 0,
                          "alerts": {"notifications_sent": 0, "energy_changes_resent": 0},
                          "asked": {"energy_feed": False, "appliance_states": False}}
    elif function == "ClusterFunction":
        assert result == {"batchItemFailures": []}
    elif function == "LiveSocketFunction":
        assert result == {"statusCode": 200}
        assert conn.run("SELECT connection_id, token_name FROM live_connections") == [["Z2cYcdRMIAMCJRg=", "dashboard"]]
    elif function == "LiveFunction":
        assert result == {"batchItemFailures": []}  # nobody connected: nothing to push
    elif function == "PushFunction":
        assert result == {"batchItemFailures": []}
    elif function == "ScoreFunction":
        assert result == {"batchItemFailures": []}  # device 9 changed nothing here: nothing to score
    elif function == "NotifyFunction":
        assert result == {"batchItemFailures": []}
    elif function == "ApplianceStatesFunction":
        assert result == {"batchItemFailures": []}  # no model stored: nothing to decode
        assert conn.run("SELECT count(*) FROM appliance_states")[0][0] == 0
