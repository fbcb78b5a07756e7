"""Scheduled: send the clustering runs whose message was never sent (see wattprint.outbox)."""

from aws_lambda_powertools import Logger

from wattprint import outbox, settings

logger = Logger()


@logger.inject_lambda_context(log_event=False)
def handler(event, context):
    config = settings.load()
    sent = outbox.sweep(outbox.sqs_sender(config.cluster_queue_url, config.region))
    if sent:
        logger.warning("re-sent clustering runs", extra={"thresholds": [r.threshold for r in sent]})
    return {"sent": [r.threshold for r in sent]}
