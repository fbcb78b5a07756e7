"""The HTTP face shared by the API handlers: one error shape, JSON everywhere."""

from __future__ import annotations

import json

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError

from .errors import NotFound, ServiceError


def error_response(error: ServiceError) -> Response:
    return Response(status_code=error.status, content_type=content_types.APPLICATION_JSON,
                    body=json.dumps({"error": error.to_dict()}), headers=error.headers())


def json_response(status: int, payload, headers: dict | None = None) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON,
                    body=json.dumps(payload, separators=(",", ":")), headers=headers)


def resolver() -> APIGatewayRestResolver:
    """A REST API resolver whose domain errors and unknown routes answer {"error": {...}}."""
    app = APIGatewayRestResolver(strip_prefixes=[])

    @app.exception_handler(ServiceError)
    def _service_error(error: ServiceError) -> Response:
        return error_response(error)

    @app.not_found
    def _not_found(_: NotFoundError) -> Response:
        return error_response(NotFound(f"no route {app.current_event.http_method} {app.current_event.path}"))

    return app
