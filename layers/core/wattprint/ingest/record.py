"""The canonical event record and its JSON form (its validation error, InvalidEvent, is in wattprint.errors).

Stdlib only; importing this module does no work beyond compiling one pattern.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from ..errors import InvalidEvent

__all__ = ["EventRecord", "FIELDS", "InvalidEvent", "MIN_PEAKS", "MAX_PEAKS", "MIN_FFT", "MAX_FFT", "MAX_FIRMWARE",
           "RANGES", "TIME_MIN", "TIME_AHEAD", "new_record", "format_time", "out_of_range", "bad_length",
           "check_time"]

UTC = timezone.utc

#: A valid event carries 3 to 100 peaks ...
MIN_PEAKS, MAX_PEAKS = 3, 100
#: ... and 1 to 512 FFT coefficients (FFT Re and FFT Img have equal lengths).
MIN_FFT, MAX_FFT = 1, 512
#: The firmware is 1 to 64 printable characters.
MAX_FIRMWARE = 64

# Physically plausible values, per field: (lowest, highest, unit). Both parsers refuse anything outside, so one
# event can never push clustering's distances to overflow or make its bandwidth meaningless. Every bound, and why,
# is in the table of README.md and docs/input.md; the sensors' real file and the documented example sit well inside.
# For the three lists the bound holds for every item.
RANGES: dict[str, tuple[float, float, str]] = {
    "device_id": (0, 2 ** 31 - 1, ""),
    "event_type": (0, 255, ""),
    "active_power_w": (-100_000.0, 100_000.0, " W"),
    "reactive_power_var": (-100_000.0, 100_000.0, " var"),
    "apparent_power_va": (0.0, 100_000.0, " VA"),
    "current_a": (0.0, 500.0, " A"),
    "voltage_v": (0.0, 1000.0, " V"),
    "phase_rad": (-360.0, 360.0, ""),
    "peaks": (-1e6, 1e6, ""),
    "fft_re": (-1e9, 1e9, ""),
    "fft_img": (-1e9, 1e9, ""),
    "frequency_hz": (0.0, 100.0, " Hz"),
    "wifi_strength_dbm": (-128, 0, " dBm"),
    "dummy": (-2 ** 31, 2 ** 31 - 1, ""),
}
#: No event predates the sensors (their firmware is from 2016); unset clocks say 1970-01-01 or 2000-01-01.
TIME_MIN = datetime(2010, 1, 1, tzinfo=UTC)
#: ... nor comes from the future, beyond a day of clock drift.
TIME_AHEAD = timedelta(days=1)


def out_of_range(field: str, value, item: int | None = None) -> InvalidEvent:
    low, high, unit = RANGES[field]
    where = f"item {item} " if item is not None else ""
    return InvalidEvent(f"{where}{value!r} is out of range: must be between {low:g} and {high:g}{unit}", field)


def bad_length(field: str, n: int, minimum: int, maximum: int) -> InvalidEvent:
    if n < minimum:
        return InvalidEvent(f"needs at least {minimum} values, got {n}", field)
    return InvalidEvent(f"takes at most {maximum} values, got {n}", field)


def check_time(t: datetime) -> datetime:
    """``t`` if it is a plausible event time (see TIME_MIN, TIME_AHEAD), else InvalidEvent on sensor_time."""
    if t < TIME_MIN or t.timestamp() > time.time() + TIME_AHEAD.total_seconds():
        raise InvalidEvent(f"{format_time(t)} is out of range: must be from {format_time(TIME_MIN)} to a day "
                           "from now", "sensor_time")
    return t


@dataclass(frozen=True)
class EventRecord:
    device_id: int
    firmware: str
    event_type: int
    coil_reversed: bool
    active_power_w: float
    reactive_power_var: float
    apparent_power_va: float
    current_a: float
    voltage_v: float
    phase_rad: float
    peaks: tuple[float, ...]
    fft_re: tuple[float, ...]
    fft_img: tuple[float, ...]
    sensor_time: datetime
    frequency_hz: float
    wifi_strength_dbm: int
    dummy: int

    def to_json(self) -> dict:
        """A JSON-ready dict: tuples become lists, ``sensor_time`` becomes ``"2016-10-04T16:47:50Z"``."""
        return {
            "device_id": self.device_id,
            "firmware": self.firmware,
            "event_type": self.event_type,
            "coil_reversed": self.coil_reversed,
            "active_power_w": self.active_power_w,
            "reactive_power_var": self.reactive_power_var,
            "apparent_power_va": self.apparent_power_va,
            "current_a": self.current_a,
            "voltage_v": self.voltage_v,
            "phase_rad": self.phase_rad,
            "peaks": list(self.peaks),
            "fft_re": list(self.fft_re),
            "fft_img": list(self.fft_img),
            "sensor_time": format_time(self.sensor_time),
            "frequency_hz": self.frequency_hz,
            "wifi_strength_dbm": self.wifi_strength_dbm,
            "dummy": self.dummy,
        }

    @classmethod
    def from_json(cls, obj) -> "EventRecord":
        """Strictly validate a JSON object (as decoded by :func:`json.loads`) into a record.

        Raises :class:`InvalidEvent` naming the offending field.
        """
        if not isinstance(obj, dict):
            raise InvalidEvent(f"an event must be a JSON object, not {_kind(obj)}")
        for key in obj:
            if key not in _FIELD_SET:
                raise InvalidEvent(f"unknown field {key!r}", key if isinstance(key, str) else repr(key))
        for name in FIELDS:
            if name not in obj:
                raise InvalidEvent("missing field", name)
        g = obj.__getitem__
        peaks = _json_floats(g("peaks"), "peaks", MIN_PEAKS, MAX_PEAKS)
        fft_re = _json_floats(g("fft_re"), "fft_re", MIN_FFT, MAX_FFT)
        fft_img = _json_floats(g("fft_img"), "fft_img", MIN_FFT, MAX_FFT)
        if len(fft_re) != len(fft_img):
            raise InvalidEvent(
                f"fft_img has {len(fft_img)} values but fft_re has {len(fft_re)}; they must be equally long",
                "fft_img")
        make = new_record if cls is EventRecord else cls
        return make(
            _json_int(g("device_id"), "device_id"),
            _json_firmware(g("firmware")),
            _json_int(g("event_type"), "event_type"),
            _json_bool(g("coil_reversed"), "coil_reversed"),
            _json_float(g("active_power_w"), "active_power_w"),
            _json_float(g("reactive_power_var"), "reactive_power_var"),
            _json_float(g("apparent_power_va"), "apparent_power_va"),
            _json_float(g("current_a"), "current_a"),
            _json_float(g("voltage_v"), "voltage_v"),
            _json_float(g("phase_rad"), "phase_rad"),
            peaks,
            fft_re,
            fft_img,
            _json_time(g("sensor_time")),
            _json_float(g("frequency_hz"), "frequency_hz"),
            _json_int(g("wifi_strength_dbm"), "wifi_strength_dbm"),
            _json_int(g("dummy"), "dummy"),
        )


#: The canonical field names, in order.
FIELDS: tuple[str, ...] = tuple(EventRecord.__dataclass_fields__)
_FIELD_SET = frozenset(FIELDS)


def _make_constructor():
    """A positional constructor equal to ``EventRecord(...)`` at a quarter of its cost.

    A frozen dataclass's ``__init__`` goes through ``object.__setattr__`` once per field; writing the fields
    into the new instance's ``__dict__`` skips that. The parser builds a record per event, so this matters
    there. It is also why the class has no ``__slots__``: setting 17 slots through their descriptors'
    ``__set__`` is slower than the dict write. The price: reading the fields of such an instance is slower
    than of one made by ``__init__`` (its dict is a real dict, not inline values); a record is read once, by
    the store, so it still gains (figures: BENCHMARKS.md, design measurements).
    Generated the same way dataclasses generates ``__init__`` (one small ``exec`` at import).
    """
    names = ", ".join(FIELDS)
    body = "".join(f"    d[{f!r}] = {f}\n" for f in FIELDS)
    src = (f"def new_record({names}):\n"
           f"    \"\"\"Build an EventRecord without validation (positional fields, in order).\"\"\"\n"
           f"    self = _new(_cls)\n    d = self.__dict__\n{body}    return self\n")
    ns = {"_new": object.__new__, "_cls": EventRecord}
    exec(src, ns)  # noqa: S102 - fixed source built from FIELDS above
    return ns["new_record"]


new_record = _make_constructor()


def format_time(t: datetime) -> str:
    """``2016-10-04T16:47:50Z`` (the instant converted to UTC; naive datetimes are taken as UTC)."""
    if t.tzinfo is not None and t.utcoffset():
        t = t.astimezone(UTC)
    return (f"{t.year:04d}-{t.month:02d}-{t.day:02d}"
            f"T{t.hour:02d}:{t.minute:02d}:{t.second:02d}Z")


# --- JSON validation helpers ------------------------------------------------------------

_ISO_UTC = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:Z|\+00:00)", re.ASCII)


def _kind(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__


def _json_int(v, field: str) -> int:
    if type(v) is not int:
        raise InvalidEvent(f"must be an integer, not {_kind(v)}"
                           + (f" ({v!r})" if isinstance(v, float) else ""), field)
    low, high, _ = RANGES[field]
    if not low <= v <= high:
        raise out_of_range(field, v)
    return v


def _json_float(v, field: str) -> float:
    t = type(v)
    if t is float:
        if v - v != 0.0:  # NaN or +-inf
            raise InvalidEvent(f"must be a finite number, not {v!r}", field)
    elif t is int:
        try:
            v = float(v)
        except OverflowError:
            raise InvalidEvent("number is too large", field) from None
    else:
        raise InvalidEvent(f"must be a number, not {_kind(v)}", field)
    low, high, _ = RANGES[field]
    if not low <= v <= high:
        raise out_of_range(field, v)
    return v


def _json_floats(v, field: str, minimum: int, maximum: int) -> tuple[float, ...]:
    if not isinstance(v, list):
        raise InvalidEvent(f"must be an array of numbers, not {_kind(v)}", field)
    if not minimum <= len(v) <= maximum:
        raise bad_length(field, len(v), minimum, maximum)
    low, high, _ = RANGES[field]
    out = []
    for i, x in enumerate(v):
        t = type(x)
        if t is float:
            if x - x != 0.0:
                raise InvalidEvent(f"item {i} must be a finite number, not {x!r}", field)
        elif t is int:
            try:
                x = float(x)
            except OverflowError:
                raise InvalidEvent(f"item {i} is too large", field) from None
        else:
            raise InvalidEvent(f"item {i} must be a number, not {_kind(x)}", field)
        if not low <= x <= high:
            raise out_of_range(field, x, i)
        out.append(x)
    return tuple(out)


def _json_bool(v, field: str) -> bool:
    if type(v) is not bool:
        raise InvalidEvent(f"must be true or false, not {_kind(v)}", field)
    return v


def _json_firmware(v) -> str:
    if not isinstance(v, str):
        raise InvalidEvent(f"must be a string, not {_kind(v)}", "firmware")
    if not v:
        raise InvalidEvent("must not be empty", "firmware")
    if len(v) > MAX_FIRMWARE:
        raise InvalidEvent(f"must be at most {MAX_FIRMWARE} characters, got {len(v)}", "firmware")
    # It must survive the text form "Fw=<firmware>;" unchanged.
    if v != v.strip() or ";" in v or not v.isprintable():
        raise InvalidEvent("must not contain ';', control characters or surrounding whitespace", "firmware")
    return v


def _json_time(v) -> datetime:
    if not isinstance(v, str):
        raise InvalidEvent(f"must be an ISO 8601 UTC string, not {_kind(v)}", "sensor_time")
    m = _ISO_UTC.fullmatch(v)
    if m is None:
        raise InvalidEvent(
            f"must look like 2016-10-04T16:47:50Z (UTC, whole seconds), not {v!r}", "sensor_time")
    try:
        t = datetime(*map(int, m.groups()), tzinfo=UTC)
    except ValueError as e:
        raise InvalidEvent(f"{v!r} is not a real date and time ({e})", "sensor_time") from None
    return check_time(t)
