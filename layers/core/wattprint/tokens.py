"""API tokens: created and revoked at run time, stored only as SHA-256 digests."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from . import db
from .db import Connection
from .errors import BadRequest, NotFound

SCOPES = ("ingest", "read")
PREFIX = "wp_"


@dataclass(frozen=True)
class Token:
    id: int
    name: str
    scope: str
    created_at: datetime
    revoked_at: datetime | None = None


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _check(scope: str, name: str) -> None:
    if scope not in SCOPES:
        raise BadRequest(f"scope must be one of {', '.join(SCOPES)}", field="scope")
    if not name or len(name) > 100:
        raise BadRequest("name must be 1 to 100 characters", field="name")


def create(conn: Connection, scope: str, name: str, token: str | None = None) -> tuple[Token, str]:
    """Store a new token and return it with its plain text, which is never stored or shown again.

    `token` lets a developer pin a known value (WATTPRINT_INGEST_TOKEN); otherwise 256 random bits.
    A live token with the same name is revoked in the same transaction: creating is also rotating.
    """
    _check(scope, name)
    plain = token or PREFIX + secrets.token_urlsafe(32)
    if len(plain) < 16:
        raise BadRequest("a token must be at least 16 characters", field="token")
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
