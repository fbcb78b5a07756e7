"""The clustering run state machine, in SQL only (no numpy: the report may import this module).

    pending ──claim──▶ running ──finish──▶ done
       ▲                 │  │
       │                 │  └──fail──▶ failed ──claim (a redelivered message)──▶ running
       │                 ├── lease expired (the worker died), attempts < max ──claim──▶ running
       │                 ├── lease expired, attempts < max, found by the sweep ──expire──▶ pending (sent again)
       │                 └── lease expired, attempts ≥ max (claim or sweep) ──give up──▶ failed
       └─────────────────────────────────────────────────────────────────────┘
    pending ──supersede (a later threshold's run is pending, running or done)──▶ superseded

An attempt that stops without finishing (a Lambda timeout, out of memory, a crash, a kill of the local stack)
records nothing; its lease tells. Once the lease is over the run is taken over by the next delivery of its
message, or sent again by the sweep, until it has had `max_attempts` attempts (settings.run_max_attempts): then
it is marked failed with the reason, so a transient crash heals by itself and a poisonous run does not loop. A
failed run is still claimed by a message that names it (a redrive from the dead-letter queue, an operator).

Superseding (the default, CLUSTER_RUNS=latest) keeps a burst of thresholds from becoming a backlog of whole-set
fits: the later run clusters every event the earlier one would have, so the earlier one is recorded as
`superseded` (naming the later run) and its message acknowledged. Only a pending run is superseded (one the sweep
put back to pending after a lost attempt too); one that failed (and is redriven) or is running keeps its course.
`superseded` is final: the sweep neither sends nor re-runs it (both take only `pending` and `running` runs), and a
claim skips it.

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

PENDING, RUNNING, DONE, FAILED, SUPERSEDED = "pending", "running", "done", "failed", "superseded"

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

    excluded: int | None = None  # set once the data was loaded


@dataclass(frozen=True)
class Claim:
    run_id: int
    threshold: int
    attempt: int  # the value of `attempts` this claim set: the fencing token
    device_id: int | None = None  # ClusterScope=device: the run takes this device's events 1..threshold


@dataclass(frozen=True)
class Skipped:
    run_id: int
    threshold: int
    status: str  # "done" or "superseded": nothing to do
    superseded_by: int | None = None  # the later run that does the work of a superseded one


def lease_seconds(remaining_ms: int | float | None, default_timeout_s: float = 900.0) -> float:
    """How long to lease a run for, from the invocation's remaining time (context.get_remaining_time_in_millis)."""
    remaining = default_timeout_s if remaining_ms is None else max(0.0, float(remaining_ms) / 1000.0)
    return remaining + LEASE_MARGIN_SECONDS


def _gave_up(attempts: str) -> str:
    """The error of a run given up (SQL text: `attempts` is an SQL expression)."""
    return (f"'gave up after ' || {attempts} || ' attempts: the last stopped without finishing (a Lambda timeout, "
            "out of memory, a crash or a lost database connection; see the cluster function''s logs)'")


# One statement: the claim, or giving the run up when its expired attempt was the last one allowed, and when it
# did neither, why (the run's status as this statement saw it). `:token` is new for every claim() call; the same
# statement re-sent by db.execute after a lost reply carries the same token, finds the run running (or given up)
# under it, and returns the same answer (nothing else can hold that token).
_CLAIM = f"""
WITH claimed AS (
    UPDATE clustering_runs
    SET status = 'running', claimed_by = :token,
        attempts = CASE WHEN status = 'running' AND claimed_by = :token THEN attempts ELSE attempts + 1 END,
        started_at = CASE WHEN status = 'running' AND claimed_by = :token THEN started_at ELSE now() END,
        finished_at = NULL, error = NULL, excluded = NULL,
        lease_until = now() + make_interval(secs => CAST(:lease AS float8))
    WHERE id = :id AND threshold = :threshold
      AND ((status IN ('pending', 'failed') AND claimed_by IS DISTINCT FROM :token)
           OR (status = 'running' AND (claimed_by = :token
                                       OR (coalesce(lease_until, '-infinity') < now() AND attempts < :max))))
    RETURNING threshold, attempts, device_id
), given_up AS (
    UPDATE clustering_runs
    SET status = 'failed', claimed_by = :token, finished_at = now(), lease_until = NULL, error = {_gave_up("attempts")}
    WHERE id = :id AND threshold = :threshold AND status = 'running' AND claimed_by IS DISTINCT FROM :token
      AND coalesce(lease_until, '-infinity') < now() AND attempts >= :max
    RETURNING threshold, attempts
)
SELECT 'claimed', threshold, attempts, device_id FROM claimed
UNION ALL
SELECT 'gave_up', threshold, attempts, NULL FROM given_up
UNION ALL
SELECT CASE WHEN status = 'failed' AND claimed_by = :token THEN 'gave_up' ELSE status END, threshold, attempts, NULL
FROM clustering_runs WHERE id = :id AND NOT EXISTS (SELECT FROM claimed) AND NOT EXISTS (SELECT FROM given_up)
"""


