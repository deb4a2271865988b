"""cocotb testbench: a whole board top (core, UART bridge, the UART pins) against the
unmodified host driver :class:`dnnhw.host.Board`, through a pseudo-terminal.

The design under test is a :class:`dnnhw.boards.sim.SimBoardTop` (ports ``rx``, ``tx``,
``leds``). The bench opens a pty; a coroutine bit-bangs ``rx`` (8N1, ``divisor`` cycles a
bit) from the bytes it reads from the pty's master, another decodes ``tx`` into bytes it
writes to the master. The host runs in a Python thread inside this process: it opens the
pty's slave *by its path* through pyserial, as it would a board's FTDI port, while the
simulator runs in the main thread (cocotb releases the GIL while the simulator runs). A
test waits, in simulated time with a wall-clock guard, until the host thread is done.

The sidecar (``DNNHW_SIDECAR``) is the top's: ``module``, ``clock``, ``reset``,
``divisor``, ``baud``, ``timeout_bits`` and ``core_sidecar`` (the core's sidecar, which
the host is given).

Imported inside the simulator process only (it imports cocotb).
"""

import os
import select
import threading
import time
import tty

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge, Timer
from cocotb.utils import get_sim_time

from dnnhw.golden import zvc as golden
from dnnhw.host import Board
from dnnhw.host.protocol import Command, ErrorCode, FrameParser, encode_frame

from .streams import PayloadFormat
from .tb import load_config, load_sidecar, record
from .zvc_data import random_frame


DEFAULTS = {
    "period_ns": 10,
    "host_timeout_s": 60.0,     # Board(timeout=): wall-clock seconds with no byte
    "wall_limit_s": 240.0,      # per test, the guard on the host thread
    "poll_cycles": 32,          # how often an idle rx driver looks at the pty
    "frames": 3,                # ZVC frames a run
    "max_windows": 6,           # windows a frame
}


# --- the pty and the UART model ---------------------------------------------------------

