"""The live WebSocket API's $connect / $disconnect / $default: keep the connections table current.

$connect has already been authorised (a read token, by the REQUEST authorizer) when this runs.
"""


from wattprint import observability
from wattprint.live import service as live

logger = observability.logger("LiveSocketFunction")


@observability.handler(logger)
def handler(event, context):
    request = event["requestContext"]
    route, connection_id = request["routeKey"], request["connectionId"]
    if route == "$connect":
        live.connect(connection_id, (request.get("authorizer") or {}).get("token_name"))
    elif route == "$disconnect":
        live.disconnect(connection_id)
    # $default: dashboards only listen; anything they send is ignored.
    return {"statusCode": 200}
