"""The OpenAPI 3.1 document of the whole API (ingest, health, report), served at GET /openapi.json.

Built from the same names the code uses (the canonical record's fields, the eight features, the report's query
parameters and limits), so renaming a field cannot leave the document behind. Schemas are JSON Schema 2020-12
and strict (`additionalProperties: false`): tests validate real responses against them.

Hand-written and ~580 lines on purpose: it is one document, mostly data, that reads top to bottom like the API
it describes; tests/integration/test_openapi.py keeps it true (every template.yaml route is in it, real answers
validate against its schemas). Generating it from the routes would need declared models the handlers do not
have (Powertools' OpenAPI support brings pydantic into every cold start).
"""

from __future__ import annotations

from functools import lru_cache

from .. import schema
from ..alerts import service as alerts
from ..appliances import service as appliances
from ..clustering.features import FEATURES
from ..energy import service as energy
from ..ingest import service as ingest
from . import params, queries

VERSION = "0.1.0"


_ref, _nullable, _object = schema.ref, schema.nullable, schema.strict_object


_NUMBER = {"type": "number"}
_NUMBERS = {"type": "array", "items": _NUMBER}
_TIMESTAMP = {"type": "string", "format": "date-time"}

# The canonical record (wattprint.ingest.record.EventRecord.to_json), field by field.
RECORD_PROPERTIES = {
    "device_id": {"type": "integer"},
    "firmware": {"type": "string", "minLength": 1},
    "event_type": {"type": "integer"},
    "coil_reversed": {"type": "boolean"},
    "active_power_w": _NUMBER,
    "reactive_power_var": _NUMBER,
    "apparent_power_va": _NUMBER,
    "current_a": _NUMBER,
    "voltage_v": _NUMBER,
    "phase_rad": _NUMBER,
    "peaks": {**_NUMBERS, "minItems": 3},
    "fft_re": {**_NUMBERS, "minItems": 1},
    "fft_img": {**_NUMBERS, "minItems": 1, "description": "as many values as fft_re"},
    "sensor_time": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|\+00:00)$",
                    "description": "UTC, whole seconds: 2016-10-04T16:47:50Z"},
    "frequency_hz": _NUMBER,
    "wifi_strength_dbm": {"type": "integer"},
    "dummy": {"type": "integer"},
}

