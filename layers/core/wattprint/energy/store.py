"""The energy capability's SQL, and the one recompute both sources share. Every function runs inside the
caller's transaction (or, for reads, on the instance's connection).

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


def _T(name: str) -> str:
    return f"(timestamptz 'epoch' + CAST(:{name} AS bigint) * interval '1 microsecond')"


def _US(column: str) -> str:
    return f"CAST(extract(epoch FROM {column}) * 1000000 AS bigint)"


_LOCK = "SELECT pg_advisory_xact_lock(:class, d) FROM unnest(CAST(:devices AS int[])) AS d"


def lock(conn: Connection, device_ids: Sequence[int]) -> None:
    """Serialise writers of these devices until commit (in id order, so two writers cannot deadlock)."""
    db.prepared(conn, _LOCK).run(**{"class": _LOCK_CLASS}, devices=sorted(set(device_ids)))


# Rows (device_id, first changed, last changed, inserted, replaced): a re-post of the same readings changes no
# row (the WHERE of DO UPDATE), so it returns nothing and nothing is recomputed.
_UPSERT = f"""
WITH input AS (
    SELECT * FROM unnest(CAST(:devices AS int[]), CAST(:ts AS bigint[]), CAST(:units AS smallint[]),
                         CAST(:vals AS float8[]), CAST(:flags AS smallint[])) AS i(device_id, us, units, value, flags)
), upserted AS (
    INSERT INTO energy_readings AS r (device_id, ts, source, units, value, flags)
    SELECT device_id, timestamptz 'epoch' + us * interval '1 microsecond', CAST(:source AS smallint), units, value,
           flags
    FROM input
    ON CONFLICT (device_id, ts, source) DO UPDATE
        SET units = EXCLUDED.units, value = EXCLUDED.value, flags = EXCLUDED.flags
        WHERE (r.units, r.value, r.flags) IS DISTINCT FROM (EXCLUDED.units, EXCLUDED.value, EXCLUDED.flags)
    RETURNING device_id, ts, xmax = 0 AS inserted
)
SELECT device_id, {_US("min(ts)")}, {_US("max(ts)")}, count(*) FILTER (WHERE inserted),
       count(*) FILTER (WHERE NOT inserted)
FROM upserted GROUP BY device_id ORDER BY device_id"""


@dataclass(frozen=True)
class Change:
    device_id: int
    first: int  # µs
    last: int
    inserted: int
    replaced: int


def upsert(conn: Connection, source: int, devices: list[int], ts: list[int], units: list[int], values: list[float],
           flags: list[int]) -> list[Change]:
    rows = db.prepared(conn, _UPSERT).run(source=source, devices=devices, ts=ts, units=units, vals=values,
                                          flags=flags)
    return [Change(*row) for row in rows]


# The neighbours of a change [lo, hi]: the reading before it, the first _TAIL after it, the device's last _TAIL
# and the last _TAIL before lo. When nothing follows hi (an append, the ingest path's usual case) also the
# readings from the one before lo on and the buckets from that one's bucket on, as JSON: enough to apply the
# append as a difference without loading the bucket's earlier readings (a sensor timed by arrival can put
# hundreds of readings in one bucket).
_BOUNDS = f"""
WITH p AS (SELECT max(ts) AS ts FROM energy_readings WHERE device_id = :d AND ts < {_T("lo")}),
appending AS (
    SELECT p.ts FROM p
    WHERE p.ts IS NOT NULL AND NOT EXISTS (SELECT FROM energy_readings WHERE device_id = :d AND ts > {_T("hi")})
)
SELECT {_US("p.ts")},
       ARRAY(SELECT {_US("ts")} FROM energy_readings WHERE device_id = :d AND ts > {_T("hi")} ORDER BY ts
             LIMIT {_TAIL}),
       ARRAY(SELECT {_US("ts")} FROM energy_readings WHERE device_id = :d ORDER BY ts DESC LIMIT {_TAIL}),
       ARRAY(SELECT {_US("ts")} FROM energy_readings WHERE device_id = :d AND ts < {_T("lo")} ORDER BY ts DESC
             LIMIT {_TAIL}),
       (SELECT json_agg(json_build_array({_US("r.ts")}, r.value, r.units, r.flags, r.source)
                        ORDER BY r.ts, r.source)
        FROM appending, energy_readings r WHERE r.device_id = :d AND r.ts >= appending.ts),
       (SELECT json_agg(json_build_array({_US("b.bucket_start")}, b.kwh, b.covered_us, b.estimated_us,
                                         b.arrival_us))
        FROM appending, energy_buckets b
        WHERE b.device_id = :d AND b.bucket_start >= date_bin('15 minutes', appending.ts, timestamptz 'epoch'))
