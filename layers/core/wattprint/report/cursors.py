"""Keyset cursors for GET /events: where a walk resumes, as an opaque, checked string.

A cursor holds a version, the order, the last seq served, the run whose labels the pages show (pinned on the
first page, so a run completing mid-walk does not change labels under the reader) with its threshold and first seq
(a windowed run's: CLUSTER_WINDOW), a digest of the filters, and
a checksum (keyed with a constant in this file: it catches edited or damaged cursors, it does not stop anyone
from forging one). They grant nothing: a cursor only says where to resume a walk the read token may already
make from the start. Pure (no I/O).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
from dataclasses import dataclass

from ..errors import InvalidCursor


@dataclass(frozen=True)
class Cursor:
    desc: bool
    seq: int  # the last seq served; the next page starts after it
    run_id: int  # the run whose labels the walk shows (0: none)
    threshold: int  # that run's threshold (0: none)
    filters: bytes  # EventQuery.digest() of the first page
    first_seq: int = 1  # that run's lowest seq (a window's first; 1: every event up to the threshold)


_CURSOR_VERSION = 2
_CURSOR = struct.Struct(">BBqqq8sq")
# Version 1 (before windows): no first_seq, every run took every event from seq 1. Still read, so a walk that
# began before a deploy goes on.
_CURSOR_V1 = struct.Struct(">BBqqq8s")
_MAC_BYTES = 10
# Not a secret (cursors grant nothing): it makes a cursor that was edited or made up fail the check instead of
# silently starting a walk somewhere else.
_CURSOR_KEY = b"wattprint report cursor v1"


def _mac(payload: bytes) -> bytes:
    return hmac.new(_CURSOR_KEY, payload, hashlib.sha256).digest()[:_MAC_BYTES]


def encode_cursor(cursor: Cursor) -> str:
    payload = _CURSOR.pack(_CURSOR_VERSION, int(cursor.desc), cursor.seq, cursor.run_id, cursor.threshold,
                           cursor.filters, cursor.first_seq)
    return base64.urlsafe_b64encode(payload + _mac(payload)).rstrip(b"=").decode("ascii")


def decode_cursor(text: str) -> Cursor:
    invalid = InvalidCursor("cursor is not one this API made; pass the `next` value of a previous page unchanged",
                            parameter="cursor")
    if not text or len(text) > 128 or not re.fullmatch(r"[A-Za-z0-9_-]+", text):
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        raise invalid from None
    shape = {_CURSOR.size + _MAC_BYTES: (_CURSOR, _CURSOR_VERSION),
             _CURSOR_V1.size + _MAC_BYTES: (_CURSOR_V1, 1)}.get(len(raw))
    if shape is None:
        raise invalid
    layout, expected = shape
    payload, mac = raw[:layout.size], raw[layout.size:]
    if not hmac.compare_digest(mac, _mac(payload)):
        raise invalid
    version, desc, seq, run_id, threshold, filters, *rest = layout.unpack(payload)
    first_seq = rest[0] if rest else 1
    if version != expected or desc not in (0, 1) or min(seq, run_id, threshold) < 0 or first_seq < 1:
        raise invalid
    return Cursor(bool(desc), seq, run_id, threshold, filters, first_seq)
