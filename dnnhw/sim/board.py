"""cocotb testbench: a whole board top (core, UART bridge, the UART pins) against the
unmodified host driver :class:`dnnhw.host.Board`, through a pseudo-terminal.

The design under test is a :class:`dnnhw.boards.sim.SimBoardTop` (ports ``rx``, ``tx``,
``leds``). The bench opens a pty; a coroutine bit-bangs ``rx`` (8N1, ``divisor`` cycles a
bit) from the bytes it reads from the pty's master, another decodes ``tx`` into bytes it
writes to the master. The host runs in a Python thread inside this process: it opens the
pty's slave *by its path* through pyserial, as it would a board's FTDI port, while the
simulator runs in the main thread (cocotb releases the GIL while the simulator runs). A
test waits, in simulated time with a wall-clock guard, until the host thread is done.

The sidecar (``DNNHW_SIDECAR``) is the top's (:func:`dnnhw.boards.sim.write_sim_top`):
``module``, ``clock``, ``reset``, ``divisor``, ``baud``, ``timeout_bits``, ``max_payload``,
``leds``, ``core_sidecar`` (the core's sidecar, which the host is given) and
``board_job`` (the core's job maker, ``module:function``).

Imported inside the simulator process only (it imports cocotb).
"""

import importlib
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

from dnnhw.host import Board
from dnnhw.host.job import run_job
from dnnhw.host.protocol import Command, ErrorCode, FrameParser, beat_bytes, encode_frame

from .tb import load_config, load_sidecar, record


