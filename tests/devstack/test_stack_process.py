"""`python -m local` (what `make run` runs) as a process of its own: Ctrl-C, kill -9 of its process group, the
embedded PostgreSQL that runs outside that group, and the next start after each. The process helpers are those
of tools/fresh_clone_check.py, which CI runs on fresh clones with `make run` itself."""

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from local.pg import alive, postmaster_pid
from tools import fresh_clone_check as tool

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads processes from /proc")


def start(data_dir: Path, name: str) -> tuple[tool.Launched, str]:
    env = {k: v for k, v in os.environ.items() if k not in tool.FOREIGN}
    launched = tool.launch([sys.executable, "-m", "local", "--data-dir", str(data_dir), "--port", "0"], ROOT, env,
                           data_dir.parent / f"{name}.log")
    state = data_dir / "stack.json"  # a killed stack leaves its own behind: wait for this one's
    deadline = time.monotonic() + 120
    while not (state.exists() and json.loads(state.read_text()).get("pid") == launched.process.pid):
        assert launched.process.poll() is None, launched.tail()
        assert time.monotonic() < deadline, f"no {state} after 120 s:\n{launched.tail()}"
        time.sleep(0.1)
    url = json.loads(state.read_text())["url"]
    tool.wait_healthy(url, launched, 120)
    return launched, url


def watchdogs(data_dir: Path) -> list[tool.Proc]:
    return [p for p in tool.belonging([str(data_dir)]) if "local.pg --watch" in p.cmdline]


@pytest.fixture
def data_dir(tmp_path):
    where = tmp_path / "local"
    yield where
    tool.kill_all(tool.belonging([str(where)]))  # whatever a failed test left


def test_ctrl_c_stops_everything_it_started(data_dir):
    launched, _ = start(data_dir, "run")
    server = postmaster_pid(data_dir / "pgdata")
    assert alive(server) and len(watchdogs(data_dir)) == 1
    assert tool.ctrl_c(launched) == 0
    assert tool.wait_gone([str(data_dir)]) == []
    assert "stopping" in launched.tail()


def test_kill_9_of_the_process_group_stops_postgres_too_and_the_next_start_serves(data_dir):
    launched, _ = start(data_dir, "run")
    server = postmaster_pid(data_dir / "pgdata")
    mine = {p.pid for p in tool.belonging([str(data_dir)])}
    # pg_ctl detaches the server from the stack's group: the group's kill cannot reach it, only its watchdog can.
    assert os.getpgid(server) != launched.pgid and server in mine
    tool.kill_9(launched)
    assert tool.wait_gone([str(data_dir)], pids=mine) == []
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()  # a clean shutdown, not a crash

    again, url = start(data_dir, "again")
    assert tool.health(url) == 200
    assert tool.ctrl_c(again) == 0
    assert tool.wait_gone([str(data_dir)]) == []


def test_a_server_whose_watchdog_died_too_is_taken_over_by_the_next_start(data_dir):
    launched, _ = start(data_dir, "run")
    server = postmaster_pid(data_dir / "pgdata")
    (watchdog,) = watchdogs(data_dir)
    os.kill(watchdog.pid, signal.SIGKILL)
    tool.kill_9(launched)
    assert tool.wait_gone([], pids={watchdog.pid, launched.pgid}) == []
    assert alive(server)  # nothing stops it now: it is left for the next start

    again, url = start(data_dir, "again")
    assert not alive(server) and postmaster_pid(data_dir / "pgdata") != server
    assert tool.health(url) == 200
    assert tool.ctrl_c(again) == 0
    assert tool.wait_gone([str(data_dir)]) == []
