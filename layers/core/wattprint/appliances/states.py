"""Live appliance states: the sensor events' current, decoded with the stored models as events arrive (migration
0018). SQL and the database side of it; the decoding itself is decode.decode_live.

Which models decode which device: every stored model decodes every device's events. The models are one set (a
household's appliances: the set PUT /appliances/models builds and POST /appliances/label decodes with by
default), and a device is a mains sensor; a deployment with households of different appliances would need a
model set per device, which nothing in the API names yet.

A reading from an event: `Effective current` is the event's current (Line: Current, A RMS) in mA, and `Maximum
current` the largest of its peaks (the peak currents within the event's window, A) in mA: the event's analogue of
"the peak within that second". One event is one step of the decoder (the models' switching rate is per second of
their recordings; a sensor that reports more often makes switching proportionally dearer).

A call takes the decoding cursor's row lock (SKIP LOCKED: a second decoder finds it taken and leaves the work to
the first), reads at most BATCH events after the cursor in seq order, decodes each device's readings from its
carried decoder, writes the latest state of every device x appliance, the carried decoders and the cursor, all in
one transaction: a failed call leaves everything as it was, and its message is retried.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

from .. import db
from ..db import Connection
from ..query import iso
from . import decode
from .model import ApplianceModel

log = logging.getLogger(__name__)

#: Events one call decodes: a few seconds of plain Python at the reference setting's 18 combinations.
BATCH = 5000
MILLIAMPS = 1000.0

_CURSOR = "SELECT after_seq FROM appliance_decoding FOR UPDATE SKIP LOCKED"
_ADVANCE = "UPDATE appliance_decoding SET after_seq = :seq"
_BEHIND = """
SELECT EXISTS (SELECT 1 FROM appliance_models) AND after_seq < (SELECT total FROM event_counter)
FROM appliance_decoding"""
_EVENTS = """
SELECT seq, device_id, sensor_time, current_a, peaks FROM events
WHERE seq > :after AND seq <= :after + :n ORDER BY seq"""
_DECODERS = "SELECT device_id, models, carried FROM appliance_decoders WHERE device_id = ANY(CAST(:ids AS int[]))"
_SAVE_DECODERS = """
INSERT INTO appliance_decoders AS d (device_id, models, carried)
SELECT * FROM json_to_recordset(CAST(:rows AS json)) AS r(device_id int, models text, carried jsonb)
ON CONFLICT (device_id) DO UPDATE SET models = EXCLUDED.models, carried = EXCLUDED.carried, updated_at = now()"""
_STATES = """
SELECT device_id, appliance, state, since, since_seq, seen_at, seen_seq FROM appliance_states
WHERE device_id = ANY(CAST(:ids AS int[]))"""
_SAVE_STATES = """
INSERT INTO appliance_states AS s (device_id, appliance, state, since, since_seq, seen_at, seen_seq)
SELECT device_id, appliance, state, since, since_seq, seen_at, seen_seq
FROM json_to_recordset(CAST(:rows AS json))
     AS r(device_id int, appliance text, state text, since timestamptz, since_seq bigint, seen_at timestamptz,
          seen_seq bigint)
ON CONFLICT (device_id, appliance) DO UPDATE SET state = EXCLUDED.state, since = EXCLUDED.since,
    since_seq = EXCLUDED.since_seq, seen_at = EXCLUDED.seen_at, seen_seq = EXCLUDED.seen_seq"""
# A device's states of appliances that have no model any more (removed, renamed): not a state anyone can have.
_FORGET = """
DELETE FROM appliance_states WHERE device_id = ANY(CAST(:ids AS int[])) AND NOT (appliance = ANY(CAST(:names AS text[])))"""
_LIST = """
SELECT device_id, appliance, state, since, since_seq, seen_at, seen_seq FROM appliance_states
WHERE CAST(:device AS int) IS NULL OR device_id = CAST(:device AS int)
ORDER BY device_id, lower(appliance)"""


def fingerprint(models: list[tuple[ApplianceModel, str]]) -> str:
    """What a carried decoder belongs to: the models' names and when each was trained."""
    return json.dumps([[m.name, updated] for m, updated in models], separators=(",", ":"))


def reading(rms_a: float, peaks) -> tuple[float, float]:
    """(rms, peak) in mA from an event's current (A) and peaks (A)."""
    return rms_a * MILLIAMPS, max(abs(p) for p in peaks) * MILLIAMPS


