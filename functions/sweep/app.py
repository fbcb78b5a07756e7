"""Scheduled (hourly): each capability's housekeeping, in one wake of the database. Clustering: send the runs whose
message was never sent, record the runs whose worker Lambda stopped, purge expired idempotency keys (see
wattprint.clustering.sweep). Alerts: hand over notifications whose hand-over failed, and re-announce energy
changes whose message was lost (see wattprint.alerts.service.sweep). One schedule for both: every wake keeps a
paused Aurora awake for minutes."""


from wattprint import observability, settings
from wattprint.alerts import service as alerts
from wattprint.clustering import service as clustering

logger = observability.logger("SweepFunction")


@observability.handler(logger)
def handler(event, context):
    config = settings.load()
    outcome = clustering.sweep_runs(config)
    if outcome["sent"]:
        logger.warning("re-sent clustering runs", extra={"thresholds": outcome["sent"]})
    if outcome["abandoned"]:
        logger.error("clustering runs whose worker was stopped marked failed",
                     extra={"thresholds": outcome["abandoned"]})
    outcome["alerts"] = alerts.sweep(alerts.config(config.alerts))
    if any(outcome["alerts"].values()):
        logger.warning("alerts housekeeping handed over what was left", extra=outcome["alerts"])
    return outcome