_EVENT_PROPERTIES = {
    "id": {"type": "integer", "minimum": 1},
    "seq": {"type": "integer", "minimum": 1, "description": "arrival number, gapless, in commit order"},
    "received_at": {**_TIMESTAMP, "description": "when the event was stored (UTC, microseconds)"},
    **{k: (v if k != "sensor_time" else {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"})
       for k, v in RECORD_PROPERTIES.items()},
    "run_id": {**_nullable({"type": "integer"}),
               "description": "the run whose label this is; null before the first run completed and for events "
                              "the run did not cover: newer than its threshold, or older than a windowed run's "
                              "first_seq"},
    "label": {**_nullable({"type": "integer", "minimum": -1}),
              "description": "the event's cluster in run_id; -1: in no cluster (unclustered)"},
    "appliance_key": {**_nullable({"type": "integer", "minimum": 1}),
                      "description": "the label's appliance: the same key for the same cluster from run to run "
                                     "(null when unlabelled or unclustered)"},
    "appliance_name": {**_nullable({"type": "string"}),
                       "description": "the name given to appliance_key (PUT /appliances/{key}); null until named"},
}
assert tuple(_EVENT_PROPERTIES) == queries.EVENT_KEYS, "the Event schema must list queries.EVENT_KEYS in order"

_RUN_STATUS = {"type": "string", "enum": ["pending", "running", "done", "failed", "superseded"],
               "description": "superseded: the run had not started when a later threshold's run was waiting, which "
                              "does its work (ClusterRuns=latest); see superseded_by"}
_EXCLUDED = ("events with first_seq ≤ seq ≤ threshold left out because they were quarantined when the run loaded "
             "its data (they have no label in it); null until the run has loaded")
_FIRST_SEQ = {**_nullable({"type": "integer", "minimum": 1}),
              "description": "the lowest seq the run clustered: 1 (every event up to the threshold, the spec), or, "
                             "with ClusterWindow = N, threshold - N + 1; events before it have no label in this "
                             "run. Null until the run is done"}

# Every Run property but device_id (ClusterScope=device only).
_RUN_REQUIRED = ["id", "threshold", "status", "events", "excluded", "clusters", "bandwidth", "attempts", "error",
                 "created_at", "timings", "keeps_labels", "labels_retired_at", "superseded_by", "first_seq"]

SCHEMAS = {
    "Error": _object({"error": {
        "type": "object", "required": ["code", "message"],
        "properties": {"code": {"type": "string", "description": "machine-readable, e.g. invalid_parameter"},
                       "message": {"type": "string", "description": "for humans"},
                       "parameter": {"type": "string", "description": "the query parameter at fault"}},
        "additionalProperties": True}}),
    "LabelsRetiredError": _object({"error": _object({
        "code": {"const": "labels_retired"},
        "message": {"type": "string"},
        "run": {"type": "integer", "description": "the run whose labels were retired"},
        "runs_with_labels": {"type": "array", "items": {"type": "integer"},
                             "description": "the runs that still have labels, newest first"},
    })}),
    "InvalidEventError": _object({"error": _object({
        "code": {"const": "invalid_event"},
        "message": {"type": "string"},
        "line": {**_nullable({"type": "integer", "minimum": 1}),
                 "description": "1-based line (text) or record (JSON array) number"},
        "field": {**_nullable({"type": "string"}),
                  "description": "the canonical field (active_power_w …) or section (Power) at fault"},
    })}),
    "Health": _object({
        "status": {"type": "string", "enum": ["ok", "migrations_pending", "unavailable"]},
        "database": {"type": "string", "enum": ["ok", "unreachable"]},
        "migrations": _object({"applied": {"type": "integer", "minimum": 0},
                               "pending": {"type": "array", "items": {"type": "string"}}}),
        "detail": {"type": "string"},
    }, required=["status", "database"]),
    "EventRecord": _object(RECORD_PROPERTIES, description="The canonical event record."),
    "Stored": _object({
        "ids": {"type": "array", "items": {"type": "integer"}, "description": "the new events' ids, in order"},
        "count": {"type": "integer", "minimum": 1},
        "total": {"type": "integer", "minimum": 1, "description": "events stored so far, these included"},
    }),
    "Event": _object(_EVENT_PROPERTIES),
    "EventDetail": _object({**_EVENT_PROPERTIES, "labels": {
        "type": "array", "description": "the event's label in every completed run that covers it and keeps its labels, newest first",
        "items": _object({"run_id": {"type": "integer"}, "threshold": {"type": "integer"},
                          "label": {"type": "integer", "minimum": -1},
                          "appliance_key": _EVENT_PROPERTIES["appliance_key"],
                          "appliance_name": _EVENT_PROPERTIES["appliance_name"]})}}),
    "EventPage": _object({
        "items": {"type": "array", "items": _ref("Event")},
        "next": {**_nullable({"type": "string"}),
                 "description": "cursor of the next page; null when this page reached the end"},
    }),
    "SummaryRun": _object({
        "id": {"type": "integer"},
        "threshold": {"type": "integer", "description": "the run labels the events with first_seq ≤ seq ≤ "
                                                        "threshold"},
        "first_seq": _FIRST_SEQ,
        "status": {"const": "done"},
        "events": {"type": "integer", "description": "events clustered"},
        "excluded": _nullable({"type": "integer", "minimum": 0, "description": _EXCLUDED}),
        "clusters": {"type": "integer", "description": "clusters found (the unclustered not counted)"},
        "bandwidth": _NUMBER,
        "finished_at": _TIMESTAMP,
    }),
    "Cluster": _object({
        "label": {"type": "integer", "minimum": -1},
        "appliance_key": _EVENT_PROPERTIES["appliance_key"],
        "appliance_name": _EVENT_PROPERTIES["appliance_name"],
        "unclustered": {"type": "boolean", "description": "true for label -1: events in no cluster"},
        "events": {"type": "integer", "minimum": 1},
        "share": {"type": "number", "minimum": 0, "maximum": 1, "description": "of the run's events"},
        "mean_active_power_w": _NUMBER,
        "min_active_power_w": _NUMBER,
        "max_active_power_w": _NUMBER,
        "centre": _object({name: _NUMBER for name in FEATURES},
                          description="mean of each clustering feature over the cluster's events"),
    }),
    "Summary": _object({
        "run": {**_nullable(_ref("SummaryRun")), "description": "null before any run completed"},
        "clusters": {"type": "array", "items": _ref("Cluster"),
                     "description": "clusters 0, 1, … then the unclustered (-1)"},
        "events_until_first_run": {"type": "integer", "minimum": 0,
                                   "description": "only while no run has completed: events still to come before "
                                                  "the first threshold (0: it was reached and no run has completed "
                                                  "yet; latest_run says whether it is pending, running or failed)"},
        "latest_run": {**_nullable(_ref("LatestRun")),
                       "description": "the run with the highest threshold whatever its status (null: no run yet)"},
        "device_events": {"type": "integer", "minimum": 0,
                          "description": "ClusterScope=device only: the device's events stored so far (its "
                                         "thresholds count these)"},
    }, required=["run", "clusters", "latest_run"]),
    "LatestRun": _object({
        "id": {"type": "integer"},
        "threshold": {"type": "integer"},
        "status": _RUN_STATUS,
        "attempts": {"type": "integer", "minimum": 0},
        "error": _nullable({"type": "string"}),
    }),
    "Run": _object({
        "id": {"type": "integer"},
        "threshold": {"type": "integer"},
        "status": _RUN_STATUS,
        "events": _nullable({"type": "integer"}),
        "excluded": _nullable({"type": "integer", "minimum": 0, "description": _EXCLUDED}),
        "clusters": _nullable({"type": "integer"}),
        "bandwidth": _nullable(_NUMBER),
        "attempts": {"type": "integer", "minimum": 0},
        "error": _nullable({"type": "string"}),
        "created_at": _TIMESTAMP,
        "timings": _object({
            "load_ms": _nullable(_NUMBER), "fit_ms": _nullable(_NUMBER), "store_ms": _nullable(_NUMBER),
            "started_at": _nullable(_TIMESTAMP), "finished_at": _nullable(_TIMESTAMP)}),
        "keeps_labels": {"type": "boolean", "description": "true for a done run whose event labels are kept (the "
                                                           "newest LabelRetention runs); its summary and statistics "
                                                           "are kept in any case"},
        "labels_retired_at": {**_nullable(_TIMESTAMP), "description": "when its labels were dropped"},
        "superseded_by": {**_nullable({"type": "integer"}), "description": "the later run that did the work of "
                                                                           "this superseded one"},
        "first_seq": _FIRST_SEQ,
        "device_id": {"type": "integer", "description": "ClusterScope=device only: the device whose events the "
                                                        "run clusters (its threshold counts that device's events)"},
    }, required=_RUN_REQUIRED),
    "Runs": _object({"runs": {"type": "array", "items": _ref("Run"), "description": "newest (highest threshold) "
                                                                                     "first"}}),
    "ApplianceState": _object({
        "name": {"type": "string", "description": "OFF, IDLE, ON … by level, lowest first, or the names given"},
        "rms": {**_NUMBER, "description": "effective current, mA (median of the state's rows)"},
        "rms_sd": {**_NUMBER, "exclusiveMinimum": 0, "description": "its spread (MAD x 1.4826), mA"},
        "peak": {**_NUMBER, "description": "maximum current, mA (median)"},
        "peak_sd": {**_NUMBER, "exclusiveMinimum": 0},
        "share": {"type": "number", "minimum": 0, "maximum": 1, "description": "of the training rows"},
    }),
    "ApplianceModel": _object({
        "name": {"type": "string", "minLength": 1, "maxLength": 64},
        "states": {"type": "array", "items": _ref("ApplianceState"), "minItems": 1,
                   "maxItems": appliances.MAX_STATES, "description": "lowest level first"},
        "switch_p": {"type": "number", "exclusiveMinimum": 0, "maximum": 1,
                     "description": "changes of state per second in the training recording (bounded)"},
        "rows": {"type": "integer", "minimum": appliances.MIN_ROWS},
        "updated_at": _TIMESTAMP,
    }),
    "ApplianceModels": _object({"models": {"type": "array", "items": _ref("ApplianceModel"),
                                           "description": "by name"}}),
    "InvalidRecordingError": _object({"error": _object({
        "code": {"enum": ["invalid_recording", "invalid_model"]},
        "message": {"type": "string"},
        "row": {**_nullable({"type": "integer", "minimum": 1}),
                "description": "the CSV row at fault, as a spreadsheet numbers it (the header is row 1)"},
        "column": {**_nullable({"type": "string"}), "description": "Timestamp, Maximum current or Effective current"},
    }, required=["code", "message"])}),
    "OpenApi": {"type": "object", "required": ["openapi", "paths"]},
    **{  # appliances (wattprint.appliances): keys that survive runs, and their names
        "RunRef": _object({"id": {"type": "integer"}, "threshold": {"type": "integer"}}),
        "Appliance": _object({
            "key": {"type": "integer", "minimum": 1},
            "name": _nullable({"type": "string", "minLength": 1, "maxLength": appliances.MAX_NAME}),
            "kind": _nullable({"type": "string", "minLength": 1, "maxLength": appliances.MAX_KIND}),
            "named_at": _nullable(_TIMESTAMP),
            "first_run": _ref("RunRef"),
            "last_run": {**_ref("RunRef"), "description": "not seen since this run when it is not the current one"},
            "in_current_run": {"type": "boolean"},
            "centre": _object({name: _NUMBER for name in FEATURES}, description="the MeanShift mode it was last "
                                                                               "seen at"),
        }),
        "Appliances": _object({"appliances": {"type": "array", "items": _ref("Appliance"),
                                              "description": "every key ever given, by key"}}),
        "ApplianceNaming": _object({
            "name": _nullable({"type": "string", "minLength": 1, "maxLength": appliances.MAX_NAME}),
            "kind": _nullable({"type": "string", "minLength": 1, "maxLength": appliances.MAX_KIND}),
        }, required=["name"], description="null clears; unique regardless of case"),
    },
    "ApplianceLiveState": _object({
        "device_id": {"type": "integer"},
        "appliance": {"type": "string", "minLength": 1, "maxLength": 64, "description": "the model's name"},
        "state": {"type": "string", "description": "one of the model's state names"},
        "since": {**_TIMESTAMP, "description": "sensor time of the first event decoded in this state"},
        "since_seq": {"type": "integer", "description": "that event's seq"},
        "seen_at": {**_TIMESTAMP, "description": "sensor time of the latest event decided (a few events behind "
                                                 "the newest: the decoder waits for the next ones)"},
        "seen_seq": {"type": "integer"},
    }),
    "ApplianceLiveStates": _object({"items": {"type": "array", "items": _ref("ApplianceLiveState"),
                                              "description": "by device, then appliance"}}),
    "DashboardConfig": _object({"websocket_url": {**_nullable({"type": "string", "format": "uri"}),
                                                  "description": "the live WebSocket API; null: no live updates"},
                                "cluster_scope": {"const": "device",
                                                  "description": "present with ClusterScope=device only: the page "
                                                                 "reads one device's runs (?device_id= in its "
                                                                 "address)"}},
                               required=["websocket_url"]),
}


_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying",
                                "schema": {"type": "string", "pattern": "^[0-9]+$"}}}


