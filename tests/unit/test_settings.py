import pytest

from wattprint import settings


def test_database_url_wins():
    s = settings.load({"DATABASE_URL": "postgresql://u:p%40ss@db.example:6543/wp?sslmode=verify-full",
                       "DB_HOST": "ignored", "CLUSTER_THRESHOLD": "250", "DB_SCHEMA": "s1"})
    d = s.database
    assert (d.host, d.port, d.name, d.user, d.password, d.sslmode, d.schema) == (
        "db.example", 6543, "wp", "u", "p@ss", "verify-full", "s1")
    assert s.cluster_threshold == 250


def test_template_variables_for_iam_auth_default_to_verified_tls():
    d = settings.database_settings({"DB_HOST": "c.cluster-x.eu-west-1.rds.amazonaws.com", "DB_PORT": "5432",
                                    "DB_NAME": "wattprint", "DB_USER": "wattprint_app", "DB_AUTH": "iam",
                                    "PGPASSWORD": "must-not-be-used"})
    assert (d.auth, d.sslmode, d.password, d.user) == ("iam", "verify-full", None, "wattprint_app")


def test_pg_variables_are_the_fallback():
    d = settings.database_settings({"PGHOST": "h", "PGPORT": "5433", "PGDATABASE": "x", "PGUSER": "me",
                                    "PGPASSWORD": "pw"})
    assert (d.host, d.port, d.name, d.user, d.password, d.auth, d.sslmode) == ("h", 5433, "x", "me", "pw",
                                                                              "password", "disable")


@pytest.mark.parametrize("env", [{"DATABASE_URL": "mysql://x"}, {"DB_AUTH": "kerberos"},
                                 {"CLUSTER_THRESHOLD": "0"}, {"CLUSTER_THRESHOLD": "many"},
                                 {"LIVE_CONNECTIONS_PER_TOKEN": "0"}, {"LIVE_CONNECTIONS_PER_TOKEN": "lots"},
                                 {"DB_STATEMENT_TIMEOUT": "0"}, {"DB_STATEMENT_TIMEOUT": "soon"},
                                 {"LABEL_RETENTION": "-1"}, {"LABEL_RETENTION": "three"},
                                 {"CLUSTER_RUNS": "all"}, {"CLUSTER_WINDOW": "-1"}, {"CLUSTER_WINDOW": "1e6"},
                                 {"CLUSTER_FIT_THREADS": "0"}, {"CLUSTER_FIT_THREADS": "two"}])
def test_bad_settings_are_refused(env):
    with pytest.raises(ValueError):
        settings.load(env)


def test_live_settings_and_empty_values():
    s = settings.load({"LIVE_QUEUE_URL": "https://q/live", "PUSH_QUEUE_URL": "https://q/push",
                       "LIVE_MANAGEMENT_ENDPOINT": "https://api/v1", "LIVE_WEBSOCKET_URL": ""})
    assert s.live == settings.LiveSettings(queue_url="https://q/live", push_queue_url="https://q/push",
                                           management_endpoint="https://api/v1", websocket_url=None)
    assert settings.live_settings({}) == settings.LiveSettings(None, None, None, None)
    assert settings.live_settings({"LIVE_CONNECTIONS_PER_TOKEN": "3"}).connections_per_token == 3
    assert settings.live_settings({}).connections_per_token == 5


