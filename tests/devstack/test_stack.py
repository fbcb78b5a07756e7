"""The whole local stack as `make run` starts it: embedded PostgreSQL, moto SQS, HTTP on a real port."""

import json
import os
import urllib.error
import urllib.request

import pytest

from local.stack import AlreadyRunning, Stack

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
PINNED_READ = "wp_pinned-read-token-" + "0123456789" * 2 + "abcde"


@pytest.fixture
def clean_env():
    saved = dict(os.environ)
    for name in ("DATABASE_URL", "DB_SCHEMA", "PGHOST", "CLUSTER_QUEUE_URL", "AWS_ENDPOINT_URL_SQS"):
        os.environ.pop(name, None)
    from wattprint import db

    db.reset()
    yield
    db.reset()
    os.environ.clear()
    os.environ.update(saved)


def request(url, method="GET", token=None, body=None):
    req = urllib.request.Request(url, method=method, data=body)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_stack_serves_refuses_a_second_start_and_keeps_data_across_restarts(tmp_path, clean_env, monkeypatch):
    monkeypatch.setenv("WATTPRINT_READ_TOKEN", PINNED_READ)
    first = Stack(template=ROOT / "template.yaml", data_dir=tmp_path, port=0)
    first.start()
    try:
        url = first.info["url"]
        assert request(url + "/health")[0] == 200
        status, body = request(url + "/events", "POST", body=b"Device: ID=1")
        assert (status, body["error"]["code"]) == (401, "unauthorized")
        assert first.info["tokens"]["read"] == PINNED_READ
        assert first.info["tokens"]["ingest"].startswith("wp_")

        from wattprint import admin
        admin.handle({"action": "create_token", "scope": "ingest", "name": "survivor"})

        second = Stack(template=ROOT / "template.yaml", data_dir=tmp_path, port=0)
        with pytest.raises(AlreadyRunning, match="already running"):
            second.start()
    finally:
        first.stop()
    assert not (tmp_path / "stack.json").exists()

    restarted = Stack(template=ROOT / "template.yaml", data_dir=tmp_path, port=0)
    restarted.start()
    try:
        from wattprint import admin
        names = {t["name"] for t in admin.handle({"action": "list_tokens"})["tokens"] if not t["revoked_at"]}
        assert names == {"survivor", "dev-ingest", "dev-read"}
        assert request(restarted.info["url"] + "/runs", token=PINNED_READ)[0] not in (401, 403)
    finally:
        restarted.stop()
    assert not restarted.started
