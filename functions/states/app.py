"""SQS (the appliance states queue): "decode what is new" requests, from ingest after its commit and from this
function itself a second after a call that decoded something. A batch is one call: it decodes the events stored
since the last call with every stored appliance model and stores each device x appliance's latest state (see
wattprint.appliances.states); what the messages say does not matter beyond being well formed. A failed call
fails the batch, which SQS retries (and dead-letters after maxReceiveCount)."""

from wattprint import observability
from wattprint.appliances import service as appliances

logger = observability.logger("ApplianceStatesFunction")


@observability.handler(logger, sqs=True)
def handler(event, context):
    outcome, dropped = appliances.decode_requests([(record["messageId"], record["body"])
                                                   for record in event["Records"]])
    for message_id, error in dropped:
        logger.error("appliance states request dropped", extra={"message_id": message_id, "error": error})
    logger.info("appliance states decoded", extra=outcome)
    return {"batchItemFailures": []}