DEFAULTS = {
    "period_ns": 10,
    "host_timeout_s": 60.0,     # Board(timeout=): wall-clock seconds with no byte
    "wall_limit_s": 240.0,      # per test, the guard on the host thread
    "poll_cycles": 32,          # how often an idle rx driver looks at the pty
    "input": None,              # board_run_command: the --input file (None: example data)
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

    def job(self):
        """The core's board job (``Core.board_job``) on example data from this bench's
        generator: the beats ``dnnhw board run`` would send, and the golden answer."""
        if not self.sidecar.get("board_job"):
            raise ValueError(f"core {self.core_sidecar['core']!r} has no board job")
        module, _, function = self.sidecar["board_job"].partition(":")
        make = getattr(importlib.import_module(module), function)
        return make({}, self.core_sidecar["params"], self.core_sidecar, self.rng)

    def leds(self):
        """The board's LEDs by what they show (``error``, ``activity``, ...)."""
        value = int(self.dut.leds.value)
        return {shown: (value >> i) & 1 for i, shown in enumerate(self.sidecar["leds"])}


def _check_job(board, job):
    """Run ``job`` through the driver; every output beat equal to the golden model's."""
    result = run_job(board, job)
    assert result.passed, f"{job.describe}: " + "; ".join(result.mismatches)
    return result


def _beats_in(job):
    return {name: len(beats) for name, beats in job.inputs.items()}


def _beats_out(job):
    return {name: len(beats) for name, beats in job.expected.items()}


# --- the tests --------------------------------------------------------------------------

def _add(total, counts):
    for name, count in counts.items():
        total[name] = total.get(name, 0) + count
    return total


@cocotb.test()
async def identify_and_run(dut):
    """The driver identifies the board and checks its module; two of the core's board
    jobs (its example data) give the golden model's output beat for beat; a core with
    one input stream also takes plain ``write`` and ``read`` calls; ``STATE`` counts
    every beat."""
    bench = Bench(dut, 0)
    await bench.start()
    try:
        jobs = [bench.job() for _ in range(2)]
        plain = len(jobs[0].inputs) == 1 and len(jobs[0].expected) == 1

        def host():
            with bench.board() as board:
                ident = board.check()
                runs = [_check_job(board, job) for job in jobs]
                if plain:
                    # Plain writes, then the reads: the board holds what the host does not
                    # read yet, and the reader thread takes it all.
                    (sink, beats), = jobs[0].inputs.items()
                    (source, want), = jobs[0].expected.items()
                    board.write(sink, beats)
                    got = board.read(source, len(want))
                    assert got == want, (got, want)
                return ident, board.status(), runs

        ident, state, runs = await bench.host(host)
        assert ident["module"] == bench.core_sidecar["module"]
        assert ident["baud"] == bench.baud
        assert not state["frame_error"], state
        received, sent = {}, {}
        for job in jobs + jobs[:1] * plain:
            _add(received, _beats_in(job))
            _add(sent, _beats_out(job))
        assert state["received"] == received, state
        assert state["sent"] == sent, state
        assert bench.uart.framing_errors == 0
        record("identify_and_run", {
            "ident": ident, "state": state, "jobs": [job.describe for job in jobs],
            "bytes_in": bench.uart.bytes_in, "bytes_out": bench.uart.bytes_out,
            "last_run": runs[-1].throughput.summary()})
    finally:
        bench.close()


def _a_beat(bench):
    """The payload of a WRITE of one zero beat to sink stream 0."""
    sink = next(iter(bench.core_sidecar["streams"].values()))
    return bytes([0]) + bytes(beat_bytes(sink["width"]))


@cocotb.test()
async def bad_crc(dut):
    """A frame with a bad CRC gets ``ERROR BAD_CRC`` and never reaches the core; the
    board then still answers ``IDENTIFY``, and the driver works."""
    bench = Bench(dut, 1)
    await bench.start()
    try:
        job = bench.job()
        assert bench.leds().get("error", 0) == 0

        def host():
            raw = bench.raw()
            frame = bytearray(encode_frame(Command.WRITE, _a_beat(bench)))
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
                _check_job(board, job)
                return board.status()

        state = await bench.host(host)
        assert state["frame_error"], state      # sticky since the bad CRC
        assert state["received"] == _beats_in(job), state   # nothing of the bad frame
        assert state["sent"] == _beats_out(job), state
        leds = bench.leds()
        for shown in ("error", "frame_error"):
            if shown in leds:
                assert leds[shown] == 1, leds     # the board shows the refused frame
        assert bench.uart.framing_errors == 0
        record("bad_crc", {"state": state, "leds": leds})
    finally:
        bench.close()


@cocotb.test()
async def malformed_frames(dut):
    """Frames with a good CRC that the bridge must refuse, each answered by its ``ERROR``
    and none reaching the core: a WRITE that is not a whole number of beats
    (``BAD_LENGTH``), a WRITE longer than ``max_payload`` (``BAD_LENGTH``), a WRITE to a
    stream the core does not have (``BAD_STREAM``), an unknown command
    (``BAD_COMMAND``). The driver then works, and ``STATE`` counts only its beats."""
    bench = Bench(dut, 3)
    await bench.start()
    try:
        job = bench.job()
        beat = _a_beat(bench)
        sinks = sum(1 for s in bench.core_sidecar["streams"].values() if s["role"] == "sink")
        max_payload = int(bench.sidecar["max_payload"])
        cases = [
            ("part of a beat", encode_frame(Command.WRITE, beat[:-1]), ErrorCode.BAD_LENGTH),
            ("a beat and a byte", encode_frame(Command.WRITE, beat + b"\0"),
             ErrorCode.BAD_LENGTH),
            ("over max_payload", encode_frame(Command.WRITE, bytes(max_payload + 1)),
             ErrorCode.BAD_LENGTH),
            ("no such stream", encode_frame(Command.WRITE, bytes([sinks]) + beat[1:]),
             ErrorCode.BAD_STREAM),
            ("unknown command", encode_frame(0x7F, b"\1\2"), ErrorCode.BAD_COMMAND),
        ]

        def host():
            raw = bench.raw()
            replies = {}
            for label, frame, _ in cases:
                raw.send(frame)
                reply = raw.expect_frame(30)
                replies[label] = (reply.command, bytes(reply.payload))
            with bench.board() as board:
                board.check()
                _check_job(board, job)
                return replies, board.status()

        replies, state = await bench.host(host)
        for label, _, code in cases:
            assert replies[label] == (Command.ERROR, bytes([code])), (
                f"{label}: wanted ERROR {code.name}, got {replies[label]}")
        assert state["frame_error"], state
        assert state["received"] == _beats_in(job), state
        assert state["sent"] == _beats_out(job), state
        record("malformed_frames", {label: ErrorCode(replies[label][1][0]).name
                                    for label, _, _ in cases})
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
        job = bench.job()
        timeout_cycles = int(bench.sidecar["timeout_bits"]) * bench.divisor

        def host():
            gone = serial.Serial(bench.uart.path, baudrate=bench.baud, timeout=0.05)
            frame = encode_frame(Command.WRITE, _a_beat(bench) + bytes(8))
            gone.write(frame[:len(frame) // 2])
            gone.flush()
            gone.close()
            raw = bench.raw()
            reply = raw.expect_frame(60)
            assert reply.command == Command.ERROR and reply.payload == bytes(
                [ErrorCode.TRUNCATED]), (f"wanted ERROR TRUNCATED, got {reply}")
            with bench.board() as board:
                board.check()
                _check_job(board, job)
                return board.status()

        start_ns = get_sim_time("ns")
        state = await bench.host(host)
        assert get_sim_time("ns") - start_ns >= timeout_cycles * bench.period_ns
        assert state["received"] == _beats_in(job), state
        assert state["sent"] == _beats_out(job), state
        assert bench.uart.framing_errors == 0
        record("host_gone_mid_frame", {"state": state})
    finally:
        bench.close()


@cocotb.test()
async def board_run_command(dut):
    """``dnnhw board run CORE -p ... --port PTY [--input FILE] -o OUT``, the command a
    user types, in a process of its own, against the simulated board: exit status 0
    (every output beat equal to the golden model's) and the outputs saved."""
    import subprocess
    import sys
    import tempfile

    bench = Bench(dut, 4)
    await bench.start()
    try:
        core = bench.core_sidecar["core"]
        params = [arg for name, value in bench.core_sidecar["params"].items()
                  for arg in ("-p", f"{name}={value}")]
        workdir = tempfile.mkdtemp(prefix="dnnhw-board-run-")
        output = os.path.join(workdir, "out.npz")
        argv = [sys.executable, "-m", "dnnhw.cli", "board", "run", core, *params,
                "--port", bench.uart.path,
                "--baud", str(bench.baud), "--timeout", str(bench.cfg["host_timeout_s"]),
                "-o", output]
        if bench.cfg["input"]:
            argv += ["--input", bench.cfg["input"]]

        def host():
            done = subprocess.run(argv, capture_output=True, text=True,
                                  timeout=bench.cfg["wall_limit_s"])
            return done.returncode, done.stdout, done.stderr

        status, out, err = await bench.host(host)
        assert status == 0, f"{' '.join(argv)} exited {status}:\n{out}{err}"
        assert "bit-exact against the golden model" in out, out
        with np.load(output) as saved:
            arrays = {name: saved[name].shape for name in saved.files}
        assert arrays, "the outputs file is empty"
        record("board_run_command", {"argv": argv, "stdout": out, "outputs": arrays})
    finally:
        bench.close()
