"""Local stand-ins for Lambda's event sources: SQS event source mappings and schedules.

The SQS poller behaves like Lambda's: it receives up to BatchSize messages, calls the handler with an SQS
event, deletes the messages that succeeded and leaves the others to become visible again after the queue's
visibility timeout (and, after maxReceiveCount receives, to move to the dead-letter queue, which moto does).
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
import uuid
from datetime import datetime, timezone

from .runtime import Functions
from .template import App, Queue, Schedule, SqsTrigger

log = logging.getLogger("local.sqs")


def create_queues(client, app: App) -> dict[str, str]:
    """Create the template's queues (dead-letter queues first); return logical id → queue URL."""
    urls: dict[str, str] = {}

    def create(queue: Queue) -> None:
        if queue.logical_id in urls:
            return
        attributes = {"VisibilityTimeout": str(queue.visibility_timeout)}
        if queue.dead_letter:
            create(app.queues[queue.dead_letter])
            dlq_arn = client.get_queue_attributes(QueueUrl=urls[queue.dead_letter], AttributeNames=["QueueArn"])
            attributes["RedrivePolicy"] = (
                f'{{"deadLetterTargetArn": "{dlq_arn["Attributes"]["QueueArn"]}", '
                f'"maxReceiveCount": "{queue.max_receive_count}"}}')
        urls[queue.logical_id] = client.create_queue(QueueName=queue.name, Attributes=attributes)["QueueUrl"]

    for queue in app.queues.values():
        create(queue)
    return urls


def sqs_event(messages: list[dict], queue_arn: str, region: str) -> dict:
    def attributes(message):
        return {name: {"stringValue": value.get("StringValue"), "binaryValue": value.get("BinaryValue"),
                       "stringListValues": [], "binaryListValues": [], "dataType": value["DataType"]}
                for name, value in (message.get("MessageAttributes") or {}).items()}

    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": m.get("Attributes", {}), "messageAttributes": attributes(m), "md5OfBody": m["MD5OfBody"],
        "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": region,
    } for m in messages]}


class SqsPoller(threading.Thread):
    def __init__(self, client, queue_url: str, trigger: SqsTrigger, functions: Functions, region: str,
                 wait_seconds: int = 1, warm: bool = False):
        super().__init__(name=f"sqs-{trigger.function}", daemon=True)
        self.client, self.queue_url, self.trigger = client, queue_url, trigger
        self.functions, self.region, self.wait_seconds = functions, region, wait_seconds
        self.queue_arn = client.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.warm = warm
        self.initialised = threading.Event()  # set once warm's init is over (or at once without it)
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def poll_once(self) -> int:
        """Receive and process one batch; return how many messages it held."""
        messages = self._receive(self.wait_seconds, self.trigger.batch_size)
        if not messages:
            return 0
        # As the event source mapping does: with a batching window, gather until it closes or the batch is full.
        # Long polls (answered as soon as a message is there), not short ones on a timer: the energy-changes
        # queue's 10 s window, polled every 50 ms, was a tenth of the local stack's interpreter time under ingest
        # load (moto serves each call in this process, under the same GIL as the handlers).
        closes = time.monotonic() + self.trigger.batching_window
        while len(messages) < self.trigger.batch_size and not self._stopping.is_set():
            left = closes - time.monotonic()
            if left <= 0:
                break
            wait = min(int(left), self.wait_seconds)
            if wait == 0:  # WaitTimeSeconds is whole seconds (the window's last fraction), or long polls are off
                self._stopping.wait(min(left, 0.25))
            messages += self._receive(wait, self.trigger.batch_size - len(messages))
        try:
            result = self.functions.invoke(self.trigger.function, sqs_event(messages, self.queue_arn, self.region))
        except Exception:  # noqa: BLE001 — as on Lambda, a crash fails the whole batch; it will be retried
            log.error("%s failed; batch left for redelivery:\n%s", self.trigger.function, traceback.format_exc())
            return len(messages)
        failed = set()
        if self.trigger.report_failures and isinstance(result, dict):
            failed = {item["itemIdentifier"] for item in result.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.client.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)])
        if failed:
            log.warning("%s reported %d failed record(s); left for redelivery", self.trigger.function, len(failed))
        return len(messages)

    def _receive(self, wait_seconds: int, at_most: int) -> list[dict]:
        return self.client.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=min(at_most, 10), WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"], MessageAttributeNames=["All"],
        ).get("Messages", [])

    def run(self) -> None:
        if self.warm:  # this instance's init before its first message, as provisioned concurrency would have it
            try:
                self.functions.handler(self.trigger.function)
            except Exception:  # noqa: BLE001 — the first invocation reports it properly
                log.error("%s could not be initialised:\n%s", self.trigger.function, traceback.format_exc())
        self.initialised.set()
        while not self._stopping.is_set():
            try:
                self.poll_once()
            except Exception:  # noqa: BLE001 — keep polling, as the event source mapping would
                log.error("SQS poll failed:\n%s", traceback.format_exc())
                self._stopping.wait(1)


def scheduled_event() -> dict:
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "000000000000", "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": "us-east-1", "resources": [], "detail": {}}


class Scheduler(threading.Thread):
    """Invokes a scheduled function at start and then at its rate."""

    def __init__(self, schedule: Schedule, functions: Functions):
        super().__init__(name=f"schedule-{schedule.function}", daemon=True)
        self.schedule, self.functions = schedule, functions
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                self.functions.invoke(self.schedule.function, scheduled_event())
            except Exception:  # noqa: BLE001 — a failed run is logged; the next tick tries again
                log.error("%s failed:\n%s", self.schedule.function, traceback.format_exc())
            self._stopping.wait(max(0.0, self.schedule.seconds - (time.monotonic() - started)))
