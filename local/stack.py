"""The local stack: embedded PostgreSQL, moto's SQS, and template.yaml served on http://127.0.0.1:3000.

    python -m local            (what `make run` runs)
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
import os
import signal
import sys
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers" / "core"))

from . import template as template_module  # noqa: E402
from .apigw import Gateway, serve  # noqa: E402
from .pg import LOOPBACK, EmbeddedPostgres, free_port  # noqa: E402
from .runtime import Functions  # noqa: E402
from .sqs import Scheduler, SqsPoller, create_queues  # noqa: E402

log = logging.getLogger("local.stack")

REGION = "us-east-1"
DEV_TOKENS = {"ingest": ("dev-ingest", "WATTPRINT_INGEST_TOKEN"), "read": ("dev-read", "WATTPRINT_READ_TOKEN")}


class AlreadyRunning(RuntimeError):
    pass


def resolve_environment(app: template_module.App, queue_urls: dict[str, str]) -> dict[str, str]:
    """The functions' environment as it would be in AWS, with local values for the resources it names.

    Handlers share one process here, so one environment serves them all. DATABASE_URL (set by the stack)
    takes precedence over the DB_* variables the template points at Aurora, so those are left out.
    """
    env: dict[str, str] = {}
    for fn in app.functions.values():
        for name, value in fn.environment.items():
            if name.startswith("DB_"):
                continue
            ref = template_module._ref(value)
            if ref in queue_urls:
                resolved = queue_urls[ref]
            elif ref in app.parameters:
                resolved = app.parameters[ref]
            elif isinstance(value, (str, int, float)):
                resolved = str(value)
            else:
                continue  # an attribute of a resource that has no local counterpart
            if env.get(name, resolved) != resolved:
                log.warning("functions disagree on %s; the local stack uses %r", name, env[name])
                continue
            env[name] = resolved
    return env


@dataclass
class Stack:
    template: Path
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 3000
    workers: int = 8
    started: list = field(default_factory=list)  # things to stop, in start order
    info: dict = field(default_factory=dict)
    # Each queue-triggered function is initialised by its poller at start, before any message, as a provisioned
    # instance would be: a cold ClusterFunction's init imports scikit-learn (~1.3 s), which the first run after
    # `make run` paid otherwise (issue 18). False only to measure that (make bench).
    warm: bool = True
    _saved_env: dict = field(default_factory=dict)

    def _setenv(self, name: str, value: str, override: bool = True) -> None:
        """Set a variable for the in-process handlers, remembering what to restore on stop."""
        if not override and name in os.environ:
            return
        self._saved_env.setdefault(name, os.environ.get(name))
        os.environ[name] = value

    def _restore_env(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()

    def _lock(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.data_dir / "stack.lock", "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            state = self.data_dir / "stack.json"
            where = json.loads(state.read_text()).get("url", "?") if state.exists() else "?"
            raise AlreadyRunning(f"a wattprint local stack is already running from {self.data_dir} ({where}); "
                                 "stop it (Ctrl-C in its terminal) before starting another") from None
        self.started.append(("lock", handle))

    def _database(self) -> str:
        if os.environ.get("DATABASE_URL"):
            return os.environ["DATABASE_URL"]
        if os.environ.get("PGHOST"):
            return ""  # wattprint.settings reads the PG* variables itself
        # Loopback whatever --host says: the server trusts every local login, and only this process talks to it.
        pg = EmbeddedPostgres(self.data_dir / "pgdata", free_port(LOOPBACK), host=LOOPBACK)
        # Left behind by a stack that was killed and whose watchdog could not stop it: restart it on our port.
        if pg.running():
            pg.stop()
        pg.start()
        self.started.append(("postgres", pg))
        return pg.url

    def _sqs(self):
        import boto3
        from moto.server import ThreadedMotoServer

        # Loopback whatever --host says: moto accepts any credentials, so anyone reaching it could use the queues.
        port = free_port(LOOPBACK)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every SQS call
        server = ThreadedMotoServer(ip_address=LOOPBACK, port=port, verbose=False)
        server.start()
        self.started.append(("moto", server))
        endpoint = f"http://{LOOPBACK}:{port}"
        self._setenv("AWS_ENDPOINT_URL_SQS", endpoint)
        return boto3.client("sqs", region_name=REGION, endpoint_url=endpoint), endpoint

    def start(self) -> None:
        self._lock()
        # Metrics are EMF lines on stdout, one or two per request: noise in a terminal
        # (POWERTOOLS_METRICS_DISABLED=false shows them). Tracing is off outside Lambda by itself (wattprint.settings.tracing_enabled).
        for name, value in {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
                            "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
                            # Webhooks here are receivers on this machine (in AWS: https only).
                            "WEBHOOK_ALLOW_HTTP": "true",
                            "POWERTOOLS_METRICS_DISABLED": "true"}.items():
            self._setenv(name, value, override=False)
        app = template_module.load(self.template)

        database_url = self._database()
        if database_url:
            self._setenv("DATABASE_URL", database_url)
        client, sqs_endpoint = self._sqs()
        queue_urls = create_queues(client, app)
        for name, value in resolve_environment(app, queue_urls).items():
            self._setenv(name, value, override=False)

        from wattprint import admin, db

        db.reset()
        applied = admin.handle({"action": "migrate"})["applied"]
        tokens = {}
        for scope, (name, variable) in DEV_TOKENS.items():
            tokens[scope] = admin.handle({"action": "create_token", "scope": scope, "name": name,
                                       "token": os.environ.get(variable)})["token"]

        # Before any poller or the first sweep: every invocation and queued message of a previous process of this
        # stack died with it, so that first sweep (the schedulers run at start) sends its runs again at once.
        from wattprint.clustering import service as clustering

        recovered = clustering.after_restart()
        if any(recovered.values()):
            log.warning("clustering runs left by the previous run of the stack, sent again by the sweep: %s", recovered)

        functions = Functions(app.functions)
        gateway = Gateway(app, functions, workers=self.workers)
        self.started.append(("gateway", gateway))
        for trigger in app.sqs_triggers:
            poller = SqsPoller(client, queue_urls[trigger.queue], trigger, functions, REGION, warm=self.warm)
            poller.start()
            self.started.append(("poller", poller))
        for schedule in app.schedules:
            scheduler = Scheduler(schedule, functions)
            scheduler.start()
            self.started.append(("scheduler", scheduler))
        server = serve(gateway, self.host, self.port)
        self.port = server.server_address[1]
        if app.socket_routes:
            # Where the template points the functions at the WebSocket API in AWS, here: the same port.
            self._setenv("LIVE_WEBSOCKET_URL", f"ws://{self.host}:{self.port}/")
            self._setenv("LIVE_MANAGEMENT_ENDPOINT", f"http://{self.host}:{self.port}")
        threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
        self.started.append(("http", server))

        self.info = {"url": f"http://{self.host}:{self.port}", "pid": os.getpid(), "database_url": database_url,
                     "sqs_endpoint": sqs_endpoint, "queues": queue_urls, "migrations_applied": applied,
                     "recovered": recovered,
                     "routes": [f"{r.method} {r.path}" for r in gateway.routes]}
        # Whole or not at all: a second start (or a test) may read it while this one is writing it.
        partial = self.data_dir / "stack.json.tmp"
        partial.write_text(json.dumps(self.info, indent=2))
        os.replace(partial, self.data_dir / "stack.json")
        self.info["tokens"] = tokens  # printed once, never written to disk

    def stop(self) -> None:
        from wattprint import db

        for kind, thing in reversed(self.started):
            with contextlib.suppress(Exception):  # noqa: BLE001 — stop everything even if one part fails
                if kind in ("poller", "scheduler"):
                    thing.stop()
                    thing.join(timeout=5)
                elif kind == "http":
                    thing.shutdown()
                    thing.server_close()
                elif kind == "gateway":
                    thing.close()
                elif kind == "moto":
                    thing.stop()
                elif kind == "postgres":
                    db.reset()
                    thing.stop()
                elif kind == "lock":
                    (self.data_dir / "stack.json").unlink(missing_ok=True)
                    thing.close()
        self.started.clear()
        db.reset()
        self._restore_env()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__)
    parser.add_argument("--template", type=Path, default=ROOT / "template.yaml")
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".local")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(name)s %(message)s")
    warnings.filterwarnings("ignore", module="platformdirs")

    stack = Stack(template=args.template, data_dir=args.data_dir, host=args.host, port=args.port)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    try:
        stack.start()
    except AlreadyRunning as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        stack.stop()
        print(f"error: could not start the local stack: {error}", file=sys.stderr)
        return 1
    except BaseException:
        stack.stop()
        raise
    info = stack.info
    print(f"""
wattprint local stack is up
  API          {info['url']}   (routes from {args.template.name}: {', '.join(info['routes'])})
  PostgreSQL   {info['database_url'] or 'from PG* variables'}
  SQS (moto)   {info['sqs_endpoint']}
  dashboard    {info['url']}/dashboard   (live updates over {os.environ.get('LIVE_WEBSOCKET_URL') or 'no WebSocket API'})
  ingest token {info['tokens']['ingest']}
  read token   {info['tokens']['read']}

  curl {info['url']}/health
  curl -H 'Authorization: Bearer {info['tokens']['ingest']}' -H 'Content-Type: text/plain' \\
       --data-binary @events.txt {info['url']}/events
Ctrl-C stops everything.""", flush=True)
    try:
        stopping.wait()
    finally:
        print("stopping…", flush=True)
        stack.stop()
    return 0
