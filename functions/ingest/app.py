"""POST /events: sensors post raw events (text, one per line) or canonical records (JSON)."""


from wattprint import observability, settings
from wattprint.http import json_response, raw_body, resolver
from wattprint.ingest import service as ingest

logger = observability.logger("IngestFunction")
app = resolver()


@app.post("/events")
def post_events():
    event = app.current_event
    headers = event.headers
    stored = ingest.accept(raw_body(event), headers.get("content-type"), settings.load(),
                           content_encoding=headers.get("content-encoding"),
                           idempotency_key=headers.get("idempotency-key"),
                           principal=event.request_context.authorizer.principal_id or "")
    if stored.runs:
        logger.info("clustering runs opened", extra={"thresholds": [r.threshold for r in stored.runs]})
    return json_response(201, {"ids": stored.ids, "count": len(stored.ids), "total": stored.total},
                         {"Idempotent-Replayed": "true"} if stored.replayed else None)


@observability.handler(logger, api=True)
def handler(event, context):
    return app.resolve(event, context)
