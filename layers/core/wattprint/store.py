"""Storing events: numbering them in commit order and opening a clustering run at each threshold."""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from itertools import chain, repeat
from typing import Sequence

from . import db
from .db import Connection
from .record import EventRecord, format_time


@dataclass(frozen=True)
class Run:
    id: int
    threshold: int


@dataclass(frozen=True)
class Stored:
    ids: list[int]
    total: int  # events stored so far, this request included
    runs: list[Run]  # clustering runs this request opened (one per threshold it crossed)


# Taking event_counter's row lock numbers this request's events after every request that committed before
# it and before every request that commits after it: seq is gapless and in commit order. The lock is held
# from that UPDATE to COMMIT, so nothing slow may happen between the two. Crossing a threshold opens its
# clustering run in the same statement (the outbox row commits with the events or not at all).
_COUNTER = """
WITH counter AS (
    UPDATE event_counter SET total = total + :n RETURNING total
), runs AS (
    INSERT INTO clustering_runs (threshold)
    SELECT t FROM counter, generate_series(((counter.total - :n) / :every + 1) * :every, counter.total, :every) t
    RETURNING id, threshold
)"""
# Rows (is_run, id, number): the new total (id NULL), then a row per run opened.
_COUNT = _COUNTER + "\nSELECT false, NULL::bigint, total FROM counter UNION ALL SELECT true, id, threshold FROM runs"

# Two ways in. A few events travel as one JSON parameter in one statement with the counter (one round trip,
# prepared once per connection). A batch is encoded in PostgreSQL's binary COPY format before the counter is
# taken, its seq fields are filled in once it is, and it is COPYed straight into `events`: converting thousands
# of floats to text (client) and parsing them back (server) costs more than the extra round trips. Measured on
# the benchmark machine: 1 event 0.7 ms as JSON vs 1.9 ms by COPY; database time for 500 events 48 ms as JSON,
# 23 ms through a staging table, ~12 ms by COPY into `events` (BENCHMARKS.md has the whole request).
_SOURCE_COLUMNS = ("device_id int, firmware text, event_type int, coil_reversed boolean, active_power_w float8, "
                   "reactive_power_var float8, apparent_power_va float8, current_a float8, voltage_v float8, "
                   "phase_rad float8, peaks float8[], fft_re float8[], fft_img float8[], sensor_time timestamptz, "
                   "frequency_hz float8, wifi_strength_dbm int, dummy int, raw text")
_COLUMNS = ", ".join(column.split()[0] for column in _SOURCE_COLUMNS.split(", "))
# Rows (is_run, id, number): a row per event (number = seq), then a row per run opened (number = threshold).
_INSERT_JSON = _COUNTER + f""", inserted AS (
    INSERT INTO events (seq, {_COLUMNS})
    SELECT counter.total - :n + src.ord, {", ".join("src." + c for c in _COLUMNS.split(", "))}
    FROM counter, ROWS FROM (json_to_recordset(CAST(:rows AS json)) AS ({_SOURCE_COLUMNS}))
         WITH ORDINALITY AS src({_COLUMNS}, ord)
    ORDER BY src.ord
    RETURNING id, seq
)
SELECT false, id, seq FROM inserted UNION ALL SELECT true, id, threshold FROM runs
"""
_COPY = f"COPY events (seq, {_COLUMNS}) FROM STDIN WITH (FORMAT binary)"
# One text value: pg8000 decodes 500 one-integer rows, or an int8[] of 500, in ~3 ms; this in ~0.3 ms.
_IDS = "SELECT string_agg(id::text, ',' ORDER BY seq) FROM events WHERE seq BETWEEN :first AND :last"
COPY_FROM = 8  # batches of more events than this are COPYed


def _json_rows(events: Sequence[tuple[str, EventRecord]]) -> str:
    return json.dumps([{
        "device_id": r.device_id, "firmware": r.firmware, "event_type": r.event_type,
        "coil_reversed": r.coil_reversed, "active_power_w": r.active_power_w,
        "reactive_power_var": r.reactive_power_var, "apparent_power_va": r.apparent_power_va,
        "current_a": r.current_a, "voltage_v": r.voltage_v, "phase_rad": r.phase_rad, "peaks": r.peaks,
        "fft_re": r.fft_re, "fft_img": r.fft_img, "sensor_time": format_time(r.sensor_time),
        "frequency_hz": r.frequency_hz, "wifi_strength_dbm": r.wifi_strength_dbm, "dummy": r.dummy, "raw": raw,
    } for raw, r in events])


