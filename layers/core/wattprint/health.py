"""Is the service able to work: database reachable and schema current.

`GET /health` needs no token, so anyone can call it as often as the stage's throttle allows: the answer is
kept for CACHE_SECONDS per instance (per database), and a flood of calls costs at most one query per instance
every few seconds. A failed check is kept as well: a database that is down is not asked again at once.
"""

from __future__ import annotations

import threading
import time

from pg8000.exceptions import DatabaseError

from . import db, migrate, settings
from .errors import DatabaseUnavailable

_UNDEFINED_TABLE = "42P01"
CACHE_SECONDS = 5.0

_clock = time.monotonic
_lock = threading.Lock()
_cache: dict = {}  # database settings -> (checked at, answer)


def _probe() -> tuple[bool, dict]:
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


def check() -> tuple[bool, dict]:
    key = settings.database_settings()
    with _lock:
        cached = _cache.get(key)
    if cached is not None and 0 <= _clock() - cached[0] < CACHE_SECONDS:
        return cached[1]
    answer = _probe()
    with _lock:
        _cache.clear()  # one database per instance: keep only the newest answer
        _cache[key] = (_clock(), answer)
    return answer
