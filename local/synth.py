"""Deterministic, realistic-looking sensor events for demos, tests and benchmarks.

The real sample file must not be copied into the repository; these generators stand in for
it.  ``generate`` invents events from a handful of appliance-like modes; ``from_records``
resamples real (parsed) events with multiplicative noise, which is how the benchmarks build
large sets "from the real events with noise".  Everything is driven by ``random.Random(seed)``:
same arguments, same output, on every platform.
"""

from __future__ import annotations

import math
import struct
from datetime import datetime, timedelta, timezone
from random import Random
from typing import Iterable, Iterator, Sequence

from wattprint.ingest.parser import DIALECTS
from wattprint.ingest.record import EventRecord, new_record

__all__ = ["APPLIANCES", "MODES", "appliance_lines", "appliance_records", "generate", "generate_records",
           "from_records", "iter_from_records", "render"]

# (name, weight, mean active power W, relative spread, power factor)
MODES = (
    ("standby", 0.06, 0.0, 0.0, 1.0),
    ("lamp", 0.10, 60.0, 0.05, 0.95),
    ("tv", 0.14, 120.0, 0.06, 0.90),
    ("microwave", 0.22, 1200.0, 0.04, 0.97),
    ("kettle", 0.30, 1750.0, 0.03, 0.99),
    ("oven", 0.18, 2200.0, 0.04, 0.98),
)
_WEIGHTS = tuple(m[1] for m in MODES)

_START = datetime(2016, 10, 4, 16, 47, 50, tzinfo=timezone.utc)
_F32 = struct.Struct("<f")


def _f32(x: float) -> float:
    """A reading the way the sensors report it: 3 decimals, through a 32-bit float (7.332 -> 7.33199978)."""
    return float("%.9g" % _F32.unpack(_F32.pack(round(x, 3)))[0])


def generate_records(n: int, seed: int = 0) -> list[EventRecord]:
    """``n`` invented events (see :data:`MODES`) as records."""
    rng = Random(seed)
    gauss = rng.gauss
    t = _START
    out = []
    for _ in range(n):
        _name, _w, mean, spread, pf = rng.choices(MODES, _WEIGHTS)[0]
        if mean == 0.0:
            active = float(round(abs(gauss(0.0, 1.5))))
        else:
            active = float(round(mean * (1.0 + gauss(0.0, spread))))
        reactive = float(round(active * math.tan(math.acos(pf)) * (1.0 + gauss(0.0, 0.05))))
        apparent, voltage, current, phase, peaks, fft_re, fft_img = _electrical(rng, active, reactive)
        t += timedelta(seconds=rng.randint(0, 3))
        out.append(new_record(
            rng.randint(1, 3), "16071801", rng.choice((1, 2, 5)), rng.random() < 0.01,
            active, reactive, apparent, current, voltage, phase, peaks, fft_re, fft_img, t,
            round(50.0 + gauss(0.0, 0.05), 2), rng.randint(-75, -50), 20))
    return out


def _electrical(rng: Random, active: float, reactive: float) -> tuple:
    """What a sensor reads besides the two powers: apparent power, voltage, current, phase, peaks and FFT."""
    gauss = rng.gauss
    apparent = float(round(math.hypot(active, reactive)))
    voltage = round(230.0 + gauss(0.0, 0.8), 2)
    current = _f32(active / voltage * (1.0 + gauss(0.0, 0.01)))
    phase = round(-math.atan2(reactive, active) if active else 0.0, 3)
    peaks = tuple(_f32(abs(current * (1.0 + gauss(0.0, 0.02))) + abs(gauss(0.0, 0.01))) for _ in range(10))
    fft_re, fft_img = _fft(rng, active)
    return apparent, voltage, current, phase, peaks, fft_re, fft_img


