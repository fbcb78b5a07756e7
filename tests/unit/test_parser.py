"""The text form: parse_event, parse_lines, render, and the synthetic generator."""

from __future__ import annotations

import dataclasses
import random
import string
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from local import synth
from local.synth import render
from tests.strategies import records
from wattprint.ingest import parser
from wattprint.ingest.parser import InvalidEvent, parse_event, parse_lines
from wattprint.ingest.record import RANGES, EventRecord

UTC = timezone.utc
REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "sensor-events-1000.txt"


@pytest.fixture(scope="module")
def real_lines() -> list[str]:
    if not REAL.is_file():
        pytest.skip(f"real sample not present at {REAL}")
    return REAL.read_text(encoding="utf-8").splitlines()


def clear_memos() -> None:
    """Forget the parser's remembered numbers and times, as a cold Lambda instance starts."""
    for memo in (*parser._FLOAT_MEMOS.values(), *parser._INT_MEMOS.values(), parser._TIMES):
        memo.clear()


def both_paths(line: str) -> EventRecord:
    """parse_event(line), after checking the general parser agrees (and the fast one, if it took it)."""
    rec = parse_event(line)
    assert parser._parse(line.removesuffix("\r")) == rec
    fast = parser._fast(line.removesuffix("\r"))
    assert fast is None or fast == rec
    return rec


DOC_LINE = (
    "Device: ID=10; Fw=16071801; Evt=2; Alarms: CoilReversed=OFF; Power: Active=289W; "
    "Reactive=279var; Apparent=403VA; Line: Current=1.75A; Voltage=230.08V; Phase=-43,841rad; "
    "Peaks: 1041.000; 1051.000; 1058.000; 1051.000; 1049.000; 1047.000; 1054.000; 1059.000; "
    "1057.000; 1060.000; FFT Re: -257863.00; 102815.00; -64043.00; 48516.00; 59599.00; "
    "-4223.00; -43441.00; 23559.00; -24518.00; FFT Img: 481910.00; -14891.00; 69871.00; "
    "-7130.00; 43860.00; 34204.00; 55951.00; -6945.00; 26131.00; UTC Time: 2016-10-4 16:47:50; "
    "hz: 49.87; WiFi Strength: -62; Dummy: 20"
)

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

PEAKS_DOC = ("1041.000; 1051.000; 1058.000; 1051.000; 1049.000; 1047.000; 1054.000; 1059.000; "
             "1057.000; 1060.000")
RE_DOC = "-257863.00; 102815.00; -64043.00; 48516.00; 59599.00; -4223.00; -43441.00; 23559.00; -24518.00"
IMG_DOC = "481910.00; -14891.00; 69871.00; -7130.00; 43860.00; 34204.00; 55951.00; -6945.00; 26131.00"


def doc(old: str, new: str, count: int = 1) -> str:
    """DOC_LINE with ``old`` replaced by ``new`` (``old`` must occur exactly ``count`` times)."""
    assert DOC_LINE.count(old) == count, old
    return DOC_LINE.replace(old, new)


# --- the real file ----------------------------------------------------------------------------

def test_every_real_line_parses(real_lines):
    assert len(real_lines) == 1000
    body = "\n".join(real_lines) + "\n"
    parsed = parse_lines(body)
    assert [n for n, _, _ in parsed] == list(range(1, 1001))
    assert [raw for _, raw, _ in parsed] == real_lines
    for raw, (_, _, rec) in zip(real_lines, parsed):
        assert parser._fast(raw) == rec  # the sensors' own dialect takes the fast path
        assert parser._parse(raw) == rec
        assert len(rec.peaks) == 10 and len(rec.fft_re) == 9 and len(rec.fft_img) == 9


def test_real_lines_render_back_byte_for_byte(real_lines):
    for raw in real_lines:
        assert render(parse_event(raw), "firmware") == raw


def test_first_real_line(real_lines):
    rec = parse_event(real_lines[0])
    assert rec.device_id == 1
    assert rec.firmware == "16071801"
    assert rec.event_type == 2
    assert rec.coil_reversed is False
    assert rec.active_power_w == 1753.0
    assert rec.reactive_power_var == 279.0
    assert rec.apparent_power_va == 403.0
    assert rec.current_a == 7.35900021
    assert rec.voltage_v == 230.08
    assert rec.phase_rad == -43.841
    assert rec.peaks[1] == 7.311999799999999
    assert len(rec.peaks) == 10
    assert len(rec.fft_re) == 9 and len(rec.fft_img) == 9
    assert rec.sensor_time == datetime(2016, 10, 4, 16, 47, 50, tzinfo=UTC)
    assert rec.to_json()["sensor_time"] == "2016-10-04T16:47:50Z"
    assert rec.frequency_hz == 49.87
    assert rec.wifi_strength_dbm == -62
    assert rec.dummy == 20


