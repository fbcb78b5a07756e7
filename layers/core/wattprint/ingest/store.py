"""Storing events: numbering them in commit order and opening a clustering run at each threshold.

Just over 300 lines: the statements of both cluster scopes (one set, or a numbering per device) and the binary COPY
encoding they share stay next to the code that runs them."""

from __future__ import annotations

import json
import struct
from array import array
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Sequence

from .. import db
from ..db import Connection
from ..errors import ClusterScopeMismatch
from .record import EventRecord, format_time


@dataclass(frozen=True)
class Run:
    id: int
    threshold: int
    device_id: int | None = None  # ClusterScope=device: the device whose events the threshold counts


@dataclass(frozen=True)
class Stored:
    ids: list[int]
    total: int  # events stored so far, this request included
    runs: list[Run]  # clustering runs this request opened (one per threshold it crossed)
    replayed: bool = False  # the first answer to this request's idempotency key, nothing stored now


# Taking event_counter's row lock numbers this request's events after every request that committed before
# it and before every request that commits after it: seq is gapless and in commit order. The lock is held
# from that UPDATE to COMMIT, so nothing slow may happen between the two. Crossing a threshold opens its
# clustering run in the same statement (the outbox row commits with the events or not at all).
# The counter also holds the scope its events were numbered under (0019): a request of the other scope updates no
# row, stores nothing and is refused (ClusterScopeMismatch).
def _counter(scope: str) -> str:
    other = "device" if scope == "all" else "all"
    return f"""
WITH counter AS (
    UPDATE event_counter SET total = total + :n, scope = '{scope}' WHERE scope IS DISTINCT FROM '{other}'
    RETURNING total
)"""


_COUNTER = _counter("all") + """, runs AS (
    INSERT INTO clustering_runs (threshold)
    SELECT t FROM counter, generate_series(((counter.total - :n) / :every + 1) * :every, counter.total, :every) t
    RETURNING id, threshold
)"""

# Two ways in. A few events travel as one JSON parameter in one statement with the counter (one round trip,
# prepared once per connection). A batch is encoded in PostgreSQL's binary COPY format before the counter is
# taken, its id and seq fields are filled in once it is, and it is COPYed straight into `events`: converting
# thousands of floats to text (client) and parsing them back (server) costs more than the extra round trip, and a
# staging table costs a second copy (figures: BENCHMARKS.md, design measurements).
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
# Rows (is_run, id, number): the new total with the first id reserved for the batch, then a row per run opened.
# The batch path reserves its ids in the counter's statement, so the COPY carries them and nothing is read back.
# The reserved range is contiguous because every writer of `events` draws ids only while holding the counter's
# row lock (the JSON path's identity defaults run after its UPDATE too) and nothing else uses the sequence; ids
# of a rolled-back request are skipped, as identity values always are.
_RESERVE = _COUNTER + """, reserved AS (
    SELECT setval(pg_get_serial_sequence('events', 'id'),
                  nextval(pg_get_serial_sequence('events', 'id')) + :n - 1) - :n + 1 AS first_id FROM counter
)
SELECT false, reserved.first_id, total FROM counter, reserved UNION ALL SELECT true, id, threshold FROM runs"""
# COPY writes the id column as given, like INSERT ... OVERRIDING SYSTEM VALUE.
_COPY = f"COPY events (id, seq, {_COLUMNS}) FROM STDIN WITH (FORMAT binary)"