def _error(description: str, schema: str = "Error", headers: dict | None = None) -> dict:
    response = {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}
    if headers:
        response["headers"] = headers
    return response


RESPONSES = {
    "BadRequest": _error("A query or path value is invalid (invalid_parameter, unknown_parameter, "
                         "invalid_cursor, cursor_mismatch), or an appliance's body (invalid_appliance)."),
    "Unauthorized": _error("No token, a malformed Authorization header or an unknown token (unauthorized)."),
    "Forbidden": _error("The token's scope does not allow this route (forbidden)."),
    "NotFound": _error("No such resource (run_not_found, event_not_found, appliance_not_found, not_found)."),
    "Conflict": _error("The run named is not done (run_not_done), no run has completed yet "
                       "(no_completed_run), or another appliance has that name (appliance_name_taken)."),
    "Gone": _error("The labels of the run named, or of the run the cursor's walk is pinned to, were retired "
                   "(labels_retired): only the newest LabelRetention completed runs keep their labels. The answer "
                   "names the runs that still have them; the run's summary stays in /clusters/summary?run=.",
                   "LabelsRetiredError"),
    "PayloadTooLarge": _error("The body is too large, or holds too many events (payload_too_large)."),
    "Unavailable": _error("The database is unreachable or resuming (database_unavailable): retry after "
                          "Retry-After seconds.", headers=_RETRY_AFTER),
}


