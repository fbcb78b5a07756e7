"""API tokens: created and revoked at run time, stored only as SHA-256 digests."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from . import db
from .db import Connection
from .errors import BadRequest, NotFound

SCOPES = ("ingest", "read")
PREFIX = "wp_"
RANDOM_BYTES = 32
# What create() makes: the prefix and token_urlsafe(32), 43 characters of the URL-safe base64 alphabet. API Gateway
# refuses anything else before the authorizer runs (template.yaml's ValidationExpression is built from this), so
# a malformed token never costs a Lambda call or a database query.
PATTERN = PREFIX + "[A-Za-z0-9_-]{43}"
_WELL_FORMED = re.compile(PATTERN)


@dataclass(frozen=True)
class Token:
    id: int
    name: str
    scope: str
    created_at: datetime
    revoked_at: datetime | None = None


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def well_formed(text: str) -> bool:
    return _WELL_FORMED.fullmatch(text) is not None


def _check(scope: str, name: str) -> None:
    if scope not in SCOPES:
        raise BadRequest(f"scope must be one of {', '.join(SCOPES)}", field="scope")
    if not name or len(name) > 100:
        raise BadRequest("name must be 1 to 100 characters", field="name")


def create(conn: Connection, scope: str, name: str, token: str | None = None) -> tuple[Token, str]:
    """Store a new token and return it with its plain text, which is never stored or shown again.

    `token` lets a developer pin a known value (WATTPRINT_INGEST_TOKEN); otherwise 256 random bits. A pinned
    value must have the shape of a made one, or the gateway would refuse it.
    A live token with the same name is revoked in the same transaction: creating is also rotating.
    """
    _check(scope, name)
    plain = token or PREFIX + secrets.token_urlsafe(RANDOM_BYTES)
    if not well_formed(plain):
        raise BadRequest(f"a token must be {PREFIX!r} followed by 43 characters of A-Z, a-z, 0-9, '_' and '-' "
                         f"(as {PREFIX!r} + secrets.token_urlsafe({RANDOM_BYTES}) makes)", field="token")
    conn.run("UPDATE api_tokens SET revoked_at = now() WHERE name = :name AND revoked_at IS NULL", name=name)
    conn.run("UPDATE api_tokens SET revoked_at = now() WHERE token_sha256 = :d AND revoked_at IS NULL",
             d=digest(plain))
    (row,) = conn.run(
        "INSERT INTO api_tokens (name, scope, token_sha256) VALUES (:name, :scope, :d) "
        "ON CONFLICT (token_sha256) DO UPDATE SET name = EXCLUDED.name, scope = EXCLUDED.scope, "
        "created_at = now(), revoked_at = NULL "
        "RETURNING id, name, scope, created_at, revoked_at",
        name=name, scope=scope, d=digest(plain))
    return Token(*row), plain


def revoke(conn: Connection, name: str) -> Token:
    rows = conn.run("UPDATE api_tokens SET revoked_at = now() WHERE name = :name AND revoked_at IS NULL "
                    "RETURNING id, name, scope, created_at, revoked_at", name=name)
    if not rows:
        raise NotFound(f"no live token named {name!r}")
    return Token(*rows[0])


def live_id(conn: Connection, name: str) -> int | None:
    """The id of the live token of this name, if there is one."""
    rows = conn.run("SELECT id FROM api_tokens WHERE name = :name AND revoked_at IS NULL", name=name)
    return rows[0][0] if rows else None


_FIND = "SELECT id, name, scope, created_at, revoked_at FROM api_tokens WHERE token_sha256 = :d AND revoked_at IS NULL"


def find(conn: Connection, token: str) -> Token | None:
    """The live token with this plain text, or None."""
    rows = conn.run(_FIND, d=digest(token))
    return Token(*rows[0]) if rows else None


def lookup(token: str) -> Token | None:
    """find() on this instance's own connection, in autocommit (the authorizer: one read needs no transaction,
    and db.execute re-opens a connection that died while the instance was frozen)."""
    rows = db.execute(_FIND, d=digest(token))
    return Token(*rows[0]) if rows else None


def list_all(conn: Connection) -> list[Token]:
    return [Token(*row) for row in conn.run(
        "SELECT id, name, scope, created_at, revoked_at FROM api_tokens ORDER BY id")]
