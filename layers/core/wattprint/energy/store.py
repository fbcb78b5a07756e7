"""The energy capability's SQL, and the one recompute both sources share. Every function runs inside the
caller's transaction (or, for reads, on the instance's connection). The writes' server-side functions are in
migration 0017: an append after a device's last reading (every sensor request) is applied there as a difference,
in the round trip that stores the readings; any other change is re-integrated here.

Times cross the wire as integer microseconds since the epoch (`_T` turns one into a timestamptz, `_US` back):
exact, and no datetime objects built per row.

A change to a device's readings touches only the buckets between the reading before its earliest changed
instant and the reading after its latest; when it reaches the device's last SPACING_INTERVALS + 1 readings (the
ones that decide the last interval's estimated end), everything from there to the end is recomputed, since the
old estimated end may lie beyond the new one. Writers of one device take its advisory lock first, so a
recompute always sees every reading committed before it (READ COMMITTED takes a new snapshot per statement).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .. import db
from ..db import Connection
from . import integrate, times
from .integrate import Bucket, Reading

_LOCK_CLASS = 0x656E  # "en": pg_advisory_xact_lock(class, device_id)
_TAIL = integrate.SPACING_INTERVALS + 1


def _array(values) -> str:
    """A list as one array literal: pg8000 converts a list element by element (~0.2 µs each, 3.6 ms per 500-event
    batch of the feed); one string is cast by the server."""
    return "{" + ",".join(map(repr, values)) + "}"


def _T(name: str) -> str:
    return f"(timestamptz 'epoch' + CAST(:{name} AS bigint) * interval '1 microsecond')"


def _US(column: str) -> str:
    return f"CAST(extract(epoch FROM {column}) * 1000000 AS bigint)"


# Writers call energy_write_readings (migration 0017): it takes the devices' advisory locks (in device order, so two
# cannot deadlock), upserts the readings, writes the buckets of a pure append itself and returns, per device whose
# readings changed, a Change: what it wrote, or the neighbours a recompute needs, read after the locks are held, so
# they include every reading committed before. A re-post of the same readings changes no row (the function's
# DO UPDATE … WHERE), so it returns nothing.
_WRITE_READINGS = ("energy_write_readings(:class, CAST(:lock AS int[]), CAST(:source AS smallint), {devices}, {us}, "
                   "{units}, {vals}, {flags}, :tail, CAST(:max_gap AS bigint))")

_UPSERT = "SELECT * FROM " + _WRITE_READINGS.format(
    devices="CAST(:devices AS int[])", us="CAST(:ts AS bigint[])", units="CAST(:units AS smallint[])",
    vals="CAST(:vals AS float8[])", flags="CAST(:flags AS smallint[])")

# Sensor events → readings (the feed function, events in seq order, see service.feed_new). An event's sample time
# is its sensor time when that is later than every sensor time its device sent before (the stored clock, and the
# batch's earlier events: Python marks those `candidate`), else its arrival, flagged ARRIVAL_TIME: its received_at
# (its transaction's start), raised to the latest arrival before it in seq order and the device's stored one, since
# concurrent requests take the counter's lock, and so their seq, in another order than they began; an earlier
# arrival written after a later one would re-integrate its bucket, thousands of readings, instead of appending.
# Events of a device at one instant (a request's events share received_at) make one reading, the last one's. The
# clocks are written only here, and one feed runs at a time (its cursor's lock), so this statement's snapshot has
# the latest clocks; the readings are written by energy_write_readings under the devices' locks.
_FEED = f"""
WITH i AS (
    SELECT * FROM unnest(CAST(:devices AS int[]), CAST(:sensor AS bigint[]), CAST(:received AS bigint[]),
                         CAST(:watts AS float8[]), CAST(:candidates AS boolean[]))
                  WITH ORDINALITY AS i(device_id, sensor_us, received_us, watts, candidate, ord)
), timed AS (
    SELECT i.*, c.sensor_time AS clock,
           i.candidate AND (c.sensor_time IS NULL OR i.sensor_us > {_US("c.sensor_time")}) AS advancing,
           greatest(max(i.received_us) OVER (PARTITION BY i.device_id ORDER BY i.ord),
                    {_US("c.arrived_at")}) AS arrival_us
    FROM i LEFT JOIN energy_sensor_clocks c USING (device_id)
), input AS (
    SELECT DISTINCT ON (device_id, us) device_id, us, CAST({integrate.KW} AS smallint) AS units,
           watts / 1000 AS value, flags
    FROM (SELECT device_id, ord, watts, CASE WHEN advancing THEN sensor_us ELSE arrival_us END AS us,
                 CAST(CASE WHEN advancing THEN 0 ELSE {integrate.ARRIVAL_TIME} END AS smallint) AS flags
          FROM timed) AS t
    ORDER BY device_id, us, ord DESC
), clocks AS (
    -- A device's first event always advances (no clock yet, and first in the batch), so a new row has its clock.
    INSERT INTO energy_sensor_clocks AS c (device_id, sensor_time, arrived_at)
    SELECT device_id,
           COALESCE(timestamptz 'epoch' + max(sensor_us) FILTER (WHERE advancing) * interval '1 microsecond',
                    max(clock)),
           timestamptz 'epoch' + max(arrival_us) FILTER (WHERE NOT advancing) * interval '1 microsecond'
    FROM timed GROUP BY device_id
    ON CONFLICT (device_id) DO UPDATE SET sensor_time = greatest(c.sensor_time, EXCLUDED.sensor_time),
                                          arrived_at = greatest(c.arrived_at, EXCLUDED.arrived_at)
), batch AS (
    SELECT array_agg(device_id ORDER BY device_id, us) AS devices, array_agg(us ORDER BY device_id, us) AS us,
           array_agg(units ORDER BY device_id, us) AS units, array_agg(value ORDER BY device_id, us) AS vals,
           array_agg(flags ORDER BY device_id, us) AS flags
    FROM input
)
SELECT w.* FROM batch, LATERAL {_WRITE_READINGS.format(devices="batch.devices", us="batch.us", units="batch.units",
                                                        vals="batch.vals", flags="batch.flags")} AS w"""


@dataclass(frozen=True)
class Change:
    """A device's changed readings, and what energy_write_readings did about them."""

    device_id: int
    first: int  # µs
    last: int
    inserted: int
    replaced: int
    prev: int | None  # the reading before `first`
    after: list | None  # the first _TAIL after `last` (when not written)
    tail: list | None  # the device's last _TAIL (when not written)
    written: list | None  # a pure append, done: the buckets written (rows of energy_write_buckets); else None