# Appliance cycles (local.demo): (name, active power W, relative spread, power factor, on seconds, off seconds),
# the durations drawn uniformly from their ranges, in sensor time. A fridge's compressor, a thermostat's heater
# and a kettle boiled now and then: loads that add up, so a household's readings fall into a few levels.
APPLIANCES = (
    ("fridge", 120.0, 0.04, 0.80, (300, 600), (600, 1200)),
    ("heater", 1500.0, 0.02, 1.00, (300, 900), (300, 900)),
    ("kettle", 2200.0, 0.02, 0.99, (90, 180), (1200, 3600)),
)
STANDBY_W = 4.0


def appliance_records(devices: int = 3, seed: int = 0, step: timedelta = timedelta(seconds=10),
                      appliances: Sequence[tuple] = APPLIANCES) -> Iterator[EventRecord]:
    """An endless stream from `devices` households (device ids 1..devices), each running `appliances` through
    their on/off cycles: one event per household per `step` of sensor time, in turn, each reading the household's
    whole load (standby plus whatever is on). Deterministic for a seed."""
    rng = Random(seed)
    gauss = rng.gauss
    clocks = [_START] * devices
    # Per household and appliance: on?, and until when. Started at a random point of a cycle.
    states = [[[rng.random() < 0.3, _START + timedelta(seconds=rng.uniform(0, a[5][1]))] for a in appliances]
              for _ in range(devices)]
    while True:
        for d in range(devices):
            t = clocks[d] = clocks[d] + step
            active, reactive = abs(gauss(STANDBY_W, 0.5)), 0.0
            for state, (_name, power, spread, pf, on_s, off_s) in zip(states[d], appliances):
                while state[1] <= t:  # a step may cover several switches of a short cycle
                    state[0] = not state[0]
                    state[1] += timedelta(seconds=rng.uniform(*(on_s if state[0] else off_s)))
                if state[0]:
                    load = power * (1.0 + gauss(0.0, spread))
                    active += load
                    reactive += load * math.tan(math.acos(pf))
            active, reactive = float(round(active)), float(round(reactive * (1.0 + gauss(0.0, 0.05))))
            apparent, voltage, current, phase, peaks, fft_re, fft_img = _electrical(rng, active, reactive)
            yield new_record(d + 1, "16071801", 2, False, active, reactive, apparent, current, voltage, phase, peaks,
                             fft_re, fft_img, t, round(50.0 + gauss(0.0, 0.05), 2), rng.randint(-75, -50), 20)


def appliance_lines(devices: int = 3, seed: int = 0, step: timedelta = timedelta(seconds=10),
                    dialect: str = "firmware") -> Iterator[str]:
    """appliance_records as event lines, as the sensors would post them."""
    for record in appliance_records(devices, seed, step):
        yield render(record, dialect)


