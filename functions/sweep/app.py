"""Scheduled: send the clustering runs whose message was never sent or was lost, and send again (or give up) the
runs whose attempt stopped without finishing (see wattprint.clustering.sweep)."""

from aws_lambda_powertools import Logger

from wattprint import settings
from wattprint.clustering import service as clustering
from wattprint.metrics import metrics

logger = Logger()


@metrics.log_metrics  # RunsFailed, when runs were given up (alarmed)
@logger.inject_lambda_context(log_event=False)
def handler(event, context):
    outcome = clustering.sweep_runs(settings.load())
    if outcome["sent"]:
        logger.warning("sent clustering runs (again)", extra={"thresholds": outcome["sent"]})
    if outcome["rerun"]:
        logger.warning("clustering runs whose attempt stopped without finishing sent again",
                       extra={"thresholds": outcome["rerun"]})
    if outcome["failed"]:
        logger.error("clustering runs given up: their last allowed attempt stopped without finishing",
                     extra={"thresholds": outcome["failed"]})
    return outcome