def _changes(rows) -> list[Change]:
    return [Change(*row) for row in rows]


def upsert(conn: Connection, devices: list[int], ts: list[int], units: list[int], values: list[float],
           max_gap: int) -> list[Change]:
    """POST /energy's readings, under their devices' locks."""
    return _changes(db.prepared(conn, _UPSERT).run(
        **{"class": _LOCK_CLASS}, lock=_array(sorted(set(devices))), source=integrate.API, devices=_array(devices),
        ts=_array(ts), units=_array(units), vals=_array(values), flags=_array([0] * len(ts)), tail=_TAIL,
        max_gap=max_gap))


def feed(conn: Connection, events: Sequence[tuple], max_gap: int) -> list[Change]:
    """Sensor events as readings, under their devices' locks. `events`: (device_id, sensor_time, active power W,
    received_at) in seq order."""
    latest: dict[int, object] = {}
    candidates = []
    for device_id, sensor_time, _, _ in events:
        best = latest.get(device_id)
        candidates.append(best is None or sensor_time > best)
        if candidates[-1]:
            latest[device_id] = sensor_time
    return _changes(db.prepared(conn, _FEED).run(
        **{"class": _LOCK_CLASS}, lock=_array(sorted(latest)), source=integrate.SENSOR, tail=_TAIL, max_gap=max_gap,
        devices=_array(e[0] for e in events), sensor=_array(times.to_us(e[1]) for e in events),
        received=_array(times.to_us(e[3]) for e in events), watts=_array(e[2] for e in events),
        candidates="{" + ",".join("t" if c else "f" for c in candidates) + "}"))


# The feed's cursor (0022): one feed at a time (SKIP LOCKED: a second finds it taken and leaves the work to the
# first); the events after it in seq order, which are committed once the counter's total says so.
_CURSOR = "SELECT after_seq, (SELECT total FROM event_counter) FROM energy_feed FOR UPDATE SKIP LOCKED"
_ADVANCE = "UPDATE energy_feed SET after_seq = :seq"
_BEHIND = "SELECT after_seq < (SELECT total FROM event_counter) FROM energy_feed"
_NEW_EVENTS = """
SELECT device_id, sensor_time, active_power_w, received_at FROM events
WHERE seq > :after AND seq <= least(:after + :n, :total) ORDER BY seq"""


def feed_cursor(conn: Connection) -> tuple[int, int] | None:
    """(events fed so far, events stored so far), the cursor held; None when another feed holds it."""
    rows = conn.run(_CURSOR)
    return (rows[0][0], rows[0][1]) if rows else None


