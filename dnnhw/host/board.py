"""The host end of the board link: :class:`Board` speaks docs/board.md over a serial port.

What: identify the board and refuse one built from another module than the sidecar's;
write beats into the core's sink streams and read its source streams by the sidecar's
names; run a whole job (:meth:`Board.run`) and measure the link's throughput against the
UART's line rate.

Why this shape: nothing holds the board back when it has output. It sends a ``READ``
frame whenever one is full (or its ``flush`` time passed), there is no flow control
towards the host, and bytes the host does not read in time are lost in the OS. So a
reader thread owns the port's input from construction to :meth:`Board.close`: it parses
every frame as it arrives, files ``READ`` beats per source stream, and hands the replies
(``ACK``, ``ID``, ``STATE``) and everything that went wrong (``ERROR`` frames, bad CRCs,
frames cut short, a failing port) to the calling thread. The calling thread writes one
frame at a time and sends the next ``WRITE`` only after the ``ACK`` of the one before
(the contract's one frame in flight). Output is drained while the caller waits for an
``ACK``, while it writes, and between its calls alike, so a core stalled on a full
output can never block the ``ACK`` the host waits for.

A :class:`Board` serves one calling thread at a time.
"""

import collections
import json
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import serial

from dnnhw.spec.board import turn_beats

from .protocol import (PROTOCOL_VERSION, Command, FrameError,
                       FrameParser, beat_bytes, command_name, encode_frame, error_name,
                       pack_beats, parse_ack, parse_ident, parse_state, unpack_beats)


__all__ = ["Board", "BoardError", "Throughput"]


_POLL_S = 0.05
"""The reader's read timeout: how soon it notices :meth:`Board.close` or a silent link."""

_FRAME_GAP_S = 0.25
"""Silence inside a frame from the board after which the reader drops it. The board
never pauses inside a frame; on the host, USB latency timers and scheduling can, for far
longer than the board's own 2048 bit times."""

_STREAMS_PER_ROLE = 256
"""Stream numbers are one byte."""


class BoardError(RuntimeError):
    """The board refused, failed or stopped answering, or is not the sidecar's board.
    ``code`` is the :class:`~dnnhw.host.protocol.ErrorCode` (or the unknown byte) of the
    ``ERROR`` frame the board sent, else None."""

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Throughput:
    """What one :meth:`Board.run` moved, and in how long (from its first ``WRITE`` to its
    last expected beat). Bytes count whole frames (headers and CRCs included), as the
    UART carries them; each direction's line rate is ``baudrate / 10`` bytes a second
    (8N1: ten bit times a byte)."""
    seconds: float
    baudrate: int
    bytes_sent: int
    bytes_received: int
    beats_sent: int
    beats_received: int

    @property
    def line_rate(self):
        """Bytes a second the UART carries each way."""
        return self.baudrate / 10

    def _per_second(self, amount):
        return amount / self.seconds if self.seconds > 0 else 0.0

    @property
    def sent_bytes_per_s(self):
        return self._per_second(self.bytes_sent)

    @property
    def received_bytes_per_s(self):
        return self._per_second(self.bytes_received)

    @property
    def beats_sent_per_s(self):
        return self._per_second(self.beats_sent)

    @property
    def beats_received_per_s(self):
        return self._per_second(self.beats_received)

    def summary(self):
        """One line for ``dnnhw board run``: both directions against the line rate."""
        def direction(label, byte_rate, beats, beat_rate):
            share = 100 * byte_rate / self.line_rate
            return (f"{label} {byte_rate:,.0f} B/s ({share:.0f}% of the line), "
                    f"{beats} beats at {beat_rate:,.0f}/s")
        return (f"{self.seconds:.3f} s at {self.baudrate} baud (line rate "
                f"{self.line_rate:,.0f} B/s each way): "
                + direction("in", self.sent_bytes_per_s, self.beats_sent,
                            self.beats_sent_per_s) + "; "
                + direction("out", self.received_bytes_per_s, self.beats_received,
                            self.beats_received_per_s))


def _positive(value, argument):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{argument} must be a number of seconds, got "
                        f"{type(value).__name__}")
    if not value > 0:
        raise ValueError(f"{argument} must be > 0 seconds, got {value}")
    return float(value)


