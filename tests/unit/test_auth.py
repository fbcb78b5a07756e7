import pytest

from local.apigw import allows
from wattprint import auth
from wattprint.tokens import Token

STAGE = "arn:aws:execute-api:eu-west-1:123456789012:abc123/v1/"


def _policy(scope):
    token = Token(id=7, name="t", scope=scope, created_at=None)
    return auth.policy(token, STAGE + "GET/health")["policyDocument"]


@pytest.mark.parametrize("scope,method_path,allowed", [
    ("ingest", "POST/events", True),
    ("ingest", "POST/energy", True),
    ("ingest", "GET/energy", False),
    ("read", "POST/energy", False),
    ("read", "GET/energy/top", True),
    ("ingest", "GET/events", False),
    ("ingest", "GET/clusters/summary", False),
    ("read", "GET/events", True),
    ("read", "GET/events/42", True),
    ("read", "GET/clusters/summary", True),
    ("read", "POST/events", False),
    ("read", "$connect", True),  # the WebSocket API's
    ("ingest", "$connect", False),
    ("ingest", "PUT/appliances/models/PC%20screen1", True),
    ("ingest", "POST/appliances/label", False),
    ("read", "PUT/appliances/models/PC%20screen1", False),
    ("read", "POST/appliances/label", True),
    ("read", "POST/appliances/models/x", False),
])
def test_scope_policy(scope, method_path, allowed):
    # The policy is cached per token and reused for other routes, so it must hold for every route.
    assert allows(_policy(scope), STAGE + method_path) is allowed


def test_policy_is_confined_to_its_own_api_and_stage():
    assert not allows(_policy("read"), "arn:aws:execute-api:eu-west-1:123456789012:other/v1/GET/events")
    assert not allows(_policy("read"), "arn:aws:execute-api:eu-west-1:123456789012:abc123/v2/GET/events")


def test_explicit_deny_wins():
    document = {"Statement": [{"Effect": "Allow", "Resource": STAGE + "*"},
                              {"Effect": "Deny", "Resource": STAGE + "POST/*"}]}
    assert allows(document, STAGE + "GET/runs") and not allows(document, STAGE + "POST/events")


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Basic abc", "token-without-scheme"])
def test_malformed_headers_are_unauthorized(header):
    with pytest.raises(auth.Unauthorized):
        auth.bearer(header)


def test_bearer_is_case_insensitive_and_trims():
    assert auth.bearer("bearer  wp_abc ") == "wp_abc"


def test_stage_prefix_rejects_non_api_arns():
    with pytest.raises(ValueError):
        auth.stage_prefix("arn:aws:lambda:eu-west-1:1:function:x")


READ = "wp_" + "r" * 43


def test_websocket_connect_takes_the_token_from_the_query_string():
    known = Token(id=3, name="dash", scope="read", created_at=None)
    find = {READ: known}.get
    answer = auth.authorize_token(READ, STAGE + "$connect", find)
    assert allows(answer["policyDocument"], STAGE + "$connect")
    for text in (None, "", "wp_" + "u" * 43):
        with pytest.raises(auth.Unauthorized):
            auth.authorize_token(text, STAGE + "$connect", find)


@pytest.mark.parametrize("text", ["wp_read", READ + "x", READ[:-1], READ.replace("r", "=", 1), " " + READ, "x" * 10_000])
def test_a_malformed_query_string_token_is_refused_before_any_lookup(text):
    """The WebSocket's REQUEST authorizer has no ValidationExpression: the function checks the shape itself."""
    looked_up = []
    with pytest.raises(auth.Unauthorized, match="malformed"):
        auth.authorize_token(text, STAGE + "$connect", lambda t: looked_up.append(t))
    assert looked_up == []
