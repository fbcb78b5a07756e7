"""tools/fresh_clone_check.py's own parts: what each identity gets (CI runs the whole of it on fresh clones;
its launch, Ctrl-C and kill -9 steps are exercised by test_stack_process.py)."""

import os
import pwd
import subprocess
import sys
import time

import pytest

from tools import fresh_clone_check as tool


@pytest.fixture
def work(tmp_path):
    """As the tool's own folder under /tmp is: reachable by the ordinary user it creates."""
    from local.pg import _grant_traversal

    tmp_path.chmod(0o755)
    _grant_traversal(tmp_path)
    return tmp_path


def test_the_root_identity_gets_a_fresh_clone_a_new_pg_os_user_name_and_none_of_the_callers_settings(
        work, monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("the root identity is for root")
    monkeypatch.setenv("DATABASE_URL", "postgresql://somewhere-else/db")
    monkeypatch.setenv("MAKEFLAGS", "-j8")
    identity = tool.prepare("root", work)
    assert (identity.clone / "Makefile").exists()
    assert not (identity.clone / ".venv").exists() and not (identity.clone / ".local").exists()
    head = subprocess.run(["git", "-C", str(identity.clone), "rev-parse", "HEAD"], capture_output=True, text=True)
    assert head.stdout == subprocess.run(["git", "-C", str(tool.REPO), "rev-parse", "HEAD"], capture_output=True,
                                         text=True).stdout
    with pytest.raises(KeyError):
        pwd.getpwnam(identity.env["WATTPRINT_PG_OS_USER"])
    assert "DATABASE_URL" not in identity.env and "MAKEFLAGS" not in identity.env
    assert identity.env["PIP_CACHE_DIR"].startswith(str(work)) and int(identity.env["PORT"]) > 0
    if (tool.REPO.parent / "shared").is_dir():
        assert (identity.clone.parent / "shared" / "data").is_dir()  # the tests' ../shared/data


def test_the_ordinary_identity_is_a_new_os_user_owning_its_clone_with_a_login_like_environment(work, monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("creating an OS user needs root")
    monkeypatch.setenv("PGHOST", "elsewhere")
    identity = tool.prepare("user", work)
    try:
        user = identity.user
        assert user.pw_uid != 0 and user.pw_name.startswith("wpci")
        assert all(p.stat().st_uid == user.pw_uid for p in [identity.clone, *identity.clone.rglob("*")]
                   if not p.is_symlink())
        env = identity.env
        assert env["HOME"] == str(work / "user" / "home") and env["USER"] == user.pw_name
        assert env["PATH"] == "/usr/local/bin:/usr/bin:/bin" and "PGHOST" not in env
        assert not any(name.startswith(("VIRTUAL_ENV", "PYENV")) for name in env)
        # It can write its home and pip cache, as its own make run will.
        result = subprocess.run(["sh", "-c", "mkdir -p \"$PIP_CACHE_DIR\" && touch \"$HOME/x\" && id -u"], env=env,
                                user=user.pw_uid, group=user.pw_gid, extra_groups=[], capture_output=True, text=True)
        assert result.returncode == 0 and int(result.stdout) == user.pw_uid
    finally:
        tool.remove_user(identity.user.pw_name)
    with pytest.raises(KeyError):
        pwd.getpwnam(identity.user.pw_name)


def test_belonging_follows_descendants_and_working_directories_and_skips_zombies(tmp_path):
    marker = tmp_path / "here"
    marker.mkdir()
    # A parent run from the marked folder, with a child whose command line does not name it.
    parent = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time; "
                               "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
                               "time.sleep(60)"], cwd=marker)
    try:
        deadline = time.monotonic() + 30
        while len(tool.belonging([str(marker)])) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        found = tool.belonging([str(marker)])
        assert parent.pid in {p.pid for p in found} and len(found) == 2
        tool.kill_all(found)
        parent.wait(10)  # the parent is reaped; its child, killed, is a zombie or gone: neither counts
        assert tool.wait_gone([str(marker)], pids={parent.pid}, seconds=30) == []
    finally:
        parent.kill()
        parent.wait()


def test_as_root_or_both_is_refused_to_an_ordinary_user(monkeypatch, capsys):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    for choice in ("root", "both"):
        with pytest.raises(SystemExit) as exit_:
            tool.main(["--as", choice])
        assert exit_.value.code == 2 and "needs root" in capsys.readouterr().err
