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

# On RDS/Aurora (where the rds_iam role exists) the runtime functions log in as wattprint_app with IAM
# tokens; the admin function, which runs migrations as the master user, keeps that role's rights current.
_APP_ROLE = """
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_iam') THEN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'wattprint_app') THEN
            CREATE ROLE wattprint_app LOGIN;
        END IF;
        GRANT rds_iam TO wattprint_app;
        -- Warm Lambdas keep their connection while frozen; Aurora pauses only with no connections at all.
        -- Dropping idle sessions lets it pause; wattprint.db re-opens a connection that died this way.
        ALTER ROLE wattprint_app SET idle_session_timeout = '60s';
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO wattprint_app', current_schema());
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO wattprint_app',
                       current_schema());
        EXECUTE format('GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA %I TO wattprint_app',
                       current_schema());
    END IF;
END
$$"""


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
        conn.run(_APP_ROLE)
        return done
    finally:
        conn.run("SELECT pg_advisory_unlock(:key)", key=LOCK_KEY)
