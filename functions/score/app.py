"""SQS (the energy-changes queue): one message per device whose energy changed, {"device_id": n}; its completed
hours are scored and its alerts moved on (see wattprint.alerts.service.score_changes). A redelivered message
finds nothing left to do; a failed one is retried by SQS and dead-lettered after maxReceiveCount."""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from wattprint import observability, settings
from wattprint.alerts import service as alerts

logger = observability.logger("ScoreFunction")
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record, lambda_context=None):
    outcome = alerts.score_message(record.body, alerts.config(settings.load().alerts))
    logger.info("energy changes scored", extra=outcome)
    return outcome


@observability.handler(logger, sqs=True)
def handler(event, context):
    return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                    context=context)
