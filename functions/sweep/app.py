"""Scheduled (hourly): each capability's housekeeping, in one wake of the database. Clustering: send the runs whose
message was never sent or was lost, send again (or give up) the runs whose attempt stopped without finishing, purge
expired idempotency keys (see wattprint.clustering.sweep). Alerts: hand over notifications whose hand-over failed,
and re-announce energy changes whose message was lost (see wattprint.alerts.service.sweep). The followers of the
stored events: ask the energy feed and the live appliance states to look if events wait for them (their own
look-again was lost). One schedule for all: every wake keeps a paused Aurora awake for minutes."""


from wattprint import observability, settings
from wattprint.alerts import service as alerts
from wattprint.appliances import service as appliances
from wattprint.clustering import service as clustering
from wattprint.energy import service as energy

logger = observability.logger("SweepFunction")


@observability.handler(logger)
def handler(event, context):
    config = settings.load()
    outcome = clustering.sweep_runs(config)
    if outcome["sent"]:
        logger.warning("sent clustering runs (again)", extra={"thresholds": outcome["sent"]})
    if outcome["rerun"]:
        logger.warning("clustering runs whose attempt stopped without finishing sent again",
                       extra={"thresholds": outcome["rerun"]})
    if outcome["failed"]:
        logger.error("clustering runs given up: their last allowed attempt stopped without finishing",
                     extra={"thresholds": outcome["failed"]})
    outcome["alerts"] = alerts.sweep(alerts.config(config.alerts))
    if any(outcome["alerts"].values()):
        logger.warning("alerts housekeeping handed over what was left", extra=outcome["alerts"])
    outcome["asked"] = {"energy_feed": energy.sweep_feed(config), "appliance_states": appliances.sweep()}
    if any(outcome["asked"].values()):
        logger.info("followers asked to look at events that waited for them", extra=outcome["asked"])
    return outcome