def test_real_lines_with_crlf_parse_the_same(real_lines):
    body = "\r\n".join(real_lines[:50]) + "\r\n"
    assert [r for _, _, r in parse_lines(body)] == [parse_event(x) for x in real_lines[:50]]
    assert [raw for _, raw, _ in parse_lines(body)] == real_lines[:50]


# --- the documented line and each dialect difference -----------------------------------------

def test_documented_line():
    rec = both_paths(DOC_LINE)
    assert rec == DOC
    assert rec.device_id == 10
    assert rec.firmware == "16071801"
    assert rec.event_type == 2
    assert rec.coil_reversed is False
    assert rec.active_power_w == 289.0
    assert rec.reactive_power_var == 279.0
    assert rec.apparent_power_va == 403.0
    assert rec.current_a == 1.75
    assert rec.voltage_v == 230.08
    assert rec.phase_rad == -43.841
    assert rec.peaks == (1041.0, 1051.0, 1058.0, 1051.0, 1049.0, 1047.0, 1054.0, 1059.0,
                         1057.0, 1060.0)
    assert rec.fft_re == (-257863.0, 102815.0, -64043.0, 48516.0, 59599.0, -4223.0, -43441.0,
                          23559.0, -24518.0)
    assert rec.fft_img == (481910.0, -14891.0, 69871.0, -7130.0, 43860.0, 34204.0, 55951.0,
                           -6945.0, 26131.0)
    assert rec.sensor_time == datetime(2016, 10, 4, 16, 47, 50, tzinfo=UTC)
    assert rec.sensor_time.utcoffset().total_seconds() == 0
    assert rec.frequency_hz == 49.87
    assert rec.wifi_strength_dbm == -62
    assert rec.dummy == 20
    assert parser._fast(DOC_LINE) == DOC


DIALECT_DIFFERENCES = {
    "misspelt CoilRevesed": doc("CoilReversed=", "CoilRevesed="),
    "misspelt Appearent": doc("Apparent=", "Appearent="),
    "Current without unit": doc("Current=1.75A", "Current=1.75"),
    "no spaces in lists": (DOC_LINE.replace(PEAKS_DOC, PEAKS_DOC.replace("; ", ";"))
                           .replace(RE_DOC, RE_DOC.replace("; ", ";"))
                           .replace(IMG_DOC, IMG_DOC.replace("; ", ";"))),
    "no spaces after any ;": DOC_LINE.replace("; ", ";"),
    "decimal point in Phase": doc("Phase=-43,841rad", "Phase=-43.841rad"),
    "zero-padded date": doc("2016-10-4 ", "2016-10-04 "),
    "CRLF line end": DOC_LINE + "\r",
    "all firmware differences": render(DOC, "firmware"),
    "units in other cases": doc("289W", "289w").replace("279var", "279VAR")
                                                .replace("403VA", "403va")
                                                .replace("1.75A", "1.75a")
                                                .replace("230.08V", "230.08v")
                                                .replace("841rad", "841RAD"),
    "no units at all": doc("289W", "289").replace("279var", "279").replace("403VA", "403")
                                         .replace("1.75A", "1.75").replace("230.08V", "230.08")
                                         .replace("841rad", "841"),
    "space before a unit": doc("289W", "289 W"),
    "decimal commas in lists": DOC_LINE.replace(PEAKS_DOC, PEAKS_DOC.replace(".", ",")),
    "decimal comma in Voltage": doc("230.08V", "230,08V"),
    "ON/OFF in lower case": doc("=OFF", "=off"),
    "keys in other cases": doc("Active=", "active=").replace("Fw=", "FW="),
    "extra blanks around = and ;": doc("Active=289W;", "Active = 289W ;"),
    "no space after :": DOC_LINE.replace(": ", ":"),
    "two spaces after :": DOC_LINE.replace(": ", ":  "),
    "ISO T in the time": doc("2016-10-4 16:47:50", "2016-10-4T16:47:50"),
    "one trailing ;": DOC_LINE + ";",
    "trailing blanks": DOC_LINE + "  ",
    "unknown key ignored": doc("Active=289W; ", "Active=289W; Foo=3; "),
    "unknown keys in two sections": doc("Evt=2; ", "Evt=2; Mode=eco; ")
                                    .replace("Phase=", "Temp=41C; Phase="),
    "sections in another order": doc("hz: 49.87; WiFi Strength: -62; Dummy: 20",
                                     "Dummy: 20; WiFi Strength: -62; hz: 49.87"),
    "section names in other case": doc("hz: ", "HZ: ").replace("WiFi Strength:", "wifi strength:"),
    "exponent notation": doc("Voltage=230.08V", "Voltage=2.3008e2V"),
    "explicit plus sign": doc("Active=289W", "Active=+289W"),
}


