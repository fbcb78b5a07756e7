"""The pg8000 connection: opened once per Lambda instance, reused while warm, re-opened when it has gone away.

Connections are kept per thread. A Lambda instance runs one invocation at a time (one thread), so this is
simply "one connection per instance"; the local stack runs a fixed pool of worker threads, each standing in
for one warm instance, and tests run concurrent writers in threads.
"""

from __future__ import annotations

import ast
import json
import re
import socket
import ssl
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pg8000.native
from pg8000.exceptions import DatabaseError, InterfaceError

from . import aws, observability
from . import settings as settings_module
from .errors import DatabaseUnavailable

Connection = pg8000.native.Connection

RDS_CA_BUNDLE = Path(__file__).parent / "certs" / "rds-global-bundle.pem"

# SQLSTATEs that mean "the server is there but cannot take us now" (Aurora resuming, restarting, failing over).
# 57014: a statement cancelled, which here means it ran into DB_STATEMENT_TIMEOUT (the database is too busy).
_UNAVAILABLE_STATES = {"57P01", "57P02", "57P03", "08000", "08001", "08003", "08006", "53300", "57014"}

# Statements prepared per connection, least recently used dropped first: the report's filters combine into
# many distinct statements, and each one holds a plan on the server.
STATEMENTS_PER_CONNECTION = 64
# "cached plan must not change result type": a table changed under a prepared statement (a migration).
_PLAN_CHANGED = "0A000"

_local = threading.local()
_open: set[Connection] = set()
_open_lock = threading.Lock()


def sqlstate(error: DatabaseError) -> str | None:
    detail = error.args[0] if error.args else None
    return detail.get("C") if isinstance(detail, dict) else None


