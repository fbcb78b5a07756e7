"""The hourly sweep: what ingest and clustering could not finish themselves.

* Runs whose worker was stopped by Lambda (timeout, out of memory) are marked failed with the reason
  (wattprint.clustering.runs.abandon): otherwise they would stay `running` after their message was
  dead-lettered. First, so that an SQS outage, which fails the next step, cannot keep it from happening.
* Idempotency keys past their time are deleted (ingest's KEY_TTL). Before the resend, for the same reason.
* Runs committed by ingest whose message was never sent are sent (ingest's outbox).
"""

from __future__ import annotations

from ..ingest import service as ingest
from ..live import service as live
from ..settings import Settings
from . import runs


def sweep_runs(config: Settings) -> dict:
    abandoned = runs.abandon()
    for run_id, _, _ in abandoned:
        live.run_changed(run_id)
    purged = ingest.purge_idempotency_keys()
    sent = ingest.resend_unsent(config)
    return {"sent": [r.threshold for r in sent], "abandoned": [threshold for _, threshold, _ in abandoned],
            "idempotency_keys_purged": purged}
