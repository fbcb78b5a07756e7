"""EventRecord, its JSON form (to_json / from_json) and InvalidEvent."""

from __future__ import annotations

import copy
import dataclasses
import json
import string
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.strategies import records

from wattprint.errors import ServiceError
from wattprint.ingest.record import FIELDS, EventRecord, InvalidEvent, new_record

UTC = timezone.utc

EXPECTED_FIELDS = (
    "device_id", "firmware", "event_type", "coil_reversed", "active_power_w",
    "reactive_power_var", "apparent_power_va", "current_a", "voltage_v", "phase_rad", "peaks",
    "fft_re", "fft_img", "sensor_time", "frequency_hz", "wifi_strength_dbm", "dummy",
)

# The documented example event, as a record.
DOC = EventRecord(
    device_id=10, firmware="16071801", event_type=2, coil_reversed=False,
    active_power_w=289.0, reactive_power_var=279.0, apparent_power_va=403.0,
    current_a=1.75, voltage_v=230.08, phase_rad=-43.841,
    peaks=(1041.0, 1051.0, 1058.0, 1051.0, 1049.0, 1047.0, 1054.0, 1059.0, 1057.0, 1060.0),
    fft_re=(-257863.0, 102815.0, -64043.0, 48516.0, 59599.0, -4223.0, -43441.0, 23559.0,
            -24518.0),
    fft_img=(481910.0, -14891.0, 69871.0, -7130.0, 43860.0, 34204.0, 55951.0, -6945.0,
             26131.0),
    sensor_time=datetime(2016, 10, 4, 16, 47, 50, tzinfo=UTC),
    frequency_hz=49.87, wifi_strength_dbm=-62, dummy=20,
)

DOC_JSON = {
    "device_id": 10, "firmware": "16071801", "event_type": 2, "coil_reversed": False,
    "active_power_w": 289.0, "reactive_power_var": 279.0, "apparent_power_va": 403.0,
    "current_a": 1.75, "voltage_v": 230.08, "phase_rad": -43.841,
    "peaks": [1041.0, 1051.0, 1058.0, 1051.0, 1049.0, 1047.0, 1054.0, 1059.0, 1057.0, 1060.0],
    "fft_re": [-257863.0, 102815.0, -64043.0, 48516.0, 59599.0, -4223.0, -43441.0, 23559.0,
               -24518.0],
    "fft_img": [481910.0, -14891.0, 69871.0, -7130.0, 43860.0, 34204.0, 55951.0, -6945.0,
                26131.0],
    "sensor_time": "2016-10-04T16:47:50Z",
    "frequency_hz": 49.87, "wifi_strength_dbm": -62, "dummy": 20,
}


# --- a strategy for valid records (kept in step with the one in test_parser.py) ------------

# Valid records over every field's whole range: tests/strategies.py.


# --- the record ---------------------------------------------------------------------------

def test_fields_in_order():
    assert FIELDS == EXPECTED_FIELDS
    assert tuple(f.name for f in dataclasses.fields(EventRecord)) == EXPECTED_FIELDS


def test_record_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        DOC.active_power_w = 1.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        new_record(*[getattr(DOC, f) for f in FIELDS]).dummy = 1  # type: ignore[misc]
    assert hash(DOC) == hash(copy.copy(DOC))


def test_new_record_equals_the_dataclass_constructor():
    values = [getattr(DOC, f) for f in FIELDS]
    made = new_record(*values)
    assert type(made) is EventRecord
    assert made == DOC
    assert [getattr(made, f) for f in FIELDS] == values
    assert repr(made) == repr(DOC)
    assert vars(made) == vars(DOC)  # same fields, same order
    assert list(vars(made)) == list(FIELDS)


# --- to_json -------------------------------------------------------------------------------

def test_to_json_of_the_documented_event():
    assert DOC.to_json() == DOC_JSON
    assert json.loads(json.dumps(DOC.to_json())) == DOC_JSON


