"""The live WebSocket API's $connect / $disconnect: keep the connections table current.

$connect has already been authorised (a read token, by the REQUEST authorizer) when this runs; it is refused
with 429 when the token holds its cap of open connections. There is no $default route: dashboards only listen.
"""

import json

from wattprint import observability
from wattprint.errors import ServiceError
from wattprint.live import service as live

logger = observability.logger("LiveSocketFunction")


@observability.handler(logger)
def handler(event, context):
    request = event["requestContext"]
    route, connection_id = request["routeKey"], request["connectionId"]
    if route == "$connect":
        try:
            live.connect(connection_id, request.get("authorizer") or {})
        except ServiceError as error:
            logger.warning("live connection refused", extra={"error": error.to_dict()})
            return {"statusCode": error.status, "body": json.dumps({"error": error.to_dict()})}
    elif route == "$disconnect":
        live.disconnect(connection_id)
    return {"statusCode": 200}
