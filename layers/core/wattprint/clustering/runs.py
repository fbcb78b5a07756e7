"""The clustering run state machine, in SQL only (no numpy: the report may import this module).

    pending ──claim──▶ running ──finish──▶ done
       ▲                 │  │
       │                 │  └──fail──▶ failed ──claim (a redelivered message)──▶ running
       │                 ├── lease expired (the worker died) ──claim──▶ running
       │                 └── lease expired, found by the sweep ──abandon──▶ failed

A claim is one atomic UPDATE. It leases the run to the claiming worker for as long as that invocation can
live (the Lambda's remaining time plus a margin) and increments `attempts`, which is the worker's fencing
token: finishing or failing a run is conditional on `attempts` still being the one the worker claimed, so a
worker that lost its lease (it was presumed dead and another took over) can never overwrite the new owner.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from .. import db
from ..db import Connection
from ..errors import DatabaseUnavailable

PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"

# Added to the invocation's remaining time: a lease outlives the worker that holds it by this much, so a run
# is taken over only once its worker has certainly been stopped by the Lambda timeout.
LEASE_MARGIN_SECONDS = 60.0
MAX_ERROR_CHARS = 4000


class RunBusy(Exception):
    """Another worker holds an unexpired lease on the run: leave the message for redelivery."""


class LeaseLost(Exception):
    """This worker's lease was taken over (it was presumed dead); its result is discarded."""


class UnknownRun(Exception):
    """The message names a run that does not exist, or gives another threshold than the run's."""


class PermanentRunError(Exception):
    """The run cannot succeed with the data as it is: recorded on the run, not retried (the fit's checks raise
    its kinds: wattprint.clustering.fit)."""


@dataclass(frozen=True)
class Claim:
    run_id: int
    threshold: int
    attempt: int  # the value of `attempts` this claim set: the fencing token


@dataclass(frozen=True)
class Skipped:
    run_id: int
    threshold: int
    status: str  # "done": nothing to do


def lease_seconds(remaining_ms: int | float | None, default_timeout_s: float = 900.0) -> float:
    """How long to lease a run for, from the invocation's remaining time (context.get_remaining_time_in_millis)."""
    remaining = default_timeout_s if remaining_ms is None else max(0.0, float(remaining_ms) / 1000.0)
    return remaining + LEASE_MARGIN_SECONDS


# One statement: the claim, and when it claimed nothing, why (the run's status as this statement saw it).
# `:token` is new for every claim() call; the same statement re-sent by db.execute after a lost reply carries the
# same token, finds the run running under it, and returns the same attempt (nothing else can hold that token).
_CLAIM = """
WITH claimed AS (
    UPDATE clustering_runs
    SET status = 'running', claimed_by = :token,
        attempts = CASE WHEN status = 'running' AND claimed_by = :token THEN attempts ELSE attempts + 1 END,
        started_at = CASE WHEN status = 'running' AND claimed_by = :token THEN started_at ELSE now() END,
        finished_at = NULL, error = NULL, lease_until = now() + make_interval(secs => CAST(:lease AS float8))
    WHERE id = :id AND threshold = :threshold
      AND (status IN ('pending', 'failed')
           OR (status = 'running' AND (coalesce(lease_until, '-infinity') < now() OR claimed_by = :token)))
    RETURNING threshold, attempts
)
SELECT 'claimed', threshold, attempts FROM claimed
UNION ALL
SELECT status, threshold, attempts FROM clustering_runs WHERE id = :id AND NOT EXISTS (SELECT FROM claimed)
"""


def claim(run_id: int, threshold: int, lease: float) -> Claim | Skipped:
    """Take the run for `lease` seconds; Skipped if it is done; RunBusy if another worker holds it."""
    rows = db.execute(_CLAIM, id=int(run_id), threshold=int(threshold), lease=float(lease), token=secrets.token_hex(16))
    if not rows:
        raise UnknownRun(f"clustering run {run_id} does not exist")
    status, row_threshold, attempts = rows[0]
    if status == "claimed":
        return Claim(int(run_id), int(row_threshold), int(attempts))
    if row_threshold != threshold:
        raise UnknownRun(f"clustering run {run_id} has threshold {row_threshold}, the message says {threshold}")
    if status == DONE:
        return Skipped(int(run_id), int(row_threshold), DONE)
    # `running` under an unexpired lease; or a concurrent claim won the row between this statement's snapshot
    # and its update (the snapshot then still shows pending/failed). Either way another worker has it.
    raise RunBusy(f"clustering run {run_id} is being run by another worker (status {status} when checked)")


