"""The OpenAPI document: the template's routes exactly, and real answers (through the gateway) valid against it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from moto import mock_aws
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from local import template as template_module
from local.apigw import Gateway
from local.pg import free_port
from test_report import done_run, insert, mod_labels, other_run
from wattprint import db, tokens
from wattprint.ingest import parser
from wattprint.report import openapi

ROOT = Path(__file__).resolve().parents[2]
DOC = openapi.document()
URI = "urn:wattprint:openapi"
REGISTRY = Registry().with_resource(URI, Resource.from_contents(DOC, default_specification=DRAFT202012))
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def response_spec(path: str, method: str, status: int) -> tuple[str, dict]:
    """(JSON pointer, response object) the document gives for this status, following a components $ref."""
    responses = DOC["paths"][path][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {path} answered {status}, which the document does not declare"
    pointer = f"/paths/{_escape(path)}/{method.lower()}/responses/{status}"
    spec = responses[str(status)]
    if "$ref" in spec:
        pointer = spec["$ref"][1:]
        spec = DOC
        for part in pointer.strip("/").split("/"):
            spec = spec[part.replace("~1", "/").replace("~0", "~")]
    return pointer, spec


def validate(reply, path: str, method: str):
    """The reply's status is declared, its media type is declared, its JSON body is valid, declared headers hold."""
    pointer, spec = response_spec(path, method, reply.status)
    headers = {k.lower(): v for k, v in reply.headers}
    media = headers.get("content-type", "").split(";")[0].strip()
    assert media in spec.get("content", {}), f"{method} {path} {reply.status} answered {media}, not declared"
    for name in spec.get("headers", {}):
        if name == "Retry-After":
            assert name.lower() in headers, f"{method} {path} {reply.status} lacks {name}"
    if media != "application/json":
        return reply.body.decode()
    body = json.loads(reply.body)
    schema = {"$ref": f"{URI}#{pointer}/content/{_escape(media)}/schema"}
    validator = Draft202012Validator(schema, registry=REGISTRY, format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    assert not errors, f"{method} {path} {reply.status}: {errors[0].message} at {list(errors[0].absolute_path)}"
    return body


# ----------------------------------------------------------------------------------------------- the document

def test_every_template_route_is_documented_and_nothing_else():
    app = template_module.load(ROOT / "template.yaml")
    routes = {(r.method, r.path) for r in app.routes}
    documented = {(method.upper(), path) for path, item in DOC["paths"].items() for method in item
                  if method in METHODS}
    assert documented == routes
    assert ("GET", "/events/{id}") in documented and ("POST", "/events") in documented
    # Authorization as the template has it: /health open, everything else behind the bearer token.
    for method, path in documented:
        security = DOC["paths"][path][method.lower()].get("security", DOC["security"])
        authorized = next(r.authorized for r in app.routes if (r.method, r.path) == (method, path))
        assert (security != []) == authorized, (method, path)
    assert DOC["paths"]["/events"]["post"]["security"] == [{"bearer": ["ingest"]}]
    assert DOC["components"]["securitySchemes"]["bearer"] == {**DOC["components"]["securitySchemes"]["bearer"],
                                                              "type": "http", "scheme": "bearer"}


def test_document_is_valid_openapi_3_1():
    import openapi_spec_validator as validator

    assert DOC["openapi"] == "3.1.0"
    validator.validate(DOC)


def test_schemas_are_strict_enough_to_fail():
    """A wrong body fails validation (the checks below would pass vacuously otherwise)."""
    schema = {"$ref": f"{URI}#/components/schemas/Summary"}
    validator = Draft202012Validator(schema, registry=REGISTRY)
    validator.validate({"run": None, "clusters": [], "events_until_first_run": 3})
    for bad in ({"run": None}, {"run": None, "clusters": [], "extra": 1},
                {"run": None, "clusters": [{"label": 0}]}, {"run": None, "clusters": [], "events_until_first_run": -1}):
        with pytest.raises(ValidationError):
            validator.validate(bad)


# -------------------------------------------------------------------------------------- real answers, each route

@pytest.fixture
def world(app, functions, database, conn, monkeypatch):
    gateway = Gateway(app, functions, workers=2)
    _, read = tokens.create(conn, "read", "dashboard")
    _, ingest = tokens.create(conn, "ingest", "sensor")
    with mock_aws():
        queue = boto3.client("sqs", region_name="us-east-1").create_queue(QueueName="cluster")["QueueUrl"]
        monkeypatch.setenv("CLUSTER_QUEUE_URL", queue)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        yield gateway, read, ingest
    gateway.close()


def call(gateway, method, target, token=None, body=b"", headers=()):
    auth = [("Authorization", f"Bearer {token}")] if token else []
    return gateway.handle(method, target, auth + list(headers), body)


def test_ingest_answers_match_the_document(world, conn):
    gateway, read, ingest = world
    from test_ingest import DOCUMENTED, lines

    reply = call(gateway, "POST", "/events", ingest, "\n".join(lines(3)).encode(), [("Content-Type", "text/plain")])
    assert reply.status == 201 and validate(reply, "/events", "POST")["count"] == 3
    record = parser.parse_event(DOCUMENTED).to_json()
    reply = call(gateway, "POST", "/events", ingest, json.dumps([record]).encode(),
                 [("Content-Type", "application/json")])
    assert reply.status == 201 and validate(reply, "/events", "POST")["total"] == 4
    cases = [
        (DOCUMENTED.replace("Active=289W", "Active=abcW"), "text/plain", 400, "invalid_event"),
        ("\n \n", "text/plain", 400, "bad_request"),
        ("x" * (1024 * 1024 + 1), "text/plain", 413, "payload_too_large"),
        (DOCUMENTED, "application/xml", 415, "unsupported_media_type"),
        (DOCUMENTED.replace("Active=289W", "Active=1e160W"), "text/plain", 400, "invalid_event"),
        (DOCUMENTED + "\x00", "text/plain", 400, "invalid_event"),
    ]
    for body, ctype, status, code in cases:
        reply = call(gateway, "POST", "/events", ingest, body.encode(), [("Content-Type", ctype)])
        assert reply.status == status
        assert validate(reply, "/events", "POST")["error"]["code"] == code
    keyed = [("Content-Type", "text/plain"), ("Idempotency-Key", "doc-1")]
    for body, status, code in ((DOCUMENTED, 201, None), (DOCUMENTED, 201, None), (lines(1)[0], 422,
                                                                                  "idempotency_key_reused")):
        reply = call(gateway, "POST", "/events", ingest, body.encode(), keyed)
        assert reply.status == status
        answer = validate(reply, "/events", "POST")
        assert answer["error"]["code"] == code if code else answer["total"] == 5
    for body, headers, status, code in (
            (DOCUMENTED, [("Idempotency-Key", "")], 400, "invalid_idempotency_key"),
            (DOCUMENTED, [("Content-Encoding", "br")], 415, "unsupported_content_encoding")):
        reply = call(gateway, "POST", "/events", ingest, body.encode(), [("Content-Type", "text/plain"), *headers])
        assert reply.status == status
        assert validate(reply, "/events", "POST")["error"]["code"] == code
    invalid = json.loads(call(gateway, "POST", "/events", ingest, b"{}", [("Content-Type", "application/json")]).body)
    assert invalid["error"]["field"] and invalid["error"]["line"] == 1
    # 401 without a token, 403 with a read token (the gateway's own answers, from the template)
    reply = call(gateway, "POST", "/events", None, DOCUMENTED.encode())
    assert reply.status == 401 and validate(reply, "/events", "POST")["error"]["code"] == "unauthorized"
    reply = call(gateway, "POST", "/events", read, DOCUMENTED.encode(), [("Content-Type", "text/plain")])
    assert reply.status == 403 and validate(reply, "/events", "POST")["error"]["code"] == "forbidden"


def test_report_answers_match_the_document(world, conn):
    gateway, read, ingest = world

    def get(target, path, status, headers=()):
        reply = call(gateway, "GET", target, read, headers=headers)
        assert reply.status == status, reply.body
        return validate(reply, path, "GET")

    assert get("/health", "/health", 200)["status"] == "ok"
    assert get("/clusters/summary", "/clusters/summary", 200)["events_until_first_run"] == 1000
    assert get("/runs", "/runs", 200) == {"runs": []}
    assert get("/events", "/events", 200) == {"items": [], "next": None}
    assert get("/events?label=1", "/events", 409)["error"]["code"] == "no_completed_run"

    insert(conn, 30)
    run = done_run(conn, 20, mod_labels(3))
    done_run(conn, 10, mod_labels(2))
    pending = other_run(conn, 30, "pending")
    other_run(conn, 40, "failed", "insufficient events")
    event_id = conn.run("SELECT id FROM events WHERE seq = 5")[0][0]

    summary = get("/clusters/summary", "/clusters/summary", 200)
    assert summary["run"]["id"] == run and len(summary["clusters"]) == 4
    assert get(f"/clusters/summary?run={run}", "/clusters/summary", 200)["run"]["threshold"] == 20
    assert get("/clusters/summary?run=x", "/clusters/summary", 400)["error"]["code"] == "invalid_parameter"
    assert get("/clusters/summary?run=999", "/clusters/summary", 404)["error"]["code"] == "run_not_found"
    assert get(f"/clusters/summary?run={pending}", "/clusters/summary", 409)["error"]["status"] == "pending"

    runs = get("/runs", "/runs", 200)["runs"]
    assert [r["status"] for r in runs] == ["failed", "pending", "done", "done"]
    assert get("/runs?x=1", "/runs", 400)["error"]["code"] == "unknown_parameter"

    reply = call(gateway, "GET", "/events?limit=10", read)
    page = validate(reply, "/events", "GET")
    assert len(page["items"]) == 10 and page["next"]
    assert dict(reply.headers)["X-Next-Cursor"] == page["next"] and "Link" in dict(reply.headers)
    assert [i["run_id"] for i in page["items"]] == [run] * 10
    last = get("/events?order=desc&limit=5", "/events", 200)["items"]
    assert [(i["seq"], i["label"], i["run_id"]) for i in last] == [(s, None, None) for s in range(30, 25, -1)]
    reply = call(gateway, "GET", "/events?format=csv&limit=3", read)
    assert reply.status == 200 and validate(reply, "/events", "GET").startswith("id,seq,received_at,")
    assert get("/events?limit=0", "/events", 400)["error"]["parameter"] == "limit"
    assert get("/events?cursor=zzz", "/events", 400)["error"]["code"] == "invalid_cursor"
    assert get("/events?run=999", "/events", 404)["error"]["code"] == "run_not_found"
    assert get(f"/events?run={pending}", "/events", 409)["error"]["code"] == "run_not_done"

    detail = get(f"/events/{event_id}", "/events/{id}", 200)
    assert [entry["threshold"] for entry in detail["labels"]] == [20, 10]
    assert get("/events/abc", "/events/{id}", 400)["error"]["code"] == "invalid_parameter"
    assert get("/events/999999", "/events/{id}", 404)["error"]["code"] == "event_not_found"

    served = get("/openapi.json", "/openapi.json", 200)
    assert served == json.loads(json.dumps(DOC))
    assert get("/openapi.json?v=2", "/openapi.json", 400)["error"]["code"] == "unknown_parameter"

    # the gateway's 401/403 (read token on ingest) and the handlers' 503 with Retry-After
    reply = call(gateway, "GET", "/runs", None)
    assert reply.status == 401 and validate(reply, "/runs", "GET")["error"]["code"] == "unauthorized"
    reply = call(gateway, "GET", "/runs", ingest)
    assert reply.status == 403 and validate(reply, "/runs", "GET")["error"]["code"] == "forbidden"


def test_unavailable_answers_match_the_document(world, monkeypatch):
    gateway, read, _ = world
    assert call(gateway, "GET", "/runs", read).status == 200  # the policy is cached from here on
    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/postgres")
    monkeypatch.setenv("DB_CONNECT_TIMEOUT", "2")
    db.reset()
    try:
        for target, path in (("/health", "/health"), ("/clusters/summary", "/clusters/summary"), ("/runs", "/runs"),
                             ("/events", "/events"), ("/events/1", "/events/{id}")):
            reply = call(gateway, "GET", target, read)
            assert reply.status == 503, (target, reply.body)
            body = validate(reply, path, "GET")
            assert body.get("status") == "unavailable" if path == "/health" else \
                body["error"]["code"] == "database_unavailable"
            assert dict(reply.headers)["Retry-After"] == "5"
    finally:
        db.reset()


def test_energy_answers_match_the_document(world, conn):
    gateway, read, ingest = world
    hours = [{"datetime": f"2019-01-{5 + h // 24:02d}T{h % 24:02d}:00:00Z", "value": 1.0 + h % 3} for h in range(72)]

    def post(body, status):
        reply = call(gateway, "POST", "/energy", ingest, json.dumps(body).encode(),
                     [("Content-Type", "application/json")])
        assert reply.status == status, reply.body
        return validate(reply, "/energy", "POST")

    def get(target, path, status, headers=()):
        reply = call(gateway, "GET", target, read, headers=headers)
        assert reply.status == status, reply.body
        return validate(reply, path, "GET")

    assert post({"device_id": 1, "units": "kWh", "data": hours}, 200)["inserted"] == 72
    assert post({"device_id": 2, "units": "kW", "data": hours[:5]}, 200)["buckets_changed"] > 0
    bad = post({"device_id": 1, "units": "kW", "data": [{"datetime": "2019-01-05T04:42:00ZZ", "value": 1}]}, 400)
    assert bad["error"]["index"] == 0
    assert post({"device_id": 1, "units": "kW", "data": []}, 400)["error"]["field"] == "data"
    window = "start=2019-01-05T00:00:00Z&end=2019-01-07T00:00:00Z"
    series = get(f"/energy?device_id=1&{window}", "/energy", 200)
    assert len(series["data"]) == 192 and series["data"][0]["value"] == 0.25
    assert len(get(f"/energy?device_id=1&{window}&resolution=1d", "/energy", 200)["data"]) == 2
    assert get(f"/energy?device_id=1&{window}&format=csv", "/energy", 200).startswith("datetime,value")
    assert get("/energy?device_id=1", "/energy", 400)["error"]["parameter"] == "start"
    assert get(f"/energy/fleet?{window}&resolution=1h", "/energy/fleet", 200)["data"][0]["devices"] == 2
    assert get("/energy/top?count=2", "/energy/top", 200)["data"][0]["device_id"] == 1
    assert get("/energy/top?count=x", "/energy/top", 400)["error"]["parameter"] == "count"
    forecast = get(f"/energy/forecast?device_id=1&{window}", "/energy/forecast", 409)
    assert forecast["error"]["code"] == "insufficient_history"
    reply = call(gateway, "POST", "/energy", read, b"{}", [("Content-Type", "application/json")])
    assert reply.status == 403 and validate(reply, "/energy", "POST")["error"]["code"] == "forbidden"


def test_energy_forecast_answer_matches_the_document(world, conn):
    gateway, read, ingest = world
    start = datetime(2019, 1, 5, tzinfo=timezone.utc)
    data = [{"datetime": (start + timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%SZ"), "value": 1.0 + h % 5}
            for h in range(7 * 7 * 24)]
    reply = call(gateway, "POST", "/energy", ingest, json.dumps({"device_id": 3, "units": "kWh", "data": data}).encode(),
                 [("Content-Type", "application/json")])
    assert reply.status == 200, reply.body
    reply = call(gateway, "GET", "/energy/forecast?device_id=3&start=2019-02-23T00:00:00Z&end=2019-02-24T00:00:00Z",
                 read)
    assert reply.status == 200, reply.body
    body = validate(reply, "/energy/forecast", "GET")
    assert body["backtest"]["weeks"] == 2 and len(body["data"]) == 96
