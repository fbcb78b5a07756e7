"""Report API for dashboards (scope `read`): health, cluster summary, runs, labelled events, the OpenAPI document.

Thin: query parameters are read from the API Gateway event here and checked by wattprint.report, which runs the
queries and shapes the answers. No numpy or scikit-learn anywhere on this path (cold start).
"""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response

from wattprint import dashboard, health, settings
from wattprint.report import queries as report
from wattprint.http import json_response, resolver

logger = Logger()
app = resolver()


def _params(allowed: tuple[str, ...]) -> dict[str, str]:
    return report.query_params(app.current_event.resolved_query_string_parameters, allowed)


@app.get("/health")
def get_health():
    healthy, body = health.check()
    return json_response(200 if healthy else 503, body, headers=None if healthy else {"Retry-After": "5"})


@app.get("/clusters/summary")
def get_summary():
    run = report.parse_run(_params(report.SUMMARY_PARAMETERS).get("run"))
    return json_response(200, report.summary(run, settings.load().cluster_threshold))


@app.get("/runs")
def get_runs():
    _params(())
    return json_response(200, report.runs())


@app.get("/events")
def list_events():
    event = app.current_event
    params = event.resolved_query_string_parameters
    query = report.parse_events_query(params, event.headers.get("accept"))
    page = report.events(query)
    headers = {"Vary": "Accept"}
    if page.next:
        headers["X-Next-Cursor"] = page.next
        headers["Link"] = report.next_link(report.query_params(params, report.EVENTS_PARAMETERS), page.next)
    if query.csv:
        return Response(status_code=200, content_type="text/csv; charset=utf-8; header=present",
                        body=report.to_csv(page.items), headers=headers)
    return json_response(200, {"items": page.items, "next": page.next}, headers=headers)


@app.get("/events/<event_id>")
def get_event(event_id: str):
    _params(())
    return json_response(200, report.event(report.parse_event_id(event_id)))


@app.get("/openapi.json")
def get_openapi():
    _params(())
    from wattprint.report import openapi  # only this route needs it (and the ingest constants it imports)

    return json_response(200, openapi.document())


def _page(name: str) -> Response:
    content_type, text = dashboard.asset(name)
    # no-cache: the browser revalidates, so a deploy is seen at the next load.
    return Response(status_code=200, content_type=content_type, body=text, headers={"Cache-Control": "no-cache"})


@app.get("/dashboard")
def get_dashboard():
    _params(())
    return _page("index.html")


@app.get("/dashboard/<asset>")
def get_dashboard_asset(asset: str):
    _params(())
    if asset == "config.json":
        return json_response(200, dashboard.config(), headers={"Cache-Control": "no-cache"})
    return _page(asset)


@logger.inject_lambda_context(log_event=False)
def handler(event, context):
    return app.resolve(event, context)
