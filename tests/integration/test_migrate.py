import threading

import pytest

from wattprint import db, migrate


def test_fresh_schema_gets_every_migration_once(database, conn):
    assert migrate.applied(conn) == migrate.available()
    assert migrate.pending(conn) == []
    assert migrate.apply(conn) == []  # applying again is a no-op
    assert [r[0] for r in conn.run("SELECT count(*) FROM schema_migrations")] == [len(migrate.available())]


def test_empty_schema_reports_everything_pending(pg_url, database, conn):
    conn.run("CREATE SCHEMA empty_probe")
    try:
        conn.run("SET search_path TO empty_probe")
        assert migrate.applied(conn) == []
        assert migrate.pending(conn) == migrate.available()
    finally:
        conn.run("SET search_path TO " + database)
        conn.run("DROP SCHEMA empty_probe CASCADE")


def test_concurrent_runners_apply_each_migration_exactly_once(database, conn):
    conn.run("CREATE SCHEMA race_probe")
    try:
        results, errors = [], []
        barrier = threading.Barrier(6)

        def runner():
            c = db.connect()
            try:
                c.run("SET search_path TO race_probe")
                barrier.wait()
                results.append(migrate.apply(c))
            except Exception as error:  # surfaced by the assertion below
                errors.append(error)
            finally:
                c.close()

        threads = [threading.Thread(target=runner) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        applied = [v for r in results for v in r]
        assert sorted(applied) == migrate.available()  # each applied by exactly one runner
        conn.run("SET search_path TO race_probe")
        assert migrate.applied(conn) == migrate.available()
    finally:
        conn.run("SET search_path TO " + database)
        conn.run("DROP SCHEMA race_probe CASCADE")


def test_failed_migration_leaves_nothing_half_applied(database, conn, tmp_path, monkeypatch):
    for version in migrate.available():
        (tmp_path / f"{version}.sql").write_text((migrate.MIGRATIONS_DIR / f"{version}.sql").read_text())
    (tmp_path / "9999_broken.sql").write_text("CREATE TABLE half_done (x int); SELECT no_such_function();")
    monkeypatch.setattr(migrate, "MIGRATIONS_DIR", tmp_path)
    try:
        migrate.apply(conn)
    except Exception as error:
        assert "no_such_function" in str(error)
    else:
        raise AssertionError("a broken migration must fail")
    assert conn.run("SELECT to_regclass('half_done')") == [[None]]
    assert "9999_broken" in migrate.pending(conn)
    # The lock was released: another runner is not blocked forever.
    assert conn.run("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted") == [[0]]


@pytest.fixture
def function_logins(database, conn):
    """Aurora's rds_iam role (made here if the server has none), and every function's login dropped afterwards
    (roles belong to the server, not to the test's schema). Yields the logins' names."""
    created = conn.run("SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_iam')")[0][0]
    if created:
        conn.run("CREATE ROLE rds_iam NOLOGIN")
    logins = [migrate.login(kind) for kind in migrate.ROLES]
    yield logins
    for role in logins:
        if conn.run("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :r)", r=role)[0][0]:
            conn.run(f"DROP OWNED BY {role}")
            conn.run(f"DROP ROLE {role}")
    if created:
        conn.run("DROP ROLE rds_iam")


def test_function_roles_are_created_and_granted_where_rds_iam_exists(conn, function_logins):
    """On Aurora each function logs in as its own role via IAM; every migration run keeps their rights."""
    logins = function_logins
    migrate.apply(conn)
    for role in logins:
        assert conn.run("SELECT pg_has_role(:r, 'rds_iam', 'MEMBER'), rolcanlogin FROM pg_roles "
                        "WHERE rolname = :r", r=role) == [[True, True]]
        assert conn.run("SELECT has_schema_privilege(:r, current_schema(), 'CREATE')", r=role) == [[False]]
        assert conn.run("SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole "
                        "WHERE r.rolname = :r", r=role) == [[["idle_session_timeout=60s",
                                                              "idle_in_transaction_session_timeout=60s"]]]
    readers = [r for r in logins if conn.run("SELECT has_table_privilege(:r, 'api_tokens', 'SELECT')", r=r)[0][0]]
    assert readers == ["wattprint_authorizer"]
    assert conn.run("SELECT has_function_privilege('wattprint_cluster', 'clustering_labels_open(bigint)', "
                    "'EXECUTE'), has_function_privilege('wattprint_ingest', 'clustering_labels_open(bigint)', "
                    "'EXECUTE')") == [[True, False]]
    # The security-definer helpers are not callable by PUBLIC (any other login).
    assert conn.run("SELECT count(*) FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a "
                    "WHERE p.proname LIKE 'clustering_labels_%' AND p.pronamespace = current_schema()::regnamespace "
                    "AND a.grantee = 0") == [[0]]
    assert migrate.apply(conn) == []  # a second run (every deploy) finds the roles and grants again


@pytest.mark.usefixtures("function_logins")
def test_a_deployed_login_loses_the_rights_its_role_no_longer_has(conn):
    """GRANT only adds: wattprint_ingest, granted the energy writes when ingest fed the series (before 0022), keeps
    them unless a migration run takes them (migrate.RETIRED); the feed's login, which needs them, keeps its own."""
    ingest = migrate.login("ingest")
    tables = ("energy_readings", "energy_days", "energy_buckets", "energy_changes", "energy_sensor_clocks")

    def rights(role: str) -> list:
        tabled = [conn.run("SELECT has_table_privilege(:r, :t, 'INSERT')", r=role, t=table)[0][0] for table in tables]
        signature = ("energy_write_buckets(integer[], bigint[], bigint[], integer[], bigint[], float8[], bigint[], "
                     "bigint[], bigint[])")
        return tabled + [conn.run("SELECT has_function_privilege(:r, :f, 'EXECUTE')", r=role, f=signature)[0][0]]

    conn.run(f"CREATE ROLE {ingest} LOGIN")
    for statement in migrate._ENERGY_WRITES:  # what the ingest login was granted before 0022
        conn.run(statement.format(role=ingest))
    conn.run(f"GRANT SELECT, INSERT, UPDATE ON energy_sensor_clocks TO {ingest}")
    assert rights(ingest) == [True] * 6
    migrate.apply(conn)
    assert rights(ingest) == [False] * 6
    assert rights(migrate.login("feed")) == [True] * 6
    assert conn.run("SELECT has_table_privilege(:r, 'events', 'INSERT'), "
                    "has_table_privilege(:r, 'event_counter', 'UPDATE')", r=ingest) == [[True, True]]


def test_an_unknown_role_of_function_is_refused():
    with pytest.raises(ValueError, match="no database role"):
        migrate.login("superuser")


def test_the_energy_feed_starts_after_the_events_a_deployed_database_already_fed(database, conn, tmp_path,
                                                                                  monkeypatch):
    """0022 on a database with events: ingest fed those inside its transaction, so the feed's cursor starts at the
    counter's total, not at 0 (which would feed them twice)."""
    conn.run("CREATE SCHEMA before_feed")
    try:
        conn.run("SET search_path TO before_feed")
        for version in migrate.available():
            if version < "0022":
                (tmp_path / f"{version}.sql").write_text((migrate.MIGRATIONS_DIR / f"{version}.sql").read_text())
        with monkeypatch.context() as patched:
            patched.setattr(migrate, "MIGRATIONS_DIR", tmp_path)
            migrate.apply(conn)
        assert conn.run("SELECT to_regclass('energy_feed')") == [[None]]
        conn.run("UPDATE event_counter SET total = 42")
        assert migrate.apply(conn) == [v for v in migrate.available() if v >= "0022"]
        assert conn.run("SELECT after_seq FROM energy_feed") == [[42]]
    finally:
        conn.run("SET search_path TO " + database)
        conn.run("DROP SCHEMA before_feed CASCADE")
