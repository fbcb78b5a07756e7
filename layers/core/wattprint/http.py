"""The HTTP face shared by the API handlers: one error shape, JSON everywhere, query strings checked one way."""

from __future__ import annotations

import json

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError

from .errors import InvalidParameter, NotFound, ServiceError, UnknownParameter


def error_response(error: ServiceError) -> Response:
    return Response(status_code=error.status, content_type=content_types.APPLICATION_JSON,
                    body=json.dumps({"error": error.to_dict()}), headers=error.headers())


def query_params(params: dict | None, allowed: tuple[str, ...]) -> dict[str, str]:
    """The query string as name → value, or 400 on a parameter this route does not take or one given twice.

    `params` is API Gateway's multiValueQueryStringParameters (name → list) or its single-valued form. An unknown
    name is an error rather than ignored: a misspelt filter (?lable=3) must not silently answer unfiltered."""
    out: dict[str, str] = {}
    for name, values in (params or {}).items():
        values = values if isinstance(values, list) else [values]
        if name not in allowed:
            expected = ", ".join(allowed) if allowed else "none"
            raise UnknownParameter(f"unknown query parameter {name!r} (this route takes: {expected})",
                                   parameter=name)
        if len(values) != 1:
            raise InvalidParameter(f"{name} is given {len(values)} times; give it once", parameter=name)
        out[name] = values[0]
    return out


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
