"""Plain SQL migrations, applied in file-name order and recorded in `schema_migrations`.

Two runners may start at once (a deploy's custom resource and the local stack, or tests in parallel): a
session-level advisory lock makes the second wait and then find nothing left to do.
"""

from __future__ import annotations

from pathlib import Path

from .db import Connection

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
LOCK_KEY = 0x77617474_7072696E  # "wattprin"

_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""

# One database login per role of function (template.yaml gives each function its DB_USER and an rds-db:connect for
# that user only). Each gets the rows its own path touches and nothing else: only the authorizer reads api_tokens,
# ingest can neither read tokens nor delete or read back events (beyond the ids it returns), the report only reads.
# The admin function runs the migrations as the master user, which owns everything. `{events_id}` is the events
# id sequence: the batch ingest path reserves ids on it with setval (wattprint.store).
_ENERGY_FUNCTIONS = ("energy_write_readings(integer, integer[], smallint, integer[], bigint[], smallint[], float8[], "
                     "smallint[], integer, bigint), energy_write_buckets(integer[], bigint[], bigint[], integer[], "
                     "bigint[], float8[], bigint[], bigint[], bigint[])")
_ENERGY_WRITES = (
    "GRANT SELECT, INSERT, UPDATE ON energy_readings, energy_days TO {role}",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON energy_buckets TO {role}",  # a bucket a correction empties goes
    "GRANT SELECT, INSERT, UPDATE ON energy_changes TO {role}",  # the change feed the alerts read (0014)
    # Readings upserted and their buckets written (0017): a sensor request's feed in one round trip.
    f"GRANT EXECUTE ON FUNCTION {_ENERGY_FUNCTIONS} TO {{role}}",
)
# Every function that announces on the live queue first asks whether a dashboard is connected (live.announce.Gate):
# without this its count fails, the gate fails open, and every request announces (one SQS send each, issue 18).
_COUNT_DASHBOARDS = "GRANT SELECT (connection_id) ON live_connections TO {role}"
ROLES: dict[str, tuple[str, ...]] = {
    "ingest": (
        _COUNT_DASHBOARDS,
        "GRANT SELECT (id, seq), INSERT ON events TO {role}",
        "GRANT USAGE, UPDATE ON SEQUENCE {events_id} TO {role}",
        "GRANT SELECT, UPDATE ON event_counter TO {role}",
        "GRANT SELECT, INSERT, UPDATE ON device_counters TO {role}",  # ClusterScope=device: numbering per device (0019)
        # Opening runs (the outbox row) and marking them sent.
        "GRANT SELECT (id, threshold, sends), INSERT, UPDATE (enqueued_at, sends) ON clustering_runs TO {role}",
        # Idempotency-Key answers (0007): recorded with the events, recalled for a retry, an expired one replaced.
        "GRANT SELECT, INSERT, UPDATE ON idempotency_keys TO {role}",
        # Whether to ask for live appliance states (0018): is any model stored at all.
        "GRANT SELECT (id) ON appliance_models TO {role}",
    ),
    # POST /energy and the GET /energy routes.
    "energy": (*_ENERGY_WRITES, _COUNT_DASHBOARDS),
    # The feed function (0022): the new events' power as readings, the sensors' clocks, the buckets and days, the
    # cursor moved; the connection count says whether a dashboard is told.
    "feed": (
        "GRANT SELECT (seq, device_id, sensor_time, active_power_w, received_at) ON events TO {role}",
        "GRANT SELECT ON event_counter TO {role}",
        "GRANT SELECT, UPDATE ON energy_feed TO {role}",
        *_ENERGY_WRITES,
        "GRANT SELECT, INSERT, UPDATE ON energy_sensor_clocks TO {role}",
        _COUNT_DASHBOARDS,
    ),
    "report": (
        "GRANT SELECT ON events, event_labels, event_counter, clustering_runs, cluster_stats, schema_migrations, "
        "appliances, device_counters TO {role}",
    ),
    "authorizer": (
        "GRANT SELECT ON api_tokens TO {role}",
    ),
    "cluster": (
        _COUNT_DASHBOARDS,
        "GRANT SELECT ON events TO {role}",
        "GRANT SELECT ON quarantined_events TO {role}",  # left out of the run's load (0008)
        "GRANT SELECT, UPDATE ON clustering_runs TO {role}",
        "GRANT SELECT, INSERT, DELETE ON cluster_stats TO {role}",
        # Appliance keys (0015): each run's clusters matched to the known keys, new ones added; never their names.
        "GRANT SELECT, INSERT, UPDATE (centre, first_run_id, last_run_id) ON appliances TO {role}",
        # The run's labels table is created, granted (INSERT) and attached by these two, as their owner (0004).
        "GRANT EXECUTE ON FUNCTION clustering_labels_open(bigint), clustering_labels_attach(bigint) TO {role}",
        # Older runs' label partitions are dropped by this one, as their owner (0016: only beyond the newest K; 0019:
        # among the runs of the completed run's set, one device's for ClusterScope=device).
        "GRANT EXECUTE ON FUNCTION clustering_labels_retire(integer, integer) TO {role}",
    ),
    # The WebSocket's $connect/$disconnect and the live function: connections, and what a push carries.
    "live": (
        "GRANT SELECT, INSERT, DELETE ON live_connections TO {role}",
        "GRANT SELECT ON events, event_labels, event_counter, clustering_runs, cluster_stats, appliances, "
        "device_counters TO {role}",
    ),
    # The appliance function. Models (0011): trained (stored or replaced by name), listed, read to label a mains
    # recording. Keys (0015): listed and named; it cannot add, move or drop keys.
    "appliances": (
        "GRANT SELECT, INSERT, UPDATE ON appliance_models TO {role}",
        "GRANT SELECT ON clustering_runs TO {role}",
        "GRANT SELECT, UPDATE (name, kind, named_at) ON appliances TO {role}",
        "GRANT SELECT ON appliance_states TO {role}",  # GET /appliances/states (0018)
    ),
    # The states function (0018): the new events' currents decoded with the models, each device's decoder and
    # latest states written, the cursor moved; the connection count says whether a dashboard is told.
    "states": (
        "GRANT SELECT (seq, device_id, sensor_time, current_a, peaks) ON events TO {role}",
        "GRANT SELECT ON event_counter, appliance_models TO {role}",
        "GRANT SELECT, UPDATE ON appliance_decoding TO {role}",
        "GRANT SELECT, INSERT, UPDATE ON appliance_decoders TO {role}",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON appliance_states TO {role}",
        _COUNT_DASHBOARDS,
    ),
    # The alerts API (0013): scored hours and alerts read; acknowledging marks the alert and the device's state.
    "alerts": (
        "GRANT SELECT ON anomaly_scores, alert_notifications TO {role}",
        "GRANT SELECT, UPDATE (acked_at) ON alerts TO {role}",
        "GRANT SELECT, INSERT, UPDATE ON alert_states TO {role}",
    ),
    # The scorer: takes a device's energy changes (0014), reads its hourly energy, and writes scores, baselines,
    # the lifecycle's state, alerts and what is to be told; reads the webhooks to hand notifications over.
    "score": (
        "GRANT SELECT, DELETE ON energy_changes TO {role}",
        "GRANT SELECT ON energy_buckets, webhooks TO {role}",
        "GRANT SELECT, INSERT ON alert_baselines TO {role}",
        "GRANT SELECT, INSERT, UPDATE ON anomaly_scores, alert_states, alerts, alert_notifications TO {role}",
        "GRANT USAGE ON SEQUENCE alerts_id_seq, alert_notifications_id_seq TO {role}",
    ),
    "sweep": (
        _COUNT_DASHBOARDS,
        # Notifications whose hand-over failed, and energy changes whose message was lost (0013, 0014).
        "GRANT SELECT, UPDATE (sent_at) ON alert_notifications TO {role}",
        "GRANT SELECT ON alerts, webhooks, energy_changes TO {role}",
        "GRANT SELECT, UPDATE ON clustering_runs TO {role}",
        "GRANT SELECT (created_at), DELETE ON idempotency_keys TO {role}",  # expired keys purged
        # Whether events wait for the energy feed (0022) or for the live appliance states (0018, with a model).
        "GRANT SELECT ON event_counter, energy_feed, appliance_decoding TO {role}",
        "GRANT SELECT (id) ON appliance_models TO {role}",
    ),
}
# Rights a role of function had and no longer needs, revoked at every migration run: GRANT only adds, so a deployed
# login would keep them. A right leaves ROLES in the deploy whose code stops using it and is retired here in a later
# one, since the migrations run before the functions are updated and the old instances use it until then.
RETIRED: dict[str, tuple[str, ...]] = {
    # Ingest fed the energy series inside its transaction until the feed function took that over (0022, issue 18).
    "ingest": (
        "REVOKE ALL ON energy_readings, energy_days, energy_buckets, energy_changes, energy_sensor_clocks FROM {role}",
        f"REVOKE EXECUTE ON FUNCTION {_ENERGY_FUNCTIONS} FROM {{role}}",
    ),
}
ROLE_PREFIX = "wattprint_"

