"""The sensor-side client's pure parts: batches within the API's limits, and the progress line."""

import io

import pytest

from local import synth
from wattprint import client
from wattprint import limits


def test_batches_respect_both_limits_and_keep_line_numbers():
    lines = synth.generate(2500, seed=2)
    lines[10:10] = ["", "   "]  # blank lines: skipped, but they still count in the numbering
    found = list(client.batches(lines, max_events=1000, max_bytes=limits.MAX_BODY_BYTES))
    numbers = [n for batch in found for n, _ in batch]
    assert len(numbers) == 2500 and numbers == sorted(numbers) and 11 not in numbers and 12 not in numbers
    assert all(len(batch) <= 1000 for batch in found)
    for batch in found:
        assert len("\n".join(line for _, line in batch).encode()) <= limits.MAX_BODY_BYTES


def test_the_byte_limit_counts_utf8_bytes_and_the_newlines():
    lines = ["é" * 10] * 10  # 20 bytes each, and a newline between two
    found = list(client.batches(lines, max_events=1000, max_bytes=62))
    assert [len(b) for b in found] == [3, 3, 3, 1]  # 3 × 20 + 2 = 62 fits, a fourth would not
    assert [len(b) for b in client.batches(lines, max_events=1000, max_bytes=61)] == [2] * 5
    # Real lines, a byte limit that binds before the event limit does.
    real = synth.generate(300, seed=4)
    size = sum(len(line.encode()) + 1 for line in real[:100]) - 1
    assert [len(b) for b in client.batches(real, max_bytes=size)] == [100, 100, 100]


def test_a_line_longer_than_a_request_is_refused_with_its_number():
    with pytest.raises(client.SendError, match="line 2 is 11 bytes"):
        list(client.batches(["ok", "x" * 11], max_bytes=10))


def test_the_progress_line():
    clock = iter([0.0, 0.5, 1.0, 2.0, 2.0]).__next__
    out = io.StringIO()
    progress = client.Progress(out, total=200, clock=clock)
    progress.update(50, 0)
    progress.update(100, 1)
    progress.close()
    text = out.getvalue()
    assert " 25% 50/200 events  100/s" in text
    assert "[###############...............]  50% 100/200 events  50/s  1 retry" in text
    assert text.endswith("\n")
    unknown = io.StringIO()
    client.Progress(unknown, total=None, clock=iter([0.0, 1.0]).__next__).update(1234, 0)
    assert "1,234 events  1,234/s" in unknown.getvalue()


def test_backoff_takes_the_servers_retry_after_and_otherwise_grows_with_jitter():
    assert client._retry_after({"Retry-After": "7"}, 0, 0.5, 30) == 7
    assert client._retry_after({"Retry-After": "700"}, 0, 0.5, 30) == 30
    assert all(0 <= client._retry_after({}, 3, 0.5, 30) <= 4 for _ in range(100))
    assert all(0 <= client._retry_after(None, 20, 0.5, 30) <= 30 for _ in range(100))