@pytest.mark.parametrize("line", DIALECT_DIFFERENCES.values(), ids=DIALECT_DIFFERENCES.keys())
def test_dialect_differences_give_the_same_record(line):
    assert line != DOC_LINE or line.endswith("\r")
    assert both_paths(line) == DOC


def test_firmware_with_a_colon_and_an_equals_sign():
    rec = both_paths(doc("Fw=16071801", "Fw=16:07=01"))
    assert rec == dataclasses.replace(DOC, firmware="16:07=01")


# --- render -------------------------------------------------------------------------------------

def test_render_documented_exactly():
    assert render(DOC, "documented") == (
        "Device: ID=10; Fw=16071801; Evt=2; Alarms: CoilReversed=OFF; Power: Active=289W; "
        "Reactive=279var; Apparent=403VA; Line: Current=1.75A; Voltage=230.08V; "
        "Phase=-43,841rad; Peaks: 1041; 1051; 1058; 1051; 1049; 1047; 1054; 1059; 1057; 1060; "
        "FFT Re: -257863; 102815; -64043; 48516; 59599; -4223; -43441; 23559; -24518; "
        "FFT Img: 481910; -14891; 69871; -7130; 43860; 34204; 55951; -6945; 26131; "
        "UTC Time: 2016-10-4 16:47:50; hz: 49.87; WiFi Strength: -62; Dummy: 20")


