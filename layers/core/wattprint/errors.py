"""Domain errors. Handlers turn them into HTTP answers of one shape: {"error": {"code", "message", ...}}."""

from __future__ import annotations


class ServiceError(Exception):
    status = 500
    code = "internal"

    def __init__(self, message: str, **details):
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, **self.details}

    def headers(self) -> dict[str, str]:
        return {}


class BadRequest(ServiceError):
    status = 400
    code = "bad_request"


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class PayloadTooLarge(ServiceError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ServiceError):
    status = 415
    code = "unsupported_media_type"


class DatabaseUnavailable(ServiceError):
    """The database cannot be reached, or Aurora is resuming from its pause: the client should retry."""

    status = 503
    code = "database_unavailable"

    def __init__(self, message: str = "the database is unavailable or resuming; retry shortly",
                 retry_after: int = 5, **details):
        super().__init__(message, **details)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class InvalidBody(BadRequest):
    """A body that is not what its headers say: bad base64, bad gzip, not UTF-8."""

    code = "invalid_body"


class UnsupportedEncoding(UnsupportedMediaType):
    code = "unsupported_content_encoding"


class InvalidValue(BadRequest):
    """A value the parsers let through but the database refuses (a SQLSTATE class 22 data exception)."""

    code = "invalid_value"


class InvalidIdempotencyKey(BadRequest):
    code = "invalid_idempotency_key"


class IdempotencyKeyReused(ServiceError):
    """The same Idempotency-Key came back with another body: a client bug, never a retry."""

    status = 422
    code = "idempotency_key_reused"
