"""dnnhw.host.protocol against docs/board.md sections 2-4: the CRC (its check value and a
bit-by-bit reference written from the contract's definition), frames built and parsed
(whole, split byte by byte, after junk, with a bad CRC or an over-long length), the beat
packing at widths 1 to 512, the ID/ACK/STATE parsers, and every argument error."""

import random

import pytest

from dnnhw.host.protocol import (
    FRAME_OVERHEAD, SYNC, Command, ErrorCode, Frame, FrameError, FrameParser, beat_bytes,
    command_name, crc16_ccitt_false, encode_frame, error_name, pack_beats, parse_ack,
    parse_ident, parse_state, unpack_beats)


def reference_crc(data):
    """CRC-16/CCITT-FALSE bit by bit: poly 0x1021, init 0xFFFF, MSB first, no final xor."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
    return crc


IDENT = (b"dnnhw=1;core=zvc;module=zvc_1a2b3c4d;git=0123abc;clock=12000000;baud=115200;"
         b"max_payload=256")


def test_crc_check_value_and_reference():
    assert crc16_ccitt_false(b"123456789") == 0x29B1
    assert reference_crc(b"123456789") == 0x29B1
    data = random.Random(1).randbytes(300)
    assert crc16_ccitt_false(data) == reference_crc(data)
    assert crc16_ccitt_false(bytearray(data)) == crc16_ccitt_false(memoryview(data))


def test_encode_frame_layout():
    payload = bytes([0, 1, 2, SYNC])
    frame = encode_frame(Command.WRITE, payload)
    assert frame[:4] == bytes([0xA5, 0x02, 4, 0])
    assert frame[4:-2] == payload
    assert int.from_bytes(frame[-2:], "little") == reference_crc(frame[1:-2])
    assert len(frame) == len(payload) + FRAME_OVERHEAD
    assert encode_frame(Command.IDENTIFY) == (
        bytes([0xA5, 0x01, 0, 0]) + reference_crc(b"\x01\x00\x00").to_bytes(2, "little"))


def test_round_trip_frames_in_one_piece():
    frames = [Frame(Command.ID, IDENT), Frame(Command.ACK, b"\x00\x55\x00"),
              Frame(Command.READ, bytes(range(256)) * 16), Frame(Command.STATE, b"")]
    parser = FrameParser()
    assert parser.feed(b"".join(encode_frame(*f) for f in frames)) == frames
    assert parser.skipped_bytes == 0 and not parser.in_frame


def test_split_feeding_byte_by_byte():
    frames = [Frame(Command.READ, bytes([SYNC]) * 40), Frame(Command.ERROR, b"\x03")]
    stream = b"".join(encode_frame(*f) for f in frames)
    parser = FrameParser()
    events = []
    for k in range(len(stream)):
        events += parser.feed(stream[k:k + 1])
        if k == 0:
            assert parser.in_frame
    assert events == frames


def test_junk_before_sync_is_skipped():
    junk = bytes(b for b in random.Random(2).randbytes(100) if b != SYNC)
    frame = Frame(Command.ACK, b"\x01\x10\x00")
    parser = FrameParser()
    assert parser.feed(junk[:60]) == []
    assert parser.feed(junk[60:] + encode_frame(*frame) + junk[:7]) == [frame]
    assert parser.skipped_bytes == len(junk) + 7


def test_bad_crc_is_reported_and_the_next_frame_still_parses():
    good = Frame(Command.ACK, b"\x00\x02\x00")
    bad = bytearray(encode_frame(Command.READ, b"\x00\x11\x22"))
    bad[5] ^= 0x40
    events = FrameParser().feed(bytes(bad) + encode_frame(*good))
    assert isinstance(events[0], FrameError) and events[0].code == ErrorCode.BAD_CRC
    assert "CRC" in str(events[0]) and "READ" in str(events[0])
    assert events[1:] == [good]


def test_over_long_length_is_reported_at_the_header():
    parser = FrameParser(max_payload=16)
    header = bytes([SYNC, Command.READ, 17, 0])
    events = parser.feed(header)
    assert len(events) == 1 and events[0].code == ErrorCode.BAD_LENGTH
    assert "17" in str(events[0]) and "max_payload=16" in str(events[0])
    assert not parser.in_frame
    good = Frame(Command.READ, bytes(16))
    assert parser.feed(bytes(17 + 2) + encode_frame(*good)) == [good]


def test_reset_drops_an_unfinished_frame():
    parser = FrameParser()
    assert parser.feed(encode_frame(Command.READ, b"\x00" * 10)[:8]) == []
    assert parser.in_frame
    parser.reset()
    assert not parser.in_frame
    frame = Frame(Command.ACK, b"\x00\x01\x00")
    assert parser.feed(encode_frame(*frame)) == [frame]


@pytest.mark.parametrize("width", [1, 8, 20, 64, 512])
def test_pack_unpack_round_trip(width):
    rng = random.Random(width)
    values = [0, (1 << width) - 1] + [rng.getrandbits(width) for _ in range(50)]
    data = pack_beats(values, width)
    assert len(data) == len(values) * beat_bytes(width) == len(values) * -(-width // 8)
    assert unpack_beats(data, width) == values


def test_pack_layout_is_little_endian_low_bits_first():
    assert pack_beats([0xABCDE, 1], 20) == b"\xDE\xBC\x0A\x01\x00\x00"
    assert pack_beats([1, 0, 1], 1) == b"\x01\x00\x01"
    assert beat_bytes(1) == 1 and beat_bytes(9) == 2 and beat_bytes(512) == 64


@pytest.mark.parametrize("width, value, shown", [
    (1, 2, "0 .. 1"), (8, 256, "0 .. 255"), (20, -1, "0 .. 1048575"),
    (64, 1 << 64, "0 .. 18446744073709551615"), (512, 1 << 512, "0 .. 2**512 - 1")])
def test_pack_range_errors_name_the_value(width, value, shown):
    with pytest.raises(ValueError, match=rf"values\[1\] = {value} does not fit in {width} "
                                         rf"bits \({shown.replace('*', '[*]')}\)"):
        pack_beats([0, value], width)
    with pytest.raises(ValueError, match=r"beats\[0\]"):
        pack_beats([value], width, argument="beats")


def test_unpack_rejects_set_padding_bits():
    with pytest.raises(ValueError, match=r"data beat 1 = 0x100000 has bits set above 20 "
                                         r"bits .*padding must be zero"):
        unpack_beats(b"\x00\x00\x00\x00\x00\x10", 20)


def test_parse_ident():
    ident = parse_ident(IDENT + b";extra=yes")
    assert ident == {"dnnhw": 1, "core": "zvc", "module": "zvc_1a2b3c4d", "git": "0123abc",
                     "clock": 12_000_000, "baud": 115200, "max_payload": 256,
                     "extra": "yes"}


def test_parse_ack_and_state():
    assert parse_ack(b"\x01\x34\x12") == (1, 0x1234)
    payload = bytes([0b10]) + (5).to_bytes(4, "little") + (7).to_bytes(4, "little") \
        + (2 ** 32 - 1).to_bytes(4, "little")
    assert parse_state(payload, 2, 1) == {"frame_error": False, "core_error": True,
                                          "received": [5, 7], "sent": [2 ** 32 - 1]}
    assert parse_state(b"\x01", 0, 0)["frame_error"] is True


def test_code_names():
    assert command_name(0x80) == "ACK (0x80)"
    assert command_name(0x42) == "0x42 (unknown)"
    assert error_name(5) == "BAD_STREAM (0x05)"
    assert error_name(9) == "0x09 (unknown)"


@pytest.mark.parametrize("call, error, message", [
    (lambda: crc16_ccitt_false("123"), TypeError, r"data must be bytes-like, got str"),
    (lambda: encode_frame(1.0), TypeError, r"command must be an int, got float"),
    (lambda: encode_frame(True), TypeError, r"command must be an int, got bool"),
    (lambda: encode_frame(256), ValueError, r"command must be in 0 \.\. 255, got 256"),
    (lambda: encode_frame(-1), ValueError, r"command must be in 0 \.\. 255, got -1"),
    (lambda: encode_frame(2, [1, 2]), TypeError, r"payload must be bytes-like, got list"),
    (lambda: encode_frame(2, bytes(4097)), ValueError,
     r"payload must be at most 4096 bytes, got 4097"),
    (lambda: FrameParser(max_payload=15), ValueError,
     r"max_payload must be in 16 \.\. 4096, got 15"),
    (lambda: FrameParser(max_payload=4097), ValueError,
     r"max_payload must be in 16 \.\. 4096, got 4097"),
    (lambda: FrameParser(max_payload="256"), TypeError, r"max_payload must be an int"),
    (lambda: FrameParser().feed("abc"), TypeError, r"data must be bytes-like, got str"),
    (lambda: beat_bytes(0), ValueError, r"width must be an int >= 1, got 0"),
    (lambda: beat_bytes(8.0), TypeError, r"width must be an int, got float"),
    (lambda: pack_beats([1], 0), ValueError, r"width must be an int >= 1, got 0"),
    (lambda: pack_beats(5, 8), TypeError, r"values must be an iterable of ints, got int"),
    (lambda: pack_beats([1, 2.5], 8), TypeError, r"values\[1\] must be an int, got float"),
    (lambda: unpack_beats([1, 2], 8), TypeError, r"data must be bytes-like, got list"),
    (lambda: unpack_beats(b"\x00" * 5, 20), ValueError,
     r"data has 5 bytes, not a whole number of 3-byte beats \(width 20\)"),
    (lambda: parse_ack(b"\x00\x01"), ValueError, r"ACK payload is 3 bytes .* got 2"),
    (lambda: parse_ident("dnnhw=1"), TypeError, r"payload must be bytes-like, got str"),
    (lambda: parse_ident(IDENT.replace(b"zvc;", "zvč;".encode())), ValueError,
     r"the ID must be ASCII"),
    (lambda: parse_ident(IDENT + b";;"), ValueError, r"pairs are key=value, got ''"),
    (lambda: parse_ident(IDENT + b";=x"), ValueError, r"pairs are key=value, got '=x'"),
    (lambda: parse_ident(IDENT + b";core=b"), ValueError, r"repeats the key 'core'"),
    (lambda: parse_ident(IDENT.replace(b"baud=115200", b"baud=+115200")), ValueError,
     r"baud must be a decimal number, got '\+115200'"),
    (lambda: parse_ident(IDENT.replace(b";git=0123abc", b"")), ValueError,
     r"the ID lacks git"),
    (lambda: parse_ident(IDENT.replace(b"max_payload=256", b"max_payload=8")), ValueError,
     r"max_payload must be in 16 \.\. 4096, got 8"),
    (lambda: parse_state(b"\x00" * 4, 1, 0), ValueError,
     r"STATE payload for 1 sink and 0 source streams is 5 bytes, got 4"),
    (lambda: parse_state(b"\x00", -1, 0), ValueError, r"sink_count must be an int >= 0"),
    (lambda: parse_state(b"\x00", 0, None), TypeError, r"source_count must be an int"),
])
def test_argument_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()