def _param(name: str, where: str, schema: dict, description: str, required: bool = False) -> dict:
    return {"name": name, "in": where, "required": required or where == "path", "schema": schema,
            "description": description}


PARAMETERS = {
    "run": _param("run", "query", {"type": "integer", "minimum": 1},
                  "a clustering run's id (default: the current run, the done run with the highest threshold); "
                  "404 when unknown, 409 when not done, 410 (GET /events) when its labels were retired"),
    "label": _param("label", "query", {"type": "integer", "minimum": -1, "maximum": params.SMALLINT_MAX},
                    "only events with this label (-1: unclustered) in the run (current, or ?run=); 409 when no "
                    "run has completed"),
    "device_id": _param("device_id", "query", {"type": "integer"},
                        "only this device's events. ClusterScope=device: required (400 device_id_required "
                        "without it), and the runs, clusters and labels are that device's"),
    "scope_device_id": _param("device_id", "query", {"type": "integer"},
                              "ClusterScope=device: required (400 device_id_required without it), the device "
                              "whose runs to read; ClusterScope=all: refused (400 invalid_parameter)"),
    "since": _param("since", "query", {"type": "string"},
                    "only events received at or after this ISO 8601 time (no offset: UTC)"),
    "until": _param("until", "query", {"type": "string"}, "only events received before this ISO 8601 time"),
    "order": _param("order", "query", {"type": "string", "enum": ["asc", "desc"], "default": "asc"},
                    "by seq: oldest first (asc) or newest first (desc)"),
    "limit": _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": params.MAX_LIMIT,
                                       "default": params.DEFAULT_LIMIT}, "events per page"),
    "cursor": _param("cursor", "query", {"type": "string"},
                     "`next` of the previous page, unchanged; valid only with the same order and filters "
                     "(label, run, device_id, since, until) as that page"),
    "format": _param("format", "query", {"type": "string", "enum": ["json", "csv"]},
                     "csv: the same rows as CSV (also chosen by Accept: text/csv)"),
    "id": _param("id", "path", {"type": "integer", "minimum": 1}, "the event's id"),
}

