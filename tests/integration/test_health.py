"""GET /health is public: it must not cost a database query on every call."""

import json

import pytest

from local.apigw import Gateway
from wattprint import health


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(health, "_clock", fake)
    monkeypatch.setattr(health, "_cache", {})
    return fake


def test_health_is_answered_from_a_short_cache(app, functions, database, conn, clock):
    gateway = Gateway(app, functions, workers=1)

    def get():
        reply = gateway.handle("GET", "/health", [], b"")
        return reply.status, json.loads(reply.body)["status"]

    try:
        assert get() == (200, "ok")
        # The table the check reads is gone: a call that queried would answer 503 migrations_pending.
        conn.run("ALTER TABLE schema_migrations RENAME TO schema_migrations_away")
        clock.now += health.CACHE_SECONDS - 0.5
        assert get() == (200, "ok")
        clock.now += 1
        assert get() == (503, "migrations_pending")
        conn.run("ALTER TABLE schema_migrations_away RENAME TO schema_migrations")
        # The failure is cached too (a database that is down is not asked again at once), then re-checked.
        assert get() == (503, "migrations_pending")
        clock.now += health.CACHE_SECONDS
        assert get() == (200, "ok")
    finally:
        gateway.close()


def test_each_database_has_its_own_answer(database, conn, clock, monkeypatch, pg_url):
    assert health.check()[0] is True
    monkeypatch.setenv("DB_SCHEMA", "t_absent")  # another database as far as the settings go: never migrated
    from wattprint import db

    db.reset()
    healthy, body = health.check()
    assert (healthy, body["status"]) == (False, "migrations_pending")
