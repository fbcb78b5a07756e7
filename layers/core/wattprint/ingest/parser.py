"""Parse the one-line text form of a sensor event (local/synth.py renders records back into it).

A line is a sequence of sections ``Name: body`` separated by ``;``::

    Device: ID=10; Fw=16071801; Evt=2; Alarms: CoilReversed=OFF; Power: Active=289W; ...
    Peaks: 1041.000; 1051.000; ...; FFT Re: ...; FFT Img: ...; UTC Time: 2016-10-4 16:47:50;
    hz: 49.87; WiFi Strength: -62; Dummy: 20

Two dialects exist (``documented`` and the ``firmware`` one real sensors send); both,
and any mix of their spellings, spacing, units and decimal separators, parse to the
same :class:`~wattprint.ingest.record.EventRecord`.

Two parsers share the work:

* ``_fast`` handles lines that are exactly in one of the two dialects (the sensors' own
  output) with a few C-level ``str`` calls, a memo of already-seen number strings and no
  per-token Python loop.  For anything else, valid or not, it returns ``None``.
* ``_parse`` is the general parser: the line is split once on ``:``; every piece but the
  first and last ends with ``; <Section Name>``, so one ``rpartition(';')`` per piece yields
  the body of the previous section and the name of the next one (a piece whose tail is not
  a section name, like the ``:`` inside ``16:47:50``, is glued back).  Bodies are converted
  with plain ``str`` methods and ``float()``/``int()``, after checking that a number is made
  of the characters of a plain decimal number only (``float()`` alone also accepts ``nan``,
  ``inf``, ``1_0`` and non-ASCII digits).  It accepts any section order, spacing, key case,
  optional units, decimal commas and unknown ``key=value`` fields, and it raises the
  precise :class:`InvalidEvent`.

Both refuse values outside the plausible range of their field (:data:`wattprint.ingest.record.RANGES`) and any
control or invisible character but a tab anywhere in the line (it would reach the stored raw text).

``_fast`` accepts a strict subset of what ``_parse`` accepts and returns an equal record, so
callers cannot tell which one ran.  No regular expression runs per line.

Longer than this package's other modules (~560 lines) on purpose: the two parsers must accept the same lines and
build the same records, so they sit side by side, and a change to one is made with the other in view (the tests
compare them line for line). Rendering records back into text is local/synth.py's.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from operator import itemgetter

from .record import (MAX_FFT, MAX_FIRMWARE, MAX_PEAKS, MIN_FFT, MIN_PEAKS, RANGES, TIME_AHEAD, TIME_MIN, EventRecord,
                     InvalidEvent, bad_length as _bad_length, check_time, new_record, out_of_range)

__all__ = ["parse_event", "parse_lines", "DIALECTS", "InvalidEvent"]

UTC = timezone.utc
DIALECTS = ("documented", "firmware")

# Section names as sent.  Lookup is exact first, then case- and space-insensitive.
_SECTIONS = ("Device", "Alarms", "Power", "Line", "Peaks", "FFT Re", "FFT Img",
             "UTC Time", "hz", "WiFi Strength", "Dummy")
_SECTION_SET = frozenset(_SECTIONS)
_SECTION_LOWER = {s.lower(): s for s in _SECTIONS}

# Keys inside the key=value sections -> canonical field (lower-cased keys also match).
_DEVICE_KEYS = {"ID": "device_id", "Fw": "firmware", "Evt": "event_type"}
_ALARM_KEYS = {"CoilReversed": "coil_reversed", "CoilRevesed": "coil_reversed"}
_POWER_KEYS = {"Active": "active_power_w", "Reactive": "reactive_power_var",
               "Apparent": "apparent_power_va", "Appearent": "apparent_power_va"}
_LINE_KEYS = {"Current": "current_a", "Voltage": "voltage_v", "Phase": "phase_rad"}
for _m in (_DEVICE_KEYS, _ALARM_KEYS, _POWER_KEYS, _LINE_KEYS):
    _m.update({k.lower(): v for k, v in list(_m.items())})
del _m

# field -> (lower-case unit, unit as written in messages)
_UNITS = {
    "active_power_w": ("w", "W"),
    "reactive_power_var": ("var", "var"),
    "apparent_power_va": ("va", "VA"),
    "current_a": ("a", "A"),
    "voltage_v": ("v", "V"),
    "phase_rad": ("rad", "rad"),
}

# Characters a plain decimal number may be made of (after ',' -> '.').
_NUM_CHARS = "0123456789.+-eE"
_LIST_CHARS = _NUM_CHARS + "; \t"
_TIME_CHARS = "0123456789-:"
_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


# --- parsing ----------------------------------------------------------------------------

def parse_event(text: str) -> EventRecord:
    """Parse one event line (one trailing ``\\r`` is dropped) or raise :class:`InvalidEvent`."""
    if text[-1:] == "\r":
        text = text[:-1]
    return _fast(text) or _parse(text)


def parse_lines(body: str) -> list[tuple[int, str, EventRecord]]:
    """Parse a body of newline-separated events.

    Returns ``(line_number, raw_line, record)`` for every non-blank line; line numbers are
    1-based and blank lines count.  The first bad line raises :class:`InvalidEvent` with
    ``.line`` set.
    """
    out = []
    append = out.append
    for number, raw in enumerate(body.split("\n"), 1):
        if raw[-1:] == "\r":
            raw = raw[:-1]
        if not raw or raw.isspace():
            continue
        try:
            append((number, raw, _fast(raw) or _parse(raw)))  # parse_event(raw), its "\r" already dropped
        except InvalidEvent as e:
            e.line = number
            raise
    return out


# The fast path ---------------------------------------------------------------------------
#
# Almost every line is exactly in one of the two dialects.  _fast() recognises those with a
# handful of C-level str calls and returns None for anything else (including every invalid
# line), which then goes through _parse().  It accepts a strict subset of what _parse()
# accepts and builds the same record, so which path ran is invisible; tests compare both
# paths on the real file, on rendered records and on every rejection case.
#
# The head (up to "Peaks") is cut at every "=" and ";" after rewriting ";" as "=;", so it alternates key and
# value tokens and each key token starts with the ";" that preceded it (the first one has none, the last token is
# the "; " before "Peaks"). The tail (from "UTC Time") is cut at every separator after rewriting ";" as ":;". One
# set lookup checks the head's key tokens and one the tail's, separators included, against the accepted
# spellings, and the head must hold exactly ten "=" (so the ten ";" are all in key tokens and every value token
# follows an "="). The three lists are the text between their headers, which must end in "; ", split on ";".
# Why the remaining shortcuts are safe:
#   * the line is ASCII and has no "_": float()/int() then accept nothing beyond a plain
#     decimal number except surrounding whitespace (which _parse() strips too) and
#     nan/inf spellings, which the memo refuses (so _parse() names them);
#   * each field's memo stores only values inside the field's range (the current's, shared with the peaks, is
#     checked in _fast() itself) and only keys that are printable: a hit is in range and free of control
#     characters with no check per line (float() would take "\x1f1" for 1.0). Every other character of the line
#     is a separator, a key matched exactly, a digit of the time, ON/OFF, or the firmware, which is checked; so
#     _fast() accepts no line _parse() refuses;
#   * any extra separator (a value holding ";", ":" or "=", an unknown or repeated key or
#     section) adds a token and moves the keys off their positions, or lands inside a value
#     or list item, where int()/float() fail; the firmware, the one string value, must hold
#     no ":" either (a ':' there is glued back by _parse(), so such lines go to it).

_TAIL_KEYS = itemgetter(0, 4, 6, 8)


def _skeletons():
    head, tail = set(), set()
    for space in (" ", ""):  # after ";": a space in both dialects; tolerated without
        for colon_space in (" ", ""):  # after ":"
            for alarm in ("CoilReversed", "CoilRevesed"):
                for apparent in ("Apparent", "Appearent"):
                    head.add((f"Device:{colon_space}ID", f";{space}Fw", f";{space}Evt",
                              f";{space}Alarms:{colon_space}{alarm}", f";{space}Power:{colon_space}Active",
                              f";{space}Reactive", f";{space}{apparent}", f";{space}Line:{colon_space}Current",
                              f";{space}Voltage", f";{space}Phase", f";{space}"))
        tail.add(("UTC Time", f";{space}hz", f";{space}WiFi Strength", f";{space}Dummy"))
    # Joined with "|" (in no key) into one string: one hash, one compare.
    return frozenset(map("|".join, head)), frozenset(map("|".join, tail))


_HEAD_SKELETONS, _TAIL_SKELETONS = _skeletons()


class _Floats(dict):
    """``memo[s]`` is ``float(s)``, remembered.

    Sensor readings are quantised, so the same number strings come back again and again: in
    the real sample 80% of the peak strings and 92% of the FFT strings of a 1000-line file
    repeat an earlier one (and a current's string is often a peak's), and a dict hit costs a
    fraction of a float() call.  Only values inside ``[low, high]`` (so finite) with printable
    keys are stored: anything else raises ValueError like any other non-number, so every value
    _fast() gets from a memo is finite and free of control characters without a check per line.
    A full memo is emptied on the next miss (memory stays bounded however many distinct numbers
    arrive).
    """

    __slots__ = ("low", "high")

    def __init__(self, low: float, high: float):
        super().__init__()
        self.low, self.high = low, high

    def __missing__(self, key: str) -> float:
        value = float(key)
        if not self.low <= value <= self.high or not key.isprintable():
            raise ValueError(key)
        if len(self) >= _MEMO_LIMIT:
            self.clear()
        self[key] = value
        return value


class _Ints(_Floats):
    """``memo[s]`` is ``int(s)``, remembered (see _Floats)."""

    __slots__ = ()

    def __missing__(self, key: str) -> int:
        value = int(key)
        if not self.low <= value <= self.high or not key.isprintable():
            raise ValueError(key)
        if len(self) >= _MEMO_LIMIT:
            self.clear()
        self[key] = value
        return value


_MEMO_LIMIT = 1 << 15  # entries per memo
# A memo per field, so that each holds only its field's range; but the real sensors' current is, as a string, nearly
# always one of the event's peaks, so currents go through the peaks' memo (a hit) and are range-checked in _fast().
_FLOAT_MEMOS = {field: _Floats(*RANGES[field][:2]) for field in (
    "peaks", "fft_re", "active_power_w", "reactive_power_var", "apparent_power_va", "voltage_v", "phase_rad",
    "frequency_hz")}
_INT_MEMOS = {field: _Ints(*RANGES[field][:2]) for field in ("device_id", "event_type", "wifi_strength_dbm", "dummy")}
_TIMES: dict[tuple[str, str, str], datetime] = {}
_peak_of, _fft_of, _active_of, _reactive_of, _apparent_of, _voltage_of, _phase_of, _hz_of = (
    m.__getitem__ for m in _FLOAT_MEMOS.values())
_device_of, _evt_of, _wifi_of, _dummy_of = (m.__getitem__ for m in _INT_MEMOS.values())
_CURRENT_LO, _CURRENT_HI = RANGES["current_a"][:2]
if RANGES["fft_img"] != RANGES["fft_re"] or not RANGES["peaks"][0] <= _CURRENT_LO <= _CURRENT_HI <= RANGES["peaks"][1]:
    raise ImportError("_fast() reads fft_img through fft_re's memo and currents through the peaks' one")


_AHEAD_SECONDS = TIME_AHEAD.total_seconds()


def _fast_time(day_hour: str, minute: str, second: str) -> datetime:
    """" 2016-10-4 16", "47", "50" -> datetime; digits only, else ValueError."""
    date_hour = day_hour[1:] if day_hour[:1] == " " else day_hour
    date, _, hour = date_hour.partition(" ")
    year, month, day = date.split("-")
    if not (year + month + day + hour + minute + second).isdigit():
        raise ValueError(day_hour)
    when = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=UTC)
    # A time once plausible stays so (the upper bound only moves forward): checked on a miss only.
    if when < TIME_MIN or when.timestamp() > time.time() + _AHEAD_SECONDS:
        raise ValueError(day_hour)
    if len(_TIMES) >= _MEMO_LIMIT:
        _TIMES.clear()
    _TIMES[day_hour, minute, second] = when
    return when


def _fast(text: str) -> EventRecord | None:
    if not text.isascii() or "_" in text:
        return None
    peaks_at = text.find("Peaks:")
    fft_re_at = text.find("FFT Re:", peaks_at)
    fft_img_at = text.find("FFT Img:", fft_re_at)
    time_at = text.find("UTC Time:", fft_img_at)
    if peaks_at < 0 or fft_re_at < 0 or fft_img_at < 0 or time_at < 0:
        return None
    head = text[:peaks_at].replace(";", "=;").split("=")
    tail = text[time_at:].replace(";", ":;").split(":")
    if len(head) != 21 or len(tail) != 10 or "|".join(head[::2]) not in _HEAD_SKELETONS \
            or "|".join(_TAIL_KEYS(tail)) not in _TAIL_SKELETONS or text.count("=", 0, peaks_at) != 10:
        return None
    coil = head[7]
    if coil == "OFF":
        coil_reversed = False
    elif coil == "ON":
        coil_reversed = True
    else:
        return None
    firmware = head[3].strip()
    if not firmware or ":" in firmware or len(firmware) > MAX_FIRMWARE or not head[3].isprintable() \
            or text[fft_re_at - 2:fft_re_at] != "; " or text[fft_img_at - 2:fft_img_at] != "; " \
            or text[time_at - 2:time_at] != "; ":
        return None
    try:
        peaks = tuple(map(_peak_of, text[peaks_at + 6:fft_re_at - 2].split(";")))
        fft_re = tuple(map(_fft_of, text[fft_re_at + 7:fft_img_at - 2].split(";")))
        fft_img = tuple(map(_fft_of, text[fft_img_at + 8:time_at - 2].split(";")))
        active = _active_of(head[9].removesuffix("W"))
        reactive = _reactive_of(head[11].removesuffix("var"))
        apparent = _apparent_of(head[13].removesuffix("VA"))
        current = _peak_of(head[15].removesuffix("A"))
        voltage = _voltage_of(head[17].removesuffix("V"))
        phase = _phase_of(head[19].removesuffix("rad").replace(",", "."))
        hz = _hz_of(tail[5])
        if not (MIN_PEAKS <= len(peaks) <= MAX_PEAKS and len(fft_re) == len(fft_img) <= MAX_FFT
                and _CURRENT_LO <= current <= _CURRENT_HI):
            return None  # a length or the current out of range: _parse says which
        when = _TIMES.get((tail[1], tail[2], tail[3])) or _fast_time(tail[1], tail[2], tail[3])
        return new_record(_device_of(head[1]), firmware, _evt_of(head[5]), coil_reversed, active, reactive,
                          apparent, current, voltage, phase, peaks, fft_re, fft_img,
                          when, hz, _wifi_of(tail[7]), _dummy_of(tail[9]))
    except (ValueError, OverflowError):  # not a number, out of range, impossible date...: _parse says which
        return None


# The general parser ----------------------------------------------------------------------

def _parse(text: str) -> EventRecord:
    """The general parser: any section order, spacing, case, units, unknown keys; precise errors."""
    if not text.isprintable():
        _refuse_invisible(text)
    pieces = text.split(":")
    last = len(pieces) - 1

    head, sep, name = pieces[0].rpartition(";")
    if last == 0:
        raise InvalidEvent("not an event: no 'Section:' header found", "Device")
    if head.strip():
        raise InvalidEvent(f"unexpected text before the first section: {head.strip()!r}")
    cur = _section_name(name)
    if cur is None:
        raise InvalidEvent(f"unexpected text before the first section: {pieces[0].strip()!r}")

    bodies: dict[str, str] = {}
    glue = None  # body text so far when a ':' belonged to a value
    for i in range(1, last):
        piece = pieces[i]
        body, sep, name = piece.rpartition(";")
        if sep:
            nxt = name.strip()
            if nxt not in _SECTION_SET:
                nxt = _section_name(nxt)
            if nxt is not None:
                if glue is not None:
                    body = glue + ":" + body
                    glue = None
                if cur in bodies:
                    raise InvalidEvent(f"section {cur!r} given twice", cur)
                bodies[cur] = body
                cur = nxt
                continue
        glue = piece if glue is None else glue + ":" + piece
    body = pieces[last]
    if glue is not None:
        body = glue + ":" + body
    if cur in bodies:
        raise InvalidEvent(f"section {cur!r} given twice", cur)
    bodies[cur] = body
    if len(bodies) != 11:
        for s in _SECTIONS:
            if s not in bodies:
                raise InvalidEvent(f"missing section {s!r}", s)
    final = cur  # the section that ends the line

    # key=value sections
    d = _kv(bodies["Device"], "Device", _DEVICE_KEYS)
    a = _kv(bodies["Alarms"], "Alarms", _ALARM_KEYS)
    p = _kv(bodies["Power"], "Power", _POWER_KEYS)
    ln = _kv(bodies["Line"], "Line", _LINE_KEYS)
    try:
        device_id = _int(d["device_id"], "device_id")
        firmware = d["firmware"].strip()
        event_type = _int(d["event_type"], "event_type")
        coil = a["coil_reversed"].strip().upper()
        active = _qty(p["active_power_w"], "active_power_w", "w")
        reactive = _qty(p["reactive_power_var"], "reactive_power_var", "var")
        apparent = _qty(p["apparent_power_va"], "apparent_power_va", "va")
        current = _qty(ln["current_a"], "current_a", "a")
        voltage = _qty(ln["voltage_v"], "voltage_v", "v")
        phase = _qty(ln["phase_rad"], "phase_rad", "rad")
    except KeyError as e:
        raise InvalidEvent("missing field", e.args[0]) from None
    if not firmware:
        raise InvalidEvent("must not be empty", "firmware")
    if len(firmware) > MAX_FIRMWARE:
        raise InvalidEvent(f"must be at most {MAX_FIRMWARE} characters, got {len(firmware)}", "firmware")
    if coil == "OFF":
        coil_reversed = False
    elif coil == "ON":
        coil_reversed = True
    else:
        raise InvalidEvent(f"must be ON or OFF, not {a['coil_reversed'].strip()!r}", "coil_reversed")

    peaks = _floats(bodies["Peaks"], "peaks", MIN_PEAKS, MAX_PEAKS)
    fft_re = _floats(bodies["FFT Re"], "fft_re", MIN_FFT, MAX_FFT)
    fft_img = _floats(bodies["FFT Img"], "fft_img", MIN_FFT, MAX_FFT)
    if len(fft_re) != len(fft_img):
        raise InvalidEvent(
            f"FFT Img has {len(fft_img)} values but FFT Re has {len(fft_re)}; they must be equally long",
            "fft_img")

    sensor_time = _time(_scalar(bodies["UTC Time"], "sensor_time", final == "UTC Time", True))
    hz = _float(_scalar(bodies["hz"], "frequency_hz", final == "hz"), "frequency_hz")
    wifi = _int(_scalar(bodies["WiFi Strength"], "wifi_strength_dbm", final == "WiFi Strength"),
                "wifi_strength_dbm")
    dummy = _int(_scalar(bodies["Dummy"], "dummy", final == "Dummy"), "dummy")

    return new_record(device_id, firmware, event_type, coil_reversed, active, reactive, apparent,
                      current, voltage, phase, peaks, fft_re, fft_img, sensor_time, hz, wifi, dummy)


def _refuse_invisible(text: str) -> None:
    for column, ch in enumerate(text, 1):
        if ch != "\t" and not ch.isprintable():
            raise InvalidEvent(f"control or invisible character U+{ord(ch):04X} at column {column}")


def _section_name(name: str) -> str | None:
    name = name.strip()
    if name in _SECTION_SET:
        return name
    return _SECTION_LOWER.get(" ".join(name.split()).lower())


def _kv(body: str, section: str, keys: dict) -> dict:
    """``k=v; k=v`` -> {canonical field: raw value}; unknown keys are kept only to catch repeats."""
    out = {}
    for item in body.split(";"):
        k, eq, v = item.partition("=")
        if not eq:
            if k and not k.isspace():
                raise InvalidEvent(f"expected key=value in section {section!r}, got {item.strip()!r}",
                                   section)
            continue  # an empty item (";;" or a trailing ";")
        k = k.strip()
        f = keys.get(k)
        if f is None:
            f = keys.get(k.lower()) or "?" + k.lower()
        if f in out:
            raise InvalidEvent(f"key {k!r} given twice in section {section!r}",
                               f if f[0] != "?" else section)
        out[f] = v
    return out


def _scalar(body: str, field: str, final: bool, spaces: bool = False) -> str:
    """The single value of a one-value section; text after it is an error.

    A single ``;`` may end the line.  Text after the value of the section that ends the
    line is trailing garbage (``field=None``); elsewhere it is an error on ``field``.
    ``spaces`` allows inner spaces (the date and time).
    """
    if ";" in body:
        v, _, rest = body.partition(";")
        if not final:
            raise InvalidEvent(f"unexpected text after the value: {rest.strip()!r}", field)
        if rest and not rest.isspace():
            raise InvalidEvent(f"trailing garbage after the last field: {rest.strip()!r}")
        body = v
    if spaces:
        return body
    v = body.strip()
    if " " in v or "\t" in v:
        rest = v.split(None, 1)[1]
        if final:
            raise InvalidEvent(f"trailing garbage after the last field: {rest!r}")
        raise InvalidEvent(f"unexpected text after the value: {rest!r}", field)
    return v


def _int(s: str, field: str) -> int:
    t = s.strip()
    digits = t[1:] if t[:1] in ("-", "+") else t
    if digits.isdigit() and digits.isascii():
        try:
            value = int(t)
        except ValueError:  # more digits than int() accepts
            raise InvalidEvent(f"{t[:20]}... ({len(digits)} digits) is out of range", field) from None
        low, high, _ = RANGES[field]
        if low <= value <= high:
            return value
        raise out_of_range(field, value)
    raise InvalidEvent(f"not an integer: {t!r}", field)


def _float(s: str, field: str) -> float:
    t = s.strip()
    if "," in t:
        t = t.replace(",", ".")
    if t and not t.strip(_NUM_CHARS):
        try:
            x = float(t)
        except ValueError:
            pass
        else:
            low, high, _ = RANGES[field]
            if low <= x <= high:
                return x
            raise out_of_range(field, x) if x - x == 0.0 else InvalidEvent(
                f"number out of range: {s.strip()!r}", field)
    raise InvalidEvent(_not_a_number(s), field)


def _qty(s: str, field: str, unit: str) -> float:
    """A number with an optional (case-insensitive) unit that must be the field's own."""
    t = s.strip()
    n = len(unit)
    if t[-n:].lower() == unit:
        t = t[:-n]
    try:
        return _float(t, field)
    except InvalidEvent:
        t = s.strip()
        number = t.rstrip(_LETTERS)
        if number.strip() and number != t:
            try:
                _float(number, field)
            except InvalidEvent:
                pass
            else:
                raise InvalidEvent(f"unit {t[len(number):]!r} does not fit this field "
                                   f"(expected {_UNITS[field][1]!r} or no unit)", field) from None
        raise


