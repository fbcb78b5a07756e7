"""What each token scope may call, as the IAM policy a TOKEN authorizer (REST API) or a REQUEST authorizer
(the WebSocket API's $connect, token in the query string: browsers cannot set headers on a WebSocket) returns.

API Gateway caches the policy per token (ReauthorizeEvery), so the policy must describe everything the
token may call, not just the route being requested: a cached `read` policy must still deny POST /events.
"""

from __future__ import annotations

from typing import Callable

from . import tokens
from .tokens import Token

# The TOKEN authorizer's Identity.ValidationExpression in template.yaml (a test keeps the two equal): API Gateway
# answers 401 itself to any other Authorization header. The scheme is case-insensitive (RFC 9110), one space.
HEADER_PATTERN = "^[Bb][Ee][Aa][Rr][Ee][Rr] " + tokens.PATTERN + "$"

# Method ARN suffixes ("METHOD/path") each scope may call; `*` is IAM's wildcard.
# Training an appliance model (PUT /appliances/models/*) uploads a recording, as sensors and the people who
# install them do, and changes everyone's labels: not for a read token, which lives in dashboards' browsers.
# Labelling a recording (POST only because the recording is the body) stores nothing: a read.
SCOPE_RESOURCES: dict[str, tuple[str, ...]] = {
    "ingest": ("POST/events", "POST/energy", "PUT/appliances/models/*"),
    "read": ("GET/*", "POST/appliances/label", "$connect"),
}


class Unauthorized(Exception):
    """No token, a malformed header, or a token we do not know: API Gateway answers 401."""


def bearer(header: str | None) -> str:
    if not header:
        raise Unauthorized("missing Authorization header")
    kind, _, token = header.strip().partition(" ")
    if kind.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization must be 'Bearer <token>'")
    return token.strip()


def stage_prefix(method_arn: str) -> str:
    """`arn:aws:execute-api:region:account:api/stage/GET/events` → `arn:…:api/stage/`."""
    arn, sep, rest = method_arn.partition(":execute-api:")
    parts = rest.split("/")
    if not sep or len(parts) < 3:
        raise ValueError(f"not an execute-api method ARN: {method_arn!r}")
    return f"{arn}{sep}{parts[0]}/{parts[1]}/"


def policy(token: Token, method_arn: str) -> dict:
    prefix = stage_prefix(method_arn)
    return {
        "principalId": f"token:{token.id}",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{
                "Action": "execute-api:Invoke",
                "Effect": "Allow",
                "Resource": [prefix + suffix for suffix in SCOPE_RESOURCES[token.scope]],
            }],
        },
        # Handed to the backend as requestContext.authorizer. The WebSocket's $connect records token_id: the live
        # role may not read api_tokens, and revoking a token closes its connections by it.
        "context": {"scope": token.scope, "token_name": token.name, "token_id": token.id},
    }


def authorize(header: str | None, method_arn: str, find: Callable[[str], Token | None]) -> dict:
    return authorize_token(bearer(header), method_arn, find)


def authorize_token(text: str | None, method_arn: str, find: Callable[[str], Token | None]) -> dict:
    if not text:
        raise Unauthorized("missing token")
    # The WebSocket's REQUEST authorizer has no validation expression: the same check, before any query.
    if not tokens.well_formed(text):
        raise Unauthorized("malformed token")
    token = find(text)
    if token is None:
        raise Unauthorized("unknown or revoked token")
    return policy(token, method_arn)