def claim(run_id: int, threshold: int, lease: float, max_attempts: int = 3) -> Claim | Skipped:
    """Take the run for `lease` seconds; Skipped if it is done, or if this claim gave it up (status failed: its
    last allowed attempt stopped without finishing); RunBusy if another worker holds it."""
    rows = db.execute(_CLAIM, id=int(run_id), threshold=int(threshold), lease=float(lease), max=int(max_attempts),
                  token=secrets.token_hex(16))
    if not rows:
        raise UnknownRun(f"clustering run {run_id} does not exist")
    status, row_threshold, attempts, device_id = rows[0]
    if status == "claimed":
        return Claim(int(run_id), int(row_threshold), int(attempts), device_id)
    if row_threshold != threshold:
        raise UnknownRun(f"clustering run {run_id} has threshold {row_threshold}, the message says {threshold}")
    if status in (DONE, SUPERSEDED):
        return Skipped(int(run_id), int(row_threshold), status)
    if status == "gave_up":
        return Skipped(int(run_id), int(row_threshold), FAILED)
    # `running` under an unexpired lease; or a concurrent claim won the row between this statement's snapshot
    # and its update (the snapshot then still shows pending/failed). Either way another worker has it.
    raise RunBusy(f"clustering run {run_id} is being run by another worker (status {status} when checked)")


# A pending run with a later run pending, running or done: that run covers all of this one's events. Running, failed
# and done runs are left alone, so this never races a worker (a claim needs `pending` too, and one of the two
# UPDATEs wins the row). The later run named is the lowest such threshold: the next one to hold the labels.
# "Later" is within the run's own set: the same device_id (NULL for ClusterScope=all), so one device's runs never
# supersede another's.
_SUPERSEDE = """
UPDATE clustering_runs r
SET status = 'superseded', finished_at = now(), lease_until = NULL,
    superseded_by = (SELECT l.id FROM clustering_runs l
                     WHERE l.threshold > r.threshold AND l.status IN ('pending', 'running', 'done')
                       AND l.device_id IS NOT DISTINCT FROM r.device_id
                     ORDER BY l.threshold LIMIT 1)
WHERE r.id = :id AND r.threshold = :threshold AND r.status = 'pending'
  AND EXISTS (SELECT FROM clustering_runs l
              WHERE l.threshold > r.threshold AND l.status IN ('pending', 'running', 'done')
                AND l.device_id IS NOT DISTINCT FROM r.device_id)
RETURNING r.superseded_by
"""


def supersede(run_id: int, threshold: int) -> Skipped | None:
    """Before a claim (CLUSTER_RUNS=latest): mark the run superseded if it has not started and a later threshold's
    run is waiting, running or done; None when it is not (then claim it). Re-sent after a lost reply it finds the
    run no longer pending and returns None; the claim then answers Skipped("superseded")."""
    rows = db.execute(_SUPERSEDE, id=int(run_id), threshold=int(threshold))
    if not rows:
        return None
    return Skipped(int(run_id), int(threshold), SUPERSEDED, int(rows[0][0]))


_LOCK = "SELECT 1 FROM clustering_runs WHERE id = :id AND status = 'running' AND attempts = :attempt FOR UPDATE"


def lock(conn: Connection, run: Claim) -> None:
    """Inside the storing transaction: lock the run row, and make sure this worker still owns it."""
    if not conn.run(_LOCK, id=run.run_id, attempt=run.attempt):
        raise LeaseLost(f"clustering run {run.run_id}: attempt {run.attempt} no longer owns the run")


_FINISH = """
UPDATE clustering_runs
SET status = 'done', finished_at = now(), lease_until = NULL, error = NULL, events = :events, excluded = :excluded,
    first_seq = :first_seq,
    bandwidth = :bandwidth, n_clusters = :n_clusters, centres = CAST(:centres AS float8[]),
    load_ms = :load_ms, fit_ms = :fit_ms, store_ms = :store_ms
WHERE id = :id AND status = 'running' AND attempts = :attempt
RETURNING id
"""


