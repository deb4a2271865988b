"""dnnhw.host: the host side of the board link (docs/board.md).

:mod:`dnnhw.host.protocol` is the frame format, the commands and the beat packing, in pure
Python; :mod:`dnnhw.host.board` is :class:`Board`, which speaks them over a serial port to
a core behind the UART bridge, by the stream names of the core's sidecar.
"""

from .board import Board, BoardError, Throughput
from .protocol import (FRAME_OVERHEAD, ID_KEYS, MAX_PAYLOAD_RANGE, PROTOCOL_VERSION, SYNC,
                       Command, ErrorCode, Frame, FrameError, FrameParser, beat_bytes,
                       command_name, crc16_ccitt_false, encode_frame, error_name,
                       pack_beats, parse_ack, parse_ident, parse_state, unpack_beats)


__all__ = [
    "Board", "BoardError", "Throughput",
    "SYNC", "PROTOCOL_VERSION", "MAX_PAYLOAD_RANGE", "FRAME_OVERHEAD", "ID_KEYS",
    "Command", "ErrorCode", "Frame", "FrameError", "FrameParser",
    "command_name", "error_name", "crc16_ccitt_false", "encode_frame",
    "beat_bytes", "pack_beats", "unpack_beats",
    "parse_ack", "parse_ident", "parse_state",
]
