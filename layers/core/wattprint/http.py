"""The HTTP face shared by the API handlers: one error shape, JSON everywhere, query strings checked one way,
request bodies read one way (base64 and gzip, inflated in bounded steps)."""

from __future__ import annotations

import base64
import binascii
import json
import zlib

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError

from .errors import InvalidBody, InvalidParameter, NotFound, PayloadTooLarge, ServiceError, UnknownParameter


GZIP_MAGIC = b"\x1f\x8b"
_INFLATE_STEP = 64 * 1024  # bytes in and out per zlib call


def inflate_gzip(data: bytes, limit: int) -> bytes:
    """Inflate every gzip member of ``data``: InvalidBody if it is not gzip, PayloadTooLarge as soon as the output
    passes ``limit`` bytes (a bomb is never inflated further).

    Input goes in slices of _INFLATE_STEP and output comes out at most that much per call, so memory stays at about
    the limit whatever the ratio.
    """
    out = bytearray()
    view = memoryview(data)
    at = 0
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    pending = b""
    while True:
        if not pending and at < len(view):
            pending, at = view[at:at + _INFLATE_STEP], at + _INFLATE_STEP
        try:
            chunk = inflater.decompress(pending, min(_INFLATE_STEP, limit + 1 - len(out)))
        except zlib.error as error:
            raise InvalidBody(f"the body is not valid gzip: {error}") from None
        out += chunk
        if len(out) > limit:
            raise PayloadTooLarge(f"the body is more than {limit} bytes once inflated")
        if inflater.eof:
            pending = inflater.unused_data
            if not pending and at >= len(view):
                return bytes(out)
            following = bytes(pending[:2]) + bytes(view[at:at + 2 - len(pending[:2])])
            if following != GZIP_MAGIC:
                raise InvalidBody("the body is not valid gzip: bytes follow the last gzip member")
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            continue
        pending = inflater.unconsumed_tail
        if not chunk and not pending and at >= len(view):
            raise InvalidBody("the body is not valid gzip: it ends before the compressed data does")


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
