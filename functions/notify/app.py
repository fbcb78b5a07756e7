"""SQS (the notify queue): each message is one notification for one target — the SNS topic or a webhook — and
is delivered here, outside the VPC (webhooks are on the internet; the VPC has no NAT). It touches no database:
the message carries what it needs. A failed delivery is tried again later, each time later (backoff), and
dead-lettered after the queue's maxReceiveCount; a webhook that is down never holds up scoring."""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from wattprint import observability, settings
from wattprint.alerts import service as alerts

logger = observability.logger("NotifyFunction")
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record, lambda_context=None):
    try:
        target = alerts.deliver(record.body)
    except Exception as error:
        alerts.back_off(record.receipt_handle, int(record.attributes.approximate_receive_count),
                        settings.load().alerts.notify_queue_url)
        logger.warning("notification not delivered; tried again later", extra={"error": str(error)})
        raise
    logger.info("notification delivered", extra={"target": target})
    return target


@observability.handler(logger, sqs=True)
def handler(event, context):
    return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                    context=context)
