"""`make demo`: synthetic households (a fridge, a heater, a kettle each: local.synth.appliance_records) streamed
to the local stack at a chosen rate, with a progress line, so the dashboard's counters move, clusters form and
appliances switch within a minute.

    python -m local.demo                     a running `make run` stack (found in .local/), else starts one
    python -m local.demo --rate 50 --devices 5 --events 3000
    python -m local.demo --url URL --token INGEST --read-token READ     any wattprint API

Attached to a running stack it makes its own tokens (`demo`, `demo-dashboard`) in that stack's database.
Events go out a few at a time through the sensor-side client (wattprint.client), as sensors would post them.
"""

from __future__ import annotations

import argparse
import fcntl
import itertools
import json
import os
import signal
import sys
import threading
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers" / "core"))

TICK = 0.25  # s: the events due are posted together every TICK (at 20 events/s: 5 per request)


def running_stack(data_dir: Path) -> dict | None:
    """The stack.json of a stack running from data_dir (its lock held), or None."""
    lock, state = data_dir / "stack.lock", data_dir / "stack.json"
    if not lock.exists() or not state.exists():
        return None
    with open(lock, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return json.loads(state.read_text())
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None  # left behind by a stack that was killed


def demo_tokens(database_url: str) -> dict[str, str]:
    """An ingest and a read token in that stack's database (creating one again rotates it)."""
    os.environ["DATABASE_URL"] = database_url
    from wattprint import admin, db

    db.reset()
    tokens = {scope: admin.handle({"action": "create_token", "scope": scope, "name": name})["token"]
              for scope, name in (("ingest", "demo"), ("read", "demo-dashboard"))}
    db.reset()
    return tokens


def runs_done(url: str, read_token: str) -> int | None:
    request = urllib.request.Request(url.rstrip("/") + "/runs", headers={"Authorization": f"Bearer {read_token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return sum(run["status"] == "done" for run in json.loads(response.read())["runs"])
    except (OSError, ValueError, KeyError):
        return None


def stream(url: str, token: str, read_token: str | None, rate: float, devices: int, events: int | None,
           seed: int, out=None, stopping: threading.Event | None = None) -> dict:
    """Post appliance events at `rate` per second until `events` are sent (None: until stopped)."""
    from wattprint import client

    from . import synth

    stopping, out = stopping or threading.Event(), out or sys.stderr
    lines = synth.appliance_lines(devices, seed, step=timedelta(seconds=10))
    sent, runs, started = 0, None, time.monotonic()
    last_runs_check = 0.0
    while not stopping.is_set() and (events is None or sent < events):
        due = int((time.monotonic() - started) * rate) + 1 - sent
        if events is not None:
            due = min(due, events - sent)
        if due > 0:
            sent += client.send(list(itertools.islice(lines, due)), url, token).sent
        now = time.monotonic()
        if read_token and now - last_runs_check >= 2:
            runs, last_runs_check = runs_done(url, read_token), now
        elapsed = max(now - started, 1e-9)
        out.write(f"\r{sent:,} events sent  {sent / elapsed:,.1f}/s  "
                  f"{'?' if runs is None else runs} run{'' if runs == 1 else 's'} completed\x1b[K")
        out.flush()
        stopping.wait(max(0.0, TICK - (time.monotonic() - now)))
    if read_token:
        runs = runs_done(url, read_token)
    out.write("\n")
    out.flush()
    return {"sent": sent, "seconds": round(time.monotonic() - started, 1), "runs_done": runs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=25.0, help="events per second (default 25: a first run in 40 s)")
    parser.add_argument("--devices", type=int, default=3, help="households (default 3)")
    parser.add_argument("--events", type=int, help="stop after this many (default: until Ctrl-C)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--url", help="an API to send to instead of the local stack")
    parser.add_argument("--token", help="its ingest token (with --url)")
    parser.add_argument("--read-token", help="its read token, to count completed runs (with --url)")
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".local", help="where `make run` keeps its state")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")),
                        help="for a stack the demo starts itself")
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.devices < 1 or (args.events is not None and args.events < 1):
        parser.error("--rate, --devices and --events must be positive")
    if args.url and not args.token:
        parser.error("--url needs --token (an ingest token)")

    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    stack = None
    if args.url:
        url, token, read_token = args.url, args.token, args.read_token
    elif (state := running_stack(args.data_dir)) is not None:
        url, tokens = state["url"], demo_tokens(state["database_url"])
        token, read_token = tokens["ingest"], tokens["read"]
        print(f"streaming to the running stack at {url}; dashboard {url}/dashboard (read token {read_token})",
              file=sys.stderr)
    else:
        import logging

        from .stack import Stack

        logging.basicConfig(level=logging.WARNING)
        stack = Stack(template=ROOT / "template.yaml", data_dir=args.data_dir, port=args.port)
        print("no local stack running: starting one (Ctrl-C stops both)…", file=sys.stderr)
        try:
            stack.start()
        except Exception as error:  # noqa: BLE001 — said plainly, the stack stopped again
            stack.stop()
            print(f"error: could not start the local stack: {error}", file=sys.stderr)
            return 1
        url, token, read_token = stack.info["url"], stack.info["tokens"]["ingest"], stack.info["tokens"]["read"]
        print(f"dashboard {url}/dashboard (read token {read_token})", file=sys.stderr)
    from wattprint.client import SendError

    try:
        outcome = stream(url, token, read_token, args.rate, args.devices, args.events, args.seed,
                         stopping=stopping)
    except SendError as error:
        print(f"\nerror: {error}", file=sys.stderr)
        return 1
    finally:
        if stack is not None:
            stack.stop()
    print(json.dumps(outcome))
    return 0


if __name__ == "__main__":
    sys.exit(main())
