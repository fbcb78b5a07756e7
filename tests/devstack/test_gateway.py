"""The real template.yaml served by the local API Gateway stand-in, with the real authorizer and handlers."""

import json

import pytest

from local.apigw import Gateway
from wattprint import migrate, tokens


@pytest.fixture
def gateway(app, functions, database):
    g = Gateway(app, functions, workers=2)
    yield g
    g.close()


@pytest.fixture
def issued(conn):
    return {scope: tokens.create(conn, scope, f"t-{scope}")[1] for scope in ("ingest", "read")}


def call(gateway, method, path, token=None, body=b"", headers=()):
    hdrs = list(headers) + ([("Authorization", f"Bearer {token}")] if token else [])
    reply = gateway.handle(method, path, hdrs, body)
    return reply.status, json.loads(reply.body or b"null"), dict(reply.headers)


def test_health_needs_no_token(gateway):
    status, body, _ = call(gateway, "GET", "/health")
    assert status == 200
    assert body == {"status": "ok", "database": "ok",
                    "migrations": {"applied": len(migrate.available()), "pending": []}}


def test_missing_token_is_401_in_the_error_shape(gateway):
    status, body, headers = call(gateway, "POST", "/events", body=b"x")
    assert status == 401
    assert body["error"]["code"] == "unauthorized" and body["error"]["message"]
    assert headers["Content-Type"] == "application/json"


def test_unknown_token_is_401(gateway, issued):
    status, body, _ = call(gateway, "POST", "/events", token="wp_unknown-but-long-enough", body=b"x")
    assert (status, body["error"]["code"]) == (401, "unauthorized")


def test_read_token_cannot_ingest(gateway, issued):
    status, body, _ = call(gateway, "POST", "/events", token=issued["read"], body=b"x")
    assert (status, body["error"]["code"]) == (403, "forbidden")


@pytest.mark.parametrize("path", ["/runs", "/events", "/clusters/summary", "/events/1"])
def test_ingest_token_cannot_read(gateway, issued, path):
    status, body, _ = call(gateway, "GET", path, token=issued["ingest"])
    assert (status, body["error"]["code"]) == (403, "forbidden")


def test_cached_policy_still_denies_the_other_scope(gateway, issued):
    assert call(gateway, "GET", "/health", token=issued["read"])[0] == 200
    assert call(gateway, "GET", "/runs", token=issued["read"])[0] not in (401, 403)
    assert call(gateway, "POST", "/events", token=issued["read"], body=b"x")[0] == 403


def test_revoked_token_is_refused_once_the_cache_expires(app, functions, database, conn, issued):
    g = Gateway(app, functions, workers=1)
    original = app.authorizer
    try:
        app.authorizer = type(original)(original.function, original.header, 0)
        assert call(g, "GET", "/runs", token=issued["read"])[0] not in (401, 403)
        tokens.revoke(conn, "t-read")
        assert call(g, "GET", "/runs", token=issued["read"])[0] == 401
    finally:
        app.authorizer = original
        g.close()


def test_unknown_route_is_answered_by_the_gateway(gateway):
    status, body, _ = call(gateway, "GET", "/no/such/route")
    assert (status, body["error"]["code"]) == (404, "not_found")  # the template's MISSING_AUTHENTICATION_TOKEN
    status, body, _ = call(gateway, "DELETE", "/events")
    assert status == 404