_LOCK = "SELECT 1 FROM clustering_runs WHERE id = :id AND status = 'running' AND attempts = :attempt FOR UPDATE"


def lock(conn: Connection, run: Claim) -> None:
    """Inside the storing transaction: lock the run row, and make sure this worker still owns it."""
    if not conn.run(_LOCK, id=run.run_id, attempt=run.attempt):
        raise LeaseLost(f"clustering run {run.run_id}: attempt {run.attempt} no longer owns the run")


_FINISH = """
UPDATE clustering_runs
SET status = 'done', finished_at = now(), lease_until = NULL, error = NULL, events = :events,
    bandwidth = :bandwidth, n_clusters = :n_clusters, centres = CAST(:centres AS float8[]),
    load_ms = :load_ms, fit_ms = :fit_ms, store_ms = :store_ms
WHERE id = :id AND status = 'running' AND attempts = :attempt
RETURNING id
"""


def finish(conn: Connection, run: Claim, *, events: int, bandwidth: float, n_clusters: int, centres: str,
           load_ms: float, fit_ms: float, store_ms: float) -> None:
    """Mark the run done, in the caller's transaction (after lock()). `centres` is a float8[] literal."""
    rows = conn.run(_FINISH, id=run.run_id, attempt=run.attempt, events=int(events), bandwidth=float(bandwidth),
                    n_clusters=int(n_clusters), centres=centres, load_ms=float(load_ms), fit_ms=float(fit_ms),
                    store_ms=float(store_ms))
    if not rows:
        raise LeaseLost(f"clustering run {run.run_id}: attempt {run.attempt} no longer owns the run")


_FAIL = """
UPDATE clustering_runs
SET status = 'failed', finished_at = now(), lease_until = NULL, error = :error, events = :events
WHERE id = :id AND status = 'running' AND attempts = :attempt
RETURNING id
"""


def fail(run: Claim, error: str, events: int | None = None) -> bool:
    """Record the failure on the run (autocommit); False if this worker no longer owns it."""
    error = db.scrub(error)  # read tokens are served this text (GET /runs)
    text = error if len(error) <= MAX_ERROR_CHARS else error[:MAX_ERROR_CHARS - 1] + "…"
    return bool(db.execute(_FAIL, id=run.run_id, attempt=run.attempt, error=text, events=events))


_RELEASE = """
UPDATE clustering_runs SET lease_until = now()
WHERE id = :id AND status = 'running' AND attempts = :attempt
"""


def release(run: Claim) -> bool:
    """Give the lease up without judging the run (a transient failure): the next delivery may take it at once.
    Best effort: False when the database cannot be reached either (the lease then simply expires)."""
    try:
        db.execute(_RELEASE, id=run.run_id, attempt=run.attempt)
        return True
    except DatabaseUnavailable:
        return False


# A worker that Lambda stopped (timeout, out of memory) never reaches fail(): its run stays `running` until a
# redelivery takes it over, and after the last receive the message is dead-lettered and nothing would. The sweep
# records it. Once the lease (the invocation's whole time plus a margin) is over the worker is certainly gone;
# a redelivery still claims a failed run, so this races nothing.
_ABANDON = """
UPDATE clustering_runs
SET status = 'failed', finished_at = now(), lease_until = NULL,
    error = 'attempt ' || attempts || ' stopped without finishing: its invocation ended (Lambda timeout, out of '
            || 'memory or a crash) and no other attempt took the run over'
WHERE status = 'running' AND lease_until < now()
RETURNING id, threshold, attempts
"""


def abandon() -> list[tuple[int, int, int]]:
    """Mark failed every running run whose lease is over; (id, threshold, attempts) of each."""
    return [tuple(row) for row in db.execute(_ABANDON)]
