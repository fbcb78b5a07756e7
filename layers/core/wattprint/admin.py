"""Operator actions: migrate, and manage API tokens. Served by the admin Lambda and the local CLI alike."""

from __future__ import annotations

from dataclasses import asdict

from typing import Protocol

from . import db, migrate, tokens
from .errors import BadRequest


def _token_json(token: tokens.Token) -> dict:
    data = asdict(token)
    for key in ("created_at", "revoked_at"):
        data[key] = data[key].isoformat() if data[key] else None
    return data


class Connections(Protocol):
    """What the live capability does when a token stops being valid (wattprint.live.service is one). The base
    imports no capability: the admin handler and the local CLI hand it in."""

    def forget_token(self, conn: db.Connection, token_id: int) -> list[str]: ...

    def close_connections(self, connection_ids: list[str]) -> bool: ...


class _NoConnections:
    def forget_token(self, conn, token_id):
        return []

    def close_connections(self, connection_ids):
        return True


def handle(request: dict, connections: Connections = _NoConnections()) -> dict:
    """One operator request {"action": ..., ...} → its JSON answer; BadRequest for an unknown action."""
    live = connections
    action = request.get("action")
    if action == "migrate":
        return {"applied": migrate.apply(db.connection())}
    # A token that stops being valid (revoked, or replaced by a new one of its name) loses its live connections
    # too: forgotten in the same transaction (nothing more is pushed to them), then closed by the push function.
    if action == "create_token":
        with db.transaction() as conn:
            replaced = tokens.live_id(conn, request.get("name", ""))
            token, plain = tokens.create(conn, request.get("scope", ""), request.get("name", ""),
                                         request.get("token"))
            gone = live.forget_token(conn, replaced) if replaced not in (None, token.id) else []
        live.close_connections(gone)
        return {**_token_json(token), "token": plain}
    if action == "revoke_token":
        with db.transaction() as conn:
            token = tokens.revoke(conn, request.get("name", ""))
            gone = live.forget_token(conn, token.id)
        live.close_connections(gone)
        return {**_token_json(token), "live_connections_closed": len(gone)}
    if action == "list_tokens":
        with db.transaction() as conn:
            return {"tokens": [_token_json(t) for t in tokens.list_all(conn)]}
    raise BadRequest(f"unknown action {action!r}; use migrate, create_token, revoke_token or list_tokens",
                     field="action")