def _floats(body: str, field: str, minimum: int, maximum: int) -> tuple[float, ...]:
    """``1;2.5; 3`` -> (1.0, 2.5, 3.0); every item must be a plain decimal number in the field's range."""
    if "," in body:
        body = body.replace(",", ".")
    items = body.split(";")
    vals = None
    if not body.strip(_LIST_CHARS):  # only digits, signs, points, exponents, ';' and blanks
        try:
            vals = tuple(map(float, items))
        except ValueError:  # an empty item, "1-2", "e", ...
            pass
        else:
            low, high, _ = RANGES[field]
            if max(vals) > high or min(vals) < low:  # the item-by-item pass below names it
                vals = None
    if vals is None:
        if not body.strip():
            vals = ()
        else:
            for i, item in enumerate(items, 1):
                if not item.strip():
                    raise InvalidEvent(f"empty value at position {i}", field)
            vals = tuple(_float(item, field) for item in items)
    if not minimum <= len(vals) <= maximum:
        raise _bad_length(field, len(vals), minimum, maximum)
    return vals


def _not_a_number(s: str) -> str:
    t = s.strip()
    low = t.lower().lstrip("+-")
    if low in ("nan", "inf", "infinity", "snan"):
        return f"must be a finite number, not {t!r}"
    return f"not a number: {t!r}"


def _time(s: str) -> datetime:
    t = s.strip()
    date, sep, clock = t.partition(" ")
    if not sep:
        date, sep, clock = t.partition("T")
    clock = clock.strip()
    ymd = date.split("-")
    hms = clock.split(":")
    if len(ymd) == 3 and len(hms) == 3 and not (date + clock).strip(_TIME_CHARS):
        try:
            y, mo, d = map(int, ymd)
            h, mi, sec = map(int, hms)
            t = datetime(y, mo, d, h, mi, sec, tzinfo=UTC)
        except (ValueError, OverflowError) as e:
            if all(ymd) and all(hms):
                raise InvalidEvent(f"impossible date or time {t!r} ({e})", "sensor_time") from None
        else:
            return check_time(t)
    raise InvalidEvent(f"expected a date and time like 2016-10-4 16:47:50, got {t!r}", "sensor_time")
