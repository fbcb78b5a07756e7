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
APP_ROLE = "wattprint_app"
_APP_LOGIN = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
        CREATE ROLE {APP_ROLE} LOGIN;
    END IF;
    GRANT rds_iam TO {APP_ROLE};
    -- Warm Lambdas keep their connection while frozen; Aurora pauses only with no connections at all.
    -- Dropping idle sessions lets it pause; wattprint.db re-opens a connection that died this way.
    ALTER ROLE {APP_ROLE} SET idle_session_timeout = '60s';
    -- A connection whose Lambda was stopped inside a transaction can stay open until TCP notices; its locks (the
    -- event counter's row, a run's row, event_labels while attaching) must not outlive a minute. No transaction
    -- of the code waits on anything but the database (the fit runs between the load's and the store's).
    ALTER ROLE {APP_ROLE} SET idle_in_transaction_session_timeout = '60s';
END
$$"""

# All the runtime login may do: rows and sequences, and the two DDL helpers of 0004. No CREATE, owns nothing.
_APP_GRANTS = (
    "GRANT USAGE ON SCHEMA {schema} TO {role}",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}",
    "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {schema} TO {role}",
    "GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {schema} TO {role}",
)


def grant_app(conn: Connection, role: str = APP_ROLE) -> None:
    """Give `role` the runtime's rights on the current schema (and nothing more)."""
    schema, quoted = conn.run("SELECT quote_ident(current_schema()), quote_ident(:role)", role=role)[0]
    for statement in _APP_GRANTS:
        conn.run(statement.format(schema=schema, role=quoted))


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
        if conn.run("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_iam')")[0][0]:
            conn.run(_APP_LOGIN)
            grant_app(conn)
        return done
    finally:
        conn.run("SELECT pg_advisory_unlock(:key)", key=LOCK_KEY)
