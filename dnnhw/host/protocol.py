"""The board link's frames, commands and beats (docs/board.md sections 2-4), in pure Python.

What: the frame format (``SYNC``, command, length, payload, CRC-16/CCITT-FALSE), the
command and error codes, an incremental :class:`FrameParser`, the packing of stream beats
into payload bytes, and the parsers of the board's ``ACK``, ``ID`` and ``STATE`` payloads.

Why a module of its own: nothing here touches a port (standard library only), so the same
code serves :class:`dnnhw.host.board.Board` on a real UART, a board model in a test, or a
capture read back from a file; and every rule of the contract is written down once.
"""

import binascii
import operator
from typing import NamedTuple

from dnnhw.spec.board import (CRC_INIT, FRAME_OVERHEAD, ID_KEYS, MAX_PAYLOAD_RANGE,
                              PROTOCOL_VERSION, SYNC, Command, ErrorCode)


__all__ = [
    "SYNC", "PROTOCOL_VERSION", "MAX_PAYLOAD_RANGE", "FRAME_OVERHEAD", "ID_KEYS",
    "Command", "ErrorCode", "Frame", "FrameError", "FrameParser",
    "command_name", "error_name", "crc16_ccitt_false", "encode_frame",
    "beat_bytes", "pack_beats", "unpack_beats",
    "parse_ack", "parse_ident", "parse_state",
]


_ID_INTEGER_KEYS = frozenset({"dnnhw", "clock", "baud", "max_payload"})


def _code_name(codes, code):
    try:
        return f"{codes(code).name} ({code:#04x})"
    except ValueError:
        return f"{code:#04x} (unknown)"


def command_name(code):
    """``"ACK (0x80)"``, or ``"0x42 (unknown)"`` for a code that is no command."""
    return _code_name(Command, code)


def error_name(code):
    """``"BAD_STREAM (0x05)"``, or ``"0x09 (unknown)"`` for a code that is no error."""
    return _code_name(ErrorCode, code)


def _check_bytes(value, argument):
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"{argument} must be bytes-like, got {type(value).__name__}")


def _check_int(value, argument, legal=None, *, minimum=None):
    """``value`` as an int (not a bool), in ``legal`` (a range) or at least ``minimum``."""
    try:
        if isinstance(value, bool):
            raise TypeError
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{argument} must be an int, got {type(value).__name__}") from None
    if legal is not None and value not in legal:
        raise ValueError(f"{argument} must be in {legal.start} .. {legal.stop - 1}, "
                         f"got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{argument} must be an int >= {minimum}, got {value}")
    return value


def crc16_ccitt_false(data):
    """CRC-16/CCITT-FALSE of ``data``: poly 0x1021, init 0xFFFF, no reflection, no final
    xor (``binascii.crc_hqx`` is exactly this CRC when started from 0xFFFF)."""
    _check_bytes(data, "data")
    return binascii.crc_hqx(data, CRC_INIT)


def encode_frame(command, payload=b""):
    """The bytes of one frame: ``SYNC``, ``command`` (0 .. 255), the length (LE), the
    ``payload`` (bytes-like, at most 4096 bytes: the largest ``max_payload``), the CRC (LE)
    over command, length and payload."""
    command = _check_int(command, "command", range(256))
    _check_bytes(payload, "payload")
    largest = MAX_PAYLOAD_RANGE.stop - 1
    if len(payload) > largest:
        raise ValueError(f"payload must be at most {largest} bytes, got {len(payload)}")
    body = bytes([command]) + len(payload).to_bytes(2, "little") + bytes(payload)
    return bytes([SYNC]) + body + crc16_ccitt_false(body).to_bytes(2, "little")


class Frame(NamedTuple):
    """A frame that passed its checks."""
    command: int
    payload: bytes


