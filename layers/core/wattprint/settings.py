"""Every setting the service reads from its environment, in one place: no other module reads os.environ.

`load()` gives the whole typed Settings; `database_settings()`, `live_settings()`, `aws_settings()` and
`clustering_settings()` give one part of it, for code that needs only that part (the push function runs with no
database settings at all).
Each call answers what the environment says now: the local stack and the tests point the code at servers that
come and go. Reading it is remembered until the environment changes (`_from_environment`), because reading all of
it took about a tenth of a single-event request's time in the handler.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Callable, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass(frozen=True)
class DatabaseSettings:
    host: str
    port: int
    name: str
    user: str
    # "password" (local/dev: password may be empty), "iam" (runtime functions in AWS: a signed, short-lived
    # token), "secret" (the admin function: the RDS-managed master secret).
    auth: str = "password"
    password: str | None = None
    secret_arn: str | None = None
    # "verify-full" in AWS (the RDS CA bundle shipped in the layer), "disable" on loopback.
    sslmode: str = "disable"
    schema: str | None = None  # search_path; tests give each test its own schema
    connect_timeout: float = 10.0
    # Seconds any one statement may run (DB_STATEMENT_TIMEOUT), or None for no limit. The ingest function sets it
    # below its own timeout, so that a blocked statement ends as a 503 the client retries, not as a killed Lambda.
    statement_timeout: float | None = None


@dataclass(frozen=True)
class LiveSettings:
    queue_url: str | None  # LiveQueue: announcements (none: live updates are off)
    push_queue_url: str | None  # PushQueue: the live function's push requests
    management_endpoint: str | None  # the WebSocket API's @connections endpoint, for the push function
    websocket_url: str | None  # what the dashboard connects to (none: no live updates)
    connections_per_token: int = 5  # open live connections one token may hold (the next $connect: 429)


RUN_MODES = ("latest", "every")
SCOPES = ("all", "device")


@dataclass(frozen=True)
class ClusteringSettings:
    # Completed runs whose labels are kept (LABEL_RETENTION; 0 = every run's). Older runs keep their summary and
    # statistics; their label partitions are dropped as a newer run completes.
    label_retention: int = 3
    # CLUSTER_RUNS: "latest" supersedes a run that has not started when a later threshold's run is waiting (no
    # backlog); "every" runs every threshold, for those who need every historical labelling.
    runs: str = "latest"
    # CLUSTER_WINDOW: 0 (the spec) clusters every event up to the threshold; N clusters only the last N of them, for
    # sets too large for one invocation (a departure from the spec: README, "Limits").
    window: int = 0
    # CLUSTER_FIT_THREADS: joblib threads MeanShift runs in (1: the spec's call as written; see fit.fit).
    fit_threads: int = 1
    # CLUSTER_SCOPE: "all" clusters every event as one set; "device" gives each device its own set, numbering,
    # thresholds and runs (the report then answers per device_id). Fixed by the first event stored (0019).
    scope: str = "all"

    @property
    def per_device(self) -> bool:
        return self.scope == "device"

    @property
    def supersede(self) -> bool:
        return self.runs == "latest"


# boto3 reads these itself; a cached client is only valid for the values it was made with.
ENDPOINT_PREFIX = "AWS_ENDPOINT_URL"


@dataclass(frozen=True)
class AwsSettings:
    region: str | None
    endpoints: tuple[tuple[str, str], ...]  # (variable, URL) of AWS_ENDPOINT_URL and every AWS_ENDPOINT_URL_<SERVICE>

    def endpoint_key(self, service: str) -> tuple[str | None, str | None]:
        """(AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL): the endpoint overrides a client of `service` obeys."""
        found = dict(self.endpoints)
        return found.get(f"{ENDPOINT_PREFIX}_{service.upper()}"), found.get(ENDPOINT_PREFIX)


@dataclass(frozen=True)
class AlertSettings:
    method: str  # ALERT_METHOD: whose anomalies drive alerts (robust or minmax); both are scored
    threshold: float  # ALERT_THRESHOLD: the robust score's bound, both ways
    fire_after: int  # ALERT_FIRE_AFTER: consecutive anomalous hours that fire an alert
    resolve_after: int  # ALERT_RESOLVE_AFTER: consecutive normal hours that resolve it
    repeat_hours: float  # ALERT_REPEAT_HOURS: told again this often while it fires, until acknowledged
    quiet_hours: tuple[int, int] | None  # ALERT_QUIET_HOURS "22-7": UTC hours whose notifications wait
    daily_cap: int  # ALERT_DAILY_CAP: notifications per device and UTC day
    notify_queue_url: str | None  # NOTIFY_QUEUE_URL: what is to be told goes there
    topic_arn: str | None  # ALERT_TOPIC_ARN: the SNS topic people subscribe to
    allow_http_webhooks: bool  # WEBHOOK_ALLOW_HTTP: the local stack delivers to http://127.0.0.1


@dataclass(frozen=True)
class Settings:
    database: DatabaseSettings
    cluster_queue_url: str | None
    cluster_threshold: int
    region: str | None
    live: LiveSettings
    aws: AwsSettings
    alerts: AlertSettings
    clustering: ClusteringSettings
    # Energy accounting: an interval between a device's readings longer than this is a gap (carries no energy).
    energy_max_gap_s: int = 7200
    energy_changes_queue_url: str | None = None  # ENERGY_CHANGES_QUEUE_URL: devices whose energy changed
    # ENERGY_FEED_QUEUE_URL: ingest asks the feed function there to feed new events into the series (none: no feed)
    energy_feed_queue_url: str | None = None
    # APPLIANCE_STATES_QUEUE_URL: ingest asks the states function there to decode new events (none: no live states)
    appliance_states_queue_url: str | None = None
    # A clustering run is tried at most this many times when its attempts stop without finishing (a Lambda timeout,
    # out of memory, a crash): then it is marked failed (wattprint.clustering.runs).
    run_max_attempts: int = 3
    # The sweep sends a run again when it is still pending this long after its message was sent (the message was
    # lost, or waits behind others: a duplicate is harmless).
    run_resend_after_seconds: float = 3600.0


T = TypeVar("T")


def _from_environment(read: Callable[..., T]) -> Callable[..., T]:
    """`read(env=None)`, remembered for os.environ as long as it holds the same text.

    os.environ's bytes (CPython's `_data`, what os.environ encodes to and decodes from) are compared with a copy
    taken before the last reading: about a microsecond, where decoding every variable and building the settings
    took about 120. A variable set or removed (a test, the local stack) makes the next call read again; an invalid
    value is not remembered, so every call raises its error. Settings are frozen, so sharing one is safe."""
    remembered: list[tuple[dict, T]] = []

    @functools.wraps(read)
    def settings_for(env=None) -> T:
        if env is not None:
            return read(env)
        raw = os.environ._data
        if remembered:
            seen, value = remembered[0]  # one tuple, swapped whole: another thread sees an old pair or a new one
            if seen == raw:
                return value
        seen = dict(raw)  # before reading: a change made meanwhile then fails the next comparison
        value = read(os.environ)
        remembered[:] = [(seen, value)]
        return value

    return settings_for


def _statement_timeout(env) -> float | None:
    value = env.get("DB_STATEMENT_TIMEOUT")
    if not value:
        return None
    seconds = float(value)
    if not seconds > 0:
        raise ValueError("DB_STATEMENT_TIMEOUT must be a positive number of seconds")
    return seconds


def _database_from_url(url: str, env) -> DatabaseSettings:
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError(f"DATABASE_URL must be a postgresql:// URL, not {parts.scheme!r}")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return DatabaseSettings(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        name=unquote(parts.path.lstrip("/")) or "postgres",
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password) if parts.password else None,
        sslmode=query.get("sslmode", "disable"),
        schema=env.get("DB_SCHEMA") or None,
        connect_timeout=float(env.get("DB_CONNECT_TIMEOUT", "10")),
        statement_timeout=_statement_timeout(env),
    )


@_from_environment
def database_settings(env=None) -> DatabaseSettings:
    """DATABASE_URL wins; then the DB_* variables the template sets; then libpq's usual PG* variables."""
    if env.get("DATABASE_URL"):
        return _database_from_url(env["DATABASE_URL"], env)
    auth = env.get("DB_AUTH", "password")
    if auth not in ("password", "iam", "secret"):
        raise ValueError(f"DB_AUTH must be password, iam or secret, not {auth!r}")
    return DatabaseSettings(
        host=env.get("DB_HOST") or env.get("PGHOST") or "127.0.0.1",
        port=int(env.get("DB_PORT") or env.get("PGPORT") or 5432),
        name=env.get("DB_NAME") or env.get("PGDATABASE") or "postgres",
        user=env.get("DB_USER") or env.get("PGUSER") or "postgres",
        auth=auth,
        password=env.get("PGPASSWORD") if auth == "password" else None,
        secret_arn=env.get("DB_SECRET_ARN") or None,
        sslmode=env.get("DB_SSLMODE") or env.get("PGSSLMODE") or ("disable" if auth == "password" else "verify-full"),
        schema=env.get("DB_SCHEMA") or None,
        connect_timeout=float(env.get("DB_CONNECT_TIMEOUT", "10")),
        statement_timeout=_statement_timeout(env),
    )


