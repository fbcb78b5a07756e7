"""Alerts API (scope `read`): the scored hours, the alerts, and acknowledging one (see wattprint.alerts)."""


from wattprint import observability
from wattprint.alerts import service as alerts
from wattprint.http import json_response, resolver

logger = observability.logger("AlertsFunction")
app = resolver()


@app.get("/anomalies")
def get_anomalies():
    return json_response(200, alerts.anomalies(app.current_event.resolved_query_string_parameters))


@app.get("/alerts")
def get_alerts():
    return json_response(200, alerts.alerts(app.current_event.resolved_query_string_parameters))


@app.post("/alerts/<alert_id>/ack")
def post_ack(alert_id: str):
    return json_response(200, alerts.acknowledge(alert_id))


@observability.handler(logger, api=True)
def handler(event, context):
    return app.resolve(event, context)