FROM p"""

# The readings whose intervals reach [blo, bhi): from the last one before blo to the first one at or after bhi
# (bhi null: to the end).
_LOAD = f"""
SELECT {_US("ts")}, value, units, flags, source FROM energy_readings
WHERE device_id = :d
  AND ts >= COALESCE((SELECT max(ts) FROM energy_readings WHERE device_id = :d AND ts < {_T("blo")}), '-infinity')
  AND ts <= COALESCE((SELECT min(ts) FROM energy_readings WHERE device_id = :d AND ts >= {_T("bhi")}), 'infinity')
ORDER BY ts, source"""

# Buckets of [blo, bhi) become exactly :starts (unchanged ones are not rewritten); the day totals move by the
# difference. Rows: the buckets written (µs start, kwh, covered_us, estimated_us, arrival_us).
_WRITE = f"""
WITH new AS (
    SELECT * FROM unnest(CAST(:starts AS bigint[]), CAST(:kwh AS float8[]), CAST(:covered AS bigint[]),
                         CAST(:estimated AS bigint[]), CAST(:arrival AS bigint[]))
                  AS n(us, kwh, covered_us, estimated_us, arrival_us)
), old AS (
    SELECT bucket_start, kwh, covered_us, estimated_us, arrival_us FROM energy_buckets
    WHERE device_id = :d AND bucket_start >= {_T("blo")} AND bucket_start < COALESCE({_T("bhi")}, 'infinity')
), gone AS (
    DELETE FROM energy_buckets
    WHERE device_id = :d AND bucket_start >= {_T("blo")} AND bucket_start < COALESCE({_T("bhi")}, 'infinity')
      AND {_US("bucket_start")} <> ALL(CAST(:starts AS bigint[]))
), written AS (
    INSERT INTO energy_buckets AS b (device_id, bucket_start, kwh, covered_us, estimated_us, arrival_us)
    SELECT :d, timestamptz 'epoch' + us * interval '1 microsecond', kwh, covered_us, estimated_us, arrival_us
    FROM new
    ON CONFLICT (device_id, bucket_start) DO UPDATE
        SET kwh = EXCLUDED.kwh, covered_us = EXCLUDED.covered_us, estimated_us = EXCLUDED.estimated_us,
            arrival_us = EXCLUDED.arrival_us
        WHERE (b.kwh, b.covered_us, b.estimated_us, b.arrival_us)
              IS DISTINCT FROM (EXCLUDED.kwh, EXCLUDED.covered_us, EXCLUDED.estimated_us, EXCLUDED.arrival_us)
    RETURNING bucket_start, kwh, covered_us, estimated_us, arrival_us
), delta AS (
    SELECT date_trunc('day', t, 'UTC') AS day, sum(kwh) AS kwh, sum(covered_us) AS covered_us,
           sum(estimated_us) AS estimated_us, sum(arrival_us) AS arrival_us
    FROM (SELECT timestamptz 'epoch' + us * interval '1 microsecond', kwh, covered_us, estimated_us, arrival_us
          FROM new
          UNION ALL SELECT bucket_start, -kwh, -covered_us, -estimated_us, -arrival_us FROM old)
         AS c(t, kwh, covered_us, estimated_us, arrival_us)
    GROUP BY 1
), days AS (
    INSERT INTO energy_days AS e (device_id, day, kwh, covered_us, estimated_us, arrival_us)
    SELECT :d, day, kwh, covered_us, estimated_us, arrival_us FROM delta
    ON CONFLICT (device_id, day) DO UPDATE
        SET kwh = e.kwh + EXCLUDED.kwh, covered_us = e.covered_us + EXCLUDED.covered_us,
            estimated_us = e.estimated_us + EXCLUDED.estimated_us, arrival_us = e.arrival_us + EXCLUDED.arrival_us
)
SELECT {_US("bucket_start")}, kwh, covered_us, estimated_us, arrival_us FROM written ORDER BY bucket_start"""


def _write(conn: Connection, d: int, blo: int, bhi: int | None, new: list[Bucket]) -> list[tuple]:
    return db.prepared(conn, _WRITE).run(
        d=d, blo=blo, bhi=bhi, starts=[b.start for b in new], kwh=[b.kwh for b in new],
        covered=[b.covered for b in new], estimated=[b.estimated for b in new], arrival=[b.arrival for b in new])


def _append(readings: list[Reading], prev: int, before: list[int], tail: list[int], stored: list,
            max_gap: int) -> list[Bucket] | None:
    """The buckets from prev's bucket on after an append, as stored − prev's old (estimated) interval + the new
    intervals; None when the change is not a pure append after prev."""
    old = [r for r in readings if r.ts == prev]
    removed = integrate.buckets(old, max_gap, integrate.typical_spacing(sorted(before), max_gap) or 0)
    added = integrate.buckets(readings, max_gap, integrate.typical_spacing(sorted(tail), max_gap) or 0)
    out = []
    rows = {row[0]: row for row in stored}
    for start in sorted(set(rows) | set(removed) | set(added)):
        _, kwh, covered, estimated, arrival = rows.get(start, (start, 0.0, 0, 0, 0))
        bucket = Bucket(start, kwh, covered, estimated, arrival)
        for sign, source in ((-1, removed), (1, added)):
            part = source.get(start)
            if part is not None:
                bucket.kwh += sign * part.kwh
                bucket.covered += sign * part.covered
                bucket.estimated += sign * part.estimated
                bucket.arrival += sign * part.arrival
        if bucket.covered > 0:
            out.append(bucket)
    return out


def recompute(conn: Connection, change: Change, max_gap: int) -> list[tuple]:
    """Re-integrate the buckets `change` reaches; returns the buckets whose stored row changed."""
    d = change.device_id
    prev, after, tail, before, from_prev, stored = db.prepared(conn, _BOUNDS).run(d=d, lo=change.first,
                                                                                   hi=change.last)[0]
    if from_prev is not None:
        readings = [Reading(*row) for row in from_prev]
        if change.replaced == 0 and sum(1 for r in readings if r.ts > prev) == change.inserted:
            return _write(conn, d, times.floor(prev), None, _append(readings, prev, before, tail, stored or [],
                                                                    max_gap))
    blo = times.floor(prev if prev is not None else change.first)
    at_end = len(after) < _TAIL
    bhi = None if at_end else times.ceil(after[0])
    rows = db.prepared(conn, _LOAD).run(d=d, blo=blo, bhi=bhi)
    readings = [Reading(ts, value, units, flags, source) for ts, value, units, flags, source in rows]
    if readings and readings[-1].ts == max(tail):
        # No reading at or after bhi: the range ends with the device's last reading (and its estimated end), e.g.
        # when the readings after the change all lie in one bucket.
        at_end, bhi = True, None
    spacing = (integrate.typical_spacing(sorted(tail), max_gap) or 0) if at_end else None
    out = integrate.buckets(readings, max_gap, spacing, lo=blo, hi=bhi)
    return _write(conn, d, blo, bhi, [out[k] for k in sorted(out)])


# The device locks, then the clocks: a sensor clock is only written by ingest, which holds the event counter's row
# lock until it commits, so this statement's snapshot (taken before its locks are granted) has the latest clocks.
_LOCK_CLOCKS = f"""
SELECT {_US("now()")}, (SELECT COALESCE(json_object_agg(device_id, {_US("sensor_time")}), '{{}}')
                       FROM energy_sensor_clocks WHERE device_id = ANY(CAST(:devices AS int[])))
