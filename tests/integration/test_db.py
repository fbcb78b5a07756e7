import json
import ssl

import boto3
import pytest
from moto import mock_aws

from local.pg import free_port
from wattprint import db, settings
from wattprint.errors import DatabaseUnavailable


def test_connection_is_reused_while_warm(database):
    assert db.connection() is db.connection()


def test_dead_connection_is_reopened(database, conn):
    first = db.connection()
    pid = first.run("SELECT pg_backend_pid()")[0][0]
    conn.run("SELECT pg_terminate_backend(:pid)", pid=pid)  # Aurora scaled, restarted, or idle-killed us
    with db.transaction() as c:
        assert c.run("SELECT 1") == [[1]]
    assert db.connection() is not first
    conn.run("SELECT pg_terminate_backend(:pid)", pid=db.connection().run("SELECT pg_backend_pid()")[0][0])
    assert db.execute("SELECT 2") == [[2]]


def test_one_statement_runs_in_autocommit_only_on_a_connection_that_just_answered(database, conn, monkeypatch):
    def one_transaction(c) -> bool:  # two statements in one transaction share its id
        return c.run("SELECT txid_current()") == c.run("SELECT txid_current()")

    db.execute("SELECT 1")  # it just answered
    with db.one_statement() as c:
        assert not one_transaction(c)  # autocommit: each statement its own
    with monkeypatch.context() as patched:
        patched.setattr(db, "TRUSTED_FOR", 0.0)
        with db.one_statement() as c:
            assert one_transaction(c)  # BEGIN first: the connection may have died while the instance was frozen
    # Lost during the statement (it may have committed): unavailable, not repeated; the next call reconnects.
    first = db.connection()
    db.execute("SELECT 1")
    conn.run("SELECT pg_terminate_backend(:pid)", pid=first.run("SELECT pg_backend_pid()")[0][0])
    with pytest.raises(DatabaseUnavailable):
        with db.one_statement() as c:
            c.run("SELECT 1")
    with db.one_statement() as c:
        assert c.run("SELECT 1") == [[1]]
    assert db.connection() is not first


def test_failed_transaction_rolls_back(database, conn):
    with pytest.raises(ZeroDivisionError):
        with db.transaction() as c:
            c.run("INSERT INTO api_tokens (name, scope, token_sha256) VALUES ('x', 'read', :d)", d=b"\0" * 32)
            raise ZeroDivisionError
    assert conn.run("SELECT count(*) FROM api_tokens") == [[0]]
    with db.transaction() as c:  # and the connection is usable afterwards
        assert c.run("SELECT 1") == [[1]]


def test_unreachable_database_is_unavailable_not_a_crash(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/postgres")
    monkeypatch.setenv("DB_CONNECT_TIMEOUT", "2")
    db.reset()
    with pytest.raises(DatabaseUnavailable) as caught:
        with db.transaction():
            pass
    assert caught.value.status == 503 and caught.value.headers() == {"Retry-After": "5"}
    with pytest.raises(DatabaseUnavailable):
        db.execute("SELECT 1")
    db.reset()


def test_tls_fails_closed_without_the_ca_bundle(monkeypatch, tmp_path):
    monkeypatch.setattr(db, "RDS_CA_BUNDLE", tmp_path / "missing.pem")
    verified = settings.DatabaseSettings(host="h", port=5432, name="n", user="u", sslmode="verify-full")
    with pytest.raises(RuntimeError, match="missing"):
        db._ssl_context(verified)
    with pytest.raises(ValueError):
        db._ssl_context(settings.DatabaseSettings(host="h", port=5432, name="n", user="u", sslmode="require"))


def test_iam_auth_signs_a_token_locally(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    d = settings.DatabaseSettings(host="c.cluster-x.eu-west-1.rds.amazonaws.com", port=5432, name="wattprint",
                                  user="wattprint_app", auth="iam", sslmode="verify-full")
    token = db._password(d, "eu-west-1")
    assert token.startswith("c.cluster-x.eu-west-1.rds.amazonaws.com:5432/?Action=connect&DBUser=wattprint_app")
    assert "X-Amz-Signature=" in token


@mock_aws
def test_secret_auth_reads_the_managed_master_secret():
    client = boto3.client("secretsmanager", region_name="eu-west-1")
    arn = client.create_secret(Name="rds!cluster-1", SecretString=json.dumps(
        {"username": "wattprint_admin", "password": "s3cr3t"}))["ARN"]
    d = settings.DatabaseSettings(host="h", port=5432, name="n", user="wattprint_admin", auth="secret",
                                  secret_arn=arn, sslmode="verify-full")
    assert db._password(d, "eu-west-1") == "s3cr3t"


def test_tls_context_verifies_chain_and_hostname(monkeypatch):
    import certifi

    monkeypatch.setattr(db, "RDS_CA_BUNDLE", __import__("pathlib").Path(certifi.where()))
    context = db._ssl_context(settings.DatabaseSettings(host="h", port=5432, name="n", user="u",
                                                        sslmode="verify-full"))
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname

