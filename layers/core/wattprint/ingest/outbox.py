"""Sending clustering runs to the queue after their transaction committed, and re-sending what was not sent.

A run row is committed with the events that reached its threshold; only then is its message sent, and
`enqueued_at` set. If the send fails (or the Lambda dies in between), the sweep finds the row still unsent
after a grace period longer than any ingest invocation and sends it. A message can also be lost after it was
sent (the local stack's queue lives in its process; a queue purged by hand): a run still `pending` long after
its last send is sent again. In the rare case where a message went out but `enqueued_at` was not written, or
the first message was only slow, the run is sent twice; the clustering side skips a run already done.
`enqueued_at = '-infinity'` marks a run whose message is known to be gone (its attempt stopped without finishing,
or the local stack restarted): the next sweep sends it whatever the bounds.
"""

from __future__ import annotations

import json
import logging
from typing import Callable

from .. import aws, db, observability
from ..errors import DatabaseUnavailable
from .store import Run

log = logging.getLogger(__name__)

Sender = Callable[[Run], None]

# Longer than the ingest function's timeout: a run unsent after this long was not going to be sent.
SWEEP_GRACE_SECONDS = 120
RESEND_AFTER_SECONDS = 3600.0  # the default of settings.run_resend_after_seconds

_MARK_SENT = "UPDATE clustering_runs SET enqueued_at = now(), sends = sends + 1 WHERE id = :id"


def message(run: Run) -> str:
    doc = {"run_id": run.id, "threshold": run.threshold}
    if run.device_id is not None:  # for whoever reads the queue: the run itself knows its device
        doc["device_id"] = run.device_id
    return json.dumps(doc)


def sqs_sender(queue_url: str | None, region: str | None) -> Sender:
    if not queue_url:
        raise RuntimeError("CLUSTER_QUEUE_URL is not set: runs cannot be sent")
    client = aws.client("sqs", region=region, attempts=3)  # a lost send waits for the sweep: try a little harder

    def send(run: Run) -> None:
        client.send_message(QueueUrl=queue_url, MessageBody=message(run),
                            MessageAttributes=observability.message_attributes())

    return send


def publish(runs: list[Run], make_sender: Callable[[], Sender]) -> list[Run]:
    """Send each run and mark it sent; return the runs left for the sweep. Never raises: the events are
    already committed, and failing the request now would only make the sensor post them twice."""
    errors = (*aws.errors(), RuntimeError)
    try:
        send = make_sender()
    except errors as error:
        log.warning("cannot send clustering runs, the sweep will: %s", error)
        return list(runs)
    left = []
    for run in runs:
        try:
            send(run)
        except errors as error:
            log.warning("clustering run %s (threshold %s) not sent, the sweep will: %s", run.id, run.threshold, error)
            left.append(run)
            continue
        try:
            db.execute(_MARK_SENT, id=run.id)
        except DatabaseUnavailable:
            # Sent but not marked: the sweep sends it again and the clustering side skips the duplicate.
            log.warning("clustering run %s sent but not marked", run.id)
    return left


_UNSENT = """
SELECT id, threshold, device_id FROM clustering_runs
WHERE status = 'pending'
  AND ((enqueued_at IS NULL AND created_at < now() - make_interval(secs => :grace))
       OR enqueued_at < now() - make_interval(secs => :resend))
ORDER BY threshold
FOR UPDATE SKIP LOCKED
"""


def sweep(send: Sender, grace_seconds: float = SWEEP_GRACE_SECONDS,
          resend_after_seconds: float = RESEND_AFTER_SECONDS) -> list[Run]:
    """Send every pending run that ingest committed but did not send, or whose last message is older than
    `resend_after_seconds`; return those sent."""
    sent = []
    with db.transaction() as conn:
        for row in conn.run(_UNSENT, grace=float(grace_seconds), resend=float(resend_after_seconds)):
            run = Run(*row)
            send(run)
            conn.run(_MARK_SENT, id=run.id)
            sent.append(run)
    return sent
