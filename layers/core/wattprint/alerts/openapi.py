"""The alerts routes' part of the OpenAPI document (pure data; wattprint.report.openapi puts the parts together
and a test checks the whole against template.yaml and real answers)."""

from __future__ import annotations

from .. import schema
from .params import MAX_LIMIT
from .scoring import METHODS

_TIME = {"type": "string", "format": "date-time"}
_NUMBER_OR_NULL = {"type": ["number", "null"]}
_DIRECTION = {"type": ["string", "null"], "enum": ["high", "low", None]}
_REFS = {"401": {"$ref": "#/components/responses/Unauthorized"},
         "403": {"$ref": "#/components/responses/Forbidden"},
         "503": {"$ref": "#/components/responses/Unavailable"},
         "400": {"$ref": "#/components/responses/BadRequest"}}


def _q(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


_object = schema.strict_object


SCHEMAS = {
    "ScoredHour": _object({
        "device_id": {"type": "integer"}, "hour": _TIME, "wh": {"type": "number"}, "score": _NUMBER_OR_NULL,
        "anomalous": {"type": "boolean"}, "direction": _DIRECTION, "expected_wh": _NUMBER_OR_NULL,
        "usual_low_wh": _NUMBER_OR_NULL, "usual_high_wh": _NUMBER_OR_NULL,
        "basis": {"type": ["string", "null"], "enum": ["weekday-hour", "daytype-hour", "hour", None]},
        "baseline": {"type": "string", "format": "date", "description": "the baseline's version: the day it was "
                     "learnt for, from the hours before it"}}),
    "Anomalies": _object({"method": {"type": "string", "enum": list(METHODS)}, "since": _TIME, "until": _TIME,
                          "items": {"type": "array", "items": {"$ref": "#/components/schemas/ScoredHour"}}}),
    "Alert": _object({
        "id": {"type": "integer"}, "device_id": {"type": "integer"}, "number": {"type": "integer"},
        "method": {"type": "string", "enum": list(METHODS)}, "direction": _DIRECTION,
        "status": {"type": "string", "enum": ["firing", "resolved"]}, "opened_hour": _TIME, "fired_at": _TIME,
        "resolved_at": {"type": ["string", "null"], "format": "date-time"},
        "acked_at": {"type": ["string", "null"], "format": "date-time"}, "peak_wh": {"type": "number"},
        "last_hour": _TIME, "notifications": {"type": "integer", "description": "how many were told"}}),
    "Alerts": _object({"items": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}}}),
}

_DEVICE = _q("device_id", {"type": "integer"}, "only this device")
_LIMIT = _q("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}, "at most this many")


def _ok(schema: str) -> dict:
    return {"description": "The answer.", "content": {"application/json": {"schema": {
        "$ref": f"#/components/schemas/{schema}"}}}}


PATHS = {
    "/anomalies": {"get": {
        "operationId": "getAnomalies", "tags": ["alerts"], "summary": "Scored hours",
        "description": "Every completed hour of a device is scored against the device's history before that "
                       "hour's day, under both methods: robust (0.6745 × (x − median) / MAD, the default) and minmax "
                       "((x − min) / (max − min) of that hour of day). Ordered by device, then hour.",
        "security": [{"bearer": ["read"]}],
        "parameters": [_DEVICE, _q("since", {"type": "string"}, "from this hour (default: a week before until)"),
                       _q("until", {"type": "string"}, "before this time (default: now)"),
                       _q("method", {"type": "string", "enum": list(METHODS), "default": "robust"}, "the method"),
                       _q("anomalous", {"type": "string", "enum": ["true", "false"], "default": "false"},
                          "true: only the anomalous hours"), _LIMIT],
        "responses": {"200": _ok("Anomalies"), **_REFS}}},
    "/alerts": {"get": {
        "operationId": "getAlerts", "tags": ["alerts"], "summary": "Open and recent alerts",
        "description": "Every firing alert, and those fired since `since` (default: a week ago); newest first.",
        "security": [{"bearer": ["read"]}],
        "parameters": [_DEVICE, _q("status", {"type": "string", "enum": ["firing", "resolved"]}, "only these"),
                       _q("since", {"type": "string"}, "fired at or after this time"), _LIMIT],
        "responses": {"200": _ok("Alerts"), **_REFS}}},
    "/alerts/{id}/ack": {"post": {
        "operationId": "ackAlert", "tags": ["alerts"], "summary": "Acknowledge an alert",
        "description": "Stops the alert's repeats; its resolution is still told. Scope read: acknowledging changes "
                       "no data, and the dashboard's people do it with the token they read with.",
        "security": [{"bearer": ["read"]}],
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1},
                        "description": "the alert's id"}],
        "responses": {"200": _ok("Alert"), "404": {"$ref": "#/components/responses/NotFound"}, **_REFS}}},
}