def new_events(conn: Connection, after: int, total: int, n: int) -> list:
    return conn.run(_NEW_EVENTS, after=after, total=total, n=n)


def advance_feed(conn: Connection, seq: int) -> None:
    conn.run(_ADVANCE, seq=seq)


def feed_behind() -> bool:
    """Whether stored events wait for the feed (read without waiting for a feed that holds the cursor)."""
    return bool(db.execute(_BEHIND)[0][0])


# The readings whose intervals reach [blo, bhi): from the last one before blo to the first one at or after bhi
# (bhi null: to the end).
_LOAD = f"""
SELECT {_US("ts")}, value, units, flags, source FROM energy_readings
WHERE device_id = :d
  AND ts >= COALESCE((SELECT max(ts) FROM energy_readings WHERE device_id = :d AND ts < {_T("blo")}), '-infinity')
  AND ts <= COALESCE((SELECT min(ts) FROM energy_readings WHERE device_id = :d AND ts >= {_T("bhi")}), 'infinity')
ORDER BY ts, source"""

# The buckets of ranges of devices replaced (migration 0017: energy_write_buckets, which the append path uses too).
_WRITE = ("SELECT * FROM energy_write_buckets(CAST(:rd AS int[]), CAST(:blo AS bigint[]), CAST(:bhi AS bigint[]), "
          "CAST(:bd AS int[]), CAST(:starts AS bigint[]), CAST(:kwh AS float8[]), CAST(:covered AS bigint[]), "
          "CAST(:estimated AS bigint[]), CAST(:arrival AS bigint[]))")


def _nullable_array(values) -> str:
    return "{" + ",".join("NULL" if v is None else repr(v) for v in values) + "}"


def _rebuilt(conn: Connection, change: Change, max_gap: int) -> tuple[int, int | None, list[Bucket]]:
    """(blo, bhi, the buckets of [blo, bhi)) after a change that is not a pure append: re-integrated from the
    readings that reach the range."""
    d, prev, tail = change.device_id, change.prev, change.tail
    blo = times.floor(prev if prev is not None else change.first)
    at_end = len(change.after) < _TAIL
    bhi = None if at_end else times.ceil(change.after[0])
    rows = db.prepared(conn, _LOAD).run(d=d, blo=blo, bhi=bhi)
    readings = [Reading(ts, value, units, flags, source) for ts, value, units, flags, source in rows]
    if readings and readings[-1].ts == max(tail):
        # No reading at or after bhi: the range ends with the device's last reading (and its estimated end), e.g.
        # when the readings after the change all lie in one bucket.
        at_end, bhi = True, None
    spacing = (integrate.typical_spacing(sorted(tail), max_gap) or 0) if at_end else None
    out = integrate.buckets(readings, max_gap, spacing, lo=blo, hi=bhi)
    return blo, bhi, [out[k] for k in sorted(out)]


def recompute(conn: Connection, changed: list[Change], max_gap: int) -> tuple[list[tuple], list[int]]:
    """The buckets of the changes energy_write_readings left to Python, re-integrated and written (all devices in
    one statement); returns every change's buckets whose stored row changed, as (device, (µs start, kwh,
    covered_us, estimated_us, arrival_us)), and the devices whose change-feed row was written first (each to be
    announced once, after the commit)."""
    rows = [(c.device_id, *row) for c in changed if c.written is not None for row in c.written]
    ranges, new = [], []
    for change in changed:
        if change.written is None:
            blo, bhi, buckets = _rebuilt(conn, change, max_gap)
            ranges.append((change.device_id, blo, bhi))
            new.extend((change.device_id, b) for b in buckets)
    if ranges:
        rows += db.prepared(conn, _WRITE).run(
            rd=_array(d for d, _, _ in ranges), blo=_array(lo for _, lo, _ in ranges),
            bhi=_nullable_array(hi for _, _, hi in ranges), bd=_array(d for d, _ in new),
            starts=_array(b.start for _, b in new), kwh=_array(b.kwh for _, b in new),
            covered=_array(b.covered for _, b in new), estimated=_array(b.estimated for _, b in new),
            arrival=_array(b.arrival for _, b in new))
    written = [(row[0], tuple(row[1:6])) for row in rows]
    marked = sorted({row[0] for row in rows if row[6]})
    return written, marked


# GET /energy/power: the readings whose intervals reach [blo, bhi) (at most :limit), and the device's last _TAIL
# instants (its last interval's estimated end, when that one is among them).
_POWER = _LOAD + "\nLIMIT :limit"
_LAST = f"SELECT {_US('ts')} FROM energy_readings WHERE device_id = :d ORDER BY ts DESC LIMIT {_TAIL}"


