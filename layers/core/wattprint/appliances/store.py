"""The appliance models' rows (migration 0011). SQL only; a write runs in the caller's transaction."""

from __future__ import annotations

import json

from .. import db
from ..db import Connection
from .model import ApplianceModel

_UPSERT = """
INSERT INTO appliance_models (name, model) VALUES (:name, CAST(:model AS jsonb))
ON CONFLICT ((lower(name))) DO UPDATE SET name = EXCLUDED.name, model = EXCLUDED.model, updated_at = now()
RETURNING xmax = 0, created_at, updated_at"""
_ALL = "SELECT model, updated_at FROM appliance_models ORDER BY lower(name)"


def save(conn: Connection, model: ApplianceModel) -> tuple[bool, str]:
    """Store (or replace) the model; (created, updated_at ISO)."""
    (created, _, updated_at), = conn.run(_UPSERT, name=model.name, model=json.dumps(model.to_json()))
    return created, updated_at.isoformat()


def load_all() -> list[tuple[ApplianceModel, str]]:
    """Every model, by name (case ignored), with when it was trained (one autocommit read)."""
    return [(ApplianceModel.from_json(model if isinstance(model, dict) else json.loads(model)), updated.isoformat())
            for model, updated in db.execute(_ALL, prepare=True)]