def finish(conn: Connection, run: Claim, *, events: int, excluded: int, bandwidth: float, n_clusters: int,
           centres: str, load_ms: float, fit_ms: float, store_ms: float, first_seq: int = 1) -> None:
    """Mark the run done, in the caller's transaction (after lock()). `centres` is a float8[] literal; `first_seq`
    the lowest seq it took (1, or its window's first)."""
    rows = conn.run(_FINISH, id=run.run_id, attempt=run.attempt, events=int(events), excluded=int(excluded),
                    first_seq=int(first_seq),
                    bandwidth=float(bandwidth),
                    n_clusters=int(n_clusters), centres=centres, load_ms=float(load_ms), fit_ms=float(fit_ms),
                    store_ms=float(store_ms))
    if not rows:
        raise LeaseLost(f"clustering run {run.run_id}: attempt {run.attempt} no longer owns the run")


_FAIL = """
UPDATE clustering_runs
SET status = 'failed', finished_at = now(), lease_until = NULL, error = :error, events = :events,
    excluded = CAST(:excluded AS bigint)
WHERE id = :id AND status = 'running' AND attempts = :attempt
RETURNING id
"""


def fail(run: Claim, error: str, events: int | None = None, excluded: int | None = None) -> bool:
    """Record the failure on the run (autocommit); False if this worker no longer owns it."""
    error = db.scrub(error)  # read tokens are served this text (GET /runs)
    text = error if len(error) <= MAX_ERROR_CHARS else error[:MAX_ERROR_CHARS - 1] + "…"
    return bool(db.execute(_FAIL, id=run.run_id, attempt=run.attempt, error=text, events=events, excluded=excluded))


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
# redelivery takes it over, which may be 90 minutes later (the queue's visibility timeout), or never once the
# message is dead-lettered or lost. The sweep takes it from there: once the lease (the invocation's whole time plus
# a margin) is over the worker is certainly gone, and the run goes back to pending for the sweep to send again, or
# to failed when its attempts are used up. A concurrent claim of the same run waits for this statement's row lock
# and then finds it pending (or failed) and claims it, so this races nothing.
_EXPIRE = f"""
UPDATE clustering_runs
SET status = CASE WHEN attempts < :max THEN 'pending' ELSE 'failed' END,
    claimed_by = NULL, lease_until = NULL,
    enqueued_at = CASE WHEN attempts < :max THEN '-infinity' ELSE enqueued_at END,  -- send again now
    finished_at = CASE WHEN attempts < :max THEN NULL ELSE now() END,
    error = CASE WHEN attempts < :max
                 THEN 'attempt ' || attempts || ' stopped without finishing (a Lambda timeout, out of memory or a '
                      || 'crash); sent again by the sweep'
                 ELSE {_gave_up("attempts")} END
WHERE status = 'running' AND lease_until < now()
RETURNING id, threshold, attempts, status
"""


@dataclass(frozen=True)
class Expired:
    run_id: int
    threshold: int
    attempts: int
    status: str  # PENDING: to be sent again; FAILED: given up


def expire(max_attempts: int) -> list[Expired]:
    """Every running run whose lease is over: back to pending (to be sent again) or, after `max_attempts`
    attempts, failed."""
    return [Expired(int(i), int(t), int(a), s) for i, t, a, s in db.execute(_EXPIRE, max=int(max_attempts))]


# The local stack runs every invocation in its own process: when it starts, no attempt of a previous process is
# alive and no message of its in-memory queue survived. It says so here, before its pollers start and its first
# sweep runs: leases end now, and pending runs count as sent long ago (their message is lost), so that first
# sweep runs them again.
_AFTER_RESTART = """
WITH leases AS (
    UPDATE clustering_runs SET lease_until = now() WHERE status = 'running' AND lease_until > now() RETURNING id
), messages AS (
    UPDATE clustering_runs SET enqueued_at = '-infinity' WHERE status = 'pending' RETURNING id
)
SELECT (SELECT count(*) FROM leases), (SELECT count(*) FROM messages)
"""


def after_restart() -> tuple[int, int]:
    """(leases ended, pending runs to send again): see _AFTER_RESTART. For the local stack only."""
    ended, lost = db.execute(_AFTER_RESTART)[0]
    return int(ended), int(lost)
