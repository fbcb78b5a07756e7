"""Appliances: GET /appliances (scope read) lists every appliance key, its name and the runs it was seen in;
PUT /appliances/{key} (scope ingest) names one. Thin: one wattprint.appliances.service call per route."""

from urllib.parse import unquote

from aws_lambda_powertools import Logger

from wattprint.appliances import service
from wattprint.http import json_response, resolver

logger = Logger()
app = resolver()


@app.get("/appliances")
def list_appliances():
    return json_response(200, service.appliances(app.current_event.resolved_query_string_parameters))


@app.put("/appliances/<key>")
def name_appliance(key: str):
    event = app.current_event
    named = service.name(unquote(key), event.decoded_body, event.headers.get("content-type"))
    logger.info("appliance named", extra={"appliance_key": named["key"]})
    return json_response(200, named)


@logger.inject_lambda_context(log_event=False)
def handler(event, context):
    return app.resolve(event, context)
