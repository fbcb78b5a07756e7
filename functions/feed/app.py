"""SQS (the energy feed queue): "feed what is new" requests, from ingest after its commit and from this function
itself a second after a call that fed something. A batch is one call: it feeds the events stored since the last
call into their devices' energy series (see wattprint.energy.service.feed_new); what the messages say does not
matter beyond being well formed. A failed call fails the batch, which SQS retries (and dead-letters after
maxReceiveCount)."""

from wattprint import observability, settings
from wattprint.energy import service as energy

logger = observability.logger("EnergyFeedFunction")


@observability.handler(logger, sqs=True)
def handler(event, context):
    outcome, dropped = energy.feed_requests([(record["messageId"], record["body"]) for record in event["Records"]],
                                            settings.load())
    for message_id, error in dropped:
        logger.error("energy feed request dropped", extra={"message_id": message_id, "error": error})
    logger.info("energy fed", extra=outcome)
    return {"batchItemFailures": []}
