"""Is the service able to work: database reachable and schema current."""

from __future__ import annotations

from pg8000.exceptions import DatabaseError

from . import db, migrate
from .errors import DatabaseUnavailable

_UNDEFINED_TABLE = "42P01"


def check() -> tuple[bool, dict]:
    try:
        done = {row[0] for row in db.execute("SELECT version FROM schema_migrations")}
    except DatabaseUnavailable as error:
        return False, {"status": "unavailable", "database": "unreachable", "detail": error.message}
    except DatabaseError as error:
        if db.sqlstate(error) != _UNDEFINED_TABLE:
            raise
        done = set()  # never migrated
    pending = [version for version in migrate.available() if version not in done]
    return not pending, {
        "status": "ok" if not pending else "migrations_pending",
        "database": "ok",
        "migrations": {"applied": len(done), "pending": pending},
    }
