"""Appliances' use cases, one entry function each. States (non-intrusive load monitoring): the handler, the
command line and the live decoder call these; see decode.py for the method and its limits, states.py for the
live states (ingest's trigger, the states function's decoding, GET /appliances/states). Keys: keys for a run's
clusters (the cluster function, inside the run's store transaction), the list of appliances (GET /appliances) and
naming one (PUT /appliances/{key}).

Only assign_keys needs numpy and scipy (keys.py), and imports them when called: the appliance function's handler
imports this module and must stay light."""

from __future__ import annotations

import json
import logging
import threading
import time
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from pg8000.exceptions import DatabaseError

from .. import db, follow, settings
from ..clustering.features import FEATURES
from ..db import Connection
from ..errors import (ApplianceNameTaken, ApplianceNotFound, InvalidAppliance, PayloadTooLarge, UnknownAppliance,
                      UnsupportedMediaType)
from ..http import query_params
from ..live import service as live
from ..query import INT32_MAX, INT32_MIN, parse_int
from . import decode, model, recording, states as live_states, store

log = logging.getLogger(__name__)

# The limits the API documents (wattprint.report.openapi reads them here).
COLUMNS, MAX_ROWS = recording.COLUMNS, recording.MAX_ROWS
MAX_STATES, MIN_ROWS = model.MAX_STATES, model.MIN_ROWS
MAX_WORK = decode.MAX_WORK

CSV_TYPES = ("text/csv",)
#: Lambda's own request limit is 6 MB; a day of 1 s rows is about 3 MB.
MAX_BODY_BYTES = 6_000_000


def _check_body(body: str, content_type: str | None) -> None:
    media = (content_type or "").split(";")[0].strip().lower()
    if media not in CSV_TYPES:
        raise UnsupportedMediaType(f"send the recording as text/csv, not {media or 'no Content-Type'}")
    if len(body.encode()) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the recording is over {MAX_BODY_BYTES} bytes: split it")


def _model_json(learnt: model.ApplianceModel, updated_at: str) -> dict:
    return {**learnt.to_json(), "updated_at": updated_at}


def train(name: str, body: str, content_type: str | None = "text/csv", states: str | None = None) -> tuple[bool, dict]:
    """Learn `name`'s states from its own recording and store the model (replacing one of that name).
    `states`: the state names, lowest level first ("OFF,IDLE,ON"), or None to find and name them by level."""
    model.check_name(name)
    state_names = model.parse_state_names(states)
    _check_body(body, content_type)
    learnt = model.learn(name, recording.parse(body, min_rows=model.MIN_ROWS), state_names)
    with db.transaction() as conn:
        created, updated_at = store.save(conn, learnt)
    model_stored()
    return created, _model_json(learnt, updated_at)


def models() -> list[dict]:
    return [_model_json(m, updated) for m, updated in store.load_all()]


def _chosen(names: str | None) -> list[model.ApplianceModel]:
    stored = [m for m, _ in store.load_all()]
    if not names:
        return stored
    by_name = {m.name.lower(): m for m in stored}
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n.lower() not in by_name]
    if unknown:
        raise UnknownAppliance(f"no model named {unknown[0]!r}; trained: {', '.join(m.name for m in stored) or 'none'}",
                               field="models")
    return list({by_name[n.lower()].name: by_name[n.lower()] for n in wanted}.values())


@dataclass(frozen=True)
class Labelled:
    csv: str
    decoded: decode.Decoded
    models: list[model.ApplianceModel]


def label(body: str, content_type: str | None = "text/csv", names: str | None = None) -> Labelled:
    """Each row of a mains recording labelled with every appliance's state (all stored models, or `names`)."""
    _check_body(body, content_type)
    mains = recording.parse(body)
    chosen = _chosen(names)
    decoded = decode.decode(chosen, mains)
    return Labelled(recording.labelled_csv(mains, [m.name for m in chosen], decoded.states(chosen)), decoded,
                    chosen)


# ------------------------------------------------------------------------------------------------- keys

