"""The sensor side: post a file (or stdin) of raw event lines to POST /events, in batches that fit the API's
limits, with retries, an idempotency key per batch and a progress bar on stderr. Standard library only.

    python -m wattprint.client send events.txt --url https://<api>.execute-api.<region>.amazonaws.com/v1 \\
        --token "$INGEST_TOKEN"
    some-sensor-reader | python -m wattprint.client send - --url http://127.0.0.1:3000 --token "$INGEST"

    from wattprint.client import send
    summary = send(open("events.txt"), url, token)

A batch is at most MAX_EVENTS lines and MAX_BODY_BYTES bytes (wattprint.limits, what the server enforces).
Retried, with exponential backoff and jitter (or the server's Retry-After): 429, 502, 503, 504 and network
errors. Each batch carries an `Idempotency-Key` header, the same on every retry of it, so a batch whose answer was
lost is not stored twice by a server that honours it. A 413 (a server with lower limits) splits the batch in two.
A 400 names the bad line, counted from the start of the input; by default sending stops there (the batches
before it are stored, that one is not), with `skip_invalid` the line is left out and the batch sent again.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, TextIO

from .limits import MAX_BODY_BYTES, MAX_EVENTS

RETRIED = {429, 502, 503, 504}


class SendError(Exception):
    """Sending stopped: the input or the server refused something that retrying cannot change."""


@dataclass
class Summary:
    sent: int = 0  # events the server stored
    batches: int = 0
    retries: int = 0
    total: int | None = None  # the server's count of stored events after the last batch
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (line number, why) with skip_invalid


def batches(lines: Iterable[str], max_events: int = MAX_EVENTS,
            max_bytes: int = MAX_BODY_BYTES) -> Iterator[list[tuple[int, str]]]:
    """(line number, line) lists within both limits; blank lines are left out (the server ignores them too)."""
    batch: list[tuple[int, str]] = []
    size = 0
    for number, line in enumerate(lines, start=1):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        cost = len(line.encode("utf-8")) + 1  # with the newline before the next line (none after the last)
        if cost - 1 > max_bytes:
            raise SendError(f"line {number} is {cost - 1} bytes, more than a request may carry ({max_bytes})")
        if batch and (len(batch) == max_events or size + cost - 1 > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append((number, line))
        size += cost
    if batch:
        yield batch


class Progress:
    """A one-line progress bar on a text stream (stderr), redrawn at most ten times a second."""

    def __init__(self, stream: TextIO, total: int | None, clock: Callable[[], float] = time.monotonic):
        self.stream, self.total, self.clock = stream, total, clock
        self.started = self._drawn = clock()
        self.done = self.retries = 0

    def update(self, done: int, retries: int, force: bool = False) -> None:
        self.done, self.retries = done, retries
        now = self.clock()
        if not force and now - self._drawn < 0.1:
            return
        self._drawn = now
        rate = done / (now - self.started) if now > self.started else 0.0
        text = f"{done:,} events"
        if self.total:
            filled = int(30 * min(done, self.total) / self.total)
            bar = "#" * filled + "." * (30 - filled)
            text = f"[{bar}] {100 * done // self.total:3d}% {done:,}/{self.total:,} events"
        text += f"  {rate:,.0f}/s" + (f"  {retries} retr{'y' if retries == 1 else 'ies'}" if retries else "")
        self.stream.write("\r" + text + "\x1b[K")
        self.stream.flush()

    def close(self) -> None:
        self.update(self.done, self.retries, force=True)
        self.stream.write("\n")
        self.stream.flush()


def _endpoint(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/events") else url + "/events"


def _retry_after(headers, attempt: int, base: float, cap: float) -> float:
    value = headers.get("Retry-After") if headers is not None else None
    if value and value.strip().isdigit():
        return min(cap, float(value))
    return random.uniform(0, min(cap, base * 2 ** attempt))  # "full jitter": clients spread out


def _post(endpoint: str, token: str, body: bytes, key: str, timeout: float) -> tuple[int, dict, object]:
    request = urllib.request.Request(endpoint, data=body, method="POST", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "text/plain; charset=utf-8", "Idempotency-Key": key,
        "User-Agent": "wattprint-client"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (the user's API URL)
            return response.status, json.loads(response.read() or b"{}"), response.headers
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            doc = json.loads(raw or b"{}")
        except ValueError:
            doc = {"error": {"message": raw[:200].decode("utf-8", "replace")}}
        return error.code, doc if isinstance(doc, dict) else {}, error.headers


def send(lines: Iterable[str], url: str, token: str, *, max_events: int = MAX_EVENTS,
         max_bytes: int = MAX_BODY_BYTES, attempts: int = 8, backoff: float = 0.5, max_backoff: float = 30.0,
         timeout: float = 30.0, skip_invalid: bool = False, progress: Progress | None = None,
         sleep: Callable[[float], None] = time.sleep) -> Summary:
    """Post every event line of `lines` (see the module docstring); returns what was stored."""
    endpoint, summary = _endpoint(url), Summary()
    try:
        for batch in batches(lines, max_events, max_bytes):  # read as it goes: stdin may be a live stream
            todo = [batch]  # a stack: a split or shortened batch goes back on top, in order
            while todo:
                _send_batch(todo, endpoint, token, summary, attempts, backoff, max_backoff, timeout, skip_invalid,
                            progress, sleep)
                if progress:
                    progress.update(summary.sent, summary.retries)
    finally:
        if progress:
            progress.close()
    return summary


def _send_batch(todo, endpoint, token, summary, attempts, backoff, max_backoff, timeout, skip_invalid, progress,
                sleep) -> None:
    """Send the batch on top of `todo` until it is stored, split or shortened (pushed back), or refused."""
    batch = todo.pop()
    key, attempt = str(uuid.uuid4()), 0  # one key for every retry of this body
    body = "\n".join(line for _, line in batch).encode("utf-8")  # within max_bytes: see batches()
    while True:
        try:
            status, doc, headers = _post(endpoint, token, body, key, timeout)
        except (urllib.error.URLError, OSError) as error:  # refused, reset, timed out, DNS
            status, doc, headers = None, {"error": {"message": str(getattr(error, "reason", error))}}, None
        if status is not None and status < 300:
            summary.sent += int(doc.get("count", len(batch)))
            summary.total = doc.get("total", summary.total)
            summary.batches += 1
            return
        error = doc.get("error") or {}
        if status is None or status in RETRIED:
            attempt += 1
            if attempt >= attempts:
                raise SendError(f"gave up on lines {batch[0][0]}–{batch[-1][0]} after {attempts} attempts: "
                                f"{status or 'network error'} {error.get('message', '')}".rstrip())
            summary.retries += 1
            if progress:
                progress.update(summary.sent, summary.retries)
            sleep(_retry_after(headers, attempt - 1, backoff, max_backoff))
            continue
        if status == 413 and len(batch) > 1:  # the server's limits are lower than ours
            half = len(batch) // 2
            todo += [batch[half:], batch[:half]]
            return
        line = error.get("line")
        if status == 400 and isinstance(line, int) and 1 <= line <= len(batch):
            number = batch[line - 1][0]
            where = f"line {number}" + (f" ({error['field']})" if error.get("field") else "")
            if not skip_invalid:
                raise SendError(f"{where}: {error.get('message', 'invalid event')}; the {summary.sent:,} events "
                                f"before its batch were stored, none from line {batch[0][0]} on")
            summary.skipped.append((number, error.get("message", "invalid event")))
            if len(batch) > 1:
                todo.append(batch[:line - 1] + batch[line:])
            return
        raise SendError(f"HTTP {status}: {error.get('code', '')} {error.get('message', '')}".strip())


def _count_events(path: str) -> int:
    with open(path, encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wattprint.client", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    cmd = commands.add_parser("send", help="post a file of raw event lines (or - for stdin)")
    cmd.add_argument("file", help="a file of raw events, one per line, or - for stdin")
    cmd.add_argument("--url", required=True, help="the API's base URL (…/v1) or its /events URL")
    cmd.add_argument("--token", required=True, help="an ingest token")
    cmd.add_argument("--batch-events", type=int, default=MAX_EVENTS, help=f"at most {MAX_EVENTS}")
    cmd.add_argument("--batch-bytes", type=int, default=MAX_BODY_BYTES, help=f"at most {MAX_BODY_BYTES}")
    cmd.add_argument("--attempts", type=int, default=8, help="tries per batch on 429/5xx/network errors")
    cmd.add_argument("--skip-invalid", action="store_true", help="leave out lines the server refuses, and go on")
    cmd.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    args = parser.parse_args(argv)
    if not 1 <= args.batch_events <= MAX_EVENTS or not 1 <= args.batch_bytes <= MAX_BODY_BYTES:
        parser.error(f"batches are 1–{MAX_EVENTS} events and 1–{MAX_BODY_BYTES} bytes")
    stdin = args.file == "-"
    try:
        total = None if stdin else _count_events(args.file)
        handle = sys.stdin if stdin else open(args.file, encoding="utf-8")
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    progress = None if args.no_progress else Progress(sys.stderr, total)
    try:
        summary = send(handle, args.url, args.token, max_events=args.batch_events, max_bytes=args.batch_bytes,
                       attempts=args.attempts, skip_invalid=args.skip_invalid, progress=progress)
    except SendError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        if not stdin:
            handle.close()
    for number, why in summary.skipped:
        print(f"skipped line {number}: {why}", file=sys.stderr)
    print(json.dumps({"sent": summary.sent, "batches": summary.batches, "retries": summary.retries,
                      "skipped": len(summary.skipped), "total": summary.total}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
