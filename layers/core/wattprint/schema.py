"""JSON Schema pieces for the OpenAPI document, shared by every capability's part of it (pure data helpers)."""

from __future__ import annotations


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


def strict_object(properties: dict, required=None, description: str | None = None) -> dict:
    """An object with exactly these properties (all required unless `required` says which)."""
    schema = {"type": "object", "properties": properties,
              "required": list(properties) if required is None else list(required), "additionalProperties": False}
    if description:
        schema["description"] = description
    return schema