READ = [{"bearer": ["read"]}]
_COMMON = {"401": {"$ref": "#/components/responses/Unauthorized"},
           "403": {"$ref": "#/components/responses/Forbidden"},
           "503": {"$ref": "#/components/responses/Unavailable"}}


def _responses(*refs: str, **ok) -> dict:
    out = dict(ok)
    names = {"400": "BadRequest", "404": "NotFound", "409": "Conflict", "410": "Gone", "413": "PayloadTooLarge"}
    for status in refs:
        out[status] = {"$ref": f"#/components/responses/{names[status]}"}
    out.update(_COMMON)
    return dict(sorted(out.items()))


def _json(description: str, schema: str, headers: dict | None = None) -> dict:
    response = {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}
    if headers:
        response["headers"] = headers
    return response


def _params(*names: str) -> list:
    return [{"$ref": f"#/components/parameters/{name}"} for name in names]


CSV_DESCRIPTION = (
    "One header line, then one line per event (RFC 4180, CRLF), columns in the JSON item's key order: "
    + ", ".join(queries.EVENT_KEYS) + ". Lists (peaks, fft_re, fft_img) are their numbers joined by `;`; null is "
    "an empty cell; booleans are true/false; numbers are written as in the JSON form. A text cell that starts with "
    "=, +, -, @, tab or carriage return gets a leading ' so spreadsheets do not run it as a formula.")

_RECORDING = {"required": True, "content": {"text/csv": {"schema": {
    "type": "string", "description": f"a header row with {', '.join(appliances.COLUMNS)} (any order, other "
                                     "columns ignored), then one row a second in time order; Timestamp in Unix "
                                     "seconds or ISO 8601, currents in mA"}}}}
_RECORDING_400 = {"description": "The recording is not usable (invalid_recording: missing column, non-numeric value, "
                                 "unordered or repeated timestamp, too few rows; naming row and column), or a name "
                                 "or parameter is invalid (invalid_model, unknown_parameter, unknown_appliance, "
                                 "too_much_work).",
                  "content": {"application/json": {"schema": {"anyOf": [_ref("InvalidRecordingError"),
                                                                        _ref("Error")]}}}}
_CSV_415 = _error("The body is not text/csv (unsupported_media_type).")

