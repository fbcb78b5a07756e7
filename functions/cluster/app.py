"""SQS: one clustering run per message {"run_id", "threshold"} (see wattprint.clustering.service).

A record whose run is done, failed for good (degenerate data, missing events) or does not exist succeeds: the
message is deleted. A record that must be tried again (database unreachable, run leased to another worker, an
unexpected error, a malformed body) is reported in batchItemFailures: SQS redelivers it after the visibility
timeout and moves it to the dead-letter queue after maxReceiveCount receives.
"""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from wattprint import observability, settings
from wattprint.clustering import service as clustering

logger = observability.logger("ClusterFunction")
clustering.prepare()  # the init phase imports scikit-learn, not the first run (docs/deploy.md)
# With BatchSize 1 a failed record is the whole batch, for which Powertools would raise by default; report it
# instead, so the invocation ends cleanly and only that message is retried.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record, lambda_context=None):
    remaining = lambda_context.get_remaining_time_in_millis() if lambda_context is not None else None
    try:
        outcome = clustering.process_message(record.body, remaining, settings.load().run_max_attempts)
    except Exception as error:
        logger.warning("clustering message left for redelivery", extra={
            "message_id": record.message_id, "body": record.body, "error": f"{type(error).__name__}: {error}"},
            exc_info=not clustering.is_transient(error))
        raise
    logger.info("clustering message settled", extra=outcome)
    return outcome


@observability.handler(logger, sqs=True)
def handler(event, context):
    return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                    context=context)
