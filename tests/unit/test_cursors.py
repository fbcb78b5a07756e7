"""Report cursors: a windowed run's first seq travels with the walk; cursors made before windows still read."""

import base64

import pytest

from wattprint.errors import InvalidCursor
from wattprint.report import cursors
from wattprint.report.cursors import Cursor, decode_cursor, encode_cursor


def test_a_cursor_carries_the_runs_first_seq():
    made = Cursor(True, 812, 7, 1000, b"12345678", first_seq=601)
    assert decode_cursor(encode_cursor(made)) == made
    assert decode_cursor(encode_cursor(Cursor(False, 3, 7, 1000, b"12345678"))).first_seq == 1


def test_a_version_1_cursor_reads_as_a_run_from_seq_1():
    payload = cursors._CURSOR_V1.pack(1, 0, 42, 7, 1000, b"abcdefgh")
    text = base64.urlsafe_b64encode(payload + cursors._mac(payload)).rstrip(b"=").decode()
    assert decode_cursor(text) == Cursor(False, 42, 7, 1000, b"abcdefgh", first_seq=1)


@pytest.mark.parametrize("version, first", [(2, 0), (1, 601), (3, 601)])
def test_a_cursor_of_another_shape_or_first_seq_is_refused(version, first):
    payload = cursors._CURSOR.pack(version, 0, 42, 7, 1000, b"abcdefgh", first)
    text = base64.urlsafe_b64encode(payload + cursors._mac(payload)).rstrip(b"=").decode()
    with pytest.raises(InvalidCursor):
        decode_cursor(text)