def test_aws_settings_keep_every_endpoint_override():
    a = settings.aws_settings({"AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:1", "AWS_ENDPOINT_URL": "http://x",
                               "AWS_ENDPOINT_URL_RDS": "", "AWS_DEFAULT_REGION": "eu-west-1", "OTHER": "y"})
    assert a.region == "eu-west-1"
    assert a.endpoint_key("sqs") == ("http://127.0.0.1:1", "http://x")
    assert a.endpoint_key("rds") == (None, "http://x")  # an empty variable is no override
    assert settings.aws_settings({"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "eu-west-1"}).region == "us-east-1"


def test_the_statement_timeout_is_optional_and_in_seconds():
    assert settings.load({}).database.statement_timeout is None
    assert settings.load({"DB_STATEMENT_TIMEOUT": "5"}).database.statement_timeout == 5.0
    assert settings.load({"DATABASE_URL": "postgresql://u@h/d", "DB_STATEMENT_TIMEOUT": "2.5"}).database \
        .statement_timeout == 2.5


def test_clustering_settings():
    assert settings.clustering_settings({}) == settings.ClusteringSettings(label_retention=3, runs="latest")
    assert settings.clustering_settings({}).supersede is True
    every = settings.load({"LABEL_RETENTION": "0", "CLUSTER_RUNS": "every"}).clustering
    assert (every.label_retention, every.runs, every.supersede) == (0, "every", False)
    assert (settings.clustering_settings({}).window, settings.clustering_settings({}).fit_threads) == (0, 1)
    tuned = settings.clustering_settings({"CLUSTER_WINDOW": "500000", "CLUSTER_FIT_THREADS": "2"})
    assert (tuned.window, tuned.fit_threads) == (500_000, 2)


def test_a_bad_clustering_setting_is_named():
    with pytest.raises(ValueError, match=r"CLUSTER_WINDOW must be a whole number of events, 0 or more .* not '-5'"):
        settings.clustering_settings({"CLUSTER_WINDOW": "-5"})
    with pytest.raises(ValueError, match=r"CLUSTER_FIT_THREADS must be a whole number of threads, 1 or more"):
        settings.clustering_settings({"CLUSTER_FIT_THREADS": "0"})
    with pytest.raises(ValueError, match=r"CLUSTER_WINDOW must be 0 with CLUSTER_SCOPE=device"):
        settings.clustering_settings({"CLUSTER_WINDOW": "500", "CLUSTER_SCOPE": "device"})
    assert settings.clustering_settings({"CLUSTER_WINDOW": "0", "CLUSTER_SCOPE": "device"}).per_device


def test_run_attempts_and_resend_bound():
    defaults = settings.load({})
    assert (defaults.run_max_attempts, defaults.run_resend_after_seconds) == (3, 3600.0)
    tuned = settings.load({"RUN_MAX_ATTEMPTS": "5", "RUN_RESEND_AFTER_SECONDS": "90.5"})
    assert (tuned.run_max_attempts, tuned.run_resend_after_seconds) == (5, 90.5)
    for bad in ({"RUN_MAX_ATTEMPTS": "0"}, {"RUN_MAX_ATTEMPTS": "x"}, {"RUN_RESEND_AFTER_SECONDS": "-1"},
                {"RUN_RESEND_AFTER_SECONDS": "nan"}):
        with pytest.raises(ValueError):
            settings.load(bad)


def test_the_environment_is_read_again_only_when_it_changed(monkeypatch):
    monkeypatch.setenv("CLUSTER_THRESHOLD", "250")
    first = settings.load()
    assert first.cluster_threshold == 250
    assert settings.load() is first  # nothing changed: the same reading, not a new one
    monkeypatch.setenv("CLUSTER_THRESHOLD", "300")
    assert settings.load().cluster_threshold == 300
    monkeypatch.delenv("CLUSTER_THRESHOLD")
    assert settings.load().cluster_threshold == 1000
    monkeypatch.setenv("LIVE_QUEUE_URL", "http://queue.example/live")  # a variable no earlier reading held
    assert settings.live_settings().queue_url == "http://queue.example/live"
    assert settings.load().live.queue_url == "http://queue.example/live"


def test_an_invalid_environment_is_refused_at_every_reading(monkeypatch):
    monkeypatch.setenv("CLUSTER_THRESHOLD", "0")
    for _ in range(2):
        with pytest.raises(ValueError, match="CLUSTER_THRESHOLD"):
            settings.load()
    monkeypatch.setenv("CLUSTER_THRESHOLD", "7")
    assert settings.load().cluster_threshold == 7