# ClusterScope=device: each event is numbered among its device's events too (device_seq), under the same counter
# lock, through device_counters (taken after the counter, as `src` reads it, so two requests cannot deadlock);
# crossing a multiple of the threshold in a device's numbering opens that device's run. Rows (kind, a, b, c): an
# event (0, id, seq, -), a run (1, id, threshold, device_id), the batch path's reservation (2, first id, total, -).
_DEVICES = """, devices AS (
    INSERT INTO device_counters AS d (device_id, total)
    SELECT device_id, n FROM sizes ORDER BY device_id
    ON CONFLICT (device_id) DO UPDATE SET total = d.total + EXCLUDED.total
    RETURNING device_id, total
), numbered AS (
    SELECT devices.device_id, devices.total - sizes.n AS base, devices.total FROM devices JOIN sizes USING (device_id)
), runs AS (
    INSERT INTO clustering_runs (device_id, threshold)
    SELECT numbered.device_id, t
    FROM numbered, generate_series((numbered.base / :every + 1) * :every, numbered.total, :every) t
    RETURNING id, threshold, device_id
)"""
_INSERT_JSON_DEVICE = _counter("device") + f""", src AS (
    SELECT counter.total - :n + s.ord AS seq, row_number() OVER (PARTITION BY s.device_id ORDER BY s.ord) AS k, s.*
    FROM counter, ROWS FROM (json_to_recordset(CAST(:rows AS json)) AS ({_SOURCE_COLUMNS}))
         WITH ORDINALITY AS s({_COLUMNS}, ord)
), sizes AS (
    SELECT device_id, count(*) AS n FROM src GROUP BY device_id
){_DEVICES}, inserted AS (
    INSERT INTO events (seq, device_seq, {_COLUMNS})
    SELECT src.seq, numbered.base + src.k, {", ".join("src." + c for c in _COLUMNS.split(", "))}
    FROM src JOIN numbered ON numbered.device_id = src.device_id
    ORDER BY src.seq
    RETURNING id, seq
)
SELECT 0, id, seq, NULL::bigint FROM inserted UNION ALL SELECT 1, id, threshold, device_id FROM runs
"""
# :sizes is [{"device_id", "n"}]: the batch's events per device; the COPY carries the numbers worked out from them.
_RESERVE_DEVICE = _counter("device") + f""", sizes AS (
    SELECT s.device_id, s.n FROM counter, json_to_recordset(CAST(:sizes AS json)) AS s(device_id int, n bigint)
){_DEVICES}, reserved AS (
    SELECT setval(pg_get_serial_sequence('events', 'id'),
                  nextval(pg_get_serial_sequence('events', 'id')) + :n - 1) - :n + 1 AS first_id FROM counter
)
SELECT 2, reserved.first_id, total, NULL::bigint FROM counter, reserved
UNION ALL SELECT 3, device_id, base, NULL FROM numbered
UNION ALL SELECT 1, id, threshold, device_id FROM runs"""
_COPY_DEVICE = f"COPY events (id, seq, device_seq, {_COLUMNS}) FROM STDIN WITH (FORMAT binary)"
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
_COPY_TRAILER = b"\xff\xff"
# Field count; id and seq (filled in once reserved); device_id; firmware's length.
_ROW_START = struct.Struct(">hiqiqiii")
_ID_SEQ = struct.Struct(">qiq")  # id, seq's length, seq
# ClusterScope=device: device_seq after seq (filled in with them).
_ROW_START_DEVICE = struct.Struct(">hiqiqiqiii")
_ID_SEQ_DEVICE = struct.Struct(">qiqiq")  # id, seq's length, seq, device_seq's length, device_seq
_ID_OFFSET = 6  # from a row's start: after the field count and id's length
_SCALARS = struct.Struct(">iiib" + "id" * 6)  # event_type, coil_reversed, the six readings
_ARRAY_HEADER = struct.Struct(">iiiIii")  # byte length, ndim, has-null, element type, size, lower bound
_ROW_END = struct.Struct(">iqidiiiii")  # sensor_time, frequency_hz, wifi_strength_dbm, dummy, raw's length
_FLOAT8_OID = 701
_LENGTH_WORD = array("I", (8).to_bytes(4, "big"))  # each array element's length, as one native word
if _LENGTH_WORD.itemsize != 4:  # true on every CPython platform; _elements interleaves 4-byte words
    raise ImportError(f"wattprint.ingest.store needs 4-byte array('I') items, this platform has {_LENGTH_WORD.itemsize}")


class _ArrayHeaders(dict):
    """``_header(n)`` is the binary COPY header of a float8 array of ``n`` elements (byte length, ndim, has-null,
    element type, size, lower bound), remembered: sensors send lists of a few lengths only."""

    __slots__ = ()

    def __missing__(self, n: int) -> bytes:
        if len(self) >= 1024:  # whatever lengths arrive, memory stays bounded
            self.clear()
        self[n] = header = _ARRAY_HEADER.pack(20 + 12 * n, 1, 0, _FLOAT8_OID, n, 1)
        return header


_header = _ArrayHeaders().__getitem__


def _elements(records: Sequence[EventRecord]) -> memoryview:
    """The array elements of every record (its peaks, fft_re, fft_img in turn) as binary COPY writes them: each its
    length (8) and then its value, big-endian, 12 bytes apiece.

    C-level passes over the whole batch instead of a pack per element (dozens per event in the sensors' data; see
    BENCHMARKS.md, design measurements): the values are gathered in one list, packed big-endian by one struct call, and strided memoryview copies
    interleave the length words (4 bytes) and the two halves of each value (4 and 4).
    """
    values: list[float] = []
    extend = values.extend
    for r in records:
        extend(r.peaks)
        extend(r.fft_re)
        extend(r.fft_img)
    n = len(values)
    halves = memoryview(struct.pack(f">{n}d", *values)).cast("I")
    out = bytearray(12 * n)
    words = memoryview(out).cast("I")
    words[0::3] = _LENGTH_WORD * n
    words[1::3] = halves[0::2]
    words[2::3] = halves[1::2]
    return memoryview(out)


_FIXED_ROW_BYTES = _ROW_START.size + _SCALARS.size + 3 * _ARRAY_HEADER.size + _ROW_END.size


def _copy_binary(events: Sequence[tuple[str, EventRecord]],
                 numbered: bool = False) -> tuple[bytearray, list[int]]:
    """The events in PostgreSQL's binary COPY format for `_COPY` (`_COPY_DEVICE` when `numbered`: with device_seq),
    and where each row's id and seq (and device_seq) go (still 0)."""
    elements = _elements([r for _, r in events])
    out = [_COPY_HEADER]
    offsets = []
    size = len(_COPY_HEADER)
    at = 0  # in elements
    fixed = _FIXED_ROW_BYTES + (_ROW_START_DEVICE.size - _ROW_START.size if numbered else 0)
    for raw, r in events:
        firmware, raw_bytes = r.firmware.encode(), raw.encode()
        n_peaks, n_re, n_img = len(r.peaks), len(r.fft_re), len(r.fft_img)
        re_at = at + 12 * n_peaks
        img_at = re_at + 12 * n_re
        end = img_at + 12 * n_img
        out += (
            (_ROW_START_DEVICE.pack(21, 8, 0, 8, 0, 8, 0, 4, r.device_id, len(firmware)) if numbered else
             _ROW_START.pack(20, 8, 0, 8, 0, 4, r.device_id, len(firmware))), firmware,
            _SCALARS.pack(4, r.event_type, 1, r.coil_reversed, 8, r.active_power_w, 8, r.reactive_power_var,
                          8, r.apparent_power_va, 8, r.current_a, 8, r.voltage_v, 8, r.phase_rad),
            _header(n_peaks), elements[at:re_at], _header(n_re), elements[re_at:img_at], _header(n_img),
            elements[img_at:end],
            _ROW_END.pack(8, (r.sensor_time - _PG_EPOCH) // _MICROSECOND, 8, r.frequency_hz, 4, r.wifi_strength_dbm,
                          4, r.dummy, len(raw_bytes)),
            raw_bytes)
        offsets.append(size + _ID_OFFSET)
        size += fixed + len(firmware) + (end - at) + len(raw_bytes)
        at = end
    out.append(_COPY_TRAILER)
    return bytearray().join(out), offsets