PATHS = {
    "/appliances/models/{name}": {"put": {
        "operationId": "putApplianceModel", "tags": ["appliances"],
        "summary": "Learn an appliance's states from a recording of it alone, and store the model",
        "description": f"At least {appliances.MIN_ROWS} rows. The number of states is found from the data (at "
                       f"most {appliances.MAX_STATES}) and named by level (OFF, IDLE, ON), unless `states` "
                       "names them. Replaces the model of the same name (case ignored).",
        "security": [{"bearer": ["ingest"]}],
        "parameters": [
            {"name": "name", "in": "path", "required": True,
             "schema": {"type": "string", "minLength": 1, "maxLength": 64},
             "description": "the appliance, e.g. `PC screen1` (URL-encoded): the labelled CSV's column name"},
            {"name": "states", "in": "query", "required": False, "schema": {"type": "string"},
             "description": "state names, lowest level first, comma-separated: `OFF,IDLE,ON`"}],
        "requestBody": _RECORDING,
        "responses": {
            "200": _json("Replaced the model of that name.", "ApplianceModel"),
            "201": _json("Stored a new model.", "ApplianceModel"),
            "400": _RECORDING_400,
            "401": {"$ref": "#/components/responses/Unauthorized"},
            "403": {"$ref": "#/components/responses/Forbidden"},
            "413": {"$ref": "#/components/responses/PayloadTooLarge"},
            "415": _CSV_415,
            "503": {"$ref": "#/components/responses/Unavailable"},
        }}},
    "/appliances/models": {"get": {
        "operationId": "listApplianceModels", "tags": ["appliances"], "summary": "The stored appliance models",
        "security": READ,
        "responses": _responses("400", **{"200": _json("The models.", "ApplianceModels")}),
    }},
    "/appliances/label": {"post": {
        "operationId": "labelMains", "tags": ["appliances"],
        "summary": "Label each second of a mains recording with every appliance's state",
        "description": "A factorial hidden Markov model decoded by Viterbi (see the README). At most "
                       f"{appliances.MAX_ROWS} rows and {appliances.MAX_WORK} rows x state "
                       f"combinations; bodies up to {appliances.MAX_BODY_BYTES} bytes. Stores nothing.",
        "security": [{"bearer": ["read"]}],
        "parameters": [{"name": "models", "in": "query", "required": False, "schema": {"type": "string"},
                        "description": "only these appliances, comma-separated (default: every model)"}],
        "requestBody": _RECORDING,
        "responses": {
            "200": {"description": "The recording's rows with one `<name> state` column per appliance, by name: "
                                   "timestamp,Maximum current,Effective current,PC screen1 state,…",
                    "headers": {"X-Rho-Rms": {"description": "the fitted correlation of the appliances' currents "
                                                             "(1: RMS values add; 0: they add in quadrature)",
                                              "schema": {"type": "string"}},
                                "X-Rho-Peak": {"description": "the same for the maximum current",
                                               "schema": {"type": "string"}}},
                    "content": {"text/csv": {"schema": {"type": "string"}}}},
            "400": _RECORDING_400,
            "401": {"$ref": "#/components/responses/Unauthorized"},
            "403": {"$ref": "#/components/responses/Forbidden"},
            "413": {"$ref": "#/components/responses/PayloadTooLarge"},
            "415": _CSV_415,
            "503": {"$ref": "#/components/responses/Unavailable"},
        }}},
    "/health": {"get": {
        "operationId": "getHealth", "tags": ["health"], "summary": "Database reachable and schema current",
        "security": [],
        "responses": {
            "200": _json("Healthy.", "Health"),
            "503": _json("Unhealthy: the database is unreachable or migrations are pending.", "Health",
                         headers=_RETRY_AFTER),
        }}},
    "/events": {
        "post": {
            "operationId": "postEvents", "tags": ["ingest"], "summary": "Store sensor events (all or nothing)",
            "description": f"Up to {ingest.MAX_EVENTS} events and {ingest.MAX_BODY_BYTES} bytes per request (after "
                           "gzip: `Content-Encoding: gzip` is accepted). Each event gets the next seq; crossing a "
                           "multiple of the cluster threshold opens a clustering run. With an `Idempotency-Key` a "
                           f"retry gets the first answer and stores nothing (keys kept {ingest.KEY_TTL}).",
            "security": [{"bearer": ["ingest"]}],
            "parameters": [
                {"name": "Idempotency-Key", "in": "header", "required": False,
                 "description": "1-255 visible ASCII characters, new for every new body (a UUID).",
                 "schema": {"type": "string", "minLength": 1, "maxLength": ingest.MAX_KEY_LENGTH}},
                {"name": "Content-Encoding", "in": "header", "required": False,
                 "schema": {"type": "string", "enum": ["gzip", "identity"]}}],
            "requestBody": {"required": True, "content": {
                "text/plain": {"schema": {"type": "string", "description": "raw sensor lines, one event per "
                                                                          "line (either firmware dialect)"}},
                "application/json": {"schema": {"oneOf": [
                    _ref("EventRecord"),
                    {"type": "array", "items": _ref("EventRecord"), "minItems": 1}]}},
            }},
            "responses": {
                "201": _json("Stored (or, with header Idempotent-Replayed: true, the first answer to this "
                             "Idempotency-Key).", "Stored"),
                "400": {"description": "An event is invalid (invalid_event, naming its line and field: out of its "
                                       "range, a control character...), the body holds no event (bad_request), is "
                                       "not gzip or UTF-8 as it says (invalid_body), holds a value the database "
                                       "refuses (invalid_value), or the Idempotency-Key is malformed "
                                       "(invalid_idempotency_key).",
                        "content": {"application/json": {"schema": {
                            "anyOf": [_ref("InvalidEventError"), _ref("Error")]}}}},
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "403": {"$ref": "#/components/responses/Forbidden"},
                "413": {"$ref": "#/components/responses/PayloadTooLarge"},
                "415": _error("Neither text/plain nor application/json (unsupported_media_type), or a "
                              "Content-Encoding other than gzip (unsupported_content_encoding)."),
                "422": _error("This Idempotency-Key was used with another body (idempotency_key_reused)."),
                "503": {"$ref": "#/components/responses/Unavailable"},
            }},
        "get": {
            "operationId": "listEvents", "tags": ["report"], "summary": "Labelled events, one page at a time",
            "description": "Parsed events with their label in the current run (or ?run=), by seq. Keyset pages: "
                           "pass `next` back as `cursor` with the same filters. Pages stay exact while events "
                           "arrive, and keep the labels of the run they started with.",
            "security": READ,
            "parameters": _params("label", "run", "device_id", "since", "until", "order", "limit", "cursor",
                                  "format"),
            "responses": _responses("400", "404", "409", "410", **{"200": {
                "description": "A page of events.",
                "headers": {
                    "X-Next-Cursor": {"description": "the next page's cursor (absent on the last page)",
                                      "schema": {"type": "string"}},
                    "Link": {"description": 'the next page, as <?query>; rel="next"', "schema": {"type": "string"}},
                },
                "content": {"application/json": {"schema": _ref("EventPage")},
                            "text/csv": {"schema": {"type": "string", "description": CSV_DESCRIPTION}}},
            }}),
        },
    },
    "/events/{id}": {"get": {
        "operationId": "getEvent", "tags": ["report"], "summary": "One event with its label in every completed run",
        "security": READ, "parameters": _params("id"),
        "responses": _responses("400", "404", **{"200": _json("The event.", "EventDetail")}),
    }},
    "/clusters/summary": {"get": {
        "operationId": "getClusterSummary", "tags": ["report"], "summary": "The current run's clusters",
        "security": READ, "parameters": _params("run", "scope_device_id"),
        "responses": _responses("400", "404", "409", **{"200": _json(
            "The run and its clusters; before any run completed, run null and events_until_first_run.",
            "Summary")}),
    }},
    "/runs": {"get": {
        "operationId": "listRuns", "tags": ["report"], "summary": "Every clustering run, newest first",
        "security": READ, "parameters": _params("scope_device_id"),
        "responses": _responses("400", **{"200": _json("The runs.", "Runs")}),
    }},
    "/openapi.json": {"get": {
        "operationId": "getOpenApi", "tags": ["report"], "summary": "This document", "security": READ,
        "responses": _responses("400", **{"200": _json("The OpenAPI 3.1 document.", "OpenApi")}),
    }},
    "/appliances": {"get": {
        "operationId": "listAppliances", "tags": ["appliances"], "summary": "Every appliance key and its name",
        "security": READ,
        "responses": _responses("400", **{"200": _json("The appliances.", "Appliances")}),
    }},
    "/appliances/states": {"get": {
        "operationId": "getApplianceStates", "tags": ["appliances"],
        "summary": "Each device's appliances' latest state, decoded live from its events",
        "description": "The sensor events' current decoded with every stored model as events arrive (the same "
                       "decoder as POST /appliances/label, carried from call to call). Empty until a model is "
                       "stored and events arrive after it.",
        "security": READ,
        "parameters": [_param("device_id", "query", {"type": "integer"}, "only this device")],
        "responses": _responses("400", **{"200": _json("The states.", "ApplianceLiveStates")}),
    }},
    "/appliances/{key}": {"put": {
        "operationId": "nameAppliance", "tags": ["appliances"], "summary": "Name an appliance (by its key)",
        "description": "Scope `ingest`: a name changes what every dashboard shows, so it is not for the read "
                       "tokens that live in browsers. The name stays with the key in later runs.",
        "security": [{"bearer": ["ingest"]}],
        "parameters": [_param("key", "path", {"type": "string"}, "an appliance key (GET /appliances)")],
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("ApplianceNaming")}}},
        "responses": _responses("400", "404", "409", "413", **{
            "200": _json("The appliance, named.", "Appliance"),
            "415": _error("The body is not application/json (unsupported_media_type).")}),
    }},
    "/dashboard": {"get": {
        "operationId": "getDashboard", "tags": ["dashboard"], "summary": "The live dashboard page",
        "description": "Static HTML. The page asks for a read token, keeps it in session storage and calls the "
                       "read routes with it; it never contains one.",
        "security": [],
        "parameters": [_param("device_id", "query", {"type": "integer"},
                              "ClusterScope=device: the device the page shows (read by the page itself)")],
        "responses": {"200": {"description": "The page.", "content": {"text/html": {"schema": {"type": "string"}}}},
                      "400": {"$ref": "#/components/responses/BadRequest"}},
    }},
    "/dashboard/{asset}": {"get": {
        "operationId": "getDashboardAsset", "tags": ["dashboard"], "summary": "The dashboard's script, style "
                                                                             "and configuration",
        "security": [],
        "parameters": [{"name": "asset", "in": "path", "required": True,
                        "schema": {"enum": ["app.js", "style.css", "config.json"]}}],
        "responses": {"200": {"description": "The file.", "content": {
            "application/javascript": {"schema": {"type": "string"}},
            "text/css": {"schema": {"type": "string"}},
            "application/json": {"schema": _ref("DashboardConfig")}}},
            "400": {"$ref": "#/components/responses/BadRequest"},
            "404": {"$ref": "#/components/responses/NotFound"}},
    }},
}



