"""Functions that follow the stored events by a cursor, after ingest's commit: the energy feed and the live
appliance states. Ingest asks one to look (an SQS message) at most once per INTERVAL per instance, since a send
per request would cost more than the request; a follower that found events asks itself again TICK_DELAY later,
so what a skipped request would have asked for is looked at anyway. A request says only that there is something
to look at: {"after_seq": n}, the total its sender saw."""

from __future__ import annotations

import json
import logging
import threading
import time

from . import aws

log = logging.getLogger(__name__)

INTERVAL = 1.0  # s
TICK_DELAY = 1  # s, whole (SQS DelaySeconds)


class Throttle:
    """At most one request per interval, for one instance (the local stack's worker threads share it)."""

    def __init__(self, interval: float = INTERVAL, clock=time.monotonic):
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._sent_at = float("-inf")

    def ready(self) -> bool:
        """Whether take() would succeed now (a caller with a dearer check of its own asks this first)."""
        with self._lock:
            return self._clock() - self._sent_at >= self.interval

    def take(self) -> bool:
        """True, once per interval: the caller sends."""
        now = self._clock()
        with self._lock:
            if now - self._sent_at < self.interval:
                return False
            self._sent_at = now
            return True


def ask(queue: str | None, after_seq: int, delay_seconds: int = 0) -> bool:
    """One request on a follower's queue (best effort, never raises); False if there is no queue or it failed."""
    if not queue:
        return False
    try:
        aws.client("sqs").send_message(QueueUrl=queue, MessageBody=json.dumps({"after_seq": int(after_seq)}),
                                       **({"DelaySeconds": int(delay_seconds)} if delay_seconds else {}))
        return True
    except aws.errors() as error:
        log.warning("%s not asked to look (the next events or its tick ask again): %s", queue.rsplit("/", 1)[-1],
                    error)
        return False


def well_formed(body: str) -> bool:
    try:
        doc = json.loads(body)
    except ValueError:
        return False
    after = doc.get("after_seq") if isinstance(doc, dict) else None
    return set(doc) == {"after_seq"} and isinstance(after, int) and not isinstance(after, bool)


def malformed(bodies: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (message id, reason) of each body that is not a request: dropped, since retrying cannot mend it."""
    return [(message_id, f"not a request to look: {body[:200]!r}") for message_id, body in bodies
            if not well_formed(body)]