# pg8000 raises a DatabaseError whose text is the server's whole error: besides the message (M) and SQLSTATE (C),
# the server's source file (F), line (L) and routine (R), the detail (D, which can quote row values), the context
# (W, which quotes SQL) and more. Clients are shown M and C; the rest stays in the logs.
_PG_FIELDS = re.compile(r"""\{'S': (?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""
                        r"""(?:, '\w': (?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"))*\}""")


def _brief(fields: dict) -> str:
    return f"{fields.get('M') or 'database error'} (SQLSTATE {fields.get('C') or 'unknown'})"


def scrub(text: str) -> str:
    """`text` with every pg8000 error field dump in it reduced to its message and SQLSTATE."""
    def brief(match: re.Match) -> str:
        try:
            fields = ast.literal_eval(match.group(0))
        except (ValueError, SyntaxError):
            return "database error"
        return _brief(fields) if isinstance(fields, dict) else "database error"

    return _PG_FIELDS.sub(brief, text)


def describe(error: BaseException) -> str:
    """What a client may read about an error (a failed run's `error`): no driver or server internals."""
    detail = error.args[0] if isinstance(error, DatabaseError) and error.args else None
    if isinstance(detail, dict):
        return f"{type(error).__name__}: {_brief(detail)}"
    return scrub(f"{type(error).__name__}: {error}")


def is_unavailable(error: BaseException) -> bool:
    if isinstance(error, (InterfaceError, OSError)):
        return True
    return isinstance(error, DatabaseError) and sqlstate(error) in _UNAVAILABLE_STATES


def _ssl_context(db: settings_module.DatabaseSettings) -> ssl.SSLContext | None:
    if db.sslmode == "disable":
        return None
    if db.sslmode != "verify-full":
        raise ValueError(f"sslmode must be verify-full or disable, not {db.sslmode!r}")
    if not RDS_CA_BUNDLE.exists():
        # Fail closed: a build that could not fetch the bundle must not talk to the database unverified.
        raise RuntimeError(f"TLS verification is required but {RDS_CA_BUNDLE} is missing from the layer")
    return ssl.create_default_context(cafile=str(RDS_CA_BUNDLE))


def _password(db: settings_module.DatabaseSettings, region: str | None) -> str | None:
    if db.auth == "password":
        return db.password
    if db.auth == "iam":
        # Signed locally with the function's role: no network call, valid 15 minutes, used only to connect.
        return aws.client("rds", region=region).generate_db_auth_token(
            DBHostname=db.host, Port=db.port, DBUsername=db.user, Region=region)
    secret = aws.client("secretsmanager", region=region, attempts=3).get_secret_value(SecretId=db.secret_arn)
    return json.loads(secret["SecretString"])["password"]


def _startup_params(db: settings_module.DatabaseSettings) -> dict | None:
    params = {}
    if db.schema:
        params["search_path"] = db.schema
    if db.statement_timeout:
        params["statement_timeout"] = str(int(db.statement_timeout * 1000))  # milliseconds
    return params or None


def connect(db: settings_module.DatabaseSettings | None = None, region: str | None = None) -> Connection:
    if db is None:
        loaded = settings_module.load()
        db, region = loaded.database, loaded.region
    try:
        conn = pg8000.native.Connection(
            user=db.user, host=db.host, port=db.port, database=db.name, password=_password(db, region),
            ssl_context=_ssl_context(db), timeout=db.connect_timeout, application_name="wattprint",
            startup_params=_startup_params(db),
        )
    except (InterfaceError, OSError, DatabaseError) as error:
        if is_unavailable(error):
            raise DatabaseUnavailable() from error
        raise
    # The connect timeout must not cap long statements (a clustering load or COPY of a million rows).
    conn._usock.settimeout(None)
    # pg8000 writes a COPY as several small messages; with Nagle's algorithm each small write can wait for
    # the server's delayed ACK (~40 ms).
    conn._usock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.prepared = OrderedDict()
    return conn


def prepared(conn: Connection, sql: str):
    """A statement prepared once per connection (parse and plan skipped on every later call)."""
    cache: OrderedDict = conn.prepared
    statement = cache.get(sql)
    if statement is not None:
        cache.move_to_end(sql)
        return statement
    statement = cache[sql] = conn.prepare(sql)
    if len(cache) > STATEMENTS_PER_CONNECTION:
        _, old = cache.popitem(last=False)
        old.close()
    return statement


def discard(conn: Connection | None) -> None:
    if conn is None:
        return
    conn.answered_at = float("-inf")  # another thread that still holds it must probe it (one_statement)
    with _open_lock:
        _open.discard(conn)
    try:
        conn.close()
    except (InterfaceError, OSError, DatabaseError):
        pass  # already gone: that is why we are discarding it
    if getattr(_local, "conn", None) is conn:
        _local.conn = None


def connection() -> Connection:
    """This instance's connection, opened on first use."""
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = connect()
        with _open_lock:
            _open.add(conn)
    return conn


def reset() -> None:
    """Close every cached connection (settings changed, e.g. a test switched schema)."""
    with _open_lock:
        conns = list(_open)
    for conn in conns:
        discard(conn)
    _local.conn = None


@contextmanager
def transaction() -> Iterator[Connection]:
    """BEGIN … COMMIT (see _transaction), one subsegment of the trace."""
    with observability.subsegment("db.transaction"), _transaction() as conn:
        yield conn


@contextmanager
def _transaction() -> Iterator[Connection]:
    """BEGIN … COMMIT on this instance's connection, ROLLBACK on any error.

    A connection that died while the instance was frozen fails at BEGIN, before anything was sent, so it is
    safe to re-open it once and carry on. Losing the connection later is reported as DatabaseUnavailable.
    """
    try:
        conn = connection()
        try:
            conn.run("BEGIN")
        except (InterfaceError, OSError):
            discard(conn)
            conn = connection()
            conn.run("BEGIN")
    except (InterfaceError, OSError, DatabaseError) as error:
        if is_unavailable(error):
            raise DatabaseUnavailable() from error
        raise
    try:
        yield conn
        conn.run("COMMIT")
        conn.answered_at = time.monotonic()
    except BaseException as error:
        try:
            conn.run("ROLLBACK")
        except (InterfaceError, OSError, DatabaseError):
            discard(conn)
        if isinstance(error, (InterfaceError, OSError, DatabaseError)) and is_unavailable(error):
            raise DatabaseUnavailable() from error
        raise


#: s: a connection that answered this recently is trusted to be alive for one_statement()'s autocommit write.
TRUSTED_FOR = 5.0


@contextmanager
def one_statement() -> Iterator[Connection]:
    """A transaction of exactly one statement, which the caller runs on the connection yielded. On a connection
    that answered within TRUSTED_FOR it runs in autocommit: one round trip instead of three (BEGIN, it, COMMIT),
    and its locks are held for it alone. An older connection may have died while the instance was frozen, which
    only BEGIN can find out safely (a write that fails cannot be repeated: it may have committed), so then it runs
    in transaction(). A connection lost during the statement is DatabaseUnavailable, as a lost COMMIT's answer is."""
    conn = getattr(_local, "conn", None)
    if conn is None or time.monotonic() - getattr(conn, "answered_at", float("-inf")) > TRUSTED_FOR:
        with transaction() as conn:
            yield conn
        return
    with observability.subsegment("db.statement"):
        try:
            yield conn
            conn.answered_at = time.monotonic()
        except (InterfaceError, OSError) as error:
            discard(conn)
            raise DatabaseUnavailable() from error
        except DatabaseError as error:
            if is_unavailable(error):
                raise DatabaseUnavailable() from error
            raise


def execute(sql: str, *, prepare: bool = False, **params):
    """One statement in autocommit (see _execute), one subsegment of the trace."""
    with observability.subsegment("db.execute"):
        return _execute(sql, prepare=prepare, **params)


def _execute(sql: str, *, prepare: bool = False, **params):
    """One statement in autocommit (reads, and single-row updates that are safe to repeat).

    A connection that died while the instance was frozen fails on first use: it is re-opened and the statement
    tried once more. `prepare=True` runs it as a prepared statement of this connection (see prepared()).
    """
    for attempt in (1, 2):
        conn = connection()
        try:
            rows = prepared(conn, sql).run(**params) if prepare else conn.run(sql, **params)
            conn.answered_at = time.monotonic()
            return rows
        except (InterfaceError, OSError) as error:
            discard(conn)
            if attempt == 2:
                raise DatabaseUnavailable() from error
        except DatabaseError as error:
            if is_unavailable(error):
                raise DatabaseUnavailable() from error
            stale = conn.prepared.pop(sql, None) if prepare and sqlstate(error) == _PLAN_CHANGED else None
            if stale is None or attempt == 2:
                raise
            try:
                stale.close()
            except (InterfaceError, OSError):
                discard(conn)  # the retry reconnects
            continue
    raise AssertionError("unreachable")