_PG_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_ROW_START = struct.Struct(">hiqiii")  # field count; seq (filled in later); device_id; firmware's length
_SEQ = struct.Struct(">q")
_SEQ_OFFSET = 6  # from a row's start: after the field count and seq's length
_FLOAT8_OID = 701


@lru_cache(maxsize=64)
def _row_rest(n_peaks: int, n_fft: int) -> struct.Struct:
    """From event_type to raw's length, for one shape of lists (each list: header, then (8, value) pairs)."""
    array = lambda n: "iiiIii" + "id" * n  # noqa: E731 — byte length, ndim, has-null, element type, size, lower bound
    return struct.Struct(">iiib" + "id" * 6 + array(n_peaks) + array(n_fft) + array(n_fft) + "iqidiiiii")


def _floats(values: Sequence[float]) -> tuple:
    return (20 + 12 * len(values), 1, 0, _FLOAT8_OID, len(values), 1, *chain.from_iterable(zip(repeat(8), values)))


def _copy_binary(events: Sequence[tuple[str, EventRecord]]) -> tuple[bytearray, list[int]]:
    """The events in PostgreSQL's binary COPY format for `_COPY`, and where each row's seq goes (still 0)."""
    out = [_COPY_HEADER]
    offsets = []
    size = len(_COPY_HEADER)
    for raw, r in events:
        firmware, raw_bytes = r.firmware.encode(), raw.encode()
        rest = _row_rest(len(r.peaks), len(r.fft_re)).pack(
            4, r.event_type, 1, r.coil_reversed, 8, r.active_power_w, 8, r.reactive_power_var,
            8, r.apparent_power_va, 8, r.current_a, 8, r.voltage_v, 8, r.phase_rad,
            *_floats(r.peaks), *_floats(r.fft_re), *_floats(r.fft_img),
            8, (r.sensor_time - _PG_EPOCH) // _MICROSECOND, 8, r.frequency_hz, 4, r.wifi_strength_dbm,
            4, r.dummy, len(raw_bytes))
        offsets.append(size + _SEQ_OFFSET)
        out += (_ROW_START.pack(19, 8, 0, 4, r.device_id, len(firmware)), firmware, rest, raw_bytes)
        size += _ROW_START.size + len(firmware) + len(rest) + len(raw_bytes)
    out.append(b"\xff\xff")
    return bytearray(b"".join(out)), offsets


def insert_events(conn: Connection, events: Sequence[tuple[str, EventRecord]], threshold: int) -> Stored:
    """Insert (raw, record) pairs in order, inside the caller's transaction."""
    n = len(events)
    if n > COPY_FROM:
        payload, offsets = _copy_binary(events)  # before the counter's lock is taken
        rows = db.prepared(conn, _COUNT).run(n=n, every=threshold)
        last = next(row[2] for row in rows if not row[0])
        first = last - n + 1
        for seq, offset in enumerate(offsets, start=first):
            _SEQ.pack_into(payload, offset, seq)
        conn.run(_COPY, stream=io.BytesIO(payload))
        ids = [int(i) for i in db.prepared(conn, _IDS).run(first=first, last=last)[0][0].split(",")]
    else:
        rows = db.prepared(conn, _INSERT_JSON).run(n=n, every=threshold, rows=_json_rows(events))
        ids = [row[1] for row in sorted((r for r in rows if not r[0]), key=lambda r: r[2])]
        last = max(row[2] for row in rows if not row[0])
    runs = sorted((Run(row[1], row[2]) for row in rows if row[0]), key=lambda run: run.threshold)
    return Stored(ids=ids, total=last, runs=runs)


def total(conn: Connection) -> int:
    return conn.run("SELECT total FROM event_counter")[0][0]
