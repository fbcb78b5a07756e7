"""The first start on a machine that never ran the project: as root, PostgreSQL's OS user does not exist yet.

Each test names an OS user of its own that does not exist, lets the code create it, and removes what it made
(user, group, data directory). Creating users needs root; as an ordinary user the server simply runs as that
user, which every other test of the suite exercises."""

import grp
import os
import pwd
import urllib.request
import uuid
from pathlib import Path

import pg8000.native
import pytest

from local.pg import EmbeddedPostgres, ensure_os_user, free_port, postmaster_pid, remove_os_user

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creating an OS user needs root")


def absent(name: str) -> bool:
    for lookup in (pwd.getpwnam, grp.getgrnam):
        try:
            lookup(name)
            return False
        except KeyError:
            pass
    return True


@pytest.fixture
def new_os_user():
    """A name no OS user or group has; whatever the test created under it is removed afterwards."""
    name = "wpt" + uuid.uuid4().hex[:10]
    assert absent(name)
    yield name
    remove_os_user(name)
    assert absent(name)
    assert not Path("/home", name).exists()


def status_ids(pid: int) -> dict[str, list[int]]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {name: [int(x) for x in fields[name].split()] for name in ("Uid", "Gid", "Groups")}


def test_the_first_start_creates_the_servers_os_user_and_runs_the_server_as_it_alone(tmp_path, new_os_user):
    pg = EmbeddedPostgres(tmp_path / "pgdata", free_port(), durable=False, os_user=new_os_user)
    # What `make run` asks first (it crashed here with KeyError: getpwnam() before the user was made).
    assert pg.running() is False
    pg.start()
    try:
        entry = pwd.getpwnam(new_os_user)
        assert grp.getgrgid(entry.pw_gid).gr_name == new_os_user
        assert pg.running() is True
        ids = status_ids(postmaster_pid(pg.datadir))
        # Not root's group nor any of root's supplementary groups: only the user's own.
        assert ids["Uid"] == [entry.pw_uid] * 4 and ids["Gid"] == [entry.pw_gid] * 4 and ids["Groups"] == []
        assert (tmp_path / "pgdata").stat().st_uid == entry.pw_uid
        conn = pg8000.native.Connection(user="postgres", host="127.0.0.1", port=pg.port, database="postgres")
        assert conn.run("SELECT 1") == [[1]]
        conn.close()
    finally:
        pg.destroy()
    assert not pg.datadir.exists()


def test_a_data_dir_owned_by_a_uid_that_is_gone_is_taken_over_by_the_servers_user(tmp_path, new_os_user):
    """The OS user removed and re-created (another uid) after its data dir was made: the new one owns it all."""
    first = EmbeddedPostgres(tmp_path / "pgdata", free_port(), durable=False, os_user=new_os_user)
    first.init()
    gone = 3_000_000 + uuid.uuid4().int % 1_000_000  # far above any uid useradd hands out
    for path in [first.datadir, *first.datadir.rglob("*")]:
        os.lchown(path, gone, gone)
    again = EmbeddedPostgres(tmp_path / "pgdata", free_port(), durable=False, os_user=new_os_user)
    again.start()
    try:
        uid = pwd.getpwnam(new_os_user).pw_uid
        assert all(p.stat().st_uid == uid for p in [again.datadir, *again.datadir.rglob("*")])
    finally:
        again.destroy()


def test_make_runs_stack_starts_on_a_machine_without_the_servers_os_user(tmp_path, new_os_user, monkeypatch,
                                                                        request):
    """The local stack as `make run` starts it, with the OS user named the way a developer (or CI) can name it."""
    monkeypatch.setenv("WATTPRINT_PG_OS_USER", new_os_user)
    stack = request.getfixturevalue("local_stack")  # crashed in its start with KeyError: getpwnam()
    with urllib.request.urlopen(stack.info["url"] + "/health", timeout=10) as response:
        assert response.status == 200
    assert status_ids(postmaster_pid(tmp_path / "pgdata"))["Uid"][0] == pwd.getpwnam(new_os_user).pw_uid
