"""SQS (the live queue, batched by a 1 s window): announcements of new events and run changes → one push
request for the push function (outside the VPC), which posts to every connected dashboard."""

from aws_lambda_powertools import Logger

from wattprint.live import announce, live

logger = Logger()


@logger.inject_lambda_context(log_event=False)
def handler(event, context):
    # A malformed announcement is logged and dropped with the batch's others delivered: retrying it cannot
    # make it valid, and dashboards catch up from the API anyway.
    announcements = []
    for record in event["Records"]:
        try:
            announcements.append(announce.parse(record["body"]))
        except announce.InvalidAnnouncement as error:
            logger.error("live announcement dropped", extra={"message_id": record["messageId"], "error": str(error)})
    outcome = live.deliver(announcements)
    logger.info("live update pushed", extra=outcome)
    return {"batchItemFailures": []}