@_from_environment
def live_settings(env=None) -> LiveSettings:
    per_token = int(env.get("LIVE_CONNECTIONS_PER_TOKEN", "5"))
    if per_token < 1:
        raise ValueError("LIVE_CONNECTIONS_PER_TOKEN must be a positive integer")
    return LiveSettings(
        queue_url=env.get("LIVE_QUEUE_URL") or None,
        push_queue_url=env.get("PUSH_QUEUE_URL") or None,
        management_endpoint=env.get("LIVE_MANAGEMENT_ENDPOINT") or None,
        websocket_url=env.get("LIVE_WEBSOCKET_URL") or None,
        connections_per_token=per_token,
    )


@_from_environment
def clustering_settings(env=None) -> ClusteringSettings:
    retention = _whole("LABEL_RETENTION", env.get("LABEL_RETENTION", "3"), 0,
                       "runs, 0 or more (0 keeps every run's labels)")
    mode = env.get("CLUSTER_RUNS") or "latest"
    if mode not in RUN_MODES:
        raise ValueError(f"CLUSTER_RUNS must be one of {', '.join(RUN_MODES)}, not {mode!r}")
    window = _whole("CLUSTER_WINDOW", env.get("CLUSTER_WINDOW", "0"), 0,
                    "events, 0 or more (0 clusters every event, as the spec says)")
    threads = _whole("CLUSTER_FIT_THREADS", env.get("CLUSTER_FIT_THREADS", "1"), 1, "threads, 1 or more")
    scope = env.get("CLUSTER_SCOPE") or "all"
    if scope not in SCOPES:
        raise ValueError(f"CLUSTER_SCOPE must be one of {', '.join(SCOPES)}, not {scope!r}")
    if window and scope == "device":  # a device's set stays small: that is what the scope is for (README, "Limits")
        raise ValueError("CLUSTER_WINDOW must be 0 with CLUSTER_SCOPE=device: windows are for ClusterScope=all")
    return ClusteringSettings(label_retention=retention, runs=mode, window=window, fit_threads=threads, scope=scope)