class FrameError(ValueError):
    """A frame that failed its checks, as :meth:`FrameParser.feed` reports it (it is
    returned, not raised). ``code`` is :attr:`ErrorCode.BAD_CRC` or
    :attr:`ErrorCode.BAD_LENGTH`: the codes a board would answer the same fault with."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class FrameParser:
    """Turns a byte stream into frames, a piece at a time.

    Outside a frame it skips bytes until ``SYNC`` (counting them in ``skipped_bytes``).
    A length over ``max_payload`` (16 .. 4096, default 4096) is reported as soon as the
    header is in, and the parser hunts for ``SYNC`` again after it; a CRC mismatch is
    reported once the whole frame is in, and the frame is dropped. That is the board's own
    receiver (section 2), so both ends recover from noise the same way. :meth:`reset`
    drops a frame begun but not finished, for a caller whose link went silent mid-frame.
    """

    def __init__(self, max_payload=MAX_PAYLOAD_RANGE.stop - 1):
        self.max_payload = _check_int(max_payload, "max_payload", MAX_PAYLOAD_RANGE)
        self.skipped_bytes = 0
        self._held = bytearray()     # the bytes after the SYNC of an unfinished frame
        self._in_frame = False

    @property
    def in_frame(self):
        """Whether a frame has begun (its ``SYNC`` was seen) and is not finished."""
        return self._in_frame

    def reset(self):
        """Drop the unfinished frame, if any, and wait for ``SYNC`` again."""
        self._held.clear()
        self._in_frame = False

    def feed(self, data):
        """Take the bytes-like ``data``; return the frames it completed, in order: each a
        :class:`Frame`, or a :class:`FrameError` for one that failed its checks."""
        _check_bytes(data, "data")
        held = self._held
        held += data
        events = []
        while True:
            if not self._in_frame:
                start = held.find(SYNC)
                if start < 0:
                    self.skipped_bytes += len(held)
                    held.clear()
                    return events
                self.skipped_bytes += start
                del held[:start + 1]
                self._in_frame = True
            if len(held) < 3:
                return events
            command, length = held[0], int.from_bytes(held[1:3], "little")
            if length > self.max_payload:
                events.append(FrameError(
                    ErrorCode.BAD_LENGTH,
                    f"frame {command_name(command)} claims {length} payload bytes, over "
                    f"max_payload={self.max_payload}"))
                del held[:3]
                self._in_frame = False
                continue
            end = 3 + length
            if len(held) < end + 2:
                return events
            body = bytes(held[:end])
            received_crc = int.from_bytes(held[end:end + 2], "little")
            del held[:end + 2]
            self._in_frame = False
            computed_crc = crc16_ccitt_false(body)
            if received_crc != computed_crc:
                events.append(FrameError(
                    ErrorCode.BAD_CRC,
                    f"frame {command_name(command)} with {length} payload bytes has CRC "
                    f"{received_crc:#06x}, its bytes give {computed_crc:#06x}"))
            else:
                events.append(Frame(command, body[3:]))


def beat_bytes(width):
    """The bytes of one beat of a ``width``-bit stream (``width`` an int >= 1):
    ``ceil(width / 8)``."""
    width = _check_int(width, "width", minimum=1)
    return (width + 7) // 8


def _bit_range(width):
    top = f"2**{width} - 1" if width > 64 else str((1 << width) - 1)
    return f"0 .. {top}"


def pack_beats(values, width, *, argument="values"):
    """The payload bytes of ``values`` (an iterable of ints in 0 .. 2**width - 1) as
    beats of a ``width``-bit stream: ``beat_bytes(width)`` bytes each, little-endian.
    ``argument`` is the name error messages give the values (callers pass their own)."""
    size = beat_bytes(width)
    try:
        values = iter(values)
    except TypeError:
        raise TypeError(f"{argument} must be an iterable of ints, got "
                        f"{type(values).__name__}") from None
    limit = 1 << width
    packed = bytearray()
    for index, value in enumerate(values):
        try:
            value = operator.index(value)
        except TypeError:
            raise TypeError(f"{argument}[{index}] must be an int, got "
                            f"{type(value).__name__}") from None
        if not 0 <= value < limit:
            raise ValueError(f"{argument}[{index}] = {value} does not fit in {width} bits "
                             f"({_bit_range(width)})")
        packed += value.to_bytes(size, "little")
    return bytes(packed)


def unpack_beats(data, width):
    """The beats (ints) of ``data`` (bytes-like, a whole number of beats of a
    ``width``-bit stream). The padding bits above ``width`` must be zero: set ones mean
    the two ends disagree on the stream's width."""
    size = beat_bytes(width)
    _check_bytes(data, "data")
    if len(data) % size:
        raise ValueError(f"data has {len(data)} bytes, not a whole number of {size}-byte "
                         f"beats (width {width})")
    data = bytes(data)
    beats = [int.from_bytes(data[k:k + size], "little") for k in range(0, len(data), size)]
    if width % 8:
        for index, beat in enumerate(beats):
            if beat >> width:
                raise ValueError(f"data beat {index} = {beat:#x} has bits set above "
                                 f"{width} bits ({_bit_range(width)}); the padding must "
                                 f"be zero")
    return beats


