"""Every domain error, each with its HTTP status and code: the HTTP layer (wattprint.http) answers any
ServiceError as {"error": {"code", "message", ...details}} with no case of its own.

The capabilities' errors live here too, grouped by capability, so that the API's error codes are one list; this
module imports nothing, so defining them here makes the base depend on no capability."""

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


class InvalidParameter(BadRequest):
    """A query parameter (or path parameter) whose value does not fit; `parameter` names it."""

    code = "invalid_parameter"


class UnknownParameter(BadRequest):
    code = "unknown_parameter"


class Conflict(ServiceError):
    status = 409
    code = "conflict"


# ------------------------------------------------------------------------------------------------- ingest

class InvalidEvent(BadRequest, ValueError):
    """An event (text line or JSON object) that cannot become an EventRecord.

    ``field`` is a canonical field name (``active_power_w``, ``peaks`` ...), a section
    name (``"Power"``) when a whole section is missing, or ``None`` for structural
    garbage (for example text after the last field).  ``line`` is the 1-based line
    number; the parser of a single line leaves it ``None`` and the caller may set it.
    Both are attributes rather than fixed details because the caller numbers the line after the fact.
    """

    code = "invalid_event"

    def __init__(self, message: str, field: str | None = None, line: int | None = None):
        super().__init__(message)
        self.field = field
        self.line = line

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        what = f"{self.field}: " if self.field is not None else ""
        return f"{where}{what}{self.message}"

    def __repr__(self) -> str:
        return f"InvalidEvent(message={self.message!r}, field={self.field!r}, line={self.line!r})"

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "line": self.line, "field": self.field}


class InvalidValue(BadRequest):
    """A value the parsers let through but the database refuses (a SQLSTATE class 22 data exception)."""

    code = "invalid_value"


class InvalidIdempotencyKey(BadRequest):
    code = "invalid_idempotency_key"


class IdempotencyKeyReused(ServiceError):
    """The same Idempotency-Key came back with another body: a client bug, never a retry."""

    status = 422
    code = "idempotency_key_reused"


# ------------------------------------------------------------------------------------------------- report

class InvalidCursor(BadRequest):
    code = "invalid_cursor"


class CursorMismatch(BadRequest):
    code = "cursor_mismatch"


class RunNotFound(NotFound):
    code = "run_not_found"


class EventNotFound(NotFound):
    code = "event_not_found"


class RunNotDone(Conflict):
    """?run= names a run that exists but has no labels yet (pending, running) or never will (failed)."""

    code = "run_not_done"


class LabelsRetired(ServiceError):
    """?run= (or a cursor pinned to a run) whose labels were dropped by the label retention (LabelRetention): its
    summary and statistics remain; `runs_with_labels` names the runs that still have labels, newest first."""

    status = 410
    code = "labels_retired"


class NoCompletedRun(Conflict):
    """?label= with no run named and no run completed yet: there are no labels to filter on."""

    code = "no_completed_run"


class DeviceRequired(BadRequest):
    """ClusterScope=device: a report route asked without `device_id`, whose runs and labels are per device."""

    code = "device_id_required"


class ClusterScopeMismatch(Conflict):
    """POST /events to a deployment whose ClusterScope is not the one the stored events were numbered under
    (migration 0019): switching scope on existing data is refused, nothing is stored."""

    code = "cluster_scope_mismatch"


# --------------------------------------------------------------------------------------------- appliances

class InvalidRecording(BadRequest):
    """A recording (CSV) that cannot be read; `row` as a spreadsheet numbers it (the header is row 1)."""

    code = "invalid_recording"

    def __init__(self, message: str, row: int | None = None, column: str | None = None):
        super().__init__(message, row=row, column=column)


class InvalidModel(BadRequest):
    code = "invalid_model"


class UnknownAppliance(BadRequest):
    code = "unknown_appliance"


class TooMuchWork(BadRequest):
    code = "too_much_work"


class ApplianceNotFound(NotFound):
    code = "appliance_not_found"


class InvalidAppliance(BadRequest):
    """A PUT /appliances/{key} body that is not {"name", "kind"} as documented; `field` names what is wrong."""

    code = "invalid_appliance"


class ApplianceNameTaken(Conflict):
    code = "appliance_name_taken"


# ------------------------------------------------------------------------------------------------- energy

class InvalidReading(BadRequest):
    """POST /energy: the body, or one of its readings, is not acceptable. `index` is the reading's 0-based
    position in `data` (None for the body's own fields), `field` the key at fault."""

    code = "invalid_reading"

    def __init__(self, message: str, index: int | None = None, field: str | None = None):
        super().__init__(message, index=index, field=field)


class InsufficientHistory(Conflict):
    """A forecast needs weeks of the device's own history; it says how many there are instead of guessing."""

    code = "insufficient_history"


# ---------------------------------------------------------------------------------------------- dashboard

class AssetNotFound(NotFound):
    code = "asset_not_found"


# --------------------------------------------------------------------------------------------------- live

class Forbidden(ServiceError):
    status = 403
    code = "forbidden"


class TooManyConnections(ServiceError):
    """A $connect past the token's cap of open live connections (LiveConnectionsPerToken)."""

    status = 429
    code = "too_many_connections"


# ----------------------------------------------------------------------------------------- quarantine (admin)

class InvalidQuarantine(BadRequest):
    code = "invalid_quarantine"


class UnknownEvents(NotFound):
    """A quarantine by id named events that do not exist (nothing was quarantined)."""

    code = "event_not_found"


class TooManyEvents(ServiceError):
    """A quarantine filter matched more events than its max_events (nothing was quarantined)."""

    status = 409
    code = "too_many_events"
