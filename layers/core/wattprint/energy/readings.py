"""POST /energy's body, checked whole before anything is stored: the first fault is a 400 naming it."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from . import times
from ..errors import InvalidReading, PayloadTooLarge
from .integrate import UNITS

MAX_READINGS = 10_000
MAX_BODY_BYTES = 1024 * 1024  # 10,000 readings of ~50 bytes fit with room; API Gateway's own cap is 10 MB
INT32_MIN, INT32_MAX = -2**31, 2**31 - 1
_KEYS = ("device_id", "units", "data")
_READING_KEYS = ("datetime", "value")
# A guard against typos of scale (W posted as kW), not physics: 1 GW on one device, 1 GWh in one interval.
MAX_VALUE = 1e6


@dataclass(frozen=True)
class Post:
    device_id: int
    units: int  # integrate.KW or KWH
    ts: list[int]  # µs since the epoch, in the post's order
    values: list[float]


def _integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse(body: str | bytes) -> Post:
    size = len(body.encode()) if isinstance(body, str) else len(body)
    if size > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the body is {size} bytes; at most {MAX_BODY_BYTES}")
    try:
        doc = json.loads(body, parse_constant=lambda name: name)  # NaN/Infinity become strings: refused below
    except ValueError as error:
        raise InvalidReading(f"the body is not valid JSON: {error}") from None
    if not isinstance(doc, dict):
        raise InvalidReading("the body must be a JSON object with device_id, units and data")
    for key in doc:
        if key not in _KEYS:
            raise InvalidReading(f"unknown field {key!r} (expected device_id, units, data)", field=key)
    for key in _KEYS:
        if key not in doc:
            raise InvalidReading(f"{key} is missing", field=key)
    device_id = doc["device_id"]
    if not _integer(device_id) or not INT32_MIN <= device_id <= INT32_MAX:
        raise InvalidReading(f"device_id must be an integer between {INT32_MIN} and {INT32_MAX}, not "
                             f"{json.dumps(device_id)}", field="device_id")
    units = UNITS.get(doc["units"]) if isinstance(doc["units"], str) else None
    if units is None:
        raise InvalidReading(f"units must be \"kW\" or \"kWh\", not {json.dumps(doc['units'])}", field="units")
    data = doc["data"]
    if not isinstance(data, list) or not data:
        raise InvalidReading("data must be a non-empty list of {datetime, value} readings", field="data")
    if len(data) > MAX_READINGS:
        raise InvalidReading(f"at most {MAX_READINGS} readings per request, got {len(data)}", index=MAX_READINGS,
                             field="data")
    stamps: list[int] = []
    values: list[float] = []
    seen: dict[int, int] = {}
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            raise InvalidReading("a reading must be an object {datetime, value}", index=index)
        for key in item:
            if key not in _READING_KEYS:
                raise InvalidReading(f"unknown field {key!r} in a reading (expected datetime, value)",
                                     index=index, field=key)
        for key in _READING_KEYS:
            if key not in item:
                raise InvalidReading(f"{key} is missing", index=index, field=key)
        when = times.parse(item["datetime"], require_offset=True)
        if when is None:
            raise InvalidReading(f"datetime must be ISO 8601 with a zone, such as 2019-01-05T04:37:00Z, not "
                                 f"{json.dumps(item['datetime'])}", index=index, field="datetime")
        value = item["value"]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or (
                isinstance(value, float) and not math.isfinite(value)):
            raise InvalidReading(f"value must be a finite number, not {json.dumps(value)}", index=index,
                                 field="value")
        if not 0 <= value <= MAX_VALUE:
            raise InvalidReading(f"value must be between 0 and {MAX_VALUE:g}, not {value}", index=index,
                                 field="value")
        us = times.to_us(when)
        if us in seen:
            raise InvalidReading(f"datetime {times.iso(us)} is also reading {seen[us]}'s; one reading per instant",
                                 index=index, field="datetime")
        seen[us] = index
        stamps.append(us)
        values.append(float(value))
    return Post(device_id, units, stamps, values)