MAX_NAME, MAX_KIND = 64, 32
MAX_NAMING_BYTES = 4096
KEY_MAX = 2**31 - 1  # the column is an integer
# Serialises the key matching of runs that complete at once, so two of them cannot both mint a key for one new
# appliance. A transaction-level advisory lock: released with the run's store transaction, needs no grant.
_MATCH_LOCK = 0x77617474_6B657973  # "wattkeys"

_KNOWN = "SELECT key, centre FROM appliances ORDER BY key"
# A run that completes after a higher threshold's (runs may finish in any order) does not move the key back to
# its older centre nor its last run back; it may be the key's first run.
_SEEN = """
WITH m AS (SELECT * FROM json_to_recordset(CAST(:matched AS json)) AS m(key int, centre float8[]))
UPDATE appliances a
SET centre = CASE WHEN l.threshold <= :threshold THEN m.centre ELSE a.centre END,
    last_run_id = CASE WHEN l.threshold <= :threshold THEN :run_id ELSE a.last_run_id END,
    first_run_id = CASE WHEN f.threshold > :threshold THEN :run_id ELSE a.first_run_id END
FROM m, clustering_runs l, clustering_runs f
WHERE a.key = m.key AND l.id = a.last_run_id AND f.id = a.first_run_id
"""
_NEW = ("INSERT INTO appliances (centre, first_run_id, last_run_id) VALUES (CAST(:centre AS float8[]), :run_id, "
        ":run_id) RETURNING key")


def _array(centre) -> str:
    return "{" + ",".join(repr(float(x)) for x in centre) + "}"


def assign_keys(conn: Connection, run_id: int, threshold: int, centres, spread) -> list[int]:
    """The appliance key of each of a run's clusters (label order), matched to the keys known now and recorded:
    a matched key is seen in this run at this centre, an unmatched cluster gets a new key. Runs in the caller's
    (the run's store) transaction, so a run that is not stored leaves no key behind. `spread`: each feature's
    standard deviation over the run's events, the distances' scale (see keys.py)."""
    from . import keys  # numpy and scipy: see the module docstring

    conn.run("SELECT pg_advisory_xact_lock(:key)", key=_MATCH_LOCK)
    known = conn.run(_KNOWN)
    matches = keys.match(centres, [centre for _, centre in known], keys.spread_scale(spread))
    out: list[int] = []
    matched = []
    for centre, index in zip(centres, matches):
        if index is None:
            out.append(conn.run(_NEW, centre=_array(centre), run_id=run_id)[0][0])
        else:
            out.append(known[index][0])
            matched.append({"key": known[index][0], "centre": [float(x) for x in centre]})
    if matched:
        conn.run(_SEEN, matched=json.dumps(matched), run_id=run_id, threshold=threshold)
    return out


_CURRENT = "(SELECT id FROM clustering_runs WHERE status = 'done' ORDER BY threshold DESC LIMIT 1)"
_LIST = f"""
SELECT a.key, a.name, a.kind, to_char(a.named_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
       f.id, f.threshold, l.id, l.threshold, l.id = {_CURRENT}, a.centre
FROM appliances a JOIN clustering_runs f ON f.id = a.first_run_id JOIN clustering_runs l ON l.id = a.last_run_id
"""


def _appliance(row) -> dict:
    key, name, kind, named_at, first_id, first_threshold, last_id, last_threshold, current, centre = row
    return {"key": key, "name": name, "kind": kind, "named_at": named_at,
            "first_run": {"id": first_id, "threshold": first_threshold},
            "last_run": {"id": last_id, "threshold": last_threshold},
            "in_current_run": bool(current), "centre": dict(zip(FEATURES, centre))}


def appliances(query: dict | None) -> dict:
    """GET /appliances: every key ever given, oldest first, with its name and kind and the runs it was first and
    last seen in (a key whose last run is not the current one has not been seen since)."""
    query_params(query, ())
    return {"appliances": [_appliance(row) for row in db.execute(_LIST + " ORDER BY a.key", prepare=True)]}


