"""Admin: runs migrations on deploy (CloudFormation custom resource) and token management when invoked.

    sam remote invoke AdminFunction --event '{"action": "create_token", "scope": "ingest", "name": "s-1"}'
"""

import json
import urllib.request


from wattprint import admin, observability
from wattprint.alerts import service as alerts
from wattprint.clustering import service as clustering
from wattprint.errors import ServiceError
from wattprint.live import service as live

logger = observability.logger("AdminFunction")


def _send_cfn_response(event, context, status: str, reason: str = "", data: dict | None = None) -> None:
    body = json.dumps({
        "Status": status,
        "Reason": reason or f"see CloudWatch log stream {context.log_stream_name}",
        "PhysicalResourceId": event.get("PhysicalResourceId") or "wattprint-migrations",
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "Data": data or {},
    }).encode()
    request = urllib.request.Request(event["ResponseURL"], data=body, method="PUT",
                                     headers={"Content-Type": "", "Content-Length": str(len(body))})
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (CloudFormation's presigned S3 URL)
        response.read()


def _custom_resource(event, context):
    # Delete keeps the schema and data: removing the stack must not be how a database gets dropped.
    if event["RequestType"] == "Delete":
        _send_cfn_response(event, context, "SUCCESS")
        return
    try:
        result = admin.handle({"action": "migrate"})
    except Exception as error:  # noqa: BLE001 — any failure must reach CloudFormation, or the stack hangs
        logger.exception("migration failed")
        _send_cfn_response(event, context, "FAILED", reason=f"migration failed: {error}"[:1000])
        return
    logger.info("migrations applied", extra=result)
    _send_cfn_response(event, context, "SUCCESS", data={"Applied": ",".join(result["applied"]) or "none"})


@observability.handler(logger)  # events may carry token material
def handler(event, context):
    if "RequestType" in event and "ResponseURL" in event:
        return _custom_resource(event, context)
    try:
        # A revoked token's live connections close; clustering and alerts add their operator actions (quarantine,
        # webhooks).
        return admin.handle(event, connections=live, more={**clustering.OPERATOR_ACTIONS, **alerts.OPERATOR_ACTIONS})
    except ServiceError as error:
        return {"error": error.to_dict()}
