"""Energy API: POST /energy (scope ingest) and the GET /energy routes (scope read). No numpy: the forecast is a
median of a few weeks, done in the standard library."""

from aws_lambda_powertools.event_handler import Response

from wattprint import observability, settings
from wattprint.energy import service
from wattprint.http import json_response, resolver

logger = observability.logger("EnergyFunction")
app = resolver()


def _answer(answer: service.Answer) -> Response:
    headers = {"Vary": "Accept"}
    if answer.csv is not None:
        return Response(status_code=200, content_type="text/csv; charset=utf-8; header=present", body=answer.csv,
                        headers=headers)
    return json_response(200, answer.payload, headers=headers)


def _query():
    event = app.current_event
    return event.resolved_query_string_parameters, event.headers.get("accept")


@app.post("/energy")
def post_energy():
    return json_response(200, service.post_readings(app.current_event.decoded_body or "", settings.load()))


@app.get("/energy")
def get_energy():
    return _answer(service.series(*_query()))


@app.get("/energy/power")
def get_power():
    return _answer(service.power(*_query(), settings.load()))


@app.get("/energy/fleet")
def get_fleet():
    return _answer(service.fleet(*_query()))


@app.get("/energy/top")
def get_top():
    return _answer(service.top(*_query()))


@app.get("/energy/forecast")
def get_forecast():
    return _answer(service.forecast(*_query()))


@observability.handler(logger, api=True)
def handler(event, context):
    return app.resolve(event, context)