def _whole(name: str, text: str, least: int, what: str) -> int:
    """Variable `name`'s value `text` as a whole number of at least `least`, or a ValueError naming it."""
    try:
        value = int(text)
    except ValueError:
        value = least - 1
    if value < least:
        raise ValueError(f"{name} must be a whole number of {what}, not {text!r}")
    return value


def _region(env) -> str | None:
    return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None


@_from_environment
def aws_settings(env=None) -> AwsSettings:
    endpoints = tuple(sorted((name, value) for name, value in env.items()
                             if value and (name == ENDPOINT_PREFIX or name.startswith(ENDPOINT_PREFIX + "_"))))
    return AwsSettings(region=_region(env), endpoints=endpoints)


def _quiet_hours(text: str) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        start, end = (int(part) for part in text.split("-"))
    except ValueError:
        raise ValueError(f"ALERT_QUIET_HOURS must look like 22-7 (UTC hours), not {text!r}") from None
    if not (0 <= start < 24 and 0 <= end < 24):
        raise ValueError(f"ALERT_QUIET_HOURS hours must be 0–23, not {text!r}")
    return start, end


@_from_environment
def alert_settings(env=None) -> AlertSettings:
    method = env.get("ALERT_METHOD", "robust")
    if method not in ("robust", "minmax"):
        raise ValueError(f"ALERT_METHOD must be robust or minmax, not {method!r}")
    return AlertSettings(
        method=method,
        threshold=float(env.get("ALERT_THRESHOLD", "3.5")),
        fire_after=max(1, int(env.get("ALERT_FIRE_AFTER", "1"))),
        resolve_after=max(1, int(env.get("ALERT_RESOLVE_AFTER", "1"))),
        repeat_hours=float(env.get("ALERT_REPEAT_HOURS", "4")),
        quiet_hours=_quiet_hours(env.get("ALERT_QUIET_HOURS", "")),
        daily_cap=int(env.get("ALERT_DAILY_CAP", "10")),
        notify_queue_url=env.get("NOTIFY_QUEUE_URL") or None,
        topic_arn=env.get("ALERT_TOPIC_ARN") or None,
        allow_http_webhooks=env.get("WEBHOOK_ALLOW_HTTP", "false").lower() == "true",
    )


