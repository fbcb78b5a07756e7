"""The live WebSocket API's $connect / $disconnect: keep the connections table current.

$connect has already been authorised (a read token, by the REQUEST authorizer) when this runs; it is refused
with 429 when the token holds its cap of open connections. There is no $default route: dashboards only listen.
"""

import json

from aws_lambda_powertools import Logger

from wattprint import settings
from wattprint.live import live

logger = Logger()


@logger.inject_lambda_context(log_event=False)
def handler(event, context):
    request = event["requestContext"]
    route, connection_id = request["routeKey"], request["connectionId"]
    if route == "$connect":
        authorizer = request.get("authorizer") or {}
        try:
            token_id = int(authorizer["token_id"])
        except (KeyError, TypeError, ValueError):
            # Fail closed: without the token's id its connections could be neither capped nor closed on revoke.
            logger.error("$connect without the authorizer's token_id", extra={"authorizer": sorted(authorizer)})
            return {"statusCode": 403, "body": json.dumps({"message": "Forbidden"})}
        cap = settings.live_settings().connections_per_token
        if not live.connect(connection_id, token_id, authorizer.get("token_name"), cap):
            logger.warning("live connection refused: token at its cap",
                           extra={"token_name": authorizer.get("token_name"), "cap": cap})
            return {"statusCode": 429, "body": json.dumps(
                {"error": {"code": "too_many_connections",
                           "message": f"this token has {cap} live connections open already; close one"}})}
    elif route == "$disconnect":
        live.disconnect([connection_id])
    return {"statusCode": 200}