class PtyUart:
    """A pty whose master is wired to the DUT's UART pins; ``path`` is the slave's
    device path, what the host opens. ``slave_fd`` stays open here (so the master never
    sees EIO between hosts) and serves raw host traffic (:class:`RawHost`)."""

    def __init__(self, dut, divisor, period_ns, poll_cycles):
        self.dut, self.divisor, self.period_ns = dut, divisor, period_ns
        self.poll_cycles = poll_cycles
        self.master, self.slave_fd = os.openpty()
        tty.setraw(self.slave_fd)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave_fd)
        self._pending = bytearray()    # decoded bytes the master could not take yet
        self.bytes_in = self.bytes_out = self.framing_errors = 0
        self._tasks = []

    def start(self):
        self.dut.rx.value = 1
        self._tasks = [cocotb.start_soon(self._drive_rx()), cocotb.start_soon(self._decode_tx())]

    def close(self):
        for task in self._tasks:
            task.cancel()
        for fd in (self.master, self.slave_fd):
            try:
                os.close(fd)
            except OSError:
                pass

    def _bit(self):
        return Timer(self.divisor * self.period_ns, unit="ns")

    def _flush(self):
        while self._pending:
            try:
                n = os.write(self.master, self._pending)
            except (BlockingIOError, InterruptedError):
                return
            del self._pending[:n]

    async def _drive_rx(self):
        """Bytes from the host (read from the master) onto ``rx``."""
        rx = self.dut.rx
        idle = Timer(self.poll_cycles * self.period_ns, unit="ns")
        while True:
            self._flush()
            try:
                data = os.read(self.master, 4096)
            except (BlockingIOError, InterruptedError):
                data = b""
            except OSError:            # no slave open at all
                data = b""
            if not data:
                await idle
                continue
            for byte in data:
                for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
                    rx.value = bit
                    await self._bit()
                self.bytes_in += 1

    async def _decode_tx(self):
        """``tx`` into bytes written to the master: each bit sampled at its middle."""
        tx = self.dut.tx
        half = Timer(self.divisor * self.period_ns // 2, unit="ns")
        while True:
            await FallingEdge(tx)
            await half
            if int(tx.value) != 0:
                continue               # a glitch, not a start bit
            byte = 0
            for i in range(8):
                await self._bit()
                byte |= int(tx.value) << i
            await self._bit()
            if int(tx.value) != 1:
                self.framing_errors += 1
                continue
            self._pending.append(byte)
            self.bytes_out += 1
            self._flush()


class RawHost:
    """Raw frames through the pty's slave, for what the driver never sends (a bad CRC, a
    frame cut short). Only while no :class:`Board` has the port open."""

    def __init__(self, fd):
        self.fd = fd
        self.parser = FrameParser()

    def send(self, data):
        os.write(self.fd, bytes(data))

    def expect_frame(self, timeout):
        """The next frame the board sends (a :class:`Frame` or a :class:`FrameError`)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no frame from the board within {timeout} s")
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                events = self.parser.feed(os.read(self.fd, 4096))
                if events:
                    assert len(events) == 1, events
                    return events[0]


# --- running a host in a thread ---------------------------------------------------------

class HostThread:
    """``function()`` in a thread; ``result`` or ``error`` once it is done."""

    def __init__(self, function):
        self.result = self.error = None
        self.thread = threading.Thread(target=self._run, args=(function,), daemon=True,
                                       name="dnnhw sim host")
        self.thread.start()

    def _run(self, function):
        try:
            self.result = function()
        except BaseException as error:   # handed to the test
            self.error = error

    async def join(self, period_ns, wall_limit_s, check_every=2000):
        """Let the simulator run until the thread is done (checking every
        ``check_every`` cycles); fail after ``wall_limit_s`` wall-clock seconds."""
        start = time.monotonic()
        while self.thread.is_alive():
            await Timer(check_every * period_ns, unit="ns")
            if time.monotonic() - start > wall_limit_s:
                raise AssertionError(f"the host thread did not finish within "
                                     f"{wall_limit_s} s of wall-clock time")
        if self.error is not None:
            raise self.error
        return self.result


class Bench:
    def __init__(self, dut, salt):
        self.dut = dut
        self.sidecar = load_sidecar()
        self.cfg = load_config(DEFAULTS)
        self.core_sidecar = self.sidecar["core_sidecar"]
        self.divisor = int(self.sidecar["divisor"])
        self.baud = int(self.sidecar["baud"])
        self.period_ns = int(self.cfg["period_ns"])
        self.rng = np.random.default_rng([self.cfg["seed"], salt])
        self.uart = None

    async def start(self):
        dut = self.dut
        clk = getattr(dut, self.sidecar["clock"])
        rst = getattr(dut, self.sidecar["reset"])
        dut.rx.value = 1
        rst.value = 1
        Clock(clk, self.period_ns, unit="ns").start()
        for _ in range(4):
            await RisingEdge(clk)
        rst.value = 0
        await RisingEdge(clk)
        self.uart = PtyUart(dut, self.divisor, self.period_ns, self.cfg["poll_cycles"])
        self.uart.start()

    def close(self):
        if self.uart is not None:
            self.uart.close()

    def board(self):
        """The host driver on the pty, by its path: the real-board code path."""
        return Board(self.uart.path, sidecar=self.core_sidecar, baudrate=self.baud,
                     timeout=self.cfg["host_timeout_s"])

    def raw(self):
        return RawHost(self.uart.slave_fd)

    async def host(self, function):
        return await HostThread(function).join(self.period_ns, self.cfg["wall_limit_s"])

    # ZVC ---------------------------------------------------------------------------

    def zvc_case(self):
        """``(inputs, expected)``: the sink's beats and the expected source beats for a
        few random frames, packed from the sidecar's stream fields as
        :mod:`dnnhw.sim.zvc` does. zvc-compress: windows in, the golden
        ``compress_frame`` words out; zvc-decompress: those words in, the windows back;
        zvc-loopback: windows in and out."""
        core = self.core_sidecar["core"]
        if core not in ZVC_CORES:
            raise ValueError(f"this bench runs {', '.join(ZVC_CORES)}, not {core!r}")
        params = self.core_sidecar["params"]
        lanes, width = int(params["lanes"]), int(params["width"])
        frames = [random_frame(self.rng, int(self.rng.integers(1, self.cfg["max_windows"] + 1)),
                               lanes, width, float(d))
                  for d in self.rng.choice([0.0, 0.3, 0.7, 1.0], size=self.cfg["frames"])]
        windows, window_last, words, lengths, word_last = [], [], [], [], []
        for frame in frames:
            windows.append(frame)
            window_last += [0] * (len(frame) - 1) + [1]
            w, last_length = golden.compress_frame(frame, width=width)
            assert np.array_equal(golden.decompress_frame(w, last_length, width=width), frame)
            words.append(w)
            lengths += [lanes] * (len(w) - 1) + [last_length]
            word_last += [0] * (len(w) - 1) + [1]

        def pack(name, kind):
            fmt = PayloadFormat(self.core_sidecar["streams"][name])
            if kind == "windows":
                values = fmt.pack_many(data=np.vstack(windows),
                                       last=np.array(window_last, dtype=np.uint64))
            else:
                values = fmt.pack_many(data=np.vstack(words),
                                       length=np.array(lengths, dtype=np.uint64),
                                       last=np.array(word_last, dtype=np.uint64))
            return [int(v) for v in values]

        kind_in, kind_out = ZVC_CORES[core]
        return pack("i", kind_in), pack("o", kind_out)

    def leds(self):
        """The board's LEDs by what they show (``error``, ``activity``, ...)."""
        value = int(self.dut.leds.value)
        return {shown: (value >> i) & 1 for i, shown in enumerate(self.sidecar["leds"])}


#: Catalog core -> what its sink takes and its source gives.
ZVC_CORES = {"zvc-compress": ("windows", "words"), "zvc-decompress": ("words", "windows"),
             "zvc-loopback": ("windows", "windows")}


def _check_zvc(board, inputs, expected):
    got = board.run({"i": inputs}, expect={"o": len(expected)})["o"]
    assert got == expected, f"board output {got} != golden {expected}"
    return got


# --- the tests --------------------------------------------------------------------------

@cocotb.test()
async def identify_and_run(dut):
    """The driver identifies the board and checks its module; a few random frames
    written through it (``run``, then plain ``write`` and ``read``) come back as the
    golden model's output (compressed words from zvc-compress, the windows again from
    zvc-decompress), and ``STATE`` counts every beat."""
    bench = Bench(dut, 0)
    await bench.start()
    try:
        cases = [bench.zvc_case() for _ in range(2)]

        def host():
            with bench.board() as board:
                ident = board.check()
                outputs = []
                for inputs, expected in cases:
                    outputs.append(_check_zvc(board, inputs, expected))
                board.write("i", cases[0][0])       # plain writes, then the reads
                got = board.read("o", len(cases[0][1]))
                assert got == cases[0][1], (got, cases[0][1])
                state = board.status()
                return ident, state, board.last_run

        ident, state, last_run = await bench.host(host)
        assert ident["module"] == bench.core_sidecar["module"]
        assert ident["baud"] == bench.baud
        assert not state["frame_error"], state
        beats_in = sum(len(c[0]) for c in cases) + len(cases[0][0])
        assert state["received"] == {"i": beats_in}, state
        assert state["sent"] == {"o": sum(len(c[1]) for c in cases) + len(cases[0][1])}
        assert bench.uart.framing_errors == 0
        record("identify_and_run", {
            "ident": ident, "state": state, "bytes_in": bench.uart.bytes_in,
            "bytes_out": bench.uart.bytes_out, "last_run_s": last_run.seconds})
    finally:
        bench.close()


@cocotb.test()
async def bad_crc(dut):
    """A frame with a bad CRC gets ``ERROR BAD_CRC`` and never reaches the core; the
    board then still answers ``IDENTIFY``, and the driver works."""
    bench = Bench(dut, 1)
    await bench.start()
    try:
        inputs, expected = bench.zvc_case()
        assert bench.leds().get("error", 0) == 0

        def host():
            raw = bench.raw()
            frame = bytearray(encode_frame(Command.WRITE, bytes([0]) + bytes(5 * 2)))
            frame[-1] ^= 0x5A
            raw.send(frame)
            reply = raw.expect_frame(30)
            assert reply.command == Command.ERROR and reply.payload == bytes(
                [ErrorCode.BAD_CRC]), (f"wanted ERROR BAD_CRC, got {reply}")
            raw.send(encode_frame(Command.IDENTIFY))
            reply = raw.expect_frame(30)
            assert reply.command == Command.ID, reply
            with bench.board() as board:
                board.check()
                _check_zvc(board, inputs, expected)
                return board.status()

        state = await bench.host(host)
        assert state["frame_error"], state      # sticky since the bad CRC
        assert state["received"] == {"i": len(inputs)}, state   # nothing of the bad frame
        assert state["sent"] == {"o": len(expected)}, state
        leds = bench.leds()
        for shown in ("error", "frame_error"):
            if shown in leds:
                assert leds[shown] == 1, leds     # the board shows the refused frame
        assert bench.uart.framing_errors == 0
        record("bad_crc", {"state": state, "leds": leds})
    finally:
        bench.close()


@cocotb.test()
async def host_gone_mid_frame(dut):
    """A host that opens the port, sends half a ``WRITE`` and goes away: after its
    timeout the board sends ``ERROR TRUNCATED`` and is back to waiting for ``SYNC``; the
    next host's writes work."""
    import serial

    bench = Bench(dut, 2)
    await bench.start()
    try:
        inputs, expected = bench.zvc_case()
        timeout_cycles = int(bench.sidecar["timeout_bits"]) * bench.divisor

        def host():
            gone = serial.Serial(bench.uart.path, baudrate=bench.baud, timeout=0.05)
            frame = encode_frame(Command.WRITE, bytes([0]) + bytes(5 * 4))
            gone.write(frame[:len(frame) // 2])
            gone.flush()
            gone.close()
            raw = bench.raw()
            reply = raw.expect_frame(60)
            assert reply.command == Command.ERROR and reply.payload == bytes(
                [ErrorCode.TRUNCATED]), (f"wanted ERROR TRUNCATED, got {reply}")
            with bench.board() as board:
                board.check()
                _check_zvc(board, inputs, expected)
                return board.status()

        start_ns = get_sim_time("ns")
        state = await bench.host(host)
        assert get_sim_time("ns") - start_ns >= timeout_cycles * bench.period_ns
        assert state["received"] == {"i": len(inputs)}, state
        assert state["sent"] == {"o": len(expected)}, state
        assert bench.uart.framing_errors == 0
        record("host_gone_mid_frame", {"state": state})
    finally:
        bench.close()