def insert_events(conn: Connection, events: Sequence[tuple[str, EventRecord]], threshold: int,
                  per_device: bool = False) -> Stored:
    """Insert (raw, record) pairs in order, inside the caller's transaction (at most COPY_FROM of them: in one
    statement, so the caller may run it alone in autocommit, db.one_statement). `per_device` (ClusterScope=device):
    number them per device as well, and open each device's runs."""
    if per_device:
        return _insert_per_device(conn, events, threshold)
    n = len(events)
    if n > COPY_FROM:
        payload, offsets = _copy_binary(events)  # before the counter's lock is taken
        rows = db.prepared(conn, _RESERVE).run(n=n, every=threshold)
        first_id, last = next((row[1:] for row in rows if not row[0]), (None, None))
        if first_id is None:
            raise _mismatch("all")
        ids = list(range(first_id, first_id + n))
        for i, offset in enumerate(offsets):
            _ID_SEQ.pack_into(payload, offset, first_id + i, 8, last - n + 1 + i)
        conn.run(_COPY, stream=[payload])  # an iterable is sent as one CopyData message; a file, in 8 KiB ones
    else:
        return _stored(db.prepared(conn, _INSERT_JSON).run(n=n, every=threshold, rows=_json_rows(events)), "all")
    runs = sorted((Run(row[1], row[2]) for row in rows if row[0]), key=lambda run: run.threshold)
    return Stored(ids=ids, total=last, runs=runs)


def _mismatch(scope: str) -> ClusterScopeMismatch:
    other = "device" if scope == "all" else "all"
    return ClusterScopeMismatch(
        f"this database's events were numbered with ClusterScope={other} and this deployment says "
        f"ClusterScope={scope}; a scope cannot change once events are stored (deploy with ClusterScope={other}, "
        "or a new database)", stored_scope=other, scope=scope)


def _stored(rows: list, scope: str) -> Stored:
    """What _INSERT_JSON or _INSERT_JSON_DEVICE answered."""
    events = sorted((r for r in rows if not r[0]), key=lambda r: r[2])
    if not events:
        raise _mismatch(scope)
    runs = sorted((Run(row[1], row[2], *row[3:]) for row in rows if row[0]), key=lambda run: (run.threshold, run.id))
    return Stored(ids=[row[1] for row in events], total=events[-1][2], runs=runs)


def _insert_per_device(conn: Connection, events: Sequence[tuple[str, EventRecord]], threshold: int) -> Stored:
    n = len(events)
    if n <= COPY_FROM:
        return _stored(db.prepared(conn, _INSERT_JSON_DEVICE).run(n=n, every=threshold, rows=_json_rows(events)),
                       "device")
    payload, offsets = _copy_binary(events, numbered=True)
    ordinals, sizes = [], {}  # each event's place among its device's events in the batch (1, 2, …)
    for _, r in events:
        sizes[r.device_id] = k = sizes.get(r.device_id, 0) + 1
        ordinals.append(k)
    rows = db.prepared(conn, _RESERVE_DEVICE).run(
        n=n, every=threshold, sizes=json.dumps([{"device_id": d, "n": k} for d, k in sizes.items()]))
    reserved = next((row for row in rows if row[0] == 2), None)
    if reserved is None:
        raise _mismatch("device")
    first_id, last = reserved[1], reserved[2]
    base = {row[1]: row[2] for row in rows if row[0] == 3}
    for i, ((_, r), offset, k) in enumerate(zip(events, offsets, ordinals)):
        _ID_SEQ_DEVICE.pack_into(payload, offset, first_id + i, 8, last - n + 1 + i, 8, base[r.device_id] + k)
    conn.run(_COPY_DEVICE, stream=[payload])
    runs = sorted((Run(row[1], row[2], row[3]) for row in rows if row[0] == 1), key=lambda run: (run.threshold, run.id))
    return Stored(ids=list(range(first_id, first_id + n)), total=last, runs=runs)