@_from_environment
def load(env=None) -> Settings:
    threshold = int(env.get("CLUSTER_THRESHOLD", "1000"))
    if threshold < 1:
        raise ValueError("CLUSTER_THRESHOLD must be a positive integer")
    max_gap = int(env.get("ENERGY_MAX_GAP_SECONDS", "7200"))
    if max_gap < 1:
        raise ValueError("ENERGY_MAX_GAP_SECONDS must be a positive integer")
    max_attempts = int(env.get("RUN_MAX_ATTEMPTS", "3"))
    if max_attempts < 1:
        raise ValueError("RUN_MAX_ATTEMPTS must be a positive integer")
    resend = float(env.get("RUN_RESEND_AFTER_SECONDS", "3600"))
    if not resend >= 0:  # also NaN
        raise ValueError("RUN_RESEND_AFTER_SECONDS must be a number of seconds ≥ 0")
    return Settings(
        database=database_settings(env),
        energy_max_gap_s=max_gap,
        cluster_queue_url=env.get("CLUSTER_QUEUE_URL") or None,
        cluster_threshold=threshold,
        region=_region(env),
        live=live_settings(env),
        aws=aws_settings(env),
        alerts=alert_settings(env),
        energy_changes_queue_url=env.get("ENERGY_CHANGES_QUEUE_URL") or None,
        energy_feed_queue_url=env.get("ENERGY_FEED_QUEUE_URL") or None,
        appliance_states_queue_url=env.get("APPLIANCE_STATES_QUEUE_URL") or None,
        clustering=clustering_settings(env),
        run_max_attempts=max_attempts,
        run_resend_after_seconds=resend,
    )


@_from_environment
def tracing_enabled(env=None) -> bool:
    """X-Ray tracing through Powertools' Tracer: in Lambda (LAMBDA_TASK_ROOT is set there) unless
    POWERTOOLS_TRACE_DISABLED says otherwise. Off locally and in tests, where no X-Ray daemon listens, and then
    the X-Ray SDK (~0.3 s to import, botocore with it) is not even imported."""
    disabled = env.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in ("1", "true", "yes", "on")
    return bool(env.get("LAMBDA_TASK_ROOT")) and not disabled
