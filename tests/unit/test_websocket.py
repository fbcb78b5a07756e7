"""RFC 6455 framing as the local stack speaks it."""

import io

import pytest

from local import websocket as ws


def test_accept_key_is_the_rfc_example():
    assert ws.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 100_000])
@pytest.mark.parametrize("mask", [True, False])
def test_frames_round_trip_at_every_length_encoding(size, mask):
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    frame = ws.read_frame(io.BytesIO(ws.encode(ws.BINARY, payload, mask)), expect_masked=mask)
    assert (frame.fin, frame.opcode, frame.payload) == (True, ws.BINARY, payload)


def test_server_frames_are_unmasked_and_the_rfc_example_decodes():
    assert ws.encode(ws.TEXT, b"Hello", mask=False) == b"\x81\x05Hello"
    masked = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"  # RFC 6455 section 5.7
    assert ws.read_frame(io.BytesIO(masked), expect_masked=True).payload == b"Hello"


def test_masking_is_required_one_way_and_refused_the_other():
    with pytest.raises(ws.ProtocolError):
        ws.read_frame(io.BytesIO(ws.encode(ws.TEXT, b"x", mask=False)), expect_masked=True)
    with pytest.raises(ws.ProtocolError):
        ws.read_frame(io.BytesIO(ws.encode(ws.TEXT, b"x", mask=True)), expect_masked=False)


def test_messages_answer_pings_join_fragments_and_end_on_close():
    sent = []
    first = bytes([0x01, 0x80 | 3]) + b"\0\0\0\0" + b"Hel"  # TEXT, not final
    rest = bytes([0x80, 0x80 | 2]) + b"\0\0\0\0" + b"lo"    # CONTINUATION, final
    stream = io.BytesIO(ws.encode(ws.PING, b"p", True) + first + rest + ws.encode(ws.CLOSE, ws.close_payload(1001, "bye"), True))
    assert ws.read_message(stream, True, lambda op, data: sent.append((op, data))) == "Hello"
    assert sent == [(ws.PONG, b"p")]
    with pytest.raises(ws.Closed) as closed:
        ws.read_message(stream, True, sent.append)
    assert (closed.value.code, closed.value.reason) == (1001, "bye")


def test_oversized_and_truncated_frames_are_refused():
    with pytest.raises(ws.ProtocolError):
        ws.read_frame(io.BytesIO(bytes([0x82, 127]) + (ws.MAX_FRAME + 1).to_bytes(8, "big")), expect_masked=False)
    with pytest.raises(ws.Closed):
        ws.read_frame(io.BytesIO(ws.encode(ws.TEXT, b"abcdef", False)[:-2]), expect_masked=False)
