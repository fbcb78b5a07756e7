"""Report API: health, and (later) labelled events and cluster aggregates for dashboards."""

from aws_lambda_powertools import Logger

from wattprint import health
from wattprint.http import json_response, resolver

logger = Logger()
app = resolver()


@app.get("/health")
def get_health():
    healthy, body = health.check()
    return json_response(200 if healthy else 503, body, headers=None if healthy else {"Retry-After": "5"})


@logger.inject_lambda_context(log_event=False)
def handler(event, context):
    return app.resolve(event, context)
