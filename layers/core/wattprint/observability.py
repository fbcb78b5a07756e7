"""What operators watch, set up one way for every handler: Powertools Logger, Metrics (CloudWatch embedded metric
format) and Tracer (X-Ray), and a correlation id that follows a request into the work it triggers.

    from wattprint import observability

    logger = observability.logger("IngestFunction")

    @observability.handler(logger, api=True)
    def handler(event, context): ...

* Logs: one Powertools Logger per function, its service named after it (`wattprint.IngestFunction`), so the
  local stack, where every function shares one process, writes each line under its own function's name and keys.
* Metrics: namespace NAMESPACE, dimension service=SERVICE (the same as the failed-run alarm's), plus a dimension
  of their own for the few that are split (reason, status). Flushed once per invocation, also when it raises.
* Traces: the handler and, as subsegments, every database call (wattprint.db) and every AWS call (botocore is
  patched when the first AWS client is made, see trace_aws_calls). Only in Lambda (settings.tracing_enabled): locally and in tests nothing
  is traced and the X-Ray SDK is not imported.
* Correlation id: an API request's `X-Correlation-Id` header, else its API Gateway request id; SQS messages the
  work sends carry it as the message attribute `correlation_id`, and the function that takes them logs with it.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import threading
import time
import warnings
from typing import Callable, Iterator

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from . import settings

NAMESPACE = "wattprint"
SERVICE = "wattprint"
CORRELATION_ATTRIBUTE = "correlation_id"

# Metric names (template.yaml's dashboard and alarms name them too).
EVENTS_ACCEPTED, EVENTS_REJECTED, REQUESTS = "EventsAccepted", "EventsRejected", "Requests"
RUNS_OPENED, RUNS_DONE, RUNS_FAILED, RUNS_SKIPPED = "RunsOpened", "RunsDone", "RunsFailed", "RunsSkipped"
RUNS_SUPERSEDED = "RunsSuperseded"
FIT_DURATION, RUN_DURATION, EVENTS_BEHIND = "FitDuration", "RunDuration", "EventsBehindNewestRun"
LIVE_CONNECTIONS, PUSHES = "LiveConnections", "Pushes"
ANNOUNCEMENTS_SENT, ANNOUNCEMENTS_SKIPPED = "AnnouncementsSent", "AnnouncementsSkipped"

metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
# Most invocations of most functions have nothing to report: the good case, not worth a warning each time.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

_correlation: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)
_tracer = None
_aws_traced = False
_tracer_lock = threading.Lock()


# ------------------------------------------------------------------------------------------------------ metrics

def count(name: str, value: float = 1, unit: str = MetricUnit.Count, **dimension: str) -> None:
    """Add a metric to this invocation's; with a dimension (reason=..., status=...), as its own EMF record."""
    if not dimension:
        metrics.add_metric(name=name, unit=unit, value=value)
        return
    if is_metrics_disabled():  # single_metric prints whatever POWERTOOLS_METRICS_DISABLED says (Powertools 3.x)
        return
    with single_metric(name=name, unit=unit, value=value, namespace=NAMESPACE) as metric:
        metric.add_dimension(name="service", value=SERVICE)
        for key, item in dimension.items():
            metric.add_dimension(name=key, value=str(item))


def milliseconds(name: str, value: float) -> None:
    count(name, round(value, 1), MetricUnit.Milliseconds)


# ------------------------------------------------------------------------------------------------------- traces

def tracer():
    """The Powertools Tracer, made on first use when tracing is on; None when it is off."""
    global _tracer
    if _tracer is None and settings.tracing_enabled():
        with _tracer_lock:
            if _tracer is None:
                from aws_lambda_powertools import Tracer

                _tracer = Tracer(service=SERVICE, auto_patch=False)
    return _tracer


def trace_aws_calls() -> None:
    """Every AWS call a subsegment from now on (botocore patched once), when tracing is on. wattprint.aws calls this
    before it makes a client, not the tracer when it is made: patching imports botocore.client, about two thirds
    of what tracing adds to a cold start (BENCHMARKS.md, firstrun), which an ingest instance that never sends
    anything (no dashboard, no threshold crossed) does not otherwise import."""
    global _aws_traced
    active = tracer()
    if active is None or _aws_traced:
        return
    with _tracer_lock:
        if not _aws_traced:
            active.patch(["botocore"])  # the client class's method: clients made before are traced too
            _aws_traced = True


@contextlib.contextmanager
def subsegment(name: str) -> Iterator[None]:
    """A subsegment of the current trace around a block (a database call); nothing when tracing is off."""
    active = tracer()
    if active is None:
        yield
        return
    with active.provider.in_subsegment(name):
        yield


# ---------------------------------------------------------------------------------------------- correlation ids

def correlation_id() -> str | None:
    return _correlation.get()


def set_correlation_id(value: str | None, logger: Logger | None = None) -> None:
    _correlation.set(value)
    if logger is not None:
        logger.set_correlation_id(value)


def message_attributes() -> dict:
    """SQS MessageAttributes carrying this work's correlation id (none if it has none)."""
    value = _correlation.get()
    return {CORRELATION_ATTRIBUTE: {"DataType": "String", "StringValue": value}} if value else {}


def correlation_of(record: dict) -> str | None:
    """The correlation id an SQS record (of a Lambda SQS event) carries."""
    attribute = (record.get("messageAttributes") or {}).get(CORRELATION_ATTRIBUTE) or {}
    return attribute.get("stringValue")


def _api_correlation(event: dict) -> str | None:
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    return headers.get("x-correlation-id") or (event.get("requestContext") or {}).get("requestId")


# ----------------------------------------------------------------------------------------------------- handlers

def logger(function: str) -> Logger:
    """This function's logger, service `wattprint.<function>`: Powertools names the standard logger after the
    service, and Loggers of one name share one formatter, so with one name for all (the local stack runs every
    function in one process) a line could carry another function's keys."""
    return Logger(service=f"{SERVICE}.{function}")


def handler(log: Logger, *, api: bool = False, sqs: bool = False) -> Callable:
    """Decorate a Lambda handler: log context and correlation id, metrics flushed per invocation, traced.
    `api`: an API Gateway proxy handler (its correlation id and a Requests metric by status); `sqs`: an SQS
    handler whose records may carry a correlation id (the first one found is used for the invocation)."""

    def decorate(function: Callable) -> Callable:
        @functools.wraps(function)
        def run(event, context):
            if api:
                value = _api_correlation(event)
            elif sqs:
                value = next(filter(None, (correlation_of(r) for r in event.get("Records", []))), None)
            else:
                value = None
            set_correlation_id(value, log)
            started = time.perf_counter()
            active = tracer()
            call = active.capture_lambda_handler(function) if active is not None else function
            try:
                result = call(event, context)
            except Exception:
                if api:
                    count(REQUESTS, status="500")
                raise
            finally:
                set_correlation_id(None)
            if api and isinstance(result, dict) and "statusCode" in result:
                count(REQUESTS, status=str(result["statusCode"]))
            log.debug("handled", extra={"ms": round((time.perf_counter() - started) * 1000, 1)})
            return result

        return log.inject_lambda_context(log_event=False)(metrics.log_metrics(run))

    return decorate
