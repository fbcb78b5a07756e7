"""`make run` from a fresh clone, as a new developer would: as root and as an ordinary OS user.

For each identity: a clone of its own (of this repository's HEAD), an empty `.local/`, no `.venv`, an empty pip
cache; `make run` (which creates the venv and installs everything) must answer `GET /health` with 200. Then:

- Ctrl-C, as a terminal sends it (SIGINT to make's process group): make exits and no process is left behind
  (no postgres, no python: nothing running from the clone, as the identity, or as PostgreSQL's OS user);
- `make run` again, and kill -9 of its whole process group: PostgreSQL runs outside that group, and its watchdog
  must stop it (and itself) without anyone's help;
- with --make-test IDENTITY, `make test` in that identity's clone must pass.

As root, PostgreSQL's OS user gets a name that no user has (WATTPRINT_PG_OS_USER), so that its creation is
exercised even on a machine that already has `embedded_postgres`; the ordinary user is created for the run. Both
are removed at the end, with the clones. Needs root for `--as user` (to create the user); stdlib only, so that it
runs before any venv exists:

    python3 tools/fresh_clone_check.py                          # as root: both identities
    python3 tools/fresh_clone_check.py --as root --keep         # keep the clones and logs to look at
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Settings a developer's shell (or this machine's) may hold that would point a new stack somewhere else.
FOREIGN = ("DATABASE_URL", "DB_SCHEMA", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "CLUSTER_QUEUE_URL",
           "AWS_ENDPOINT_URL_SQS", "LIVE_QUEUE_URL", "LIVE_WEBSOCKET_URL", "LIVE_MANAGEMENT_ENDPOINT",
           "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PIP_CACHE_DIR", "PIP_NO_CACHE_DIR", "WATTPRINT_PG_OS_USER",
           "PORT", "MAKEFLAGS", "MAKELEVEL", "MFLAGS")
# What an ordinary user's login would also have: how this machine reaches its package registries, the locale.
PASSED_TO_USER = ("PIP_", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
                  "SSL_CERT_", "REQUESTS_CA_BUNDLE", "LANG", "LC_", "TZ", "CI")


class Failed(Exception):
    pass


def log(message: str) -> None:
    print(f"[fresh-clone] {message}", flush=True)


# --- processes ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    uid: int
    state: str
    exe: str
    cwd: str
    cmdline: str

    def __str__(self) -> str:
        return f"pid {self.pid} (uid {self.uid}, {self.state}): {self.cmdline or self.exe}"


def processes() -> list[Proc]:
    """Every process but zombies (dead, only waiting to be reaped) and this one, from /proc (Linux)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        base = Path("/proc", entry)
        try:
            status = dict(line.split(":", 1) for line in (base / "status").read_text().splitlines() if ":" in line)
            cmdline = (base / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            exe, cwd = (_readlink(base / name) for name in ("exe", "cwd"))
        except (OSError, ValueError):
            continue  # gone meanwhile
        state = status.get("State", "?").split()[0]
        if state == "Z":
            continue
        found.append(Proc(int(entry), int(status["PPid"]), int(status["Uid"].split()[0]), state, exe, cwd, cmdline))
    return found


def _readlink(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""  # another user's process, or gone


def belonging(markers: list[str], uids: set[int] = frozenset(), pids: set[int] = frozenset()) -> list[Proc]:
    """Processes that name a marker (a path) in their command line, executable or working directory (make's
    `.venv/bin/python` is relative; PostgreSQL works in its data dir), run as one of `uids`, or are one of
    `pids`, and all their descendants."""
    every = processes()
    chosen = {p.pid for p in every if p.pid in pids or p.uid in uids
              or any(m in p.cmdline or p.exe.startswith(m) or p.cwd.startswith(m) for m in markers)}
    grew = True
    while grew:
        more = {p.pid for p in every if p.ppid in chosen} - chosen
        chosen |= more
        grew = bool(more)
    return [p for p in every if p.pid in chosen]


def wait_gone(markers: list[str], uids: set[int] = frozenset(), pids: set[int] = frozenset(),
              seconds: float = 60.0) -> list[Proc]:
    """The processes still there after up to `seconds` (empty: all gone)."""
    deadline = time.monotonic() + seconds
    while True:
        left = belonging(markers, uids, pids)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def kill_all(found: list[Proc]) -> None:
    for proc in found:
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


# --- the stack ------------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url + "/health", timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (OSError, ValueError):
        return None


@dataclass
class Launched:
    """A command in a process group (and session) of its own, as a shell started from a terminal would be."""

    process: subprocess.Popen
    log_path: Path

    @property
    def pgid(self) -> int:
        return self.process.pid

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.pgid, sig)
        except ProcessLookupError:
            pass


def launch(command: list[str], cwd: Path, env: dict[str, str], log_path: Path,
           user: pwd.struct_passwd | None = None) -> Launched:
    identity = {} if user is None else {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    with open(log_path, "ab") as out:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True, **identity)
    return Launched(process, log_path)


def wait_healthy(url: str, launched: Launched, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        status = health(url)
        if status == 200:
            return
        if launched.process.poll() is not None:
            raise Failed(f"exited ({launched.process.returncode}) before {url}/health answered 200 "
                         f"(last answer: {status}):\n{launched.tail()}")
        if time.monotonic() > deadline:
            raise Failed(f"{url}/health did not answer 200 within {seconds:.0f} s (last: {status}):\n"
                         f"{launched.tail()}")
        time.sleep(1)


def ctrl_c(launched: Launched, seconds: float = 120.0) -> int:
    """SIGINT to the whole foreground group, as the terminal sends it on Ctrl-C; make's exit status."""
    launched.signal_group(signal.SIGINT)
    try:
        return launched.process.wait(seconds)
    except subprocess.TimeoutExpired:
        raise Failed(f"still running {seconds:.0f} s after Ctrl-C:\n{launched.tail()}") from None


def kill_9(launched: Launched) -> None:
    launched.signal_group(signal.SIGKILL)
    launched.process.wait(30)


# --- identities -----------------------------------------------------------------------------------------------
def run_quiet(command: list[str], **options) -> None:
    result = subprocess.run(command, capture_output=True, text=True, **options)
    if result.returncode != 0:
        raise Failed(f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()}")


def create_user(name: str, home: Path) -> pwd.struct_passwd:
    run_quiet(["useradd", "--user-group", "--no-create-home", "--home-dir", str(home), "--shell", "/bin/sh", name])
    entry = pwd.getpwnam(name)
    home.mkdir(parents=True)
    os.chown(home, entry.pw_uid, entry.pw_gid)
    return entry


def remove_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return
    subprocess.run(["userdel", name], capture_output=True)
    subprocess.run(["groupdel", name], capture_output=True)  # where userdel left the user's group


@dataclass
class Identity:
    """Who runs `make run`, in which clone, with which environment, and what else it makes (to clean up)."""

    name: str  # "root" or "user"
    base: Path
    user: pwd.struct_passwd | None = None
    pg_os_user: str | None = None
    env: dict = field(default_factory=dict)

    @property
    def clone(self) -> Path:
        return self.base / "wattprint"

    def uids(self) -> set[int]:
        found = set()
        for name in filter(None, (self.user and self.user.pw_name, self.pg_os_user)):
            try:
                found.add(pwd.getpwnam(name).pw_uid)
            except KeyError:
                pass
        return found

    def markers(self) -> list[str]:
        return [str(self.clone)]


def prepare(name: str, work: Path) -> Identity:
    base = work / name
    base.mkdir(parents=True)
    identity = Identity(name, base)
    run_quiet(["git", "clone", "--quiet", "--no-local", str(REPO), str(identity.clone)])
    shared = REPO.parent / "shared"
    if shared.is_dir():  # the tests read ../shared/data; CI lays a copy of shared/ beside its clone
        (base / "shared").symlink_to(shared)
    port = str(free_port())
    if name == "root":
        env = {k: v for k, v in os.environ.items() if k not in FOREIGN}
        identity.pg_os_user = "wpfresh" + uuid.uuid4().hex[:8]
        env.update(PIP_CACHE_DIR=str(base / "pip-cache"), WATTPRINT_PG_OS_USER=identity.pg_os_user, PORT=port)
    else:
        home = base / "home"
        identity.user = create_user("wpci" + uuid.uuid4().hex[:8], home)
        for path in [base, *base.rglob("*")]:
            if not path.is_symlink():
                os.lchown(path, identity.user.pw_uid, identity.user.pw_gid)
        env = {k: v for k, v in os.environ.items() if k.startswith(PASSED_TO_USER) and k not in FOREIGN}
        env.update(HOME=str(home), USER=identity.user.pw_name, LOGNAME=identity.user.pw_name, SHELL="/bin/sh",
                   PATH="/usr/local/bin:/usr/bin:/bin", PIP_CACHE_DIR=str(home / ".cache" / "pip"), PORT=port)
    identity.env = env
    return identity


def check(identity: Identity, make_test: bool, install_seconds: float) -> dict:
    """The checks for one identity; its figures (seconds) for the report."""
    url = f"http://127.0.0.1:{identity.env['PORT']}"
    where = identity.clone
    assert not (where / ".local").exists() and not (where / ".venv").exists()
    figures = {}

    log(f"{identity.name}: make run in {where} (fresh venv, empty pip cache)")
    started = time.monotonic()
    run = launch(["make", "run"], where, identity.env, identity.base / "make-run-1.log", identity.user)
    wait_healthy(url, run, install_seconds)
    figures["first make run until healthy"] = round(time.monotonic() - started, 1)
    if identity.pg_os_user:
        try:
            pwd.getpwnam(identity.pg_os_user)
        except KeyError:
            raise Failed(f"the stack runs, but not as the new OS user {identity.pg_os_user}") from None
    log(f"{identity.name}: GET /health = 200 after {figures['first make run until healthy']} s; Ctrl-C")
    status = ctrl_c(run)
    left = wait_gone(identity.markers(), identity.uids(), seconds=30)
    if left:
        raise Failed("left behind after Ctrl-C:\n  " + "\n  ".join(map(str, left)) + f"\n{run.tail()}")
    if "stopping" not in run.tail():
        raise Failed(f"the stack did not say it was stopping:\n{run.tail()}")
    log(f"{identity.name}: Ctrl-C: make exited ({status}), no process left")

    again = launch(["make", "run"], where, identity.env, identity.base / "make-run-2.log", identity.user)
    wait_healthy(url, again, 300)
    log(f"{identity.name}: make run again: healthy; kill -9 of its process group")
    kill_9(again)
    started = time.monotonic()
    left = wait_gone(identity.markers(), identity.uids(), seconds=90)
    if left:
        raise Failed("left behind 90 s after kill -9 of make's process group:\n  " + "\n  ".join(map(str, left)))
    figures["kill -9 until nothing left"] = round(time.monotonic() - started, 1)
    log(f"{identity.name}: kill -9: nothing left after {figures['kill -9 until nothing left']} s")

    if make_test:
        log(f"{identity.name}: make test")
        started = time.monotonic()
        tests = launch(["make", "test"], where, identity.env, identity.base / "make-test.log", identity.user)
        try:
            code = tests.process.wait(3600)
        except subprocess.TimeoutExpired:
            tests.signal_group(signal.SIGKILL)
            raise Failed(f"make test ran over an hour:\n{tests.tail()}") from None
        print(tests.tail(5), flush=True)
        if code != 0:
            raise Failed(f"make test failed ({code}):\n{tests.tail(80)}")
        figures["make test"] = round(time.monotonic() - started, 1)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 tools/fresh_clone_check.py", description=__doc__.split("\n")[0])
    parser.add_argument("--as", dest="who", choices=("root", "user", "both"), default=None,
                        help="which identities (default: both as root, else the current user only)")
    parser.add_argument("--make-test", choices=("root", "user", "both", "none"), default="none",
                        help="also run `make test` in that identity's clone")
    parser.add_argument("--install-seconds", type=float, default=1800,
                        help="how long the first make run may take to install and answer (default 1800)")
    parser.add_argument("--keep", action="store_true", help="keep the clones, logs and users")
    args = parser.parse_args(argv)
    root = os.geteuid() == 0
    who = args.who or ("both" if root else "user")
    if who != "user" and not root:
        parser.error(f"--as {who} needs root (as root the ordinary user is created for the run)")
    names = ["root", "user"] if who == "both" else [who]
    work = Path(tempfile.mkdtemp(prefix="wattprint-fresh-"))
    work.chmod(0o755)  # the ordinary user's clone lies under it
    identities: list[Identity] = []
    results, failed = {}, False
    try:
        for name in names:
            if name == "user" and not root:
                identity = prepare_current_user(work)
            else:
                identity = prepare(name, work)
            identities.append(identity)
            try:
                results[name] = check(identity, args.make_test in (name, "both"), args.install_seconds)
            except Failed as error:
                failed = True
                log(f"{name}: FAILED: {error}")
    finally:
        for identity in identities:
            kill_all(belonging(identity.markers(), identity.uids()))
        if not args.keep:
            for identity in identities:
                if identity.user:
                    remove_user(identity.user.pw_name)
                if identity.pg_os_user:
                    remove_user(identity.pg_os_user)
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work}")
    log(json.dumps(results))
    if failed:
        log("FAILED")
        return 1
    log(f"passed: make run from a fresh clone as {' and '.join(names)}")
    return 0


def prepare_current_user(work: Path) -> Identity:
    """Not root: the current user is the ordinary user (nothing to create)."""
    base = work / "user"
    base.mkdir(parents=True)
    identity = Identity("user", base)
    run_quiet(["git", "clone", "--quiet", "--no-local", str(REPO), str(identity.clone)])
    shared = REPO.parent / "shared"
    if shared.is_dir():
        (base / "shared").symlink_to(shared)
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN}
    env.update(PIP_CACHE_DIR=str(base / "pip-cache"), PORT=str(free_port()))
    identity.env = env
    return identity


if __name__ == "__main__":
    sys.exit(main())