def _fft(rng: Random, active: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Nine coefficients: a large fundamental, odd harmonics in the hundreds, the rest small."""
    gauss = rng.gauss
    re, im = [], []
    for k in range(9):
        if k == 0:
            re.append(float(round(active * 5.55 * (1.0 + gauss(0.0, 0.03)))))
            im.append(float(round(active * 1.5 * gauss(0.6, 0.4))))
        elif k % 2 == 0:
            re.append(float(round(gauss(0.0, 0.15 * active + 5.0))))
            im.append(float(round(gauss(0.0, 0.4 * active + 5.0))))
        else:
            re.append(float(round(gauss(0.0, 30.0))))
            im.append(float(round(gauss(0.0, 30.0))))
    return tuple(re), tuple(im)


def generate(n: int, seed: int = 0, dialect: str = "firmware") -> list[str]:
    """``n`` invented event lines in ``dialect`` (``"firmware"`` or ``"documented"``)."""
    return [render(r, dialect) for r in generate_records(n, seed)]


def iter_from_records(records: Iterable[EventRecord], n: int, seed: int = 0,
                      noise: float = 0.02) -> Iterator[EventRecord]:
    """Lazily yield ``n`` records resampled from ``records`` with multiplicative noise.

    Each output picks a source record uniformly at random and multiplies each of the eight
    clustering features (active, reactive and apparent power, current, voltage and the first
    three peaks) by its own factor ``1 + N(0, noise)``.  All other fields, including the
    remaining peaks and the FFT tuples (shared, not copied), are the source's.
    """
    pool: Sequence[EventRecord] = records if isinstance(records, (list, tuple)) else list(records)
    if not pool:
        raise ValueError("from_records needs at least one record")
    rng = Random(seed)
    gauss = rng.gauss
    pick = rng.choice
    for _ in range(n):
        r = pick(pool)
        p = r.peaks
        yield new_record(
            r.device_id, r.firmware, r.event_type, r.coil_reversed,
            r.active_power_w * (1.0 + gauss(0.0, noise)),
            r.reactive_power_var * (1.0 + gauss(0.0, noise)),
            r.apparent_power_va * (1.0 + gauss(0.0, noise)),
            r.current_a * (1.0 + gauss(0.0, noise)),
            r.voltage_v * (1.0 + gauss(0.0, noise)),
            r.phase_rad,
            (p[0] * (1.0 + gauss(0.0, noise)), p[1] * (1.0 + gauss(0.0, noise)),
             p[2] * (1.0 + gauss(0.0, noise))) + p[3:],
            r.fft_re, r.fft_img, r.sensor_time, r.frequency_hz, r.wifi_strength_dbm, r.dummy)


def from_records(records: Iterable[EventRecord], n: int, seed: int = 0,
                 noise: float = 0.02) -> list[EventRecord]:
    """``n`` records resampled from ``records`` with noise (see :func:`iter_from_records`).

    Returns records; ``[render(r, "firmware") for r in ...]`` gives lines.  For very large
    ``n`` prefer the lazy :func:`iter_from_records`.
    """
    return list(iter_from_records(records, n, seed, noise))


# --- rendering: records back into the text form (the parser's inverse; only tests, benchmarks and the dev stack
# need it, so it stays out of the Lambda layer) ---------------------------------------------------------

def _num(x: float) -> str:
    """``repr`` (exact round trip) without a useless ``.0``: 1753.0 -> ``1753``."""
    r = repr(x)
    return r[:-2] if r[-2:] == ".0" else r


def _clock(t: datetime) -> str:
    if t.tzinfo is not None and t.utcoffset():
        t = t.astimezone(timezone.utc)
    return f"{t.year}-{t.month}-{t.day} {t.hour:02d}:{t.minute:02d}:{t.second:02d}"


def render(record: EventRecord, dialect: str = "documented") -> str:
    """The text line for ``record`` in ``"documented"`` or ``"firmware"`` style.

    Floats use ``repr`` (minus a trailing ``.0``) so they parse back to the same value;
    Phase always uses a decimal comma, as both the documented example and the sensors do;
    dates are unpadded (``2016-10-4``), times padded.
    """
    r = record
    phase = _num(r.phase_rad).replace(".", ",")
    coil = "ON" if r.coil_reversed else "OFF"
    if dialect == "documented":
        sep = "; "
        alarm, apparent_key, current_unit = "CoilReversed", "Apparent", "A"
    elif dialect == "firmware":
        sep = ";"
        alarm, apparent_key, current_unit = "CoilRevesed", "Appearent", ""
    else:
        raise ValueError(f"unknown dialect {dialect!r}; expected one of {DIALECTS}")
    return (
        f"Device: ID={r.device_id}; Fw={r.firmware}; Evt={r.event_type}; "
        f"Alarms: {alarm}={coil}; "
        f"Power: Active={_num(r.active_power_w)}W; Reactive={_num(r.reactive_power_var)}var; "
        f"{apparent_key}={_num(r.apparent_power_va)}VA; "
        f"Line: Current={_num(r.current_a)}{current_unit}; Voltage={_num(r.voltage_v)}V; "
        f"Phase={phase}rad; "
        f"Peaks: {sep.join(map(_num, r.peaks))}; "
        f"FFT Re: {sep.join(map(_num, r.fft_re))}; "
        f"FFT Img: {sep.join(map(_num, r.fft_img))}; "
        f"UTC Time: {_clock(r.sensor_time)}; hz: {_num(r.frequency_hz)}; "
        f"WiFi Strength: {r.wifi_strength_dbm}; Dummy: {r.dummy}"
    )
