"""dnnhw.host.board.Board against a board model in Python, over a pseudo-terminal.

The model (:class:`BoardModel`) is the board side of docs/board.md written from the
contract alone (its own framing and CRC, nothing from dnnhw.host): it answers IDENTIFY,
STATUS and WRITE, passes the beats through a tiny core (sink ``i`` -> source ``o`` as
``i + 1``, sink ``w`` -> source ``echo`` unchanged) and sends the output in READ frames
*before* the ACK, as a core that outputs while it takes input does. It can be told to
delay its ACKs, answer an ERROR, corrupt or cut short one reply, lose bytes from the host,
or fall silent, and it records every WRITE frame and whether one arrived while another
was in flight.

The model runs on the pty's master end in a thread; :class:`Board` opens the slave end by
its path through pyserial, the code path of a real board. No hardware, no simulator.
"""

import collections
import os
import random
import select
import threading
import time
import tty

import pytest
import serial

from dnnhw.host import Board, BoardError, ErrorCode


SIDECAR = {
    "core": "link_test", "module": "link_test_0a1b2c3d", "params": {},
    # Roles interleaved: the sinks are i = 0, w = 1; the sources o = 0, echo = 1.
    "streams": {"i": {"role": "sink", "width": 20}, "o": {"role": "source", "width": 20},
                "w": {"role": "sink", "width": 8}, "echo": {"role": "source", "width": 8}},
}
TIMEOUT = 0.5


def _crc_table():
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
        table.append(crc)
    return table


CRC_TABLE = _crc_table()


def crc16(data):
    crc = 0xFFFF
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ CRC_TABLE[(crc >> 8) ^ byte]
    return crc


def frame(command, payload):
    body = bytes([command]) + len(payload).to_bytes(2, "little") + bytes(payload)
    return b"\xA5" + body + crc16(body).to_bytes(2, "little")


def model_core(sink, beats):
    """The model's core: {source number: output beats} for ``beats`` on ``sink``."""
    if sink == 0:
        return {0: [(b + 1) % (1 << 20) for b in beats]}
    return {1: list(beats)}