def power_readings(device_id: int, lo: int, hi: int, limit: int) -> tuple[list[Reading], list[int]]:
    """(readings, the device's last instants); at most `limit` + 1 readings, so the caller sees there were more."""
    rows = db.execute(_POWER, prepare=True, d=device_id, blo=lo, bhi=hi, limit=limit + 1)
    readings = [Reading(ts, value, units, flags, source) for ts, value, units, flags, source in rows]
    last = [row[0] for row in db.execute(_LAST, prepare=True, d=device_id)] if readings and readings[-1].ts < hi \
        else []
    return readings, last


_SERIES = f"""
SELECT {_US("bucket_start")}, kwh, covered_us, estimated_us, arrival_us FROM energy_buckets
WHERE device_id = :d AND bucket_start >= {_T("lo")} AND bucket_start < {_T("hi")} ORDER BY bucket_start"""
_SERIES_DAYS = f"""
SELECT {_US("day")}, kwh, covered_us, estimated_us, arrival_us FROM energy_days
WHERE device_id = :d AND day >= {_T("lo")} AND day < {_T("hi")} ORDER BY day"""


def series_rows(device_id: int, lo: int, hi: int, step: int) -> list:
    sql = _SERIES_DAYS if step == times.DAY else _SERIES
    return db.execute(sql, prepare=True, d=device_id, lo=lo, hi=hi)


_FLEET = f"""
SELECT CAST(us / :step AS bigint) * :step AS at, sum(kwh), count(DISTINCT device_id) FILTER (WHERE covered_us > 0)
FROM (SELECT {_US("bucket_start")} AS us, device_id, kwh, covered_us FROM energy_buckets
      WHERE bucket_start >= {_T("lo")} AND bucket_start < {_T("hi")}) AS b
GROUP BY 1 ORDER BY 1"""
_FLEET_DAYS = f"""
SELECT {_US("day")}, sum(kwh), count(*) FILTER (WHERE covered_us > 0) FROM energy_days
WHERE day >= {_T("lo")} AND day < {_T("hi")} GROUP BY day ORDER BY day"""


def fleet_rows(lo: int, hi: int, step: int) -> list:
    if step == times.DAY:
        return db.execute(_FLEET_DAYS, prepare=True, lo=lo, hi=hi)
    return db.execute(_FLEET, prepare=True, lo=lo, hi=hi, step=step)


# Whole days from energy_days, the window's ragged ends from energy_buckets.
_TOP_WINDOW = f"""
SELECT device_id, sum(kwh) AS kwh FROM (
    SELECT device_id, kwh FROM energy_days WHERE day >= {_T("dlo")} AND day < {_T("dhi")}
    UNION ALL
    SELECT device_id, kwh FROM energy_buckets
    WHERE (bucket_start >= {_T("lo")} AND bucket_start < {_T("dlo")})
       OR (bucket_start >= {_T("dhi")} AND bucket_start < {_T("hi")})
) AS parts GROUP BY device_id ORDER BY kwh DESC, device_id LIMIT :count"""
_TOP_ALL = "SELECT device_id, sum(kwh) AS kwh FROM energy_days GROUP BY device_id ORDER BY kwh DESC, device_id LIMIT :count"


def top_rows(count: int, lo: int | None, hi: int | None) -> list:
    if lo is None:
        return db.execute(_TOP_ALL, prepare=True, count=count)
    dlo, dhi = times.ceil(lo, times.DAY), times.floor(hi, times.DAY)
    if dlo >= dhi:  # no whole day inside: all of it from the buckets
        dlo = dhi = hi
    return db.execute(_TOP_WINDOW, prepare=True, count=count, lo=lo, hi=hi, dlo=dlo, dhi=dhi)


_HISTORY = f"""
SELECT {_US("bucket_start")}, kwh FROM energy_buckets
WHERE device_id = :d AND bucket_start >= {_T("lo")} AND bucket_start < {_T("hi")} ORDER BY bucket_start"""
_EXTENT = (f"SELECT {_US('min(bucket_start)')}, {_US('max(bucket_start)')} FROM energy_buckets "
           "WHERE device_id = :d")


def extent(device_id: int) -> tuple[int | None, int | None]:
    return tuple(db.execute(_EXTENT, prepare=True, d=device_id)[0])


def history(device_id: int, lo: int, hi: int) -> list:
    return db.execute(_HISTORY, prepare=True, d=device_id, lo=lo, hi=hi)
