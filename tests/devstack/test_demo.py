"""`make demo` (local.demo): appliance events streamed to a running local stack, or to one it starts itself."""

import json
import time
import urllib.request

import pytest

from local import demo
from tests.conftest import STACK_VARIABLES


def runs(url, token):
    request = urllib.request.Request(url + "/runs", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["runs"]


def test_a_short_demo_against_a_running_stack(monkeypatch, request, tmp_path, capsys):
    monkeypatch.setenv("CLUSTER_THRESHOLD", "50")
    stack = request.getfixturevalue("local_stack")  # its data dir is tmp_path, as .local is make run's
    assert demo.main(["--data-dir", str(tmp_path), "--events", "120", "--rate", "200", "--devices", "4"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out.splitlines()[-1])["sent"] == 120
    assert "streaming to the running stack" in err and "120 events sent" in err and "completed" in err
    from wattprint import db

    assert db.execute("SELECT total FROM event_counter")[0][0] == 120
    assert sorted(r[0] for r in db.execute("SELECT DISTINCT device_id FROM events")) == [1, 2, 3, 4]
    read = stack.info["tokens"]["read"]
    deadline = time.monotonic() + 60
    while sum(r["status"] == "done" for r in runs(stack.info["url"], read)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    done = [r for r in runs(stack.info["url"], read) if r["status"] == "done"]
    assert sorted(r["threshold"] for r in done) == [50, 100] and all(r["clusters"] >= 1 for r in done)


def test_the_demo_starts_a_stack_when_none_is_running(monkeypatch, tmp_path, capsys):
    for name in STACK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    from wattprint import db

    db.reset()
    assert demo.running_stack(tmp_path) is None
    try:
        assert demo.main(["--data-dir", str(tmp_path), "--port", "0", "--events", "30", "--rate", "100"]) == 0
    finally:
        db.reset()
    out, err = capsys.readouterr()
    assert json.loads(out.splitlines()[-1])["sent"] == 30
    assert "starting one" in err and "/dashboard (read token wp_" in err
    assert demo.running_stack(tmp_path) is None  # and it stopped it


def test_bad_arguments_are_refused(capsys):
    for argv in (["--url", "http://127.0.0.1:1"], ["--rate", "0"], ["--events", "0"]):
        with pytest.raises(SystemExit) as exited:
            demo.main(argv)
        assert exited.value.code == 2
    assert "--url needs --token" in capsys.readouterr().err


def test_an_unreachable_api_is_an_error_not_a_traceback(capsys):
    assert demo.main(["--url", "http://127.0.0.1:9", "--token", "wp_x" * 5, "--events", "1"]) == 1
    assert "error: " in capsys.readouterr().err

