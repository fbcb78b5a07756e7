"""RFC 6455 in the standard library: the handshake, frames, and a small blocking client.

The local stack serves API Gateway's WebSocket routes with it (server side: unmasked frames out, masked frames
in); tests and `make bench` use Client to talk to it as a browser would.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import struct
from dataclasses import dataclass
from urllib.parse import urlsplit

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, BINARY, CLOSE, PING, PONG, CONTINUATION = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0
MAX_FRAME = 128 * 1024  # API Gateway's message size limit


class ProtocolError(Exception):
    """The peer broke the protocol (close with 1002)."""


class Closed(Exception):
    """The connection is closed (a close frame was received or the socket ended)."""

    def __init__(self, code: int = 1006, reason: str = ""):
        super().__init__(f"closed {code} {reason}".strip())
        self.code, self.reason = code, reason


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def encode(opcode: int, payload: bytes, mask: bool) -> bytes:
    """One final frame. Clients must mask; servers must not."""
    head = bytes([0x80 | opcode])
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 1 << 16:
        head += bytes([bit | 126]) + struct.pack(">H", n)
    else:
        head += bytes([bit | 127]) + struct.pack(">Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + _unmask(payload, key)


def _unmask(payload: bytes, key: bytes) -> bytes:
    if not payload:
        return payload
    repeated = (key * (len(payload) // 4 + 1))[:len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(len(payload), "big")


def _read_exact(stream, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data)) if hasattr(stream, "read") else stream.recv(n - len(data))
        if not chunk:
            raise Closed()
        data += chunk
    return data


@dataclass
class Frame:
    fin: bool
    opcode: int
    payload: bytes


def read_frame(stream, expect_masked: bool) -> Frame:
    """One frame from a file-like object (read) or a socket (recv)."""
    b0, b1 = _read_exact(stream, 2)
    if b0 & 0x70:
        raise ProtocolError("reserved bits set")
    masked, n = bool(b1 & 0x80), b1 & 0x7F
    if masked != expect_masked:
        raise ProtocolError("client frames must be masked, server frames must not")
    if n == 126:
        n = struct.unpack(">H", _read_exact(stream, 2))[0]
    elif n == 127:
        n = struct.unpack(">Q", _read_exact(stream, 8))[0]
    opcode = b0 & 0x0F
    if n > MAX_FRAME:
        raise ProtocolError(f"frame of {n} bytes exceeds {MAX_FRAME}")
    if opcode >= 0x8 and (n > 125 or not b0 & 0x80):
        raise ProtocolError("control frames are short and unfragmented")
    key = _read_exact(stream, 4) if masked else b""
    payload = _read_exact(stream, n)
    return Frame(bool(b0 & 0x80), opcode, _unmask(payload, key) if masked else payload)


def read_message(stream, expect_masked: bool, send) -> str | bytes:
    """The next data message, answering pings with `send(PONG, payload)`; Closed on a close frame."""
    parts, kind = [], None
    while True:
        frame = read_frame(stream, expect_masked)
        if frame.opcode == PING:
            send(PONG, frame.payload)
            continue
        if frame.opcode == PONG:
            continue
        if frame.opcode == CLOSE:
            code = struct.unpack(">H", frame.payload[:2])[0] if len(frame.payload) >= 2 else 1005
            raise Closed(code, frame.payload[2:].decode("utf-8", "replace"))
        if frame.opcode == CONTINUATION:
            if kind is None:
                raise ProtocolError("continuation without a first frame")
        elif kind is not None:
            raise ProtocolError("a new message inside a fragmented one")
        else:
            kind = frame.opcode
        parts.append(frame.payload)
        if sum(map(len, parts)) > MAX_FRAME:
            raise ProtocolError("message too large")
        if frame.fin:
            data = b"".join(parts)
            return data.decode("utf-8") if kind == TEXT else data


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack(">H", code) + reason.encode()[:123]


class Client:
    """A blocking WebSocket client: `Client(url)`, `.recv_json()`, `.send_text()`, `.close()`.

    A refused upgrade raises Refused with the HTTP status, as a browser would see the failed handshake."""

    def __init__(self, url: str, timeout: float = 10.0):
        parts = urlsplit(url)
        if parts.scheme != "ws":
            raise ValueError("only ws:// URLs (the local stack)")
        self.sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.sock.sendall((f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                          .encode())
        self.stream = self.sock.makefile("rb")
        status_line = self.stream.readline().decode()
        headers = {}
        while (line := self.stream.readline().decode().strip()):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        status = int(status_line.split()[1])
        if status != 101:
            body = self.stream.read(int(headers.get("content-length", 0) or 0))
            self.close_socket()
            raise Refused(status, body.decode("utf-8", "replace"))
        if headers.get("sec-websocket-accept") != accept_key(key):
            self.close_socket()
            raise ProtocolError("bad Sec-WebSocket-Accept")

    def send(self, opcode: int, payload: bytes) -> None:
        self.sock.sendall(encode(opcode, payload, mask=True))

    def send_text(self, text: str) -> None:
        self.send(TEXT, text.encode())

    def recv(self, timeout: float | None = None) -> str | bytes:
        if timeout is not None:
            self.sock.settimeout(timeout)
        return read_message(self.stream, expect_masked=False, send=self.send)

    def recv_json(self, timeout: float | None = None):
        import json

        return json.loads(self.recv(timeout))

    def close(self, code: int = 1000) -> None:
        try:
            self.send(CLOSE, close_payload(code))
        except OSError:
            pass  # the server went first
        self.close_socket()

    def close_socket(self) -> None:
        try:
            self.stream.close()
        finally:
            self.sock.close()


class Refused(Exception):
    def __init__(self, status: int, body: str):
        super().__init__(f"WebSocket upgrade refused: HTTP {status} {body}")
        self.status, self.body = status, body