class BoardModel:
    """A board per docs/board.md on the pty master ``fd``: see the module docstring.

    Knobs, each for the next occasion only unless said: ``ack_delay`` (seconds, always),
    ``error_next_write`` (an ERROR code instead of the next ACK), ``corrupt`` /
    ``truncate`` (sets of reply commands: flip a CRC bit / drop the last two bytes),
    ``replace_next`` (reply command -> the frame to send instead), :meth:`lose_host_bytes`,
    :meth:`inject` (send a frame now), ``silent`` (drop everything, answer nothing:
    always).
    """

    def __init__(self, fd, sidecar=SIDECAR, *, max_payload=64, ack_delay=0.0, gap=0.05,
                 version=1):
        self.fd = fd
        self.version = version
        self.module = sidecar["module"]
        self.sink_widths = [s["width"] for s in sidecar["streams"].values()
                            if s["role"] == "sink"]
        self.source_widths = [s["width"] for s in sidecar["streams"].values()
                              if s["role"] == "source"]
        self.max_payload = max_payload
        self.ack_delay = ack_delay
        self.gap = gap
        self.error_next_write = None
        self.corrupt = set()
        self.truncate = set()
        self.silent = False
        self.replace_next = {}         # reply command -> (command, payload) sent instead
        self.writes = []               # (stream, payload length) of every WRITE taken
        self.in_flight = 0
        self.max_in_flight = 0
        self.bytes_while_busy = 0      # host bytes that came while an ACK was pending
        self.frame_error_seen = False
        self.received = [0] * len(self.sink_widths)
        self.sent = [0] * len(self.source_widths)
        self._lose = None              # (bytes to pass first, bytes to lose)
        self._frame = None             # bytes after SYNC of the frame being received
        self._last_byte = 0.0
        self._acks = collections.deque()   # (due time, payload)
        self._injected = collections.deque()   # (frame bytes, Event set once sent)
        self._stop = threading.Event()
        os.set_blocking(fd, False)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def lose_host_bytes(self, *, after, count):
        """Pass ``after`` more bytes from the host, then lose ``count`` (a wire glitch)."""
        self._lose = (after, count)

    def inject(self, data):
        """Send the bytes ``data`` now, between frames; return once they are out."""
        sent = threading.Event()
        self._injected.append((data, sent))
        assert sent.wait(1.0)

    def stop(self):
        self._stop.set()
        self._thread.join()

    # --- the loop ---

    def _serve(self):
        while not self._stop.is_set():
            while self._injected:
                data, sent = self._injected.popleft()
                self._write(data)
                sent.set()
            wait = 0.005
            if self._acks:
                wait = max(0.0, min(wait, self._acks[0][0] - time.monotonic()))
            if select.select([self.fd], [], [], wait)[0]:
                try:
                    self._receive(os.read(self.fd, 65536))
                except BlockingIOError:
                    pass
            now = time.monotonic()
            while self._acks and self._acks[0][0] <= now:
                self._send(0x80, self._acks.popleft()[1])
                self.in_flight -= 1
            if self._frame is not None and now - self._last_byte > self.gap:
                self._frame = None
                self._reject(3)                    # TRUNCATED

    def _receive(self, data):
        if self.silent:
            return
        if self._lose is not None:
            after, count = self._lose
            kept = bytearray()
            for byte in data:
                if after:
                    after -= 1
                    kept.append(byte)
                elif count:
                    count -= 1
                else:
                    kept.append(byte)
            self._lose = (after, count) if count else None
            data = bytes(kept)
        if self._acks:
            self.bytes_while_busy += len(data)
        for byte in data:
            self._last_byte = time.monotonic()
            if self._frame is None:
                if byte == 0xA5:
                    self._frame = bytearray()
                continue
            self._frame.append(byte)
            if len(self._frame) == 3 and self._length() > self.max_payload:
                self._frame = None
                self._reject(2)                    # BAD_LENGTH
            elif len(self._frame) >= 3 and len(self._frame) == 3 + self._length() + 2:
                whole, self._frame = bytes(self._frame), None
                self._take(whole)

    def _length(self):
        return self._frame[1] | self._frame[2] << 8

    def _reject(self, code):
        self.frame_error_seen = True
        self._send(0xEE, [code])

    def _take(self, whole):
        body, crc = whole[:-2], whole[-2] | whole[-1] << 8
        if crc16(body) != crc:
            return self._reject(1)                 # BAD_CRC
        command, payload = body[0], body[3:]
        if command == 0x01:
            return self._send(0x81, (
                f"dnnhw={self.version};core=link_test;module={self.module};git=unknown;"
                f"clock=12000000;baud=115200;max_payload={self.max_payload}").encode())
        if command == 0x03:
            counts = self.received + self.sent
            return self._send(0x83, bytes([int(self.frame_error_seen)]) + b"".join(
                n.to_bytes(4, "little") for n in counts))
        if command != 0x02:
            return self._send(0xEE, [4])           # BAD_COMMAND
        if not payload or payload[0] >= len(self.sink_widths):
            return self._send(0xEE, [5])           # BAD_STREAM
        stream, data = payload[0], payload[1:]
        size = -(-self.sink_widths[stream] // 8)
        if len(data) % size:
            return self._send(0xEE, [2])           # BAD_LENGTH
        if self.error_next_write is not None:
            code, self.error_next_write = self.error_next_write, None
            return self._send(0xEE, [code])
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.writes.append((stream, len(payload)))
        beats = [int.from_bytes(data[k:k + size], "little")
                 for k in range(0, len(data), size)]
        self.received[stream] += len(beats)
        for source, out in model_core(stream, beats).items():
            self._emit(source, out)
        ack = bytes([stream]) + len(beats).to_bytes(2, "little")
        self._acks.append((time.monotonic() + self.ack_delay, ack))

    def _emit(self, source, beats):
        size = -(-self.source_widths[source] // 8)
        per_frame = (self.max_payload - 1) // size
        for k in range(0, len(beats), per_frame):
            chunk = beats[k:k + per_frame]
            self._send(0x82, bytes([source]) + b"".join(
                b.to_bytes(size, "little") for b in chunk))
            self.sent[source] += len(chunk)

    def _send(self, command, payload):
        if command in self.replace_next:
            command, payload = self.replace_next.pop(command)
        data = bytearray(frame(command, payload))
        if command in self.corrupt:
            self.corrupt.discard(command)
            data[-1] ^= 0x01
        if command in self.truncate:
            self.truncate.discard(command)
            del data[-2:]
        self._write(data)

    def _write(self, data):
        view = memoryview(bytes(data))
        while view and not self._stop.is_set():
            if select.select([], [self.fd], [], 0.01)[1]:
                try:
                    view = view[os.write(self.fd, view):]
                except BlockingIOError:
                    pass


@pytest.fixture
def connect():
    """``connect(sidecar=SIDECAR, board_sidecar=None, **model_options)``: a model on a
    fresh pty and a Board on its slave path; both closed at the end."""
    opened = []

    def make(sidecar=SIDECAR, *, board_sidecar=None, timeout=TIMEOUT, **model_options):
        master, slave = os.openpty()
        tty.setraw(slave)
        model = BoardModel(master, sidecar, **model_options)
        board = Board(os.ttyname(slave), sidecar=board_sidecar or sidecar, timeout=timeout)
        opened.append((board, model, master, slave))
        return model, board

    yield make
    for board, model, master, slave in opened:
        board.close()
        model.stop()
        os.close(master)
        os.close(slave)


def test_identify_and_check(connect):
    _, board = connect()
    ident = board.identify()
    assert ident["module"] == SIDECAR["module"] and ident["max_payload"] == 64
    assert ident["dnnhw"] == 1 and ident["core"] == "link_test"
    assert board.check() == ident == board.ident


def test_a_board_of_another_module_is_refused(connect):
    other = dict(SIDECAR, module="link_test_ffffffff")
    model, board = connect(board_sidecar=other)
    message = (r"the board runs module 'link_test_0a1b2c3d' .* but the sidecar is for "
               r"module 'link_test_ffffffff'")
    with pytest.raises(BoardError, match=message):
        board.check()
    with pytest.raises(BoardError, match=message):
        board.write("i", [1, 2, 3])
    assert model.writes == []


def test_a_stream_wider_than_the_frames_is_refused(connect):
    streams = dict(SIDECAR["streams"], wide={"role": "sink", "width": 128})
    _, board = connect(dict(SIDECAR, streams=streams), max_payload=16)
    with pytest.raises(BoardError, match=r"stream 'wide' has 16-byte beats, but the "
                                         r"board's frames \(max_payload=16\) hold 15"):
        board.check()


def test_write_read_round_trip_and_status(connect):
    model, board = connect()
    rng = random.Random(3)
    i_beats = [(1 << 20) - 1, 0] + [rng.getrandbits(20) for _ in range(2998)]
    w_beats = [rng.getrandbits(8) for _ in range(2000)]
    board.write("i", i_beats)
    board.write("w", w_beats)
    assert board.read("echo", 2000) == w_beats           # o's beats wait in their buffer
    assert board.read("o", 3000) == [(b + 1) % (1 << 20) for b in i_beats]
    assert board.status() == {"frame_error": False, "core_error": False,
                              "received": {"i": 3000, "w": 2000},
                              "sent": {"o": 3000, "echo": 2000}}
    assert model.max_in_flight == 1


def test_writes_are_split_at_max_payload_in_whole_beats(connect):
    model, board = connect(max_payload=16)
    board.write("i", list(range(23)))        # 3-byte beats: 5 a frame (1 + 15 bytes)
    board.write("w", list(range(31)))        # 1-byte beats: 15 a frame
    assert model.writes == [(0, 16)] * 4 + [(0, 1 + 3 * 3)] + [(1, 16)] * 2 + [(1, 2)]
    assert board.read("o", 23) == list(range(1, 24))
    assert board.read("echo", 31) == list(range(31))


def test_one_write_frame_in_flight_and_the_streams_take_turns(connect):
    model, board = connect(max_payload=16, ack_delay=0.004)
    outputs = board.run({"i": list(range(100)), "w": list(range(45))},
                        expect={"o": 100, "echo": 45})
    assert outputs == {"o": list(range(1, 101)), "echo": list(range(45))}
    assert model.max_in_flight == 1 and model.bytes_while_busy == 0
    # Turns of 5 beats each (the 3-byte stream's frame holds 5): 20 of i, 9 of w.
    assert model.writes == [(0, 16), (1, 6)] * 9 + [(0, 16)] * 11


def test_run_drains_more_output_than_the_pty_holds(connect):
    # 120 kB of output against a pty that holds about 18 kB: the model blocks in its
    # write, before the ACK, unless the host reads while it writes.
    model, board = connect(max_payload=256)
    beats = list(range(20000))
    outputs = board.run({"i": beats, "w": [k % 256 for k in range(20000)]},
                        expect={"o": 20000, "echo": 20000})
    assert outputs["o"] == [b + 1 for b in beats]
    assert outputs["echo"] == [k % 256 for k in range(20000)]
    stats = board.last_run
    assert (stats.beats_sent, stats.beats_received) == (40000, 40000)
    frames = 2 * -(-20000 // 85)        # turns of 85 beats (a frame of 3-byte beats)
    assert stats.bytes_sent == 20000 * 4 + frames * 7
    assert stats.bytes_received == 20000 * 4 + frames * (7 + 9)   # READs and ACKs
    assert stats.seconds > 0 and stats.line_rate == 11520
    assert stats.beats_sent_per_s == pytest.approx(40000 / stats.seconds)
    assert "at 115200 baud (line rate 11,520 B/s each way)" in stats.summary()


def test_an_error_reply_raises_naming_the_error(connect):
    model, board = connect()
    model.error_next_write = ErrorCode.BAD_STREAM
    with pytest.raises(BoardError,
                       match=r"WRITE of 3 beats to 'i'.*ERROR BAD_STREAM") as info:
        board.write("i", [1, 2, 3])
    assert info.value.code == ErrorCode.BAD_STREAM
    board.write("i", [4])                                # the link carries on
    assert board.read("o", 1) == [5]


def test_bytes_lost_on_the_way_to_the_board_come_back_as_truncated(connect):
    model, board = connect()
    board.check()
    model.lose_host_bytes(after=4, count=1)              # the first payload byte
    with pytest.raises(BoardError, match=r"ERROR TRUNCATED") as info:
        board.write("i", [1, 2, 3])
    assert info.value.code == ErrorCode.TRUNCATED
    assert board.status()["frame_error"] is True


@pytest.mark.parametrize("reply, call", [
    (0x81, lambda board: board.identify()),
    (0x80, lambda board: board.write("i", [1, 2])),
    # The model sends a WRITE's READ frames before its ACK: the write sees the loss.
    (0x82, lambda board: board.write("i", [1, 2])),
])
def test_a_reply_with_a_bad_crc_is_a_clear_error(connect, reply, call):
    model, board = connect()
    if reply != 0x81:
        board.check()
    model.corrupt.add(reply)
    start = time.monotonic()
    with pytest.raises(BoardError, match=r"failed its check: frame .* has CRC"):
        call(board)
    assert time.monotonic() - start < TIMEOUT


def test_a_reply_cut_short_is_a_clear_error(connect):
    model, board = connect()
    board.check()
    model.truncate.add(0x80)
    with pytest.raises(BoardError, match=r"waiting for its ACK: a frame from the board "
                                         r"stopped short"):
        board.write("i", [1])


def test_silence_times_out_within_the_timeout(connect):
    model, board = connect()
    board.check()
    model.silent = True
    start = time.monotonic()
    with pytest.raises(BoardError, match=r"WRITE of 2 beats to 'i': waiting for its ACK: "
                                         r"nothing came from the board for 0.5 s"):
        board.write("i", [1, 2])
    assert TIMEOUT <= time.monotonic() - start < TIMEOUT + 0.2


def test_a_read_timeout_keeps_the_beats_it_got(connect):
    _, board = connect()
    board.write("i", [1, 2, 3])
    start = time.monotonic()
    with pytest.raises(BoardError, match=r"reading 5 beats of 'o' \(got 3\): nothing came"):
        board.read("o", 5, timeout=0.2)
    assert 0.2 <= time.monotonic() - start < 0.4
    assert board.read("o", 3) == [2, 3, 4]


def test_another_protocol_version_is_refused(connect):
    _, board = connect(version=2)
    with pytest.raises(BoardError, match=r"the board speaks protocol dnnhw=2; this host "
                                         r"speaks dnnhw=1"):
        board.identify()


@pytest.mark.parametrize("data, message", [
    (frame(0x82, b"\x07\x01"), r"a READ for stream 7; the sidecar has 2 source streams"),
    (frame(0x82, b""), r"a READ for no stream number"),
    (frame(0x82, b"\x00\x00\x00\x10"), r"a malformed READ for 'o': data beat 0 = "
                                        r"0x100000 has bits set above 20 bits"),
    (frame(0xEE, b"\x01\x02"), r"an ERROR with 2 payload bytes, not 1"),
    (frame(0x02, b"\x00\x01"), r"a WRITE \(0x02\) frame, which no board sends"),
])
def test_frames_no_board_should_send_are_reported(connect, data, message):
    model, board = connect()
    board.check()
    model.inject(data)
    with pytest.raises(BoardError, match=r"STATUS: waiting for its STATE: the board sent "
                                         + message):
        board.status()
    assert board.status()["frame_error"] is False          # reported once, then clear


@pytest.mark.parametrize("reply, replacement, call, message", [
    (0x80, (0x80, b"\x00\x09\x00"), lambda b: b.write("i", [1, 2, 3]),
     r"WRITE of 3 beats to 'i': the board acknowledged 9 beats on sink stream 0, not 3 "
     r"on 0"),
    (0x80, (0x80, b"\x00"), lambda b: b.write("i", [1]),
     r"malformed ACK: an ACK payload is 3 bytes \(stream, beats\), got 1"),
    (0x83, (0x80, b"\x00\x00\x00"), lambda b: b.status(),
     r"STATUS: the board replied ACK \(0x80\), not STATE \(0x83\)"),
    (0x83, (0x83, b"\x00"), lambda b: b.status(),
     r"the board's STATE is malformed: .* is 17 bytes, got 1"),
    (0x81, (0x81, b"dnnhw=1"), lambda b: b.check(),
     r"the board's ID b'dnnhw=1' is malformed: the ID lacks core, module, git"),
])
def test_malformed_replies_are_refused(connect, reply, replacement, call, message):
    model, board = connect()
    if reply != 0x81:
        board.check()
    model.replace_next[reply] = replacement
    with pytest.raises(BoardError, match=message):
        call(board)


def test_an_open_serial_port_is_used_and_left_open(connect):
    master, slave = os.openpty()
    tty.setraw(slave)
    model = BoardModel(master)
    port = serial.Serial(os.ttyname(slave), baudrate=115200, timeout=0.05)
    try:
        with Board(port, sidecar=SIDECAR, timeout=TIMEOUT) as board:
            board.write("w", [7, 8])
            assert board.read("echo", 2) == [7, 8]
        assert port.is_open
        with pytest.raises(ValueError, match=r"baudrate=9600, but the open port runs at "
                                             r"115200; pass baudrate=115200"):
            Board(port, sidecar=SIDECAR, baudrate=9600)
        port.timeout = None
        with pytest.raises(ValueError, match=r"must have a read timeout"):
            Board(port, sidecar=SIDECAR)
        port.timeout = 0.05
        with Board(port, sidecar=SIDECAR, timeout=TIMEOUT) as board:
            board.check()
            port.close()                          # pulled from under the reader
            with pytest.raises(BoardError, match=r"reading 1 beats of 'o' \(got 0\): "
                                                 r"reading the port failed"):
                board.read("o", 1)
    finally:
        port.close()
        model.stop()
        os.close(master)
        os.close(slave)


def test_the_sidecar_may_be_a_path(connect, tmp_path):
    import json
    path = tmp_path / "link_test.json"
    path.write_text(json.dumps(SIDECAR))
    _, board = connect(board_sidecar=path)
    assert board.check()["module"] == SIDECAR["module"]
    assert (board.sinks, board.sources) == (["i", "w"], ["o", "echo"])


@pytest.mark.parametrize("arguments, error, message", [
    (dict(port=3), TypeError, r"port must be a device path or an open serial port"),
    (dict(sidecar=[]), TypeError, r"sidecar must be a sidecar dict or the path"),
    (dict(sidecar={"streams": {}}), ValueError, r"sidecar has no 'module'"),
    (dict(sidecar={"module": "m", "streams": {"x": {"role": "in", "width": 8}}}),
     ValueError, r"sidecar stream 'x' has role 'in', not 'sink' or 'source'"),
    (dict(sidecar={"module": "m", "streams": {"x": {"role": "sink", "width": 0}}}),
     ValueError, r"sidecar stream 'x' has width 0, not an int >= 1"),
    (dict(sidecar={"module": "m", "streams": {
        f"s{k}": {"role": "source", "width": 8} for k in range(257)}}),
     ValueError, r"257 source streams; stream numbers are one byte, so at most 256"),
    (dict(timeout=0), ValueError, r"timeout must be > 0 seconds, got 0"),
    (dict(timeout="1"), TypeError, r"timeout must be a number of seconds, got str"),
    (dict(baudrate=0), ValueError, r"baudrate must be >= 1, got 0"),
    (dict(baudrate=115200.0), TypeError, r"baudrate must be an int, got float"),
])
def test_board_argument_errors(arguments, error, message):
    arguments = {"port": "/nonexistent/tty", "sidecar": SIDECAR, **arguments}
    with pytest.raises(error, match=message):
        Board(arguments.pop("port"), **arguments)


@pytest.mark.parametrize("call, error, message", [
    (lambda b: b.write(0, [1]), TypeError,
     r"stream must name a sink stream \(a str\), got int"),
    (lambda b: b.write("o", [1]), ValueError,
     r"stream: 'o' is not a sink stream of link_test_0a1b2c3d; its sink streams: i, w"),
    (lambda b: b.write("w", [1, 256]), ValueError,
     r"beats\[1\] = 256 does not fit in 8 bits"),
    (lambda b: b.read("i", 1), ValueError, r"stream: 'i' is not a source stream"),
    (lambda b: b.read("o", -1), ValueError, r"count must be >= 0, got -1"),
    (lambda b: b.read("o", 1.0), TypeError, r"count must be an int, got float"),
    (lambda b: b.read("o", 1, timeout=-1), ValueError, r"timeout must be > 0 seconds"),
    (lambda b: b.run([1], expect={}), TypeError, r"inputs must be a mapping"),
    (lambda b: b.run({}, expect=3), TypeError, r"expect must be a mapping"),
    (lambda b: b.run({"x": [1]}, expect={}), ValueError,
     r"inputs: 'x' is not a sink stream"),
    (lambda b: b.run({"i": [-1]}, expect={}), ValueError,
     r"inputs\['i'\]\[0\] = -1 does not fit in 20 bits"),
    (lambda b: b.run({}, expect={"i": 1}), ValueError,
     r"expect: 'i' is not a source stream"),
    (lambda b: b.run({}, expect={"o": -2}), ValueError,
     r"expect\['o'\] must be >= 0, got -2"),
    (lambda b: b.run({}, expect={"o": "2"}), TypeError, r"expect\['o'\] must be an int"),
])
def test_call_argument_errors(connect, call, error, message):
    model, board = connect()
    with pytest.raises(error, match=message):
        call(board)
    assert model.writes == []
