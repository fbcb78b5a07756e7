"""Appliances. States from the mains: PUT /appliances/models/{name} (scope ingest) trains a model from a recording
of the appliance alone; POST /appliances/label (scope read) labels a mains recording; GET /appliances/models lists
them. Keys: GET /appliances (scope read) lists every appliance key, its name and the runs it was seen in;
PUT /appliances/{key} (scope ingest) names one.
Live states: GET /appliances/states (scope read), each device x appliance's latest decoded state. Plain Python all the way down (no numpy: cold start)."""

from urllib.parse import unquote

from aws_lambda_powertools.event_handler import Response

from wattprint import observability
from wattprint.appliances import service
from wattprint.http import json_response, query_params, resolver

logger = observability.logger("ApplianceFunction")
app = resolver()


def _query(*allowed: str) -> dict:
    return query_params(app.current_event.resolved_query_string_parameters, allowed)


@app.put("/appliances/models/<name>")
def put_model(name: str):
    event = app.current_event
    states = _query("states").get("states")
    created, model = service.train(unquote(name), event.decoded_body or "", event.headers.get("content-type"), states)
    logger.info("appliance model stored", extra={"appliance": model["name"], "states": len(model["states"])})
    return json_response(201 if created else 200, model)


@app.get("/appliances/models")
def get_models():
    _query()
    return json_response(200, {"models": service.models()})


@app.post("/appliances/label")
def post_label():
    event = app.current_event
    names = _query("models").get("models")
    labelled = service.label(event.decoded_body or "", event.headers.get("content-type"), names)
    return Response(status_code=200, content_type="text/csv; charset=utf-8; header=present", body=labelled.csv,
                    headers={"X-Rho-Rms": f"{labelled.decoded.rho_rms:.3f}",
                             "X-Rho-Peak": f"{labelled.decoded.rho_peak:.3f}"})



@app.get("/appliances/states")
def appliance_states():
    return json_response(200, service.appliance_states(app.current_event.resolved_query_string_parameters))


@app.get("/appliances")
def list_appliances():
    return json_response(200, service.appliances(app.current_event.resolved_query_string_parameters))


@app.put("/appliances/<key>")
def name_appliance(key: str):
    event = app.current_event
    named = service.name_appliance(unquote(key), event.decoded_body, event.headers.get("content-type"))
    logger.info("appliance named", extra={"appliance_key": named["key"]})
    return json_response(200, named)


@observability.handler(logger, api=True)
def handler(event, context):
    return app.resolve(event, context)
