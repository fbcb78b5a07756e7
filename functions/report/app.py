"""Report API for dashboards (scope `read`): health, cluster summary, runs, labelled events, the OpenAPI document,
and the dashboard's static page.

Thin: each route hands the request's query parameters to one wattprint.report.service entry (or health, or the
dashboard), which checks them and answers. No numpy or scikit-learn anywhere on this path (cold start).
"""

from aws_lambda_powertools.event_handler import Response

from wattprint import dashboard, health, observability
from wattprint.http import json_response, resolver
from wattprint.report import service as report

logger = observability.logger("ReportFunction")
app = resolver()


def _query() -> dict | None:
    return app.current_event.resolved_query_string_parameters


@app.get("/health")
def get_health():
    healthy, body = health.check()
    return json_response(200 if healthy else 503, body, headers=None if healthy else {"Retry-After": "5"})


@app.get("/clusters/summary")
def get_summary():
    return json_response(200, report.summary(_query()))


@app.get("/runs")
def get_runs():
    return json_response(200, report.runs(_query()))


@app.get("/events")
def list_events():
    answer = report.events(_query(), app.current_event.headers.get("accept"))
    if answer.csv:
        return Response(status_code=200, content_type="text/csv; charset=utf-8; header=present",
                        body=answer.body, headers=answer.headers)
    return json_response(200, answer.body, headers=answer.headers)


@app.get("/events/<event_id>")
def get_event(event_id: str):
    return json_response(200, report.event(event_id, _query()))


@app.get("/openapi.json")
def get_openapi():
    return json_response(200, report.openapi(_query()))


def _page(name: str) -> Response:
    content_type, text = dashboard.asset(name, _query())
    # no-cache: the browser revalidates, so a deploy is seen at the next load.
    return Response(status_code=200, content_type=content_type, body=text, headers={"Cache-Control": "no-cache"})


@app.get("/dashboard")
def get_dashboard():
    return _page("index.html")


@app.get("/dashboard/<asset>")
def get_dashboard_asset(asset: str):
    if asset == "config.json":
        return json_response(200, dashboard.config(_query()), headers={"Cache-Control": "no-cache"})
    return _page(asset)


@observability.handler(logger, api=True)
def handler(event, context):
    return app.resolve(event, context)
