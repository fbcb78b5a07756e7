"""The hourly sweep: what ingest and clustering could not finish themselves.

* Runs whose worker was stopped by Lambda (timeout, out of memory) are marked failed with the reason
  (wattprint.runs.abandon): otherwise they would stay `running` after their message was dead-lettered. First,
  so that an SQS outage, which fails the next step, cannot keep it from happening.
* Runs committed by ingest whose message was never sent are sent (wattprint.outbox).
"""

from __future__ import annotations

from ..ingest import outbox
from ..live import announce
from ..settings import Settings
from . import runs


def run(config: Settings) -> dict:
    abandoned = runs.abandon()
    for run_id, _, _ in abandoned:
        announce.run_changed(run_id)
    sent = outbox.sweep(outbox.sqs_sender(config.cluster_queue_url, config.region))
    return {"sent": [r.threshold for r in sent], "abandoned": [threshold for _, threshold, _ in abandoned]}
