"""Scheduled: send the clustering runs whose message was never sent, and record the runs whose worker Lambda
stopped (see wattprint.clustering.sweep)."""

from aws_lambda_powertools import Logger

from wattprint import settings
from wattprint.clustering import service as clustering

logger = Logger()


@logger.inject_lambda_context(log_event=False)
def handler(event, context):
    outcome = clustering.sweep_runs(settings.load())
    if outcome["sent"]:
        logger.warning("re-sent clustering runs", extra={"thresholds": outcome["sent"]})
    if outcome["abandoned"]:
        logger.error("clustering runs whose worker was stopped marked failed",
                     extra={"thresholds": outcome["abandoned"]})
    return outcome
