"""The energy routes' part of the OpenAPI document (wattprint.report.openapi merges it through
wattprint.energy.service.openapi()), built from the names and limits the code uses."""

from __future__ import annotations

from .. import schema
from . import forecast as energy_forecast
from . import params as energy_params
from . import readings as energy_readings

READ = [{"bearer": ["read"]}]
_NUMBER = {"type": "number"}
_COMMON = {"401": {"$ref": "#/components/responses/Unauthorized"},
           "403": {"$ref": "#/components/responses/Forbidden"},
           "503": {"$ref": "#/components/responses/Unavailable"}}


_ref, _nullable, _object = schema.ref, schema.nullable, schema.strict_object


def _error(description: str, schema: str = "Error") -> dict:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _json(description: str, schema: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _responses(*refs: str, **ok) -> dict:
    out = dict(ok)
    for status in refs:
        out[status] = {"$ref": "#/components/responses/BadRequest"}
    out.update(_COMMON)
    return dict(sorted(out.items()))


def _param(name: str, where: str, schema: dict, description: str, required: bool = False) -> dict:
    return {"name": name, "in": where, "required": required or where == "path", "schema": schema,
            "description": description}

_ENERGY_TIME = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?Z$"}
_RESOLUTION = {"type": "string", "enum": ["15m", "1h", "1d"]}
_FLAGS = {"type": "array", "items": {"type": "string", "enum": ["estimated_end", "arrival_time"]},
          "description": "estimated_end: holds time of the device's last interval, whose end is the device's typical "
                         "spacing (an estimate); arrival_time: holds sensor readings timed by their arrival because "
                         "the sensor's clock repeated"}
SCHEMAS = {
    "EnergyPost": _object({
        "device_id": {"type": "integer"},
        "units": {"type": "string", "enum": ["kW", "kWh"],
                  "description": "kW: power, held until the device's next reading; kWh: the energy of the interval "
                                 "to the device's next reading"},
        "data": {"type": "array", "minItems": 1, "maxItems": energy_readings.MAX_READINGS, "items": _object({
            "datetime": {"type": "string", "description": "ISO 8601 with a zone (Z or an offset); the reading's "
                                                          "interval starts here. Unique within a post."},
            "value": {"type": "number", "minimum": 0, "maximum": energy_readings.MAX_VALUE}})},
    }, description="Readings of one device in one unit. All or nothing."),
    "EnergyStored": _object({
        "device_id": {"type": "integer"}, "units": {"type": "string", "enum": ["kW", "kWh"]},
        "received": {"type": "integer", "minimum": 1},
        "inserted": {"type": "integer", "minimum": 0, "description": "readings new to the store"},
        "replaced": {"type": "integer", "minimum": 0, "description": "corrections: a stored reading of the same "
                                                                     "device and instant had another value"},
        "unchanged": {"type": "integer", "minimum": 0, "description": "re-posted as stored: no-ops"},
        "buckets_changed": {"type": "integer", "minimum": 0},
    }),
    "InvalidReadingError": _object({"error": _object({
        "code": {"const": "invalid_reading"},
        "message": {"type": "string"},
        "index": {**_nullable({"type": "integer", "minimum": 0}),
                  "description": "0-based position in data of the reading at fault; null for the body's own fields"},
        "field": {**_nullable({"type": "string"}), "description": "device_id, units, data, datetime or value"},
    })}),
    "EnergySeries": _object({
        "device_id": {"type": "integer"}, "units": {"const": "kWh"}, "resolution": _RESOLUTION,
        "start": _ENERGY_TIME, "end": _ENERGY_TIME,
        "data": {"type": "array", "items": _object({
            "datetime": {**_ENERGY_TIME, "description": "the bucket's start (UTC)"},
            "value": {"type": "number", "description": "kWh in the bucket"},
            "coverage": {"type": "number", "minimum": 0, "maximum": 1,
                         "description": "the share of the bucket that readings cover (gaps and time before the "
                                        "first reading are not)"},
            "flags": _FLAGS})},
    }),
    "EnergyPower": _object({
        "device_id": {"type": "integer"}, "units": {"const": "kW"},
        "resolution": {"type": "string", "enum": ["readings", "15m"],
                       "description": f"readings: a step per reading's interval (at most "
                                      f"{energy_params.MAX_POWER_READINGS} readings in the window); 15m: a step per "
                                      "bucket with readings, its average power over the time they cover"},
        "start": _ENERGY_TIME, "end": _ENERGY_TIME,
        "data": {"type": "array", "items": _object({
            "datetime": {**_ENERGY_TIME, "description": "the step's start (clipped to the window)"},
            "end": {**_ENERGY_TIME, "description": "the step's end (clipped to the window); a gap or time before "
                                                   "the first reading is no step"},
            "value": {"type": "number", "minimum": 0, "description": "kW held over the step"},
            "flags": _FLAGS})},
    }),
    "EnergyFleet": _object({
        "units": {"const": "kWh"}, "resolution": _RESOLUTION, "start": _ENERGY_TIME, "end": _ENERGY_TIME,
        "data": {"type": "array", "items": _object({
            "datetime": _ENERGY_TIME, "sum": _NUMBER,
            "avg": {**_nullable(_NUMBER), "description": "sum / devices; null when no device reported"},
            "devices": {"type": "integer", "minimum": 0, "description": "devices with readings covering part of "
                                                                        "the step"}})},
    }),
    "EnergyTop": _object({
        "units": {"const": "kWh"}, "count": {"type": "integer", "minimum": 1},
        "start": _nullable(_ENERGY_TIME), "end": _nullable(_ENERGY_TIME),
        "data": {"type": "array", "items": _object({
            "rank": {"type": "integer", "minimum": 1}, "device_id": {"type": "integer"}, "kwh": _NUMBER})},
    }),
    "EnergyForecast": _object({
        "device_id": {"type": "integer"}, "units": {"const": "kWh"}, "resolution": {"const": "15m"},
        "start": _ENERGY_TIME, "end": _ENERGY_TIME,
        "origin": {**_ENERGY_TIME, "description": "only history before this instant is used"},
        "total": _NUMBER,
        "data": {"type": "array", "items": _object({"datetime": _ENERGY_TIME, "value": _NUMBER})},
        "method": _object({"baseline": {"type": "string"}, "weeks": {"type": "integer"},
                           "level": {"type": "number", "minimum": energy_forecast.LEVEL_LIMITS[0],
                                     "maximum": energy_forecast.LEVEL_LIMITS[1]}}),
        "backtest": _object({
            "weeks": {"type": "integer", "minimum": 1}, "buckets": {"type": "integer", "minimum": 0},
            "mae_kwh": {**_nullable(_NUMBER), "description": "mean absolute error per bucket"},
            "smape_percent": {**_nullable({"type": "number", "minimum": 0, "maximum": 200}),
                              "description": "symmetric MAPE; buckets where forecast and actual are both 0 left "
                                             "out"}}),
    }),
}


def _q(name: str, schema: dict, description: str, required: bool = False) -> dict:
    return _param(name, "query", schema, description, required)


_ENERGY_DEVICE = _q("device_id", {"type": "integer"}, "the device", required=True)
_ENERGY_START = _q("start", {"type": "string"}, "ISO 8601 (no zone: UTC; 2018-08-24T00-00-00Z also accepted); "
                   "steps whose start lies in [start, end)", required=True)
_ENERGY_END = _q("end", {"type": "string"}, "ISO 8601, exclusive", required=True)
_ENERGY_RESOLUTION = _q("resolution", {**_RESOLUTION, "default": "15m"}, "steps summed from the 15-minute buckets")
_ENERGY_FORMAT = _q("format", {"type": "string", "enum": ["json", "csv"]},
                    "csv: the same rows as CSV (also chosen by Accept: text/csv)")


def _energy_get(operation: str, summary: str, description: str, parameters: list, schema: str,
                csv_columns: str, extra: dict | None = None) -> dict:
    ok = {"description": "The answer.", "content": {
        "application/json": {"schema": _ref(schema)},
        "text/csv": {"schema": {"type": "string", "description": f"CRLF lines: a header, then {csv_columns}"}}}}
    return {"get": {"operationId": operation, "tags": ["energy"], "summary": summary, "description": description,
                    "security": READ, "parameters": parameters,
                    "responses": _responses("400", **{"200": ok, **(extra or {})})}}


PATHS = {
    "/energy": {
        "post": {
            "operationId": "postEnergy", "tags": ["energy"], "summary": "Store a device's power or energy readings",
            "description": f"Up to {energy_readings.MAX_READINGS} readings, {energy_readings.MAX_BODY_BYTES} bytes. "
                           "A reading starts an interval that runs to the device's next reading; re-posting changes "
                           "nothing, a reading at a stored instant with another value replaces it, and only the "
                           "buckets between the neighbouring readings are recomputed. All or nothing.",
            "security": [{"bearer": ["ingest"]}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("EnergyPost")}}},
            "responses": {
                "200": _json("Stored.", "EnergyStored"),
                "400": _error("A reading or the body is invalid (invalid_reading: index and field named).",
                              "InvalidReadingError"),
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "403": {"$ref": "#/components/responses/Forbidden"},
                "413": {"$ref": "#/components/responses/PayloadTooLarge"},
                "503": {"$ref": "#/components/responses/Unavailable"},
            }},
        **_energy_get("getEnergy", "A device's energy per 15 minutes, hour or day",
                      "Every step of the window, with no data as 0 kWh and coverage 0.",
                      [_ENERGY_DEVICE, _ENERGY_START, _ENERGY_END, _ENERGY_RESOLUTION, _ENERGY_FORMAT],
                      "EnergySeries", "datetime,value,coverage,flags (flags joined by ;)"),
    },
    "/energy/power": _energy_get(
        "getEnergyPower", "A device's power over time",
        "The power its readings hold, step by step: a kW reading's value until the next reading, a kWh reading's "
        "energy over its interval; the last reading's interval takes the device's typical spacing (estimated_end). "
        "The window is aligned to quarter hours like GET /energy's.",
        [_ENERGY_DEVICE, _ENERGY_START, _ENERGY_END, _ENERGY_FORMAT], "EnergyPower", "datetime,end,value,flags"),
    "/energy/fleet": _energy_get("getEnergyFleet", "The fleet's energy per step",
                                 "Sum over every device, average over the devices reporting in the step.",
                                 [_ENERGY_START, _ENERGY_END, _ENERGY_RESOLUTION, _ENERGY_FORMAT], "EnergyFleet",
                                 "datetime,sum,avg,devices"),
    "/energy/top": _energy_get(
        "getEnergyTop", "The devices that used the most energy",
        "Ties broken by device id (lowest first). Without start and end: everything stored.",
        [_q("count", {"type": "integer", "minimum": 1, "maximum": energy_params.MAX_COUNT,
                      "default": energy_params.DEFAULT_COUNT}, "how many devices"),
         {**_ENERGY_START, "required": False}, {**_ENERGY_END, "required": False}, _ENERGY_FORMAT],
        "EnergyTop", "rank,device_id,kwh"),
    "/energy/forecast": _energy_get(
        "getEnergyForecast", "Expected energy per 15 minutes, with the method's backtest error",
        f"Seasonal baseline (median of the same weekday and quarter hour over {energy_forecast.WEEKS} weeks, "
        "scaled to the last week's level) from the history before the window. Needs "
        f"{energy_forecast.WEEKS_NEEDED} weeks of history: fewer is 409 insufficient_history.",
        [_ENERGY_DEVICE, _ENERGY_START, _ENERGY_END, _ENERGY_FORMAT], "EnergyForecast", "datetime,value",
        extra={"409": _error("Too little history for a forecast (insufficient_history, with weeks_available and "
                             "weeks_needed).")}),
}