FROM (SELECT count(pg_advisory_xact_lock(:class, d)) FROM unnest(CAST(:devices AS int[])) AS d) AS locked"""

# Readings and clocks in one statement (one round trip on the ingest path).
_UPSERT_WITH_CLOCKS = _UPSERT.replace("\n), upserted AS (", """
), clocks AS (
    INSERT INTO energy_sensor_clocks AS c (device_id, sensor_time)
    SELECT d, timestamptz 'epoch' + us * interval '1 microsecond'
    FROM unnest(CAST(:clock_devices AS int[]), CAST(:clocks AS bigint[])) AS k(d, us)
    ON CONFLICT (device_id) DO UPDATE SET sensor_time = EXCLUDED.sensor_time
    WHERE c.sensor_time < EXCLUDED.sensor_time
), upserted AS (""", 1)


def lock_with_clocks(conn: Connection, device_ids: list[int]) -> tuple[int, dict[int, int]]:
    """Locks the devices (as lock()); returns now as µs (the transaction's arrival time, the events'
    received_at) and each device's latest sensor clock."""
    now, clocks = db.prepared(conn, _LOCK_CLOCKS).run(**{"class": _LOCK_CLASS}, devices=sorted(device_ids))[0]
    return now, {int(k): v for k, v in clocks.items()}


def upsert_sensor(conn: Connection, devices: list[int], ts: list[int], values: list[float], flags: list[int],
                  clocks: dict[int, int]) -> list[Change]:
    rows = db.prepared(conn, _UPSERT_WITH_CLOCKS).run(
        source=integrate.SENSOR, devices=devices, ts=ts, units=[integrate.KW] * len(ts), vals=values, flags=flags,
        clock_devices=list(clocks), clocks=list(clocks.values()))
    return [Change(*row) for row in rows]


# ------------------------------------------------------------------------------------------------- reads

_SERIES = f"""
SELECT {_US("bucket_start")}, kwh, covered_us, estimated_us, arrival_us FROM energy_buckets
WHERE device_id = :d AND bucket_start >= {_T("lo")} AND bucket_start < {_T("hi")} ORDER BY bucket_start"""
_SERIES_DAYS = f"""
SELECT {_US("day")}, kwh, covered_us, estimated_us, arrival_us FROM energy_days
WHERE device_id = :d AND day >= {_T("lo")} AND day < {_T("hi")} ORDER BY day"""


def series_rows(device_id: int, lo: int, hi: int, step: int) -> list:
    sql = _SERIES_DAYS if step == times.DAY else _SERIES
    return db.run(sql, prepare=True, d=device_id, lo=lo, hi=hi)


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
        return db.run(_FLEET_DAYS, prepare=True, lo=lo, hi=hi)
    return db.run(_FLEET, prepare=True, lo=lo, hi=hi, step=step)


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
        return db.run(_TOP_ALL, prepare=True, count=count)
    dlo, dhi = times.ceil(lo, times.DAY), times.floor(hi, times.DAY)
    if dlo >= dhi:  # no whole day inside: all of it from the buckets
        dlo = dhi = hi
    return db.run(_TOP_WINDOW, prepare=True, count=count, lo=lo, hi=hi, dlo=dlo, dhi=dhi)


_HISTORY = f"""
SELECT {_US("bucket_start")}, kwh FROM energy_buckets
WHERE device_id = :d AND bucket_start >= {_T("lo")} AND bucket_start < {_T("hi")} ORDER BY bucket_start"""
_EXTENT = (f"SELECT {_US('min(bucket_start)')}, {_US('max(bucket_start)')} FROM energy_buckets "
           "WHERE device_id = :d")


def extent(device_id: int) -> tuple[int | None, int | None]:
    return tuple(db.run(_EXTENT, prepare=True, d=device_id)[0])


def history(device_id: int, lo: int, hi: int) -> list:
    return db.run(_HISTORY, prepare=True, d=device_id, lo=lo, hi=hi)
