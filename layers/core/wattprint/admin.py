"""Operator actions: migrate, and manage API tokens. Served by the admin Lambda and the local CLI alike."""

from __future__ import annotations

from dataclasses import asdict

from . import db, migrate, tokens
from .errors import BadRequest


def _token_json(token: tokens.Token) -> dict:
    data = asdict(token)
    for key in ("created_at", "revoked_at"):
        data[key] = data[key].isoformat() if data[key] else None
    return data


def handle(request: dict) -> dict:
    """One operator request {"action": ..., ...} → its JSON answer; BadRequest for an unknown action."""
    action = request.get("action")
    if action == "migrate":
        return {"applied": migrate.apply(db.connection())}
    if action == "create_token":
        with db.transaction() as conn:
            token, plain = tokens.create(conn, request.get("scope", ""), request.get("name", ""),
                                         request.get("token"))
        return {**_token_json(token), "token": plain}
    if action == "revoke_token":
        with db.transaction() as conn:
            return _token_json(tokens.revoke(conn, request.get("name", "")))
    if action == "list_tokens":
        with db.transaction() as conn:
            return {"tokens": [_token_json(t) for t in tokens.list_all(conn)]}
    raise BadRequest(f"unknown action {action!r}; use migrate, create_token, revoke_token or list_tokens",
                     field="action")
