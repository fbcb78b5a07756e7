"""The energy capability's use cases: one function per route, and the sensor events' feed into the series (the
feed function, which follows the stored events; ingest asks it to look)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import NamedTuple, Sequence

from .. import db, follow
from ..live import service as live
from ..settings import Settings
from . import forecast as forecasting
from . import changes as change_feed
from . import integrate, params, readings, store, times
from ..errors import InsufficientHistory


class Changed(NamedTuple):
    """What a write changed: the buckets (device, row) for the dashboards, and the devices whose change-feed row
    this transaction created (each is announced once, for the alerts' scorer). Give it to announce() once
    committed."""

    buckets: tuple = ()
    marked: tuple = ()


def _recomputed(conn, changes: list, settings: Settings) -> Changed:
    """The buckets the changes reach, rewritten (each device's earliest marked in the change feed)."""
    buckets, marked = store.recompute(conn, changes, _max_gap(settings))
    return Changed(tuple(buckets), tuple(marked))


def _max_gap(settings: Settings) -> int:
    return settings.energy_max_gap_s * times.SECOND


@dataclass(frozen=True)
class Answer:
    payload: dict
    csv: str | None  # the same rows as CSV, when asked for


def _csv(header: Sequence[str], rows) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


# ---------------------------------------------------------------------------------------------- writing

def post_readings(body: str, settings: Settings) -> dict:
    """POST /energy: all readings stored (or replaced) and their buckets recomputed, or nothing."""
    post = readings.parse(body)
    n = len(post.ts)
    with db.transaction() as conn:
        changes = store.upsert(conn, [post.device_id] * n, post.ts, [post.units] * n, post.values,
                               _max_gap(settings))
        written = _recomputed(conn, changes, settings)
    announce(written)
    inserted = sum(c.inserted for c in changes)
    replaced = sum(c.replaced for c in changes)
    return {"device_id": post.device_id, "units": integrate.UNIT_NAMES[post.units], "received": n,
            "inserted": inserted, "replaced": replaced, "unchanged": n - inserted - replaced,
            "buckets_changed": len(written.buckets)}


#: Events one feed call reads: a batch of this size is fed in well under a second (BENCHMARKS.md, energy).
FEED_BATCH = 5000
_FEED_THROTTLE = follow.Throttle()


def events_stored(queue: str | None, total: int) -> bool:
    """After ingest's commit (best effort, never raises): ask the feed function, on `queue` (the settings'
    ENERGY_FEED_QUEUE_URL, none: off), to feed the new events, at most once per follow.INTERVAL per instance."""
    if not queue or not _FEED_THROTTLE.take():
        return False
    return follow.ask(queue, total)


def feed_new(settings: Settings, batch: int = FEED_BATCH) -> dict:
    """Stored sensor events → their devices' series, in seq order from the feed's cursor, at most `batch` in one
    transaction: active power as kW, held to the next reading. The sample time is the sensor's UTC Time while its
    clock advances; a repeated or earlier clock (the deployed firmware repeats one timestamp on every line) is
    replaced by the arrival time, flagged (see store._FEED). Then dashboards are told of the buckets that changed
    and the alerts' scorer of the devices newly in the change feed. Returns {"fed": events read, "more": whether
    events remain after them, "busy": whether another feed held the cursor, "buckets": buckets changed}."""
    with db.transaction() as conn:
        cursor = store.feed_cursor(conn)
        if cursor is None:
            return {"fed": 0, "more": False, "busy": True, "buckets": 0}
        after, total = cursor
        events = store.new_events(conn, after, total, batch)
        written = Changed()
        if events:
            written = _recomputed(conn, store.feed(conn, events, _max_gap(settings)), settings)
            store.advance_feed(conn, after + len(events))
    announce(written)
    return {"fed": len(events), "more": after + len(events) < total, "busy": False, "buckets": len(written.buckets)}


def feed_requests(bodies: list[tuple[str, str]], settings: Settings) -> tuple[dict, list[tuple[str, str]]]:
    """The feed function, for a batch of (message id, body) from its queue: one feed_new call, then a look again
    (at once if one batch was not enough, else in follow.TICK_DELAY) if it fed anything, or in TICK_DELAY if
    another call held the cursor (it may have read before these requests' events were stored). Returns the
    outcome and the (message id, reason) of each malformed request, which is dropped. Raises what the database
    raises: the batch is retried."""
    dropped = follow.malformed(bodies)
    if len(dropped) == len(bodies):
        return {"fed": 0, "more": False, "busy": False, "buckets": 0}, dropped
    outcome = feed_new(settings)
    if outcome["busy"] or outcome["fed"]:
        follow.ask(settings.energy_feed_queue_url, 0, 0 if outcome["more"] else follow.TICK_DELAY)
    return outcome, dropped


def sweep_feed(settings: Settings) -> bool:
    """The sweep: ask the feed to look if stored events wait for it. A feed whose own look-again was lost (its SQS
    send failed) waits for the next event otherwise, which may not come for hours. True if it was asked."""
    queue = settings.energy_feed_queue_url
    return bool(queue) and store.feed_behind() and follow.ask(queue, 0)


def announce(written: Changed) -> None:
    """After commit: dashboards learn of the buckets that changed (best effort, over the live channel), and the
    alerts' scorer of the devices newly in the change feed (best effort: the sweep re-sends what is lost)."""
    if written.buckets:
        live.energy_changed([
            {"device_id": device, "datetime": times.iso(start), "value": kwh, "coverage": covered / times.BUCKET,
             "flags": integrate.flag_names(integrate.flags_of(estimated, arrival))}
            for device, (start, kwh, covered, estimated, arrival) in written.buckets])
    change_feed.send(list(written.marked))


# ------------------------------------------------------------------------------------ the change feed
# Read by wattprint.alerts inside its own transaction: take a device's changes, then its hourly energy.
take_changes = change_feed.take
hourly = change_feed.hourly


def resend_stale_changes(older_than_s: float) -> int:
    """The sweep: devices whose change row waited longer than this (its message was lost) are announced again."""
    with db.transaction() as conn:
        devices = change_feed.stale(conn, older_than_s)
    return change_feed.send(devices)


# ---------------------------------------------------------------------------------------------- reading

def _item(row: dict) -> dict:
    return {"datetime": times.iso(row["start"]), "value": row["value"], "coverage": row["coverage"],
            "flags": integrate.flag_names(row["flags"])}


def series(query: dict | None, accept: str | None) -> Answer:
    p = params.read(query, params.SERIES)
    device = params.integer(p, "device_id", params.INT32_MIN, params.INT32_MAX)
    window = params.window(p)
    as_csv = params.wants_csv(p, accept)
    rows = store.series_rows(device, window.start, window.end, window.step)
    data = [_item(r) for r in integrate.aggregate(rows, window.start, window.end, window.step)]
    payload = {"device_id": device, "units": "kWh", "resolution": params.resolution_name(window.step),
               "start": times.iso(window.start), "end": times.iso(window.end), "data": data}
    text = _csv(("datetime", "value", "coverage", "flags"),
                ((d["datetime"], d["value"], d["coverage"], ";".join(d["flags"])) for d in data)) if as_csv else None
    return Answer(payload, text)


def power(query: dict | None, accept: str | None, settings: Settings) -> Answer:
    """GET /energy/power: the power the device's readings hold over the window, step by step (a gap, or time before
    the first reading, is no step); a window with more than MAX_POWER_READINGS readings is answered per bucket
    instead (its energy over its covered time: the average power)."""
    p = params.read(query, params.POWER)
    device = params.integer(p, "device_id", params.INT32_MIN, params.INT32_MAX)
    window = params.window(p, step_name=None)
    as_csv = params.wants_csv(p, accept)
    lo, hi = window.start, window.end
    readings, last = store.power_readings(device, lo, hi, params.MAX_POWER_READINGS)
    data = []
    if len(readings) <= params.MAX_POWER_READINGS:
        resolution = "readings"
        max_gap = _max_gap(settings)
        # The last reading loaded is the device's last one when none at or after hi was: its interval is estimated.
        spacing = (integrate.typical_spacing(sorted(last), max_gap) or 0) if last else None
        for start, end, reading, extra in integrate.intervals(readings, max_gap, spacing):
            if end > lo and start < hi:
                flags = extra | (reading.flags & integrate.ARRIVAL_TIME)
                data.append((max(start, lo), min(end, hi), integrate.power(reading, start, end), flags))
    else:
        resolution = "15m"
        for start, kwh, covered, estimated, arrival in store.series_rows(device, lo, hi, times.BUCKET):
            if covered > 0:
                data.append((start, start + times.BUCKET, kwh * times.HOUR / covered,
                             integrate.flags_of(estimated, arrival)))
    items = [{"datetime": times.iso(start), "end": times.iso(end), "value": kw, "flags": integrate.flag_names(flags)}
             for start, end, kw, flags in data]
    payload = {"device_id": device, "units": "kW", "resolution": resolution, "start": times.iso(lo),
               "end": times.iso(hi), "data": items}
    text = _csv(("datetime", "end", "value", "flags"),
                ((d["datetime"], d["end"], d["value"], ";".join(d["flags"])) for d in items)) if as_csv else None
    return Answer(payload, text)


def fleet(query: dict | None, accept: str | None) -> Answer:
    p = params.read(query, params.FLEET)
    window = params.window(p)
    as_csv = params.wants_csv(p, accept)
    found = {at: (total, devices) for at, total, devices in store.fleet_rows(window.start, window.end, window.step)}
    data = []
    for at in range(window.start, window.end, window.step):
        total, devices = found.get(at, (0.0, 0))
        data.append({"datetime": times.iso(at), "sum": total, "avg": total / devices if devices else None,
                     "devices": devices})
    payload = {"units": "kWh", "resolution": params.resolution_name(window.step), "start": times.iso(window.start),
               "end": times.iso(window.end), "data": data}
    text = _csv(("datetime", "sum", "avg", "devices"),
                ((d["datetime"], d["sum"], "" if d["avg"] is None else d["avg"], d["devices"]) for d in data)
                ) if as_csv else None
    return Answer(payload, text)


def top(query: dict | None, accept: str | None) -> Answer:
    p = params.read(query, params.TOP)
    count = params.integer(p, "count", 1, params.MAX_COUNT, default=params.DEFAULT_COUNT)
    window = params.window(p, required=False, step_name=None)
    as_csv = params.wants_csv(p, accept)
    rows = store.top_rows(count, window.start if window else None, window.end if window else None)
    data = [{"rank": i, "device_id": device, "kwh": kwh} for i, (device, kwh) in enumerate(rows, start=1)]
    payload = {"units": "kWh", "count": count, "start": times.iso(window.start) if window else None,
               "end": times.iso(window.end) if window else None, "data": data}
    text = _csv(("rank", "device_id", "kwh"), ((d["rank"], d["device_id"], d["kwh"]) for d in data)) if as_csv \
        else None
    return Answer(payload, text)


def forecast(query: dict | None, accept: str | None) -> Answer:
    p = params.read(query, params.FORECAST)
    device = params.integer(p, "device_id", params.INT32_MIN, params.INT32_MAX)
    window = params.window(p, step_name=None)
    as_csv = params.wants_csv(p, accept)
    first, last = store.extent(device)
    if first is None:
        raise InsufficientHistory(f"device {device} has no energy recorded", device_id=device, weeks_available=0,
                                  weeks_needed=forecasting.WEEKS_NEEDED)
    # History strictly before the window (or before the data ends): a forecast of a past window is out of sample.
    origin = min(window.start, last + times.BUCKET)
    weeks = max(0, (origin - first) // times.WEEK)
    if weeks < forecasting.WEEKS_NEEDED:
        raise InsufficientHistory(
            f"a forecast needs {forecasting.WEEKS_NEEDED} weeks of device {device}'s history before "
            f"{times.iso(origin)}; it has {weeks}", device_id=device, weeks_available=weeks,
            weeks_needed=forecasting.WEEKS_NEEDED)
    rows = store.history(device, origin - forecasting.HISTORY_WEEKS * times.WEEK, origin)
    result = forecasting.forecast(dict(rows), origin, list(range(window.start, window.end, window.step)),
                                  backtest_weeks=min(forecasting.BACKTEST_WEEKS, weeks - forecasting.WEEKS_NEEDED + 1))
    data = [{"datetime": times.iso(at), "value": value} for at, value in zip(result.starts, result.values)]
    payload = {
        "device_id": device, "units": "kWh", "resolution": "15m", "start": times.iso(window.start),
        "end": times.iso(window.end), "origin": times.iso(origin), "total": sum(result.values), "data": data,
        "method": {"baseline": f"median of the same weekday and quarter hour over the {forecasting.WEEKS} weeks "
                               "before the origin, times the level of the last week",
                   "weeks": forecasting.WEEKS, "level": result.level},
        "backtest": {"weeks": result.backtest_weeks, "buckets": result.backtest_buckets, "mae_kwh": result.mae,
                     "smape_percent": result.smape},
    }
    text = _csv(("datetime", "value"), ((d["datetime"], d["value"]) for d in data)) if as_csv else None
    return Answer(payload, text)


def openapi() -> tuple[dict, dict]:
    """(schemas, paths) of the energy routes for the API's OpenAPI document."""
    from . import openapi as document  # only GET /openapi.json needs it

    return document.SCHEMAS, document.PATHS
