"""Storing events: numbering them in commit order and opening a clustering run at each threshold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .db import Connection
from .record import EventRecord


@dataclass(frozen=True)
class Run:
    id: int
    threshold: int


@dataclass(frozen=True)
class Stored:
    ids: list[int]
    total: int  # events stored so far, this request included
    runs: list[Run]  # clustering runs this request opened (one per threshold it crossed)


def _array_literal(values: Sequence[float]) -> str:
    # repr() is the shortest text that reads back to the same float8: exact round trip.
    return "{" + ",".join(map(repr, values)) + "}"


# Taking event_counter's row lock numbers this request's events after every request that committed before
# it and before every request that commits after it: seq is gapless and in commit order. The lock is held
# from this statement to COMMIT, so nothing slow may happen between the two.
_INSERT = """
WITH counter AS (
    UPDATE event_counter SET total = total + :n RETURNING total
)
INSERT INTO events (seq, device_id, firmware, event_type, coil_reversed, active_power_w, reactive_power_var,
                    apparent_power_va, current_a, voltage_v, phase_rad, peaks, fft_re, fft_img, sensor_time,
                    frequency_hz, wifi_strength_dbm, dummy, raw)
SELECT counter.total - :n + e.ord, e.device_id, e.firmware, e.event_type, e.coil_reversed, e.active_power_w,
       e.reactive_power_var, e.apparent_power_va, e.current_a, e.voltage_v, e.phase_rad,
       e.peaks::float8[], e.fft_re::float8[], e.fft_img::float8[], e.sensor_time, e.frequency_hz,
       e.wifi_strength_dbm, e.dummy, e.raw
FROM counter,
     unnest(CAST(:device_id AS integer[]), CAST(:firmware AS text[]), CAST(:event_type AS integer[]),
            CAST(:coil_reversed AS boolean[]), CAST(:active AS float8[]), CAST(:reactive AS float8[]),
            CAST(:apparent AS float8[]), CAST(:current AS float8[]), CAST(:voltage AS float8[]),
            CAST(:phase AS float8[]), CAST(:peaks AS text[]), CAST(:fft_re AS text[]), CAST(:fft_img AS text[]),
            CAST(:sensor_time AS timestamptz[]), CAST(:frequency AS float8[]), CAST(:wifi AS integer[]),
            CAST(:dummy AS integer[]), CAST(:raw AS text[]))
     WITH ORDINALITY AS e(device_id, firmware, event_type, coil_reversed, active_power_w, reactive_power_var,
                          apparent_power_va, current_a, voltage_v, phase_rad, peaks, fft_re, fft_img,
                          sensor_time, frequency_hz, wifi_strength_dbm, dummy, raw, ord)
ORDER BY e.ord
RETURNING id, seq
"""

_OPEN_RUNS = """
INSERT INTO clustering_runs (threshold)
SELECT t FROM unnest(CAST(:thresholds AS bigint[])) AS t
RETURNING id, threshold
"""


def thresholds_crossed(before: int, after: int, every: int) -> list[int]:
    """The multiples of `every` in (before, after]."""
    first = (before // every + 1) * every
    return list(range(first, after + 1, every))


def insert_events(conn: Connection, events: Sequence[tuple[str, EventRecord]], threshold: int) -> Stored:
    """Insert (raw, record) pairs in order, inside the caller's transaction."""
    records = [r for _, r in events]
    rows = conn.run(
        _INSERT, n=len(records),
        device_id=[r.device_id for r in records], firmware=[r.firmware for r in records],
        event_type=[r.event_type for r in records], coil_reversed=[r.coil_reversed for r in records],
        active=[r.active_power_w for r in records], reactive=[r.reactive_power_var for r in records],
        apparent=[r.apparent_power_va for r in records], current=[r.current_a for r in records],
        voltage=[r.voltage_v for r in records], phase=[r.phase_rad for r in records],
        peaks=[_array_literal(r.peaks) for r in records], fft_re=[_array_literal(r.fft_re) for r in records],
        fft_img=[_array_literal(r.fft_img) for r in records], sensor_time=[r.sensor_time for r in records],
        frequency=[r.frequency_hz for r in records], wifi=[r.wifi_strength_dbm for r in records],
        dummy=[r.dummy for r in records], raw=[raw for raw, _ in events],
    )
    rows.sort(key=lambda row: row[1])
    total = rows[-1][1]
    crossed = thresholds_crossed(total - len(rows), total, threshold)
    runs = [Run(*row) for row in conn.run(_OPEN_RUNS, thresholds=crossed)] if crossed else []
    return Stored(ids=[row[0] for row in rows], total=total, runs=sorted(runs, key=lambda r: r.threshold))


def total(conn: Connection) -> int:
    return conn.run("SELECT total FROM event_counter")[0][0]
