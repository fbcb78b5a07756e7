"""The push function's work: post live messages to dashboard connections through API Gateway's `@connections`.

It runs outside the VPC (the management API is a public endpoint and the VPC has no NAT), so it touches no
database: the live function queues {"endpoint", "connections", "messages"}, and connections found gone are
announced back on the live queue for the live function to forget. Nothing here imports the database driver.
"""

from __future__ import annotations

import json

from .. import aws
from . import announce


def post(endpoint: str, connection_ids: list[str], payloads: list[dict]) -> list[str]:
    """Post every message to every connection; return the connections that are gone."""
    client = aws.client("apigatewaymanagementapi", endpoint=endpoint)
    gone = []
    texts = [json.dumps(m, separators=(",", ":")).encode() for m in payloads]
    for connection_id in connection_ids:
        for text in texts:
            try:
                client.post_to_connection(ConnectionId=connection_id, Data=text)
            except client.exceptions.GoneException:
                gone.append(connection_id)
                break
    return gone


def close(endpoint: str, connection_ids: list[str]) -> int:
    """Close connections (a revoked token's); return how many were still open."""
    client = aws.client("apigatewaymanagementapi", endpoint=endpoint)
    closed = 0
    for connection_id in connection_ids:
        try:
            client.delete_connection(ConnectionId=connection_id)
            closed += 1
        except client.exceptions.GoneException:
            pass  # closed already
    return closed


def push(request: dict) -> list[str]:
    """One request from the push queue: post its messages and announce the connections found gone, or, for
    {"endpoint", "close": [...]}, close those connections (the live side has forgotten them already)."""
    if "close" in request:
        close(request["endpoint"], request["close"])
        return []
    gone = post(request["endpoint"], request["connections"], request["messages"])
    if gone:
        announce.connections_gone(gone)
    return gone
