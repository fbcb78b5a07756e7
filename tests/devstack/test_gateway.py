"""The real template.yaml served by the local API Gateway stand-in, with the real authorizer and handlers."""

import dataclasses
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
    status, body, _ = call(gateway, "POST", "/events", token="wp_" + "u" * 43, body=b"x")
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
        app.authorizer = dataclasses.replace(original, ttl=0)
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


class CountingFunctions:
    """The real handlers, counting the authorizer's invocations."""

    def __init__(self, functions, authorizer):
        self.functions, self.authorizer, self.calls = functions, authorizer, 0

    def invoke(self, logical_id, event):
        self.calls += logical_id == self.authorizer
        return self.functions.invoke(logical_id, event)


MALFORMED = ["Bearer wp_short", "Bearer " + "wp_" + "a" * 44, "Bearer " + "xx_" + "a" * 43, "Bearer  wp_" + "a" * 43,
             "Bearer wp_" + "a" * 42 + "=", "Bearer wp_" + "a" * 42 + "\u00e9", "Basic wp_" + "a" * 43,
             "Bearer wp_" + "a" * 43 + " ", "Bearer wp_" + "a" * 43 + "\nX: y", "wp_" + "a" * 43, "Bearer"]


def test_the_template_validates_tokens_exactly_as_they_are_made(app):
    from wattprint import auth

    assert app.authorizer.validation == auth.HEADER_PATTERN
    for _ in range(50):
        assert not app.authorizer.refuses("Bearer " + tokens.PREFIX + __import__("secrets").token_urlsafe(32))
    assert not app.authorizer.refuses("bearer wp_" + "-" * 43)
    for header in MALFORMED:
        assert app.authorizer.refuses(header), header


def test_a_malformed_token_is_401_without_calling_the_authorizer(app, functions, database, issued):
    counting = CountingFunctions(functions, app.authorizer.function)
    g = Gateway(app, counting, workers=1)
    try:
        for header in MALFORMED:
            reply = g.handle("POST", "/events", [("Authorization", header)], b"x")
            assert (reply.status, json.loads(reply.body)["error"]["code"]) == (401, "unauthorized"), header
        assert counting.calls == 0
        # Well-formed but unknown: the authorizer is asked (and says 401); a known one gets through.
        assert call(g, "POST", "/events", token="wp_" + "b" * 43, body=b"x")[0] == 401
        assert counting.calls == 1
        assert call(g, "GET", "/runs", token=issued["read"])[0] == 200
        assert counting.calls == 2
    finally:
        g.close()
