"""The energy capability's domain errors (codes shared with the report API where the meaning is the same)."""

from __future__ import annotations

from ..errors import BadRequest, ServiceError


class InvalidReading(BadRequest):
    """POST /energy: the body, or one of its readings, is not acceptable. `index` is the reading's 0-based
    position in `data` (None for the body's own fields), `field` the key at fault."""

    code = "invalid_reading"

    def __init__(self, message: str, index: int | None = None, field: str | None = None):
        super().__init__(message, index=index, field=field)


class InvalidParameter(BadRequest):
    code = "invalid_parameter"


class UnknownParameter(BadRequest):
    code = "unknown_parameter"


class InsufficientHistory(ServiceError):
    """A forecast needs weeks of the device's own history; it says how many there are instead of guessing."""

    status = 409
    code = "insufficient_history"