def item(row) -> dict:
    device_id, appliance, state, since, since_seq, seen_at, seen_seq = row
    return {"device_id": device_id, "appliance": appliance, "state": state, "since": iso(since),
            "since_seq": since_seq, "seen_at": iso(seen_at), "seen_seq": seen_seq}


def listing(device_id: int | None) -> list[dict]:
    """Every device x appliance's latest state (or one device's), by device and appliance (one autocommit read)."""
    return [item(row) for row in db.execute(_LIST, prepare=True, device=device_id)]


class Busy(Exception):
    """Another decoder holds the cursor."""


def behind() -> bool:
    """Whether stored events wait to be decoded while a model is stored (without waiting for a decoding that holds
    the cursor)."""
    return bool(db.execute(_BEHIND)[0][0])


def decode_new(conn: Connection, stored: list[tuple[ApplianceModel, str]], batch: int = BATCH) -> dict:
    """In the caller's transaction: decode the events after the cursor (at most `batch`). Returns
    {"decoded": events read, "more": whether events remain after them, "changed": the states that changed, as
    GET /appliances/states items}. Raises Busy when another decoder holds the cursor."""
    rows = conn.run(_CURSOR)
    if not rows:
        raise Busy()
    after = rows[0][0]
    total = conn.run("SELECT total FROM event_counter")[0][0]
    if not stored:  # nothing to decode with: the events so far are not waited on
        conn.run(_ADVANCE, seq=total)
        return {"decoded": 0, "more": False, "changed": []}
    models = [m for m, _ in stored]
    combos = len(decode.combinations(models))
    if combos > decode.MAX_COMBINATIONS:
        # Retrying cannot make this decodable: skip on (and say so) rather than fail every call into the DLQ.
        log.warning("%d appliance state combinations: live states need at most %d; events up to %d skipped",
                    combos, decode.MAX_COMBINATIONS, total)
        conn.run(_ADVANCE, seq=total)
        return {"decoded": 0, "more": False, "changed": [], "skipped": total - after}
    events = conn.run(_EVENTS, after=after, n=batch)
    if not events:
        return {"decoded": 0, "more": False, "changed": []}
    names = [m.name for m in models]
    prints = fingerprint(stored)
    by_device: dict[int, list[tuple]] = {}
    for seq, device_id, sensor_time, current_a, peaks in events:
        by_device.setdefault(device_id, []).append((seq, sensor_time.timestamp(), *reading(current_a, peaks)))
    ids = sorted(by_device)
    carried = {d: decode.Carried.from_json(c if isinstance(c, dict) else json.loads(c))
               for d, p, c in conn.run(_DECODERS, ids=ids) if p == prints}
    conn.run(_FORGET, ids=ids, names=names)
    current = {(d, a): [s, since, since_seq, seen, seen_seq]
               for d, a, s, since, since_seq, seen, seen_seq in conn.run(_STATES, ids=ids)}
    decoders, changed_keys, touched = [], set(), set()
    for device_id in ids:
        decided, carry = decode.decode_live(models, carried.get(device_id), by_device[device_id])
        decoders.append({"device_id": device_id, "models": prints, "carried": carry.to_json()})
        for (seq, seconds, _, _), combo in decided:
            at = datetime.fromtimestamp(seconds, tz=timezone.utc)
            for a, m in enumerate(models):
                state = m.states[combo[a]].name
                key = (device_id, m.name)
                row = current.get(key)
                if row is None or row[0] != state:
                    current[key] = [state, at, seq, at, seq]
                    changed_keys.add(key)
                else:
                    row[3], row[4] = at, seq
                touched.add(key)
    conn.run(_SAVE_DECODERS, rows=json.dumps(decoders))
    saved = [{"device_id": d, "appliance": a, "state": s, "since": iso(since), "since_seq": since_seq,
              "seen_at": iso(seen), "seen_seq": seen_seq}
             for (d, a), (s, since, since_seq, seen, seen_seq) in sorted(current.items()) if (d, a) in touched]
    if saved:
        conn.run(_SAVE_STATES, rows=json.dumps(saved))
    last = events[-1][0]
    conn.run(_ADVANCE, seq=last)
    return {"decoded": len(events), "more": last < total,
            "changed": [s for s in saved if (s["device_id"], s["appliance"]) in changed_keys]}