def _load_sidecar(sidecar):
    if isinstance(sidecar, (str, os.PathLike)):
        sidecar = json.loads(Path(sidecar).read_text())
    if not isinstance(sidecar, Mapping):
        raise TypeError(f"sidecar must be a sidecar dict or the path of a sidecar JSON "
                        f"file, got {type(sidecar).__name__}")
    for key in ("module", "streams"):
        if key not in sidecar:
            raise ValueError(f"sidecar has no {key!r}: is it a dnnhw sidecar?")
    roles = {"sink": [], "source": []}
    for name, entry in sidecar["streams"].items():
        role = entry.get("role")
        if role not in roles:
            raise ValueError(f"sidecar stream {name!r} has role {role!r}, not 'sink' or "
                             f"'source'")
        width = entry.get("width")
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"sidecar stream {name!r} has width {width!r}, not an int "
                             f">= 1")
        roles[role].append(name)
    for role, names in roles.items():
        if len(names) > _STREAMS_PER_ROLE:
            raise ValueError(f"sidecar has {len(names)} {role} streams; stream numbers "
                             f"are one byte, so at most {_STREAMS_PER_ROLE}")
    return sidecar, roles["sink"], roles["source"]


def _open_port(port, baudrate):
    """``(serial port, whether this Board opened it)``."""
    if isinstance(port, (str, os.PathLike)):
        return serial.Serial(os.fspath(port), baudrate=baudrate, timeout=_POLL_S), True
    if not all(hasattr(port, name) for name in ("read", "write", "in_waiting")):
        raise TypeError(f"port must be a device path or an open serial port (read, write, "
                        f"in_waiting), got {type(port).__name__}")
    if getattr(port, "baudrate", baudrate) != baudrate:
        raise ValueError(f"baudrate={baudrate}, but the open port runs at "
                         f"{port.baudrate}; pass baudrate={port.baudrate}")
    if getattr(port, "timeout", _POLL_S) is None:
        raise ValueError("the open port must have a read timeout (its timeout is None): "
                         "the reader polls it to notice close()")
    return port, False


