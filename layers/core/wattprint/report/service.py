"""The report's use cases, one entry per route the report function serves (and the reads live updates make).

Each entry takes the request's query parameters as API Gateway gives them, checks them (wattprint.report.params)
and returns the answer's body, so the handler only turns it into an HTTP response.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from .. import settings
from ..http import query_params
from . import csv, params, queries


def _per_device() -> bool:
    return settings.clustering_settings().per_device


def summary(query: dict | None) -> dict:
    """GET /clusters/summary: the current run (or ?run=) and its clusters (of ?device_id= with ClusterScope=device)."""
    p = query_params(query, params.SUMMARY_PARAMETERS)
    run = params.parse_run(p.get("run"))
    config = settings.load()
    device = params.parse_device(p, config.clustering.per_device)
    return queries.summary(run, config.cluster_threshold, device)


def runs(query: dict | None) -> dict:
    """GET /runs: every clustering run, newest first (of ?device_id= with ClusterScope=device)."""
    return queries.runs(params.parse_device(query_params(query, params.RUNS_PARAMETERS), _per_device()))


@dataclass(frozen=True)
class EventsAnswer:
    body: dict | str  # {"items", "next"}, or the CSV text
    csv: bool
    headers: dict[str, str]


def events(query: dict | None, accept: str | None) -> EventsAnswer:
    """GET /events: one keyset page, as JSON or CSV, with the next page named in X-Next-Cursor and Link."""
    per_device = _per_device()
    parsed = params.parse_events_query(query, accept, per_device)
    page = queries.events(parsed, per_device)
    headers = {"Vary": "Accept"}
    if page.next:
        headers["X-Next-Cursor"] = page.next
        headers["Link"] = next_link(query_params(query, params.EVENTS_PARAMETERS), page.next)
    if parsed.csv:
        return EventsAnswer(csv.to_csv(page.items, queries.EVENT_KEYS), True, headers)
    return EventsAnswer({"items": page.items, "next": page.next}, False, headers)


def next_link(query: dict[str, str], cursor: str) -> str:
    """A Link header for the next page: a relative reference (`?query`), so it resolves against whatever base
    path (stage, custom domain) the client called."""
    following = {k: v for k, v in query.items() if k != "cursor"}
    following["cursor"] = cursor
    return f'<?{urlencode(following)}>; rel="next"'


def event(event_id: str, query: dict | None) -> dict:
    """GET /events/{id}: one event with its label in every completed run."""
    query_params(query, ())
    return queries.event(params.parse_event_id(event_id), _per_device())


def openapi(query: dict | None) -> dict:
    """GET /openapi.json: the API's OpenAPI document."""
    query_params(query, ())
    from . import openapi as document  # only this route needs it (and the ingest limits it names)

    return document.document()


def events_since(first: int, at_most: int) -> dict:
    """For live updates: how many events are stored in all, and the newest `at_most` of those with seq >= first,
    as GET /events items (the current run's labels), oldest first."""
    total = queries.events_total()
    items = queries.events_between(max(first, total - at_most + 1), total, _per_device()) if total >= first else []
    return {"total": total, "items": items}


def stored_total() -> int:
    """For live updates: how many events are stored."""
    return queries.events_total()


def runs_by_id(run_ids: set[int]) -> list[dict]:
    """For live updates: these runs, as items of GET /runs."""
    return queries.runs(ids=run_ids)["runs"]