_ENERGY_SCHEMAS, _ENERGY_PATHS = energy.openapi()
SCHEMAS.update(_ENERGY_SCHEMAS)
PATHS.update(_ENERGY_PATHS)
_ALERT_SCHEMAS, _ALERT_PATHS = alerts.openapi()
SCHEMAS.update(_ALERT_SCHEMAS)
PATHS.update(_ALERT_PATHS)


@lru_cache(maxsize=1)
def document() -> dict:
    """The document (built once per process; callers must not mutate it)."""
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "info": {
            "title": "wattprint API", "version": VERSION,
            "description": "Energy-sensor events in, appliance fingerprints out. Sensors post events (scope "
                           "`ingest`); every time the number of stored events reaches a multiple of the cluster "
                           "threshold, a MeanShift clustering run labels every event so far. Dashboards read "
                           "the labelled events and per-cluster aggregates (scope `read`). Every error is "
                           '`{"error": {"code", "message", ...}}`.',
        },
        "servers": [{"url": "/v1", "description": "the API Gateway stage (https://{api}.execute-api.{region}"
                                                  ".amazonaws.com/v1)"}],
        "security": READ,
        "tags": [{"name": "ingest"}, {"name": "report"}, {"name": "energy"}, {"name": "alerts"}, {"name": "health"},
                 {"name": "dashboard"}, {"name": "appliances"}],
        "paths": PATHS,
        "components": {
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "Authorization: Bearer <token>. A token has one scope: `ingest` (POST /events, "
                               "POST /energy, PUT /appliances/models/{name}, PUT /appliances/{key}) or `read` (every "
                               "GET, POST /appliances/label). The role names in each operation's security requirement are "
                               "the scope it needs."}},
            "schemas": SCHEMAS,
            "responses": RESPONSES,
            "parameters": PARAMETERS,
        },
    }