class Board:
    """The board on ``port``, running the core that ``sidecar`` describes.

    ``port``: a device path (opened here at ``baudrate``, 8N1, and closed by
    :meth:`close`), or an open serial port (pyserial's interface: ``read``, ``write``,
    ``in_waiting``, a read timeout; left open). ``sidecar``: the core's sidecar dict or
    the path of its JSON file; its sink streams are numbered ``0, 1, ...`` in its order,
    and so are its source streams. ``timeout``: the longest wait, in seconds, with nothing
    arriving from the board (on top of the time the host's own frame takes on the wire).

    Every method that moves beats first runs :meth:`check` if it has not passed yet.
    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, port, *, sidecar, baudrate=115200, timeout=1.0):
        if isinstance(baudrate, bool) or not isinstance(baudrate, int):
            raise TypeError(f"baudrate must be an int, got {type(baudrate).__name__}")
        if baudrate < 1:
            raise ValueError(f"baudrate must be >= 1, got {baudrate}")
        self.baudrate = baudrate
        self.timeout = _positive(timeout, "timeout")
        self.sidecar, self.sinks, self.sources = _load_sidecar(sidecar)
        self.ident = None
        self.last_run = None
        self._checked = False
        self._widths = {name: entry["width"]
                        for name, entry in self.sidecar["streams"].items()}
        self._port, self._owns_port = _open_port(port, baudrate)
        self._parser = FrameParser()
        self._cond = threading.Condition()
        self._replies = collections.deque()
        self._beats = {name: [] for name in self.sources}
        self._faults = []                # (message, ERROR code or None), until raised
        self._reader_failure = None      # why the reader stopped, for good
        self._bytes_received = 0
        self._bytes_sent = 0
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read_loop, daemon=True,
                                        name=f"dnnhw board reader ({port})")
        self._reader.start()

    # --- life cycle ---------------------------------------------------------------

    def close(self):
        """Stop the reader and close the port if this Board opened it."""
        self._stop.set()
        self._reader.join()
        if self._owns_port:
            self._port.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    # --- the board's identity -------------------------------------------------------

    def identify(self):
        """Ask for the ``ID``; return it as a dict
        (:func:`~dnnhw.host.protocol.parse_ident`) and keep it in ``ident``. Refuses a
        protocol version other than this host's."""
        payload = self._request(Command.IDENTIFY, b"", Command.ID, "IDENTIFY")
        try:
            ident = parse_ident(payload)
        except ValueError as error:
            raise BoardError(f"the board's ID {payload!r} is malformed: {error}") from None
        if ident["dnnhw"] != PROTOCOL_VERSION:
            raise BoardError(f"the board speaks protocol dnnhw={ident['dnnhw']}; this host "
                             f"speaks dnnhw={PROTOCOL_VERSION}")
        self.ident = ident
        return ident

    def check(self):
        """Identify the board and refuse it (:class:`BoardError`) unless it runs the
        sidecar's module and its frames can hold a beat of every stream. Returns the ID."""
        ident = self.identify()
        expected = self.sidecar["module"]
        if ident["module"] != expected:
            raise BoardError(f"the board runs module {ident['module']!r} (core "
                             f"{ident['core']!r}, git {ident['git']}), but the sidecar is "
                             f"for module {expected!r}: program the board with this build "
                             f"or pass the sidecar of the board's build")
        room = ident["max_payload"] - 1
        for name, width in self._widths.items():
            if beat_bytes(width) > room:
                raise BoardError(f"stream {name!r} has {beat_bytes(width)}-byte beats, but "
                                 f"the board's frames (max_payload={ident['max_payload']}) "
                                 f"hold {room} bytes after the stream number")
        self._checked = True
        return ident

    def _ensure_checked(self):
        if not self._checked:
            self.check()

    # --- moving beats ---------------------------------------------------------------

    def write(self, stream, beats):
        """Write ``beats`` (ints that fit the stream's width) into the sink ``stream``:
        ``WRITE`` frames of at most ``max_payload`` bytes, each sent after the ``ACK`` of
        the one before. Returns when the last beat is in the core."""
        number = self._stream_number(stream, self.sinks, "sink", "stream")
        data = pack_beats(beats, self._widths[stream], argument="beats")
        self._ensure_checked()
        for chunk in self._frame_chunks(stream, data):
            self._write_frame(stream, number, chunk, self.timeout)

    def read(self, stream, count, timeout=None):
        """The next ``count`` beats of the source ``stream``. Beats of other streams that
        arrive meanwhile stay buffered for their own reads. ``timeout`` (default the
        Board's): the longest wait with nothing arriving from the board; on it the
        beats received so far stay buffered and :class:`BoardError` says how many."""
        self._stream_number(stream, self.sources, "source", "stream")
        if isinstance(count, bool) or not isinstance(count, int):
            raise TypeError(f"count must be an int, got {type(count).__name__}")
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        timeout = self.timeout if timeout is None else _positive(timeout, "timeout")
        self._ensure_checked()
        return self._take(stream, count, timeout)

    def status(self):
        """The board's ``STATE``: ``{"frame_error", "core_error"}`` (bools), ``"received"``
        (beats per sink stream) and ``"sent"`` (beats per source stream), by name."""
        self._ensure_checked()
        payload = self._request(Command.STATUS, b"", Command.STATE, "STATUS")
        try:
            state = parse_state(payload, len(self.sinks), len(self.sources))
        except ValueError as error:
            raise BoardError(f"the board's STATE is malformed: {error}") from None
        return {"frame_error": state["frame_error"], "core_error": state["core_error"],
                "received": dict(zip(self.sinks, state["received"])),
                "sent": dict(zip(self.sources, state["sent"]))}

    def run(self, inputs, *, expect, timeout=None):
        """Feed ``inputs`` (sink stream name -> beats) to the core and return its outputs
        (source stream name -> list of beats) once ``expect`` (source stream name ->
        number of beats) have arrived. Beats buffered before the call (left by a failed
        read) are dropped: the outputs are what these inputs produced.

        With several sink streams, they take turns of
        :func:`~dnnhw.spec.board.turn_beats` beats each, a frame a turn, round robin
        (docs/board.md section 3: the board queues one turn per stream, so a core that
        takes its inputs in step has what it needs); one sink gets whole frames. One
        frame is in flight; the reader thread collects the output all the while. ``timeout`` (default the Board's) is the longest wait
        with nothing from the board, for the ACKs and the outputs alike. The link's
        :class:`Throughput` is left in ``last_run``.
        """
        if not isinstance(inputs, Mapping):
            raise TypeError(f"inputs must be a mapping of sink stream name to beats, got "
                            f"{type(inputs).__name__}")
        if not isinstance(expect, Mapping):
            raise TypeError(f"expect must be a mapping of source stream name to a beat "
                            f"count, got {type(expect).__name__}")
        packed = {}
        for name, beats in inputs.items():
            number = self._stream_number(name, self.sinks, "sink", "inputs")
            packed[name] = (number, pack_beats(beats, self._widths[name],
                                               argument=f"inputs[{name!r}]"))
        for name, count in expect.items():
            self._stream_number(name, self.sources, "source", "expect")
            if isinstance(count, bool) or not isinstance(count, int):
                raise TypeError(f"expect[{name!r}] must be an int, got "
                                f"{type(count).__name__}")
            if count < 0:
                raise ValueError(f"expect[{name!r}] must be >= 0, got {count}")
        timeout = self.timeout if timeout is None else _positive(timeout, "timeout")
        self._ensure_checked()
        with self._cond:
            for buffered in self._beats.values():
                buffered.clear()
            received_before = self._bytes_received
        sent_before = self._bytes_sent
        turn = None
        if len(self.sinks) > 1:
            turn = turn_beats(self.ident["max_payload"],
                              [self._widths[name] for name in self.sinks])
        turns = collections.deque(
            (name, number, collections.deque(self._frame_chunks(name, data, turn)))
            for name, (number, data) in packed.items() if data)
        start = time.perf_counter()
        while turns:
            name, number, chunks = turns.popleft()
            self._write_frame(name, number, chunks.popleft(), timeout)
            if chunks:
                turns.append((name, number, chunks))
        outputs = {name: self._take(name, count, timeout) for name, count in expect.items()}
        seconds = time.perf_counter() - start
        with self._cond:
            received = self._bytes_received - received_before
        self.last_run = Throughput(
            seconds=seconds, baudrate=self.baudrate,
            bytes_sent=self._bytes_sent - sent_before, bytes_received=received,
            beats_sent=sum(len(data) // beat_bytes(self._widths[name])
                           for name, (_, data) in packed.items()),
            beats_received=sum(expect.values()))
        return outputs

    # --- the calling thread's side ----------------------------------------------------

    def _stream_number(self, name, names, role, argument):
        if not isinstance(name, str):
            raise TypeError(f"{argument} must name a {role} stream (a str), got "
                            f"{type(name).__name__}")
        try:
            return names.index(name)
        except ValueError:
            raise ValueError(f"{argument}: {name!r} is not a {role} stream of "
                             f"{self.sidecar['module']}; its {role} streams: "
                             f"{', '.join(names) or 'none'}") from None

    def _frame_chunks(self, stream, data, beats=None):
        """``data`` (packed beats of ``stream``) cut into whole-beat WRITE payloads of
        ``beats`` beats each (None: as many as a frame holds)."""
        size = beat_bytes(self._widths[stream])
        step = ((self.ident["max_payload"] - 1) // size if beats is None else beats) * size
        return [data[k:k + step] for k in range(0, len(data), step)]

    def _write_frame(self, stream, number, chunk, timeout):
        beats = len(chunk) // beat_bytes(self._widths[stream])
        context = f"WRITE of {beats} beats to {stream!r}"
        payload = self._request(Command.WRITE, bytes([number]) + chunk, Command.ACK,
                                context, timeout)
        try:
            acked_stream, acked_beats = parse_ack(payload)
        except ValueError as error:
            raise BoardError(f"{context}: malformed ACK: {error}") from None
        if (acked_stream, acked_beats) != (number, beats):
            raise BoardError(f"{context}: the board acknowledged {acked_beats} beats on "
                             f"sink stream {acked_stream}, not {beats} on {number}")

    def _request(self, command, payload, reply_command, context, timeout=None):
        """Send one frame and return the payload of its reply, which must be
        ``reply_command``, waiting ``timeout`` (default the Board's) as :meth:`_wait` does.
        Replies left over from a request that failed are dropped."""
        frame = encode_frame(command, payload)
        with self._cond:
            self._replies.clear()
        self._port.write(frame)
        self._bytes_sent += len(frame)
        wire_seconds = len(frame) * 10 / self.baudrate
        with self._cond:
            reply = self._wait(lambda: self._replies.popleft() if self._replies else None,
                               lambda: f"{context}: waiting for its "
                                       f"{Command(reply_command).name}",
                               self.timeout if timeout is None else timeout,
                               extra_seconds=wire_seconds)
        if reply.command != reply_command:
            raise BoardError(f"{context}: the board replied {command_name(reply.command)}, "
                             f"not {command_name(reply_command)}")
        return reply.payload

    def _take(self, stream, count, timeout):
        buffered = self._beats[stream]
        with self._cond:
            self._wait(lambda: True if len(buffered) >= count else None,
                       lambda: f"reading {count} beats of {stream!r} (got {len(buffered)})",
                       timeout)
            beats = buffered[:count]
            del buffered[:count]
        return beats

    def _wait(self, ready, describe, timeout, *, extra_seconds=0.0):
        """With ``_cond`` held: wait until ``ready()`` is not None and return it. Raises
        :class:`BoardError`, its message starting with ``describe()``, on a fault, or once
        ``timeout`` passes with no byte from the board (``extra_seconds`` more at first)."""
        deadline = time.monotonic() + timeout + extra_seconds
        progress = self._bytes_received
        while True:
            self._raise_faults(describe)
            result = ready()
            if result is not None:
                return result
            now = time.monotonic()
            if self._bytes_received != progress:
                progress = self._bytes_received
                deadline = max(deadline, now + timeout)
            if now >= deadline:
                raise BoardError(f"{describe()}: nothing came from the board for "
                                 f"{timeout:g} s{self._silence_hint()}")
            self._cond.wait(deadline - now)

    def _silence_hint(self):
        if self._parser.skipped_bytes:
            return (f" ({self._parser.skipped_bytes} bytes arrived outside any frame: "
                    f"is the board at {self.baudrate} baud?)")
        if self.ident is None:
            return (f" (is the board programmed with the bridge, on this port, at "
                    f"{self.baudrate} baud?)")
        return ""

    def _raise_faults(self, describe):
        if self._reader_failure is not None:
            raise BoardError(f"{describe()}: {self._reader_failure}")
        if self._faults:
            faults, self._faults = self._faults, []
            messages = "; ".join(message for message, _ in faults)
            raise BoardError(f"{describe()}: {messages}", code=faults[0][1])

    # --- the reader thread ------------------------------------------------------------

    def _read_loop(self):
        port, parser = self._port, self._parser
        last_byte = time.monotonic()
        try:
            while not self._stop.is_set():
                data = port.read(port.in_waiting or 1)
                now = time.monotonic()
                if data:
                    last_byte = now
                    events = parser.feed(data)
                    with self._cond:
                        self._bytes_received += len(data)
                        for event in events:
                            self._file(event)
                        self._cond.notify_all()
                elif parser.in_frame and now - last_byte > _FRAME_GAP_S:
                    parser.reset()
                    with self._cond:
                        self._faults.append((f"a frame from the board stopped short "
                                             f"(silence for {_FRAME_GAP_S} s inside it)",
                                             None))
                        self._cond.notify_all()
        except Exception as error:  # any failure must reach the waiting caller
            if not self._stop.is_set():
                with self._cond:
                    self._reader_failure = f"reading the port failed: {error!r}"
                    self._cond.notify_all()

    def _file(self, event):
        """With ``_cond`` held: put one parsed frame where the calling thread looks."""
        if isinstance(event, FrameError):
            self._faults.append((f"a frame from the board failed its check: {event}", None))
        elif event.command == Command.READ:
            self._file_read(event.payload)
        elif event.command == Command.ERROR:
            if len(event.payload) == 1:
                code = event.payload[0]
                self._faults.append((f"the board sent ERROR {error_name(code)}", code))
            else:
                self._faults.append((f"the board sent an ERROR with {len(event.payload)} "
                                     f"payload bytes, not 1", None))
        elif event.command in (Command.ACK, Command.ID, Command.STATE):
            self._replies.append(event)
        else:
            self._faults.append((f"the board sent a {command_name(event.command)} frame, "
                                 f"which no board sends", None))

    def _file_read(self, payload):
        if not payload or payload[0] >= len(self.sources):
            stream = f"stream {payload[0]}" if payload else "no stream number"
            self._faults.append((f"the board sent a READ for {stream}; the sidecar has "
                                 f"{len(self.sources)} source streams", None))
            return
        name = self.sources[payload[0]]
        try:
            beats = unpack_beats(payload[1:], self._widths[name])
        except ValueError as error:
            self._faults.append((f"the board sent a malformed READ for {name!r}: {error}",
                                 None))
            return
        self._beats[name].extend(beats)