def test_render_firmware_exactly():
    rec = dataclasses.replace(DOC, coil_reversed=True, peaks=(1.5, 2.25, 1e-07),
                              sensor_time=datetime(2021, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert render(rec, "firmware") == (
        "Device: ID=10; Fw=16071801; Evt=2; Alarms: CoilRevesed=ON; Power: Active=289W; "
        "Reactive=279var; Appearent=403VA; Line: Current=1.75; Voltage=230.08V; "
        "Phase=-43,841rad; Peaks: 1.5;2.25;1e-07; "
        "FFT Re: -257863;102815;-64043;48516;59599;-4223;-43441;23559;-24518; "
        "FFT Img: 481910;-14891;69871;-7130;43860;34204;55951;-6945;26131; "
        "UTC Time: 2021-1-2 03:04:05; hz: 49.87; WiFi Strength: -62; Dummy: 20")


def test_render_rejects_unknown_dialect():
    with pytest.raises(ValueError, match="unknown dialect 'json'"):
        render(DOC, "json")


# Valid records over every field's whole range: tests/strategies.py.


@settings(max_examples=300)
@given(records(), st.sampled_from(parser.DIALECTS))
def test_render_parse_round_trip(rec, dialect):
    line = render(rec, dialect)
    assert "\n" not in line
    assert parse_event(line) == rec
    assert parser._parse(line) == rec
    fast = parser._fast(line)
    assert fast is None or fast == rec
    floats = (rec.active_power_w, rec.reactive_power_var, rec.apparent_power_va, rec.current_a,
              rec.voltage_v, rec.phase_rad, rec.frequency_hz, *rec.peaks, *rec.fft_re, *rec.fft_img)
    if set(rec.firmware).isdisjoint(":=") and max(map(abs, floats)) < 1e306:
        # Both dialects are fast-path material (a firmware holding a separator is not, nor
        # values whose sum overflows: the fast path's finiteness check then defers).
        assert fast == rec


@settings(max_examples=100)
@given(records())
def test_round_trip_through_json_and_text(rec):
    assert EventRecord.from_json(parse_event(render(rec, "firmware")).to_json()) == rec


# --- rejections ---------------------------------------------------------------------------------

REJECTIONS = {
    # missing section / field
    "missing Power section": (doc("Power: Active=289W; Reactive=279var; Apparent=403VA; ", ""),
                              "Power"),
    "missing Peaks section": (doc(f"Peaks: {PEAKS_DOC}; ", ""), "Peaks"),
    "missing Dummy section": (doc("; Dummy: 20", ""), "Dummy"),
    "missing hz section": (doc("hz: 49.87; ", ""), "hz"),
    "missing Reactive field": (doc("Reactive=279var; ", ""), "reactive_power_var"),
    "missing Evt field": (doc("Evt=2; ", ""), "event_type"),
    "missing Phase field": (doc("; Phase=-43,841rad", ""), "phase_rad"),
    "missing alarm field": (doc("CoilReversed=OFF", "Other=OFF"), "coil_reversed"),
    "empty line": ("", "Device"),
    "not an event": ("hello world", "Device"),
    # not a number
    "Active not a number": (doc("Active=289W", "Active=abcW"), "active_power_w"),
    "Voltage with a letter o": (doc("230.08V", "23o.08V"), "voltage_v"),
    "ID not a number": (doc("ID=10", "ID=ten"), "device_id"),
    "Evt not an integer": (doc("Evt=2", "Evt=2.5"), "event_type"),
    "WiFi not an integer": (doc("WiFi Strength: -62", "WiFi Strength: -62.5"), "wifi_strength_dbm"),
    "hz not a number": (doc("hz: 49.87", "hz: fast"), "frequency_hz"),
    "peak not a number": (doc("1058.000", "10x58.000"), "peaks"),
    "FFT Re not a number": (doc("48516.00", "4851 6.00"), "fft_re"),
    "empty peak": (doc("1058.000; ", ""), None),  # replaced below: an empty item
    "underscore in a number": (doc("Active=289W", "Active=2_89W"), "active_power_w"),
    "thousands separator": (doc("Active=289W", "Active=1,289.5W"), "active_power_w"),
    "hex number": (doc("Dummy: 20", "Dummy: 0x14"), "dummy"),
    "non-ASCII digits": (doc("Dummy: 20", "Dummy: \u0662\u0660"), "dummy"),
    "coil neither ON nor OFF": (doc("=OFF", "=MAYBE"), "coil_reversed"),
    "empty firmware": (doc("Fw=16071801", "Fw="), "firmware"),
    # NaN and infinity
    "NaN Active": (doc("Active=289W", "Active=nanW"), "active_power_w"),
    "NaN hz": (doc("hz: 49.87", "hz: NaN"), "frequency_hz"),
    "NaN peak": (doc("1058.000", "nan"), "peaks"),
    "inf Reactive": (doc("Reactive=279var", "Reactive=infvar"), "reactive_power_var"),
    "-Infinity Current": (doc("Current=1.75A", "Current=-InfinityA"), "current_a"),
    "overflowing Voltage": (doc("Voltage=230.08V", "Voltage=1e999V"), "voltage_v"),
    "overflowing FFT Re": (doc("48516.00", "1e400"), "fft_re"),
    "infinity FFT Img": (doc("43860.00", "-inf"), "fft_img"),
    # impossible dates
    "30 February": (doc("2016-10-4", "2016-2-30"), "sensor_time"),
    "hour 25": (doc("16:47:50", "25:47:50"), "sensor_time"),
    "minute 60": (doc("16:47:50", "16:60:50"), "sensor_time"),
    "month 13": (doc("2016-10-4", "2016-13-4"), "sensor_time"),
    "year 0": (doc("2016-10-4", "0-10-4"), "sensor_time"),
    "no time": (doc("2016-10-4 16:47:50", "2016-10-4"), "sensor_time"),
    "a huge year": (doc("2016-10-4", "99999999999999999999-10-4"), "sensor_time"),
    "signed day": (doc("2016-10-4", "2016-10-+4"), "sensor_time"),
    # list lengths
    "two peaks": (doc(PEAKS_DOC, "1041.000; 1051.000"), "peaks"),
    "no peaks": (doc(PEAKS_DOC, ""), "peaks"),
    "unequal FFT lengths": (doc("; 26131.00", ""), "fft_img"),
    "longer FFT Img": (doc("26131.00", "26131.00; 1.0"), "fft_img"),
    # duplicates
    "Active twice": (doc("Active=289W; ", "Active=289W; Active=290W; "), "active_power_w"),
    "Apparent under both spellings": (doc("Apparent=403VA", "Apparent=403VA; Appearent=403VA"),
                                      "apparent_power_va"),
    "CoilReversed under both spellings": (doc("CoilReversed=OFF", "CoilReversed=OFF; CoilRevesed=OFF"),
                                          "coil_reversed"),
    "Power section twice": (doc("Line: ", "Power: Active=1W; Reactive=1var; Apparent=1VA; Line: "),
                            "Power"),
    "hz section twice": (doc("hz: 49.87; ", "hz: 49.87; hz: 49.87; "), "hz"),
    "unknown key twice": (doc("Active=289W; ", "Active=289W; Foo=1; Foo=2; "), "Power"),
    # trailing garbage
    "word after Dummy": (DOC_LINE + " xyz", None),
    "token after Dummy": (DOC_LINE + "; xyz", None),
    "section after Dummy": (DOC_LINE + "; Extra: 5", None),
    "two trailing ;": (DOC_LINE + ";;", None),
    "text before Device": ("xyz " + DOC_LINE, None),
    "token before Device": ("xyz; " + DOC_LINE, None),
    "stray token in a scalar section": (doc("hz: 49.87; ", "hz: 49.87; xyz; "), "frequency_hz"),
    "stray word in Power": (doc("Active=289W; ", "Active=289W; oops; "), "Power"),
    # wrong units
    "var on Active": (doc("Active=289W", "Active=289var"), "active_power_w"),
    "W on Reactive": (doc("Reactive=279var", "Reactive=279W"), "reactive_power_var"),
    "VA on Reactive": (doc("Reactive=279var", "Reactive=279VA"), "reactive_power_var"),
    "var on Apparent": (doc("Apparent=403VA", "Apparent=403var"), "apparent_power_va"),
    "V on Current": (doc("Current=1.75A", "Current=1.75V"), "current_a"),
    "A on Voltage": (doc("Voltage=230.08V", "Voltage=230.08A"), "voltage_v"),
    "deg on Phase": (doc("-43,841rad", "-43,841deg"), "phase_rad"),
    "unit twice": (doc("Active=289W", "Active=289WW"), "active_power_w"),
    # separators in the wrong place (the fast path must not be fooled)
    ": and = swapped": (doc("Device: ID=10", "Device= ID:10"), None),
    "; instead of =": (doc("ID=10; Fw=16071801", "ID;10; Fw=16071801"), "Device"),
    ": inside a list": (doc("1041.000; 1051.000", "1041.000: 1051.000"), "peaks"),
    "= inside a list": (doc("1041.000; 1051.000", "1041.000= 1051.000"), "peaks"),
    "; instead of : after hz": (doc("hz: 49.87", "hz; 49.87"), "hz"),
    "; and = swapped": (doc("ID=10; Fw=", "ID; 10= Fw="), "Device"),
    "a digit inside a key": (doc("Active=289W", "Act1ve=289W"), "active_power_w"),
    "; inside the firmware": (doc("Fw=16071801", "Fw=1607;1801"), "Device"),
}
REJECTIONS["empty peak"] = (doc("1058.000; 1051.000", "1058.000; ; 1051.000"), "peaks")


def test_the_fast_path_never_disagrees_with_the_general_parser():
    """Lines one to three edits away from valid ones, with the characters the fast path's shortcuts rely on: it
    may decline any of them, but what it accepts, the general parser must accept as the same record."""
    rng = random.Random(20261123)
    bases = [DOC_LINE, render(DOC, "firmware")]
    chars = ";:= ,.-+1e0WAVvarOFNd\t_\x00\x0b\x1f\x7f9"  # the fast path must refuse what _parse refuses, controls too
    accepted = 0
    for _ in range(10_000):
        line = rng.choice(bases)
        for _ in range(rng.randint(1, 3)):
            i, op = rng.randrange(len(line) + 1), rng.random()
            if op < 0.4:
                line = line[:i] + rng.choice(chars) + line[i:]
            elif op < 0.7:
                line = line[:i] + line[i + 1:]
            else:
                j = rng.randrange(len(line) + 1)
                line = line[:i] + line[j:j + 1] + line[i + 1:]
        fast = parser._fast(line)
        if fast is not None:
            accepted += 1
            assert parser._parse(line) == fast, line
    assert accepted > 500  # the edits keep enough lines valid for the check to mean something


@pytest.mark.parametrize("line, field", REJECTIONS.values(), ids=REJECTIONS.keys())
def test_rejections(line, field):
    assert parser._fast(line) is None  # invalid lines never take the fast path
    with pytest.raises(InvalidEvent) as info:
        parse_event(line)
    e = info.value
    assert e.field == field, e.message
    assert e.message
    assert e.line is None
    assert e.to_dict() == {"code": "invalid_event", "message": e.message, "line": None,
                           "field": field}


@pytest.mark.parametrize("line, words", [
    (DOC_LINE + " xyz", ["trailing garbage", "xyz"]),
    (DOC_LINE + "; Extra: 5", ["trailing garbage", "Extra: 5"]),
    (doc("Active=289W", "Active=289var"), ["unit 'var'", "'W'"]),
    (doc("Active=289W", "Active=nanW"), ["finite", "nan"]),
    (doc("2016-10-4", "2016-2-30"), ["impossible", "2016-2-30"]),
    (doc(PEAKS_DOC, "1041.000; 1051.000"), ["at least 3", "got 2"]),
    (doc("; 26131.00", ""), ["8", "9"]),
    (doc("Power: Active=289W; Reactive=279var; Apparent=403VA; ", ""), ["missing section 'Power'"]),
    (doc("Active=289W; ", "Active=289W; Active=290W; "), ["given twice"]),
])
def test_rejection_messages_say_what_is_wrong(line, words):
    with pytest.raises(InvalidEvent) as info:
        parse_event(line)
    for w in words:
        assert w in info.value.message


def test_a_rejected_number_stays_rejected_once_remembered():
    bad = doc("Active=289W", "Active=nanW")
    for _ in range(3):
        with pytest.raises(InvalidEvent):
            parse_event(bad)
    assert parse_event(DOC_LINE) == DOC


def test_the_memos_hold_only_numbers_in_range_with_printable_keys_and_stay_bounded(monkeypatch):
    clear_memos()
    for bad in ("nan", "inf", "-Infinity", "1e400", "1e160", "100001", "\x1f289", "289\x0b"):
        with pytest.raises(InvalidEvent) as info:
            parse_event(doc("Active=289W", f"Active={bad}W"))
        assert info.value.field in ("active_power_w", None)  # None: the control character, named by column
    for bad in ("ID=2147483648", "ID=-1"):
        with pytest.raises(InvalidEvent, match="out of range"):
            parse_event(doc("ID=10", bad))
    memos = {**parser._FLOAT_MEMOS, **parser._INT_MEMOS}
    for field, memo in memos.items():
        assert (memo.low, memo.high) == RANGES[field][:2]
        assert all(memo.low <= v <= memo.high and k.isprintable() for k, v in memo.items())
    monkeypatch.setattr(parser, "_MEMO_LIMIT", 50)
    for k in range(120):  # each line brings a new number, and 60 timestamps in all
        line = doc("Active=289W", f"Active={k}.5W").replace("16:47:50", f"16:47:{k % 60:02d}")
        assert parse_event(line).active_power_w == k + 0.5
    assert max(len(parser._TIMES), *map(len, memos.values())) <= 50
    assert parse_event(DOC_LINE) == DOC


def test_clear_caches_changes_nothing(real_lines):
    first = [parse_event(x) for x in real_lines[:100]]
    again = [parse_event(x) for x in real_lines[:100]]
    clear_memos()
    cold = [parse_event(x) for x in real_lines[:100]]
    assert first == again == cold
    assert first[0].active_power_w == 1753.0


# --- parse_lines --------------------------------------------------------------------------------

def test_parse_lines_numbers_lines_counting_blanks():
    other = doc("ID=10", "ID=11")
    body = "\n" + DOC_LINE + "\r\n" + "   \n\n" + other + "\n\t\n"
    got = parse_lines(body)
    assert [(n, raw) for n, raw, _ in got] == [(2, DOC_LINE), (5, other)]
    assert got[0][2] == DOC
    assert got[1][2] == dataclasses.replace(DOC, device_id=11)


def test_parse_lines_without_final_newline_and_empty_body():
    assert [(n, r) for n, r, _ in parse_lines(DOC_LINE)] == [(1, DOC_LINE)]
    assert parse_lines("") == []
    assert parse_lines("\n \r\n\n") == []


def test_parse_lines_reports_the_first_bad_line():
    bad = doc("Active=289W", "Active=289var")
    worse = doc("hz: 49.87", "hz: nan")
    body = DOC_LINE + "\n\n   \n" + bad + "\n" + worse + "\n"
    with pytest.raises(InvalidEvent) as info:
        parse_lines(body)
    e = info.value
    assert e.line == 4
    assert e.field == "active_power_w"
    assert e.to_dict() == {"code": "invalid_event", "message": e.message, "line": 4,
                           "field": "active_power_w"}


def test_parse_lines_reports_line_with_crlf():
    body = "\r\n".join([DOC_LINE, DOC_LINE, "", doc("Dummy: 20", "Dummy: 20 xyz")]) + "\r\n"
    with pytest.raises(InvalidEvent) as info:
        parse_lines(body)
    assert info.value.line == 4
    assert info.value.field is None


# --- synth ------------------------------------------------------------------------------------

def test_generate_is_deterministic_and_parses():
    lines = synth.generate(300, seed=7)
    assert len(lines) == 300
    assert lines == synth.generate(300, seed=7)
    assert lines != synth.generate(300, seed=8)
    recs = [parser._fast(x) for x in lines]
    assert None not in recs  # firmware dialect, fast path
    assert recs == [parser._parse(x) for x in lines]
    assert {r.device_id for r in recs} == {1, 2, 3}
    assert {r.event_type for r in recs} == {1, 2, 5}
    assert all(len(r.peaks) == 10 and len(r.fft_re) == 9 == len(r.fft_img) for r in recs)
    assert "CoilRevesed" in lines[0] and "Appearent" in lines[0]


def test_generate_documented_dialect_gives_the_same_records():
    firmware = [parse_event(x) for x in synth.generate(50, seed=1)]
    documented = [parse_event(x) for x in synth.generate(50, seed=1, dialect="documented")]
    assert documented == firmware == synth.generate_records(50, seed=1)
    assert "CoilReversed" in synth.generate(1, seed=1, dialect="documented")[0]


def test_generate_modes_look_like_appliances():
    recs = synth.generate_records(2000, seed=0)
    active = sorted(r.active_power_w for r in recs)
    assert active[0] >= 0.0
    near = {m: sum(1 for a in active if abs(a - m) <= 0.2 * m + 5) for m in (0, 60, 120, 1200, 1750, 2200)}
    assert all(count > 50 for count in near.values()), near
    for r in recs:
        if r.active_power_w > 500:
            assert abs(r.current_a - r.active_power_w / 230) < 0.1 * r.active_power_w / 230
            assert abs(r.peaks[0] - r.current_a) < 0.2 * r.current_a


def test_from_records_resamples_with_noise():
    source = synth.generate_records(20, seed=3)
    out = synth.from_records(source, 500, seed=5, noise=0.02)
    assert len(out) == 500
    assert out == synth.from_records(source, 500, seed=5, noise=0.02)
    assert out != synth.from_records(source, 500, seed=6, noise=0.02)
    by_id = {id(r.fft_re): r for r in source}
    for rec in out:
        src = by_id[id(rec.fft_re)]  # the FFT tuples are shared with the source record
        assert rec.fft_img is src.fft_img and rec.peaks[3:] == src.peaks[3:]
        assert (rec.device_id, rec.firmware, rec.event_type, rec.phase_rad, rec.sensor_time,
                rec.frequency_hz) == (src.device_id, src.firmware, src.event_type, src.phase_rad,
                                      src.sensor_time, src.frequency_hz)
        for f in ("active_power_w", "reactive_power_var", "apparent_power_va", "current_a",
                  "voltage_v"):
            a, b = getattr(rec, f), getattr(src, f)
            assert abs(a - b) <= 0.12 * abs(b) + 1e-9
        assert parse_event(render(rec, "firmware")) == rec
    changed = sum(r.voltage_v != by_id[id(r.fft_re)].voltage_v for r in out)
    assert changed == 500


def test_from_records_zero_noise_copies_and_empty_source_fails():
    source = synth.generate_records(5, seed=3)
    assert set(synth.from_records(source, 50, seed=1, noise=0.0)) <= set(source)
    with pytest.raises(ValueError):
        synth.from_records([], 3)


# --- plausible ranges (wattprint.ingest.record.RANGES), both parsers -------------------------------

SCALARS = ("device_id", "event_type", "active_power_w", "reactive_power_var", "apparent_power_va", "current_a",
           "voltage_v", "phase_rad", "frequency_hz", "wifi_strength_dbm", "dummy")


def _beyond(value, up: bool):
    if isinstance(value, int):
        return value + 1 if up else value - 1
    return value * 1.0001 + 1e-9 if up == (value >= 0) else value * 1.0001 - 1e-9 if value else -1e-9


@pytest.mark.parametrize("field", SCALARS)
@pytest.mark.parametrize("dialect", parser.DIALECTS)
def test_each_scalar_is_accepted_at_its_bounds_and_refused_beyond(field, dialect):
    low, high, _ = RANGES[field]
    for bound in (low, high):
        rec = dataclasses.replace(DOC, **{field: bound})
        assert both_paths(render(rec, dialect)) == rec
        assert parser._fast(render(rec, dialect)) == rec  # the bounds are fast-path material
        assert EventRecord.from_json(rec.to_json()) == rec
    for bound, up in ((low, False), (high, True)):
        bad = dataclasses.replace(DOC, **{field: _beyond(bound, up)})
        line = render(bad, dialect)
        assert parser._fast(line) is None
        with pytest.raises(InvalidEvent, match="out of range") as info:
            parse_event(line)
        assert info.value.field == field
        with pytest.raises(InvalidEvent, match="out of range") as info:
            EventRecord.from_json(bad.to_json())
        assert info.value.field == field


@pytest.mark.parametrize("value", ["1e160", "1e150", "-1e160", "100001", "1e6"])
def test_the_issues_poison_values_are_refused_by_both_parsers(value):
    line = doc("Active=289W", f"Active={value}W")
    with pytest.raises(InvalidEvent, match="out of range") as info:
        parse_event(line)
    assert info.value.field == "active_power_w"
    with pytest.raises(InvalidEvent, match="out of range") as info:
        EventRecord.from_json({**DOC.to_json(), "active_power_w": float(value)})
    assert info.value.field == "active_power_w"


@pytest.mark.parametrize("field, at", [("peaks", 2), ("fft_re", 0), ("fft_img", 8)])
def test_every_list_item_is_range_checked(field, at):
    low, high, _ = RANGES[field]
    for bad in (high * 1.5, low * 1.5):
        items = list(getattr(DOC, field))
        items[at] = bad
        rec = dataclasses.replace(DOC, **{field: tuple(items)})
        for dialect in parser.DIALECTS:
            assert parser._fast(render(rec, dialect)) is None
            with pytest.raises(InvalidEvent, match="out of range") as info:
                parse_event(render(rec, dialect))
            assert info.value.field == field
        with pytest.raises(InvalidEvent, match=f"item {at} .* out of range") as info:
            EventRecord.from_json(rec.to_json())
        assert info.value.field == field
    items = list(getattr(DOC, field))
    items[at] = high
    rec = dataclasses.replace(DOC, **{field: tuple(items)})
    assert both_paths(render(rec)) == rec


@pytest.mark.parametrize("field, n, ok", [("peaks", 100, True), ("peaks", 101, False),
                                          ("fft", 512, True), ("fft", 513, False)])
def test_list_lengths_are_bounded(field, n, ok):
    lists = {"peaks": (1.5,) * n} if field == "peaks" else {"fft_re": (2.0,) * n, "fft_img": (3.0,) * n}
    rec = dataclasses.replace(DOC, **lists)
    if ok:
        assert both_paths(render(rec)) == rec == EventRecord.from_json(rec.to_json())
        return
    name = "peaks" if field == "peaks" else "fft_re"
    with pytest.raises(InvalidEvent, match=f"at most .* got {n}") as info:
        parse_event(render(rec, "firmware"))
    assert info.value.field == name
    with pytest.raises(InvalidEvent, match=f"at most .* got {n}") as info:
        EventRecord.from_json(rec.to_json())
    assert info.value.field == name


def test_times_before_2010_or_more_than_a_day_ahead_are_refused():
    from datetime import timedelta
    ok = [datetime(2010, 1, 1, tzinfo=UTC), datetime.now(UTC).replace(microsecond=0) + timedelta(hours=23)]
    bad = [datetime(2009, 12, 31, 23, 59, 59, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC),
           datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)]
    for t in ok:
        rec = dataclasses.replace(DOC, sensor_time=t)
        assert both_paths(render(rec)) == rec == EventRecord.from_json(rec.to_json())
    for t in bad:
        rec = dataclasses.replace(DOC, sensor_time=t)
        assert parser._fast(render(rec)) is None
        for attempt in (lambda: parse_event(render(rec)), lambda: EventRecord.from_json(rec.to_json())):
            with pytest.raises(InvalidEvent, match="out of range") as info:
                attempt()
            assert info.value.field == "sensor_time"


def test_integers_the_database_cannot_hold_are_refused():
    for line, field in ((doc("ID=10", "ID=1099511627776"), "device_id"),
                        (doc("Dummy: 20", "Dummy: 2147483648"), "dummy"),
                        (doc("Dummy: 20", "Dummy: " + "9" * 5000), "dummy"),
                        (doc("Evt=2", "Evt=-2147483649"), "event_type")):
        with pytest.raises(InvalidEvent, match="out of range") as info:
            parse_event(line)
        assert info.value.field == field
    with pytest.raises(InvalidEvent, match="out of range") as info:
        EventRecord.from_json({**DOC.to_json(), "device_id": 1099511627776})
    assert info.value.field == "device_id"


def test_a_firmware_over_64_characters_is_refused():
    for n, ok in ((64, True), (65, False)):
        rec = dataclasses.replace(DOC, firmware="f" * n)
        if ok:
            assert both_paths(render(rec)) == rec == EventRecord.from_json(rec.to_json())
            continue
        for attempt in (lambda: parse_event(render(rec)), lambda: EventRecord.from_json(rec.to_json())):
            with pytest.raises(InvalidEvent, match="at most 64") as info:
                attempt()
            assert info.value.field == "firmware"


# Places a stray character can hide: the firmware, either side of a number (float() strips \x1c-\x1f, \x0b, \x0c
# and \r there), inside a list, the time, the end of the line.
HIDING_PLACES = [("Fw=16071801", "Fw=1607{c}1801"), ("Fw=16071801", "Fw={c}16071801"),
                 ("Fw=16071801", "Fw=16071801{c}"), ("Active=289W", "Active={c}289W"),
                 ("Active=289W", "Active=289{c}W"), ("1058", "1058{c}"), ("-4223", "{c}-4223"),
                 ("16:47:50", "16:47{c}:50"),
                 ("Dummy: 20", "Dummy: 20{c}"), ("hz: 49.87", "hz: {c}49.87"), ("Device:", "{c}Device:")]


@pytest.mark.parametrize("c", ["\x00", "\x01", "\x0b", "\x0c", "\r", "\x1c", "\x1f", "\x7f", "\x85", "\u200b",
                               "\u2028", "\ufeff"])
def test_control_and_invisible_characters_are_refused_anywhere(c):
    for old, new in HIDING_PLACES:
        if c == "\r" and new.endswith("{c}"):
            continue  # a line's one trailing \r is its line ending
        for dialect in parser.DIALECTS:
            line = render(DOC, dialect).replace(old, new.format(c=c), 1)
            assert c in line
            assert parser._fast(line) is None
            with pytest.raises(InvalidEvent, match=f"U\\+{ord(c):04X} at column {line.index(c) + 1}"):
                parse_event(line)
    with pytest.raises(InvalidEvent) as info:
        parse_lines(DOC_LINE + "\n" + DOC_LINE.replace("Fw=16071801", f"Fw=16{c}"))
    assert info.value.line == 2


def test_a_tab_is_still_a_separator():
    line = doc("Active=289W", "Active=\t289W").replace("; hz", ";\thz")
    assert both_paths(line) == DOC
