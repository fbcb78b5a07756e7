"""Operator actions: migrate, and manage API tokens. Served by the admin Lambda and the local CLI alike.

A capability's own operator actions (clustering's quarantine) are passed in by the caller, as `more`: the base
imports no capability."""

from __future__ import annotations

from dataclasses import asdict

from typing import Callable

from . import db, migrate, tokens
from .errors import BadRequest


def _token_json(token: tokens.Token) -> dict:
    data = asdict(token)
    for key in ("created_at", "revoked_at"):
        data[key] = data[key].isoformat() if data[key] else None
    return data


ACTIONS = ("migrate", "create_token", "revoke_token", "list_tokens")


def handle(request: dict, more: dict[str, Callable[[dict], dict]] | None = None) -> dict:
    """One operator request {"action": ..., ...} → its JSON answer; BadRequest for an unknown action. `more`: further
    actions by name (each takes the request), e.g. clustering.service.OPERATOR_ACTIONS."""
    action = request.get("action")
    more = more or {}
    if action in more and action not in ACTIONS:
        return more[action](request)
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
    raise BadRequest(f"unknown action {action!r}; use {', '.join((*ACTIONS, *more))}", field="action")
