"""Shared fixtures: one real PostgreSQL for the session, a fresh schema for every test that uses it."""

from __future__ import annotations

import os
import tempfile
import uuid
import warnings
from pathlib import Path

import pytest

warnings.filterwarnings("ignore", module="platformdirs")

from local import template as template_module  # noqa: E402
from local.pg import EmbeddedPostgres, free_port  # noqa: E402
from local.runtime import Functions  # noqa: E402
from wattprint import db, migrate, settings  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
REAL_EVENTS = ROOT.parent / "shared" / "data" / "sensor-events-1000.txt"


@pytest.fixture(scope="session")
def pg_url():
    """DATABASE_URL when given (CI against a real server), else an embedded PostgreSQL 18 in a temp dir."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    pg = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="wattprint-test-pg-")), free_port(), durable=False)
    pg.start()
    try:
        yield pg.url
    finally:
        db.reset()
        pg.destroy()


def _admin_connection(url: str, schema: str | None = None):
    base = settings.database_settings({"DATABASE_URL": url})
    return db.connect(base.__class__(**{**base.__dict__, "schema": schema}))


@pytest.fixture
def database(pg_url, monkeypatch):
    """A migrated schema of its own, made the search_path of every connection the code under test opens."""
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = _admin_connection(pg_url)
    admin.run(f"CREATE SCHEMA {schema}")
    monkeypatch.setenv("DATABASE_URL", pg_url)
    monkeypatch.setenv("DB_SCHEMA", schema)
    db.reset()
    migrate.apply(db.connection())
    try:
        yield schema
    finally:
        db.reset()
        admin.run(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


@pytest.fixture
def conn(database):
    """A connection of the test's own (not the code's cached one), for arranging and checking rows."""
    c = db.connect()
    yield c
    c.close()


@pytest.fixture
def login_as(database, conn, pg_url, monkeypatch):
    """`login_as("ingest")`: from now on the code under test connects as a new login with exactly the rights migrate
    gives that role of function in AWS (wattprint_ingest there). Returns the login's name."""
    created = []

    def become(*kinds: str) -> str:
        role = "_".join(kinds) + "_" + uuid.uuid4().hex[:10]
        conn.run(f"CREATE ROLE {role} LOGIN")
        created.append(role)
        for kind in kinds:
            migrate.grant(conn, kind, role)
        monkeypatch.setenv("DATABASE_URL", pg_url.replace("//postgres@", f"//{role}@"))
        db.reset()
        return role

    yield become
    db.reset()
    for role in created:
        conn.run(f"DROP OWNED BY {role}")
        conn.run(f"DROP ROLE {role}")


@pytest.fixture
def app_role(login_as):
    """A login with the rights of every role of function together (no CREATE, owns nothing), for a test whose path
    crosses functions in one process (the local gateway runs the authorizer too). Prefer login_as(kind)."""
    return login_as(*migrate.ROLES)


@pytest.fixture(scope="session")
def app():
    return template_module.load(ROOT / "template.yaml")


@pytest.fixture(scope="session")
def functions(app):
    return Functions(app.functions)


@pytest.fixture(scope="session")
def real_lines():
    if not REAL_EVENTS.exists():
        pytest.skip(f"{REAL_EVENTS} not present")
    return REAL_EVENTS.read_text().splitlines()


# Variables a running stack (or another test) may have set, which a new stack must not inherit.
STACK_VARIABLES = ("DATABASE_URL", "DB_SCHEMA", "PGHOST", "CLUSTER_QUEUE_URL", "AWS_ENDPOINT_URL_SQS", "LIVE_QUEUE_URL",
                   "LIVE_WEBSOCKET_URL", "LIVE_MANAGEMENT_ENDPOINT")


@pytest.fixture
def local_stack(tmp_path, monkeypatch):
    """The whole local stack as `make run` starts it (its own embedded PostgreSQL under tmp_path, moto SQS, HTTP
    and WebSocket on a free port). Set environment (e.g. CLUSTER_THRESHOLD) with monkeypatch before using it."""
    from local.stack import Stack
    from wattprint import db

    for name in STACK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    db.reset()
    running = Stack(template=ROOT / "template.yaml", data_dir=tmp_path, port=0)
    running.start()
    yield running
    running.stop()
    db.reset()


@pytest.fixture(autouse=True)
def _fresh_per_instance_state():
    """What a warm Lambda instance keeps between invocations must not leak from one test into the next:
    wattprint.aws's clients (one made without credentials, or inside another test's moto), and metrics a test
    added by calling a service directly, which the next handler invocation would flush as its own."""
    from wattprint import aws, observability

    aws._clients.clear()
    observability.metrics.clear_metrics()
    yield
    aws._clients.clear()
    observability.metrics.clear_metrics()
