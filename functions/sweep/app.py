"""Scheduled: send the clustering runs whose message was never sent, and record the runs whose worker Lambda
stopped (see wattprint.clustering.sweep)."""


from wattprint import observability, settings
from wattprint.clustering import service as clustering

logger = observability.logger("SweepFunction")


@observability.handler(logger)
def handler(event, context):
    outcome = clustering.sweep_runs(settings.load())
    if outcome["sent"]:
        logger.warning("re-sent clustering runs", extra={"thresholds": outcome["sent"]})
    if outcome["abandoned"]:
        logger.error("clustering runs whose worker was stopped marked failed",
                     extra={"thresholds": outcome["abandoned"]})
    return outcome