def parse_ack(payload):
    """``(stream, beats_taken)`` of an ``ACK`` payload (3 bytes)."""
    _check_bytes(payload, "payload")
    if len(payload) != 3:
        raise ValueError(f"an ACK payload is 3 bytes (stream, beats), got {len(payload)}")
    return payload[0], int.from_bytes(payload[1:3], "little")


def parse_ident(payload):
    """The ``ID`` payload (ASCII ``key=value`` pairs joined by ``;``) as a dict.

    Every key of :data:`ID_KEYS` must be there; ``dnnhw``, ``clock``, ``baud`` and
    ``max_payload`` become ints (``max_payload`` in 16 .. 4096), the rest stay strings,
    keys this host does not know included."""
    _check_bytes(payload, "payload")
    try:
        text = bytes(payload).decode("ascii")
    except UnicodeDecodeError:
        raise ValueError(f"the ID must be ASCII, got {bytes(payload)!r}") from None
    ident = {}
    for pair in text.split(";"):
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"the ID's pairs are key=value, got {pair!r} in {text!r}")
        if key in ident:
            raise ValueError(f"the ID repeats the key {key!r}: {text!r}")
        if key in _ID_INTEGER_KEYS:
            if not value.isdigit():
                raise ValueError(f"the ID's {key} must be a decimal number, got "
                                 f"{value!r}")
            value = int(value)
        ident[key] = value
    missing = [key for key in ID_KEYS if key not in ident]
    if missing:
        raise ValueError(f"the ID lacks {', '.join(missing)}: {text!r}")
    if ident["max_payload"] not in MAX_PAYLOAD_RANGE:
        raise ValueError(f"the ID's max_payload must be in {MAX_PAYLOAD_RANGE.start} .. "
                         f"{MAX_PAYLOAD_RANGE.stop - 1}, got {ident['max_payload']}")
    return ident


def parse_state(payload, sink_count, source_count):
    """A ``STATE`` payload as ``{"frame_error", "core_error", "received", "sent"}``: the
    status bits as bools, then the beat counts (4 bytes LE each) received on each of
    ``sink_count`` sink streams and sent on each of ``source_count`` source streams,
    in stream-number order."""
    _check_bytes(payload, "payload")
    sink_count = _check_int(sink_count, "sink_count", minimum=0)
    source_count = _check_int(source_count, "source_count", minimum=0)
    expected = 1 + 4 * (sink_count + source_count)
    if len(payload) != expected:
        raise ValueError(f"a STATE payload for {sink_count} sink and {source_count} source "
                         f"streams is {expected} bytes, got {len(payload)}")
    counts = [int.from_bytes(payload[k:k + 4], "little") for k in range(1, expected, 4)]
    return {"frame_error": bool(payload[0] & 1), "core_error": bool(payload[0] & 2),
            "received": counts[:sink_count], "sent": counts[sink_count:]}
