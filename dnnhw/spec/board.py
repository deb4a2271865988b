"""The board link (``docs/board.md``): the frame, command and error codes and the legal
ranges, written once for the bridge (``dnnhw.rtl.uart_bridge``) and the host
(``dnnhw.host``)."""

import enum

#: The byte that starts every frame.
SYNC = 0xA5
#: CRC-16/CCITT-FALSE: polynomial and initial value (no reflection, no final xor).
CRC_POLY = 0x1021
CRC_INIT = 0xFFFF
#: Bytes of a frame besides its payload: SYNC, command, length (2), CRC (2).
FRAME_OVERHEAD = 6
#: The ``dnnhw=`` version of the ID.
PROTOCOL_VERSION = 1
#: The keys every ID carries (section 4).
ID_KEYS = ("dnnhw", "core", "module", "git", "clock", "baud", "max_payload")
#: The legal values of the bridge's ``max_payload`` (its frame buffer, bytes).
MAX_PAYLOAD_RANGE = range(16, 4096 + 1)
#: Bytes of each of STATE's counters.
COUNTER_BYTES = 4


class Command(enum.IntEnum):
    """Frame command codes: host to board below 0x80, board to host from 0x80."""
    IDENTIFY = 0x01
    WRITE = 0x02
    STATUS = 0x03
    ACK = 0x80
    ID = 0x81
    READ = 0x82
    STATE = 0x83
    ERROR = 0xEE


class ErrorCode(enum.IntEnum):
    """The code in an ERROR frame's payload."""
    BAD_CRC = 1
    BAD_LENGTH = 2
    TRUNCATED = 3
    BAD_COMMAND = 4
    BAD_STREAM = 5


def turn_beats(max_payload, widths):
    """Beats of each input stream's turn when a core has several (``widths``: their
    payload widths in bits): as many as one ``WRITE`` frame of the widest holds, so that
    every stream's turn is one frame of the same number of beats. The board queues one
    turn per input stream (docs/board.md section 3)."""
    return min((max_payload - 1) // -(-width // 8) for width in widths)
