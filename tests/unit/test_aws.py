"""AWS clients: reused while warm, and failing within a request's time."""

import http.server
import threading

import pytest

from wattprint import aws


def test_clients_are_reused_per_endpoint(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = aws.client("sqs")
    assert (client.meta.config.connect_timeout, client.meta.config.read_timeout) == (1, 3)
    assert aws.client("sqs") is client
    assert aws.client("sqs", attempts=3) is not client
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:1")  # another local server: another client
    assert aws.client("sqs") is not client


@pytest.mark.parametrize("attempts", [1, 3])
def test_a_failing_service_is_tried_exactly_attempts_times(monkeypatch, attempts):
    """botocore's own `max_attempts` counts retries, not attempts: count the requests that really arrive."""
    requests = []

    class Failing(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the stdlib's naming
            self.rfile.read(int(self.headers["Content-Length"]))
            requests.append(self.path)
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for name, value in (("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "test"),
                            ("AWS_SECRET_ACCESS_KEY", "test"),
                            ("AWS_ENDPOINT_URL_SQS", f"http://127.0.0.1:{server.server_address[1]}")):
            monkeypatch.setenv(name, value)
        with pytest.raises(aws.errors()):
            aws.client("sqs", attempts=attempts).send_message(QueueUrl="http://127.0.0.1/1/q", MessageBody="x")
    finally:
        server.shutdown()
        server.server_close()
    assert len(requests) == attempts
