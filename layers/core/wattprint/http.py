"""The HTTP face shared by the API handlers: one error shape, JSON everywhere."""

from __future__ import annotations

import base64
import binascii
import json

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError

from .errors import InvalidBody, NotFound, ServiceError
from .record import InvalidEvent


def raw_body(event) -> bytes:
    """The request body's bytes: API Gateway sends base64 (isBase64Encoded) when the content type is one of the API's
    binaryMediaTypes, else the body as text."""
    body = event.body
    if not body:
        return b""
    if event.is_base64_encoded:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidBody("the body is marked base64 but is not") from None
    return body.encode("utf-8", "surrogatepass")  # a lone surrogate fails as "not UTF-8" later, as a 400


def error_response(error: ServiceError | InvalidEvent) -> Response:
    headers = error.headers() if isinstance(error, ServiceError) else {}
    return Response(status_code=error.status, content_type=content_types.APPLICATION_JSON,
                    body=json.dumps({"error": error.to_dict()}), headers=headers)


def json_response(status: int, payload, headers: dict | None = None) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON,
                    body=json.dumps(payload, separators=(",", ":")), headers=headers)


def resolver() -> APIGatewayRestResolver:
    """A REST API resolver whose domain errors and unknown routes answer {"error": {...}}."""
    app = APIGatewayRestResolver(strip_prefixes=[])

    @app.exception_handler([ServiceError, InvalidEvent])
    def _service_error(error: ServiceError | InvalidEvent) -> Response:
        return error_response(error)

    @app.not_found
    def _not_found(_: NotFoundError) -> Response:
        return error_response(NotFound(f"no route {app.current_event.http_method} {app.current_event.path}"))

    return app
