"""What template.yaml promises about abuse and least privilege, checked on the template itself (sam validate --lint
checks that it deploys; this checks that it says what docs/deploy.md says)."""

from pathlib import Path

import pytest
import yaml

from local.template import _Loader, _Tag
from wattprint import auth, migrate

ROOT = Path(__file__).resolve().parents[2]
DOC = yaml.load((ROOT / "template.yaml").read_text(), Loader=_Loader)
RESOURCES = DOC["Resources"]
FUNCTIONS = {lid: r["Properties"] for lid, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function"}


def of_type(kind):
    return {lid: r.get("Properties", {}) for lid, r in RESOURCES.items() if r["Type"] == kind}


def ref(value):
    assert isinstance(value, _Tag) and value.tag in ("Ref", "GetAtt"), value
    return value.value.split(".")[0] if isinstance(value.value, str) else value.value[0]


def connect_users(props) -> list[str]:
    users = []
    for policy in props.get("Policies", []):
        for statement in (policy.get("Statement", []) if isinstance(policy, dict) else []):
            if statement.get("Action") == "rds-db:connect":
                users.append(statement["Resource"].value.rsplit("/", 1)[1])
    return users


def test_each_function_logs_in_as_its_own_role_and_may_connect_as_no_other():
    assert "DB_USER" not in DOC["Globals"]["Function"]["Environment"]["Variables"]
    users = {}
    for lid, props in FUNCTIONS.items():
        user = props.get("Environment", {}).get("Variables", {}).get("DB_USER")
        if lid == "AdminFunction":
            assert user == "wattprint_admin" and connect_users(props) == []  # the master user, via its secret
        elif lid in ("PushFunction", "NotifyFunction"):
            assert user is None and connect_users(props) == []  # outside the VPC, no database
        else:
            assert connect_users(props) == [user], lid
            users[lid] = user
    assert set(users.values()) == {migrate.login(kind) for kind in migrate.ROLES}  # every role used, no other
    assert users["AuthorizerFunction"] == migrate.login("authorizer")
    assert users["LiveSocketFunction"] == users["LiveFunction"] == migrate.login("live")
    assert not any(r["Type"] == "AWS::IAM::ManagedPolicy" and "rds-db" in str(r) for r in RESOURCES.values())


def test_the_authorizer_validates_tokens_and_the_stage_is_throttled():
    api = of_type("AWS::Serverless::Api")["WattprintApi"]
    identity = api["Auth"]["Authorizers"]["TokenAuthorizer"]["Identity"]
    assert identity["ValidationExpression"] == auth.HEADER_PATTERN
    (setting,) = api["MethodSettings"]
    assert (setting["ResourcePath"], setting["HttpMethod"]) == ("/*", "*")
    assert (ref(setting["ThrottlingRateLimit"]), ref(setting["ThrottlingBurstLimit"])) == (
        "ApiThrottleRate", "ApiThrottleBurst")
    stage = of_type("AWS::ApiGatewayV2::Stage")["LiveStage"]["DefaultRouteSettings"]
    assert (ref(stage["ThrottlingRateLimit"]), ref(stage["ThrottlingBurstLimit"])) == (
        "LiveThrottleRate", "LiveThrottleBurst")
    assert {p["RouteKey"] for p in of_type("AWS::ApiGatewayV2::Route").values()} == {"$connect", "$disconnect"}


@pytest.mark.parametrize("function,parameter", [("IngestFunction", "IngestConcurrency"),
                                                ("ReportFunction", "ReportConcurrency"),
                                                ("AuthorizerFunction", "AuthorizerConcurrency"),
                                                ("EnergyFunction", "EnergyConcurrency")])
def test_api_functions_have_reserved_concurrency_and_a_throttles_alarm(function, parameter):
    reserved = FUNCTIONS[function]["ReservedConcurrentExecutions"]
    assert reserved.tag == "If" and ref(reserved.value[1]) == parameter
    assert DOC["Parameters"][parameter]["Type"] == "Number"
    alarms = [p for p in of_type("AWS::CloudWatch::Alarm").values()
              if p["MetricName"] == "Throttles" and ref(p["Dimensions"][0]["Value"]) == function]
    assert len(alarms) == 1 and ref(alarms[0]["AlarmActions"][0]) == "AlarmTopic"


def test_every_function_has_a_log_group_with_the_retention_parameter():
    groups = of_type("AWS::Logs::LogGroup")
    used = []
    for lid, props in FUNCTIONS.items():
        group = ref(props["LoggingConfig"]["LogGroup"])
        assert ref(groups[group]["RetentionInDays"]) == "LogRetentionDays", lid
        used.append(group)
    assert sorted(used) == sorted(groups)  # one each, none shared, none unused


def test_the_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use():
    topic = of_type("AWS::SNS::Topic")["AlarmTopic"]
    key = of_type("AWS::KMS::Key")[ref(topic["KmsMasterKeyId"])]
    assert key["EnableKeyRotation"] is True
    (statement,) = [s for s in key["KeyPolicy"]["Statement"] if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    assert set(statement["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}


def test_every_queue_refuses_requests_without_tls():
    queues = set(of_type("AWS::SQS::Queue"))
    covered = set()
    for policy in of_type("AWS::SQS::QueuePolicy").values():
        (statement,) = policy["PolicyDocument"]["Statement"]
        assert (statement["Effect"], statement["Principal"], statement["Action"]) == ("Deny", "*", "sqs:*")
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        named = {ref(q) for q in policy["Queues"]}
        assert named == {ref(r) for r in statement["Resource"]}
        covered |= named
    assert covered == queues


def test_each_function_may_send_to_the_queues_its_code_sends_to_and_no_other():
    sends = {lid: sorted(ref(p["SQSSendMessagePolicy"]["QueueName"]) for p in props.get("Policies", [])
                         if isinstance(p, dict) and "SQSSendMessagePolicy" in p) for lid, props in FUNCTIONS.items()}
    assert {lid: queues for lid, queues in sends.items() if queues} == {
        "IngestFunction": ["ApplianceStatesQueue", "ClusterQueue", "EnergyFeedQueue", "LiveQueue"],
        "EnergyFeedFunction": ["EnergyChangesQueue", "EnergyFeedQueue", "LiveQueue"],
        "EnergyFunction": ["EnergyChangesQueue", "LiveQueue"],
        "ApplianceFunction": ["ApplianceStatesQueue"],  # a stored model asks for a decoding
        "ClusterFunction": ["LiveQueue"],
        # Lost runs, notifications and changes; the followers of the events asked to look when events wait for them.
        "SweepFunction": ["ApplianceStatesQueue", "ClusterQueue", "EnergyChangesQueue", "EnergyFeedQueue",
                          "NotifyQueue"],
        "ScoreFunction": ["LiveQueue", "NotifyQueue"],
        "ApplianceStatesFunction": ["ApplianceStatesQueue", "LiveQueue"],
        "LiveFunction": ["LiveQueue", "PushQueue"],
        "LiveSocketFunction": ["LiveQueue"],
        "PushFunction": ["LiveQueue"],
        "AdminFunction": ["PushQueue"],
    }


def test_every_function_has_an_errors_alarm():
    alarmed = {ref(p["Dimensions"][0]["Value"]) for p in of_type("AWS::CloudWatch::Alarm").values()
               if p["Namespace"] == "AWS/Lambda" and p["MetricName"] == "Errors"}
    assert alarmed == set(FUNCTIONS)