# Warm Lambdas keep their connection while frozen; Aurora pauses only with no connections at all. Dropping idle
# sessions lets it pause; wattprint.db re-opens a connection that died this way. A connection whose Lambda was
# stopped inside a transaction can stay open until TCP notices; its locks (the event counter's row, a run's row,
# event_labels while attaching) must not outlive a minute. No transaction of the code waits on anything but the
# database (the fit runs between the load's and the store's).
_LOGIN = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
        CREATE ROLE {role} LOGIN;
    END IF;
    GRANT rds_iam TO {role};
    ALTER ROLE {role} SET idle_session_timeout = '60s';
    ALTER ROLE {role} SET idle_in_transaction_session_timeout = '60s';
END
$$"""


def login(kind: str) -> str:
    """The AWS login of one role of function (template.yaml's DB_USER)."""
    if kind not in ROLES:
        raise ValueError(f"no database role {kind!r}; the roles are {', '.join(ROLES)}")
    return ROLE_PREFIX + kind


def grant(conn: Connection, kind: str, role: str) -> None:
    """Give `role` the rights of one role of function on the current schema (and nothing more)."""
    schema, quoted, events_id = conn.run(
        "SELECT quote_ident(current_schema()), quote_ident(:role), pg_get_serial_sequence('events', 'id')",
        role=role)[0]
    conn.run(f"GRANT USAGE ON SCHEMA {schema} TO {quoted}")
    for statement in ROLES[kind]:
        conn.run(statement.format(role=quoted, events_id=events_id))


def retire(conn: Connection, kind: str, role: str) -> None:
    """Take from `role` what one role of function no longer needs (RETIRED)."""
    quoted = conn.run("SELECT quote_ident(:role)", role=role)[0][0]
    for statement in RETIRED.get(kind, ()):
        conn.run(statement.format(role=quoted))


def available() -> list[str]:
    return sorted(p.stem for p in MIGRATIONS_DIR.glob("[0-9][0-9][0-9][0-9]_*.sql"))


def applied(conn: Connection) -> list[str]:
    exists = conn.run("SELECT to_regclass('schema_migrations') IS NOT NULL")[0][0]
    if not exists:
        return []
    return [row[0] for row in conn.run("SELECT version FROM schema_migrations ORDER BY version")]


def pending(conn: Connection) -> list[str]:
    done = set(applied(conn))
    return [version for version in available() if version not in done]


def apply(conn: Connection) -> list[str]:
    """Apply what is pending; return the versions applied by this call. `conn` must be outside a transaction."""
    conn.run("SELECT pg_advisory_lock(:key)", key=LOCK_KEY)
    try:
        conn.run(_CREATE_LEDGER)
        done = []
        for version in pending(conn):
            sql = (MIGRATIONS_DIR / f"{version}.sql").read_text()
            conn.run("BEGIN")
            try:
                conn.run(sql)
                conn.run("INSERT INTO schema_migrations (version) VALUES (:v)", v=version)
                conn.run("COMMIT")
            except BaseException:
                conn.run("ROLLBACK")
                raise
            done.append(version)
        # On RDS/Aurora (where rds_iam exists) the functions log in with IAM tokens as these roles.
        if conn.run("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_iam')")[0][0]:
            for kind in ROLES:
                conn.run(_LOGIN.format(role=login(kind)))
                grant(conn, kind, login(kind))
                retire(conn, kind, login(kind))
        return done
    finally:
        conn.run("SELECT pg_advisory_unlock(:key)", key=LOCK_KEY)
