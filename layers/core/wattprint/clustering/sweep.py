"""The hourly sweep: what ingest and clustering could not finish themselves.

* Runs whose attempt stopped without finishing (a Lambda timeout, out of memory, a crash) and whose lease is over
  go back to pending, to be sent again, or are marked failed once they had settings.run_max_attempts attempts
  (wattprint.clustering.runs.expire; the RunsFailed metric then raises the alarm). First, so that an SQS outage,
  which fails the next step, cannot keep a run from being given up.
* Idempotency keys past their time are deleted (ingest's KEY_TTL). Before the resend, for the same reason.
* Pending runs are sent (ingest's outbox): those ingest committed but never sent, those whose last message is
  older than settings.run_resend_after_seconds (lost), and those the first step put back.

The local stack calls after_restart() when it starts, before its first sweep (see wattprint.clustering.runs).
"""

from __future__ import annotations

from .. import observability
from ..ingest import service as ingest
from ..live import service as live
from ..settings import Settings
from . import runs


def sweep_runs(config: Settings) -> dict:
    expired = runs.expire(config.run_max_attempts)
    given_up = sum(1 for e in expired if e.status == runs.FAILED)
    if given_up:
        observability.count(observability.RUNS_FAILED, given_up)
    for e in expired:
        live.run_changed(e.run_id)
    purged = ingest.purge_idempotency_keys()
    sent = ingest.resend_unsent(config)
    return {"sent": [r.threshold for r in sent],
            "rerun": [e.threshold for e in expired if e.status == runs.PENDING],
            "failed": [e.threshold for e in expired if e.status == runs.FAILED],
            "idempotency_keys_purged": purged}


def after_restart() -> dict:
    """The local stack (re)started: no attempt or queued message of a previous process survived."""
    ended, lost = runs.after_restart()
    return {"leases_ended": ended, "messages_lost": lost}
