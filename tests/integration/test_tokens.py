import pytest

from wattprint import admin, auth, tokens
from wattprint.errors import BadRequest, NotFound

ARN = "arn:aws:execute-api:eu-west-1:123456789012:abc123/v1/POST/events"


def test_token_is_stored_only_as_a_digest(database, conn):
    token, plain = tokens.create(conn, "ingest", "sensor-1")
    assert plain.startswith("wp_") and len(plain) > 40
    stored = conn.run("SELECT token_sha256, name, scope FROM api_tokens")
    assert stored == [[tokens.digest(plain), "sensor-1", "ingest"]]
    dump = repr(conn.run("SELECT * FROM api_tokens"))
    assert plain not in dump and plain[3:] not in dump
    assert tokens.find(conn, plain) == token


def test_revoke_makes_the_token_unknown(database, conn):
    _, plain = tokens.create(conn, "read", "dash")
    revoked = tokens.revoke(conn, "dash")
    assert revoked.revoked_at is not None
    assert tokens.find(conn, plain) is None
    with pytest.raises(NotFound):
        tokens.revoke(conn, "dash")


def test_creating_under_a_live_name_rotates(database, conn):
    _, first = tokens.create(conn, "ingest", "sensor-1")
    _, second = tokens.create(conn, "ingest", "sensor-1")
    assert tokens.find(conn, first) is None
    assert tokens.find(conn, second).name == "sensor-1"


def test_a_pinned_token_can_be_recreated(database, conn):
    pinned = "wp_dev-token-" + "0123456789abcdef" * 2 + "0"
    tokens.create(conn, "ingest", "dev-ingest", pinned)
    tokens.create(conn, "ingest", "dev-ingest", pinned)  # second start of the local stack
    assert tokens.find(conn, pinned).scope == "ingest"
    assert len(tokens.list_all(conn)) == 1


@pytest.mark.parametrize("scope,name,token,field", [
    ("admin", "x", None, "scope"), ("read", "", None, "name"), ("read", "x", "short", "token"),
    # Long enough, but not the shape the gateway lets through: it could never be used.
    ("read", "x", "dev-token-0123456789abcdef", "token"), ("read", "x", "wp_" + "a" * 42 + "!", "token")])
def test_bad_token_requests_are_refused(database, conn, scope, name, token, field):
    with pytest.raises(BadRequest) as caught:
        tokens.create(conn, scope, name, token)
    assert caught.value.details["field"] == field
    assert tokens.list_all(conn) == []


def test_admin_actions_round_trip(database):
    created = admin.handle({"action": "create_token", "scope": "read", "name": "board"})
    listed = admin.handle({"action": "list_tokens"})["tokens"]
    assert [(t["name"], t["scope"], t["revoked_at"]) for t in listed] == [("board", "read", None)]
    assert "token" not in listed[0] and created["token"].startswith("wp_")
    assert admin.handle({"action": "revoke_token", "name": "board"})["revoked_at"] is not None
    with pytest.raises(BadRequest):
        admin.handle({"action": "drop_database"})


def test_authorize_maps_scope_to_policy(database, conn):
    token, plain = tokens.create(conn, "ingest", "sensor-1")
    answer = auth.authorize(f"Bearer {plain}", ARN, lambda t: tokens.find(conn, t))
    assert answer["policyDocument"]["Statement"][0]["Resource"] == [
        "arn:aws:execute-api:eu-west-1:123456789012:abc123/v1/POST/events",
        "arn:aws:execute-api:eu-west-1:123456789012:abc123/v1/POST/energy",
        "arn:aws:execute-api:eu-west-1:123456789012:abc123/v1/PUT/appliances/models/*"]
    assert answer["context"] == {"scope": "ingest", "token_name": "sensor-1", "token_id": token.id}
    with pytest.raises(auth.Unauthorized):
        auth.authorize("Bearer wp_" + "n" * 43, ARN, lambda t: tokens.find(conn, t))