def test_to_json_time_format_and_types():
    j = DOC.to_json()
    assert j["sensor_time"] == "2016-10-04T16:47:50Z"
    assert type(j["peaks"]) is list and type(j["fft_re"]) is list and type(j["fft_img"]) is list
    early = dataclasses.replace(DOC, sensor_time=datetime(7, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert early.to_json()["sensor_time"] == "0007-01-02T03:04:05Z"


def test_from_json_of_the_documented_event():
    assert EventRecord.from_json(DOC_JSON) == DOC
    assert EventRecord.from_json(json.loads(json.dumps(DOC_JSON))) == DOC


def test_from_json_accepts_ints_for_floats_and_plus_00_00():
    obj = dict(DOC_JSON, active_power_w=289, peaks=[1041, 1051, 1058, 1051, 1049, 1047, 1054,
                                                      1059, 1057, 1060],
               sensor_time="2016-10-04T16:47:50+00:00")
    rec = EventRecord.from_json(obj)
    assert rec == DOC
    assert type(rec.active_power_w) is float and type(rec.peaks[0]) is float
    assert rec.sensor_time.tzinfo is not None and rec.sensor_time.utcoffset().total_seconds() == 0


@settings(max_examples=150)
@given(records())
def test_json_round_trip(rec):
    back = EventRecord.from_json(json.loads(json.dumps(rec.to_json())))
    assert back == rec
    assert back.sensor_time.utcoffset().total_seconds() == 0


# --- from_json rejections ------------------------------------------------------------------

def _without(key):
    obj = dict(DOC_JSON)
    del obj[key]
    return obj


@pytest.mark.parametrize("obj, field", [
    (_without("voltage_v"), "voltage_v"),
    (_without("sensor_time"), "sensor_time"),
    (dict(DOC_JSON, colour="red"), "colour"),
    (dict(DOC_JSON, device_id=True), "device_id"),
    (dict(DOC_JSON, dummy=False), "dummy"),
    (dict(DOC_JSON, event_type=2.0), "event_type"),
    (dict(DOC_JSON, wifi_strength_dbm="-62"), "wifi_strength_dbm"),
    (dict(DOC_JSON, device_id=None), "device_id"),
    (dict(DOC_JSON, active_power_w=float("nan")), "active_power_w"),
    (dict(DOC_JSON, voltage_v=float("inf")), "voltage_v"),
    (dict(DOC_JSON, phase_rad=float("-inf")), "phase_rad"),
    (dict(DOC_JSON, current_a="1.75"), "current_a"),
    (dict(DOC_JSON, frequency_hz=True), "frequency_hz"),
    (dict(DOC_JSON, reactive_power_var=10 ** 400), "reactive_power_var"),
    (dict(DOC_JSON, apparent_power_va=None), "apparent_power_va"),
    (dict(DOC_JSON, sensor_time="2016-02-30T16:47:50Z"), "sensor_time"),
    (dict(DOC_JSON, sensor_time="2016-10-04T25:47:50Z"), "sensor_time"),
    (dict(DOC_JSON, sensor_time="2016-10-04T16:47:50"), "sensor_time"),
    (dict(DOC_JSON, sensor_time="2016-10-04T16:47:50+02:00"), "sensor_time"),
    (dict(DOC_JSON, sensor_time="2016-10-4T16:47:50Z"), "sensor_time"),
    (dict(DOC_JSON, sensor_time="2016-10-04 16:47:50Z"), "sensor_time"),
    (dict(DOC_JSON, sensor_time=1475599670), "sensor_time"),
    (dict(DOC_JSON, peaks=[1.0, 2.0]), "peaks"),
    (dict(DOC_JSON, peaks=[]), "peaks"),
    (dict(DOC_JSON, peaks=[1.0, 2.0, float("nan")]), "peaks"),
    (dict(DOC_JSON, peaks=[1.0, 2.0, "3"]), "peaks"),
    (dict(DOC_JSON, peaks=[1.0, 2.0, True]), "peaks"),
    (dict(DOC_JSON, peaks=(1.0, 2.0, 3.0)), "peaks"),
    (dict(DOC_JSON, peaks="1;2;3"), "peaks"),
    (dict(DOC_JSON, fft_img=DOC_JSON["fft_img"][:-1]), "fft_img"),
    (dict(DOC_JSON, fft_re=[], fft_img=[]), "fft_re"),
    (dict(DOC_JSON, fft_re=[1.0, float("inf")], fft_img=[1.0, 2.0]), "fft_re"),
    (dict(DOC_JSON, firmware=""), "firmware"),
    (dict(DOC_JSON, firmware=16071801), "firmware"),
    (dict(DOC_JSON, firmware="16;07"), "firmware"),
    (dict(DOC_JSON, firmware=" 16071801"), "firmware"),
    (dict(DOC_JSON, coil_reversed="OFF"), "coil_reversed"),
    (dict(DOC_JSON, coil_reversed=0), "coil_reversed"),
])
def test_from_json_rejects(obj, field):
    with pytest.raises(InvalidEvent) as info:
        EventRecord.from_json(obj)
    assert info.value.field == field
    assert info.value.message
    assert info.value.line is None


def test_from_json_missing_key_message_names_it():
    with pytest.raises(InvalidEvent) as info:
        EventRecord.from_json(_without("dummy"))
    assert info.value.field == "dummy"
    assert "missing" in info.value.message


def test_from_json_unknown_key_message_names_it():
    with pytest.raises(InvalidEvent) as info:
        EventRecord.from_json(dict(DOC_JSON, colour="red"))
    assert info.value.field == "colour"
    assert "unknown field 'colour'" in info.value.message


@pytest.mark.parametrize("obj", [None, [], "event", 3, [DOC_JSON]])
def test_from_json_rejects_non_objects(obj):
    with pytest.raises(InvalidEvent) as info:
        EventRecord.from_json(obj)
    assert info.value.field is None
    assert "JSON object" in info.value.message


# --- InvalidEvent ----------------------------------------------------------------------------

def test_invalid_event_shape():
    e = InvalidEvent("not a number: 'x'", "active_power_w")
    assert isinstance(e, ValueError)
    assert isinstance(e, ServiceError) and e.status == 400 and e.headers() == {}
    assert (e.field, e.message, e.line) == ("active_power_w", "not a number: 'x'", None)
    assert e.to_dict() == {"code": "invalid_event", "message": "not a number: 'x'",
                           "line": None, "field": "active_power_w"}
    e.line = 7
    assert e.to_dict() == {"code": "invalid_event", "message": "not a number: 'x'",
                           "line": 7, "field": "active_power_w"}
    assert str(e) == "line 7: active_power_w: not a number: 'x'"


def test_invalid_event_without_field():
    e = InvalidEvent("trailing garbage after the last field: 'xyz'")
    assert e.field is None and e.line is None
    assert e.to_dict() == {"code": "invalid_event",
                           "message": "trailing garbage after the last field: 'xyz'",
                           "line": None, "field": None}
    assert str(e) == "trailing garbage after the last field: 'xyz'"

