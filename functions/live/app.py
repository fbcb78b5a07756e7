"""SQS (the live queue, batched by a 1 s window): announcements of new events and run changes → one push
request for the push function (outside the VPC), which posts to every connected dashboard."""


from wattprint import observability
from wattprint.live import service as live

logger = observability.logger("LiveFunction")


@observability.handler(logger, sqs=True)
def handler(event, context):
    outcome, dropped = live.deliver([(record["messageId"], record["body"]) for record in event["Records"]])
    for message_id, error in dropped:
        logger.error("live announcement dropped", extra={"message_id": message_id, "error": error})
    logger.info("live update pushed", extra=outcome)
    return {"batchItemFailures": []}
