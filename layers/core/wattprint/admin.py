"""Operator actions: migrate, manage API tokens, quarantine events. Served by the admin Lambda and the local CLI."""

from __future__ import annotations

from dataclasses import asdict

from . import db, migrate, tokens
from .clustering import quarantine
from .errors import BadRequest


def _token_json(token: tokens.Token) -> dict:
    data = asdict(token)
    for key in ("created_at", "revoked_at"):
        data[key] = data[key].isoformat() if data[key] else None
    return data


def run(request: dict) -> dict:
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
    if action == "quarantine":
        if ("ids" in request) == ("filter" in request):
            raise BadRequest("quarantine takes either ids (a list of event ids) or filter ({field, min, max})",
                             field="ids")
        if "ids" in request:
            return quarantine.by_ids(request["ids"], request.get("reason"))
        return quarantine.by_filter(request["filter"], request.get("reason"), request.get("dry_run", False),
                                    request.get("max_events"))
    if action == "list_quarantine":
        return quarantine.listing()
    if action == "release_quarantine":
        return quarantine.release(request.get("ids"))
    raise BadRequest(f"unknown action {action!r}; use {', '.join(ACTIONS)}", field="action")


ACTIONS = ("migrate", "create_token", "revoke_token", "list_tokens", "quarantine", "list_quarantine",
           "release_quarantine")
