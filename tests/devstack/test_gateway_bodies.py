"""Request bodies at the local API Gateway stand-in's HTTP socket: chunked or not, bounded by API Gateway's limit
before they are read, so that a client cannot make it hold an endless body in memory."""

import http.client
import json
import socket
import threading

import pytest

from local import apigw
from local import synth
from wattprint import tokens

CHUNK = 64 * 1024


@pytest.fixture
def served(app, functions, database):
    gateway = apigw.Gateway(app, functions, workers=2)
    server = apigw.serve(gateway, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    gateway.close()


@pytest.fixture
def ingest_token(conn):
    return tokens.create(conn, "ingest", "t-bodies")[1]


def raw_request(port, head: bytes, body_source=None, timeout=30):
    """Send `head`, then whatever `body_source` yields (from a thread, ignoring a connection the server closed);
    return (the answer's bytes, how many body bytes went out)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sent = [0]

    def pump():
        try:
            for piece in body_source or ():
                sock.sendall(piece)
                sent[0] += len(piece)
        except OSError:
            pass  # the server answered and closed: what this test is about

    try:
        sock.sendall(head)
        sender = threading.Thread(target=pump, daemon=True)
        sender.start()
        answer = b""
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            answer += data
            if b"\r\n\r\n" in answer:
                headers, _, rest = answer.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in headers.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), None)
                if length is not None and len(rest) >= length:
                    break
        sender.join(timeout)
        assert not sender.is_alive(), "the client could not finish sending"
        return answer, sent[0]
    finally:
        sock.close()


def status_and_body(answer: bytes):
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), head.decode("latin-1"), json.loads(body or b"null")


def head(extra: str) -> bytes:
    return (f"POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n{extra}\r\n").encode()


def test_a_chunked_body_within_the_limit_reaches_the_handler_whole(served, ingest_token):
    lines = synth.generate(40, seed=11)
    connection = http.client.HTTPConnection("127.0.0.1", served, timeout=30)
    body = ("\n".join(lines)).encode()
    pieces = (body[i:i + 333] for i in range(0, len(body), 333))  # chunk edges fall inside lines
    connection.request("POST", "/events", body=pieces, encode_chunked=True, headers={
        "Authorization": f"Bearer {ingest_token}", "Content-Type": "text/plain", "Transfer-Encoding": "chunked"})
    response = connection.getresponse()
    answer = json.loads(response.read())
    assert response.status == 201 and answer["count"] == 40
    # The connection stays usable (keep-alive) after a chunked request.
    connection.request("GET", "/health")
    assert connection.getresponse().status == 200
    connection.close()


def test_an_endless_chunked_body_is_refused_with_413_once_over_the_limit(served):
    piece = b"%x\r\n" % CHUNK + b"a" * CHUNK + b"\r\n"
    cap = 4 * apigw.MAX_PAYLOAD  # how much this client would send at most: "endless" as far as the limit goes

    def endless():
        for _ in range(cap // CHUNK):
            yield piece
        yield b"0\r\n\r\n"

    answer, sent = raw_request(served, head("Transfer-Encoding: chunked\r\n"), endless())
    status, headers, body = status_and_body(answer)
    assert status == 413
    assert body["error"]["code"] == "payload_too_large"
    assert "connection: close" in headers.lower()
    # The server stopped reading a little past the limit (what socket buffers hold), not at the client's end.
    assert sent < cap


def test_a_chunk_announcing_more_than_the_limit_is_refused_before_it_is_sent(served):
    size = apigw.MAX_PAYLOAD + 1
    # Only the size line goes out: an answer proves the server did not wait for 10 MB that never come.
    answer, sent = raw_request(served, head("Transfer-Encoding: chunked\r\n") + b"%x\r\n" % size)
    assert status_and_body(answer)[0] == 413 and sent == 0


def test_chunks_adding_up_to_more_than_the_limit_are_refused(served):
    half = apigw.MAX_PAYLOAD // 2 + 1
    pieces = [b"%x\r\n" % half + b"b" * half + b"\r\n"] * 2 + [b"0\r\n\r\n"]
    answer, _ = raw_request(served, head("Transfer-Encoding: chunked\r\n"), pieces)
    assert status_and_body(answer)[0] == 413


def test_a_content_length_over_the_limit_is_refused_without_reading_the_body(served):
    answer, _ = raw_request(served, head(f"Content-Length: {apigw.MAX_PAYLOAD + 1}\r\n"))
    status, _, body = status_and_body(answer)
    assert status == 413 and body["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize("framing, body", [
    ("Transfer-Encoding: chunked\r\n", b"zz\r\nab\r\n0\r\n\r\n"),        # not hexadecimal
    ("Transfer-Encoding: chunked\r\n", b"-5\r\nab\r\n0\r\n\r\n"),        # negative
    ("Transfer-Encoding: chunked\r\n", b"5\r\nabcdefgh\r\n0\r\n\r\n"),   # longer than its size
    ("Transfer-Encoding: chunked\r\n", b"1" * 5000 + b"\r\n"),           # a size line without end
    ("Content-Length: twelve\r\n", b""),
    ("Content-Length: -3\r\n", b""),
])
def test_a_body_whose_length_cannot_be_known_is_400(served, framing, body):
    answer, _ = raw_request(served, head(framing), [body])
    assert int(answer.split(b" ", 2)[1]) == 400