def _key(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= KEY_MAX:
        raise ApplianceNotFound(f"there is no appliance {text!r}: keys are the positive integers GET /appliances "
                                "lists", key=text)
    return int(text)


def _text(doc: dict, field: str, limit: int) -> str | None:
    value = doc.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidAppliance(f"{field} must be a string or null, not {type(value).__name__}", field=field)
    value = value.strip()
    if not 0 < len(value) <= limit:
        raise InvalidAppliance(f"{field} must be 1 to {limit} characters (spaces around it ignored), or null",
                               field=field)
    if any(unicodedata.category(c)[0] == "C" for c in value):
        raise InvalidAppliance(f"{field} must not contain control or invisible characters", field=field)
    return value


def parse_naming(body: str | None, content_type: str | None) -> tuple[str | None, str | None]:
    """(name, kind) from a PUT /appliances/{key} body: {"name": ..., "kind": ...}; null clears either."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media != "application/json":
        raise UnsupportedMediaType(f"send {{\"name\", \"kind\"}} as application/json, not {media or 'no Content-Type'}")
    body = body or ""
    if len(body.encode("utf-8", "surrogatepass")) > MAX_NAMING_BYTES:
        raise PayloadTooLarge(f"the body is over {MAX_NAMING_BYTES} bytes; it holds a name and a kind")
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidAppliance("the body is not JSON: send {\"name\": \"kettle\", \"kind\": \"kettle\"}") from None
    if not isinstance(doc, dict):
        raise InvalidAppliance("the body must be a JSON object {\"name\", \"kind\"}")
    unknown = sorted(set(doc) - {"name", "kind"})
    if unknown:
        raise InvalidAppliance(f"unknown field {unknown[0]!r}: an appliance has a name and a kind", field=unknown[0])
    if "name" not in doc:
        raise InvalidAppliance("name is required (null clears it)", field="name")
    return _text(doc, "name", MAX_NAME), _text(doc, "kind", MAX_KIND)


_NAME = "UPDATE appliances SET name = :name, kind = :kind, named_at = now() WHERE key = :key RETURNING key"
_TAKEN = "SELECT key FROM appliances WHERE lower(name) = lower(:name) AND key <> :key"


def name_appliance(key: str, body: str | None, content_type: str | None) -> dict:
    """PUT /appliances/{key}: give a key a name and a kind (or clear them); the key's appliance as GET lists it."""
    number = _key(key)
    appliance_name, kind = parse_naming(body, content_type)
    try:
        with db.transaction() as conn:
            if not conn.run(_NAME, key=number, name=appliance_name, kind=kind):
                raise ApplianceNotFound(f"there is no appliance {number}", key=number)
            (row,) = conn.run(_LIST + " WHERE a.key = :key", key=number)
    except DatabaseError as error:
        if db.sqlstate(error) != "23505":  # the unique name
            raise
        taken = db.execute(_TAKEN, name=appliance_name, key=number)
        other = taken[0][0] if taken else None
        raise ApplianceNameTaken(f"appliance {other} is already named {appliance_name!r}; rename it first",
                                 field="name", key=other) from None
    return _appliance(row)


# ----------------------------------------------------------------------------------------- live states

TRIGGER_INTERVAL, TICK_DELAY = follow.INTERVAL, follow.TICK_DELAY
#: s an instance trusts its "is there a model?" answer: a deployment without models sends nothing.
MODELS_TTL = 30.0
#: s the states function keeps looking, once a TICK_DELAY, after a model is stored: an ingest instance may trust
#: an older "no model" answer that long and ask for nothing meanwhile.
WATCH_AFTER_MODEL = MODELS_TTL + TRIGGER_INTERVAL
_HAS_MODELS = "SELECT EXISTS (SELECT id FROM appliance_models)"


class _Trigger:
    """Whether ingest asks for a decoding now, for one instance: at most once per TRIGGER_INTERVAL, and only when
    a model is stored (counted at most once per MODELS_TTL)."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._throttle = follow.Throttle(TRIGGER_INTERVAL, clock)
        self._lock = threading.Lock()
        self._counted_at = float("-inf")
        self._models = False

    def due(self) -> bool:
        if not self._throttle.ready():
            return False
        now = self._clock()
        with self._lock:
            fresh = now - self._counted_at < MODELS_TTL
        if not fresh:
            try:
                models = bool(db.execute(_HAS_MODELS)[0][0])
            except Exception as error:  # noqa: BLE001 — best effort: when in doubt, ask
                log.warning("appliance models not counted, asking for a decoding anyway: %s", error)
                models = True
            with self._lock:
                self._models, self._counted_at = models, now
        return self._models and self._throttle.take()

    def forget_models(self) -> None:
        """A model was stored: count again at the next events instead of trusting a "no model" answer."""
        with self._lock:
            self._counted_at = float("-inf")


TRIGGER = _Trigger()


def model_stored() -> None:
    """After a model's commit (best effort): this instance counts models afresh, and the states function is asked
    to decode, which starts its watch (decode_requests) over what other instances store meanwhile."""
    TRIGGER.forget_models()
    follow.ask(settings.load().appliance_states_queue_url, 0)


def _watching(stored: list[tuple[model.ApplianceModel, str]], now: datetime | None = None) -> bool:
    """Whether a model was stored less than WATCH_AFTER_MODEL ago (an instance may not know of it yet)."""
    now = now or datetime.now(timezone.utc)
    return any(now - datetime.fromisoformat(updated) < timedelta(seconds=WATCH_AFTER_MODEL) for _, updated in stored)


def events_stored(total: int, queue: str | None) -> bool:
    """After ingest's commit (best effort, never raises): ask the states function, on `queue` (the settings'
    APPLIANCE_STATES_QUEUE_URL, none: off), to decode the new events, at most once per TRIGGER_INTERVAL per
    instance and only when a model is stored."""
    if not queue or not TRIGGER.due():
        return False
    return follow.ask(queue, total)


def sweep() -> bool:
    """The sweep: ask the states function to decode if events wait for it while a model is stored. One whose own
    look-again was lost (its SQS send failed) waits for the next event otherwise. True if it was asked."""
    queue = settings.load().appliance_states_queue_url
    return bool(queue) and live_states.behind() and follow.ask(queue, 0)


def decode_requests(bodies: list[tuple[str, str]]) -> tuple[dict, list[tuple[str, str]]]:
    """The states function, for a batch of (message id, body) from its queue: decode the events stored since the
    last decoding with every stored model, store the latest state of every device x appliance, tell live
    dashboards what changed, and look again in TICK_DELAY if there was anything to decode (at once if one batch
    of events was not enough) or a model was stored in the last WATCH_AFTER_MODEL seconds. Returns the counts and
    the (message id, reason) of each malformed request, which is dropped (retrying cannot mend it). Raises what the
    database raises: the batch is retried."""
    dropped = follow.malformed(bodies)
    if len(dropped) == len(bodies):
        return {"decoded": 0, "busy": False, "changed": 0}, dropped
    queue = settings.load().appliance_states_queue_url
    stored = store.load_all()
    try:
        with db.transaction() as conn:
            outcome = live_states.decode_new(conn, stored)
    except live_states.Busy:
        # Another call decodes now; it may have read the events before these requests' were stored.
        follow.ask(queue, 0, TICK_DELAY)
        return {"decoded": 0, "busy": True, "changed": 0}, dropped
    if outcome["changed"]:
        live.appliances_changed(outcome["changed"])
    if outcome["decoded"] or _watching(stored):
        follow.ask(queue, 0, 0 if outcome["more"] else TICK_DELAY)
    return {"decoded": outcome["decoded"], "busy": False, "changed": len(outcome["changed"])}, dropped


def appliance_states(query: dict | None) -> dict:
    """GET /appliances/states[?device_id=]: each device x appliance's latest decoded state and since when."""
    params = query_params(query, ("device_id",))
    device = parse_int("device_id", params["device_id"], INT32_MIN, INT32_MAX) if "device_id" in params else None
    return {"items": live_states.listing(device)}
