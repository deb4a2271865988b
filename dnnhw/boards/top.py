"""The board top: a catalog core behind the UART bridge, on a board's pins."""

import subprocess
from pathlib import Path

from amaranth.hdl import Const, Elaboratable, Module, Value
from amaranth.lib import fifo, io

from dnnhw.catalog import ParameterError, get_core
from dnnhw.generate import describe
from dnnhw.rtl.uart_bridge import UARTBridge
from dnnhw.spec.board import MAX_PAYLOAD_RANGE, PROTOCOL_VERSION, turn_beats

from .board import get_board


__all__ = ["BoardTop", "ERROR_SIGNALS", "MAX_BAUD_ERROR"]


#: The plain 1-bit outputs of a core that the bridge reports as its error (``STATE`` bit
#: 1 and an LED).
ERROR_SIGNALS = ("error", "overflow")

#: The largest departure (a fraction) of the baud the divisor gives from the one asked
#: for; the receiver tolerates about 5 % in all (docs/board.md section 1, dnnhw.rtl.uart),
#: and the host's FTDI adds its own error.
MAX_BAUD_ERROR = 0.02


def _git_hash():
    """The short hash of the checkout this package runs from, or ``"unknown"``."""
    try:
        result = subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                                cwd=Path(__file__).resolve().parent, capture_output=True,
                                text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    text = result.stdout.strip()
    return text if result.returncode == 0 and text else "unknown"


def _stream(component, name):
    """The stream member the sidecar calls ``name`` (``i``, or ``inputs__0`` for element
    0 of an array of streams)."""
    member_name, *indices = name.split("__")
    value = getattr(component, member_name)
    for index in indices:
        value = value[int(index)]
    return value


class BoardTop(Elaboratable):
    """A catalog core on a board, its streams over the board's UART (docs/board.md).

    The core runs at the board clock (12 MHz on the iCEBreaker, 25 MHz on the ULX3S): no
    PLL, so the UART's divisor and the ID's ``clock`` are the platform's default clock.
    Whether the core reaches that clock is known only after place and route;
    :func:`dnnhw.boards.build.build` checks nextpnr's Fmax and refuses a core that does
    not.

    Parameters
    ----------
    core : str or :class:`~dnnhw.catalog.Core`
        The catalog core (or its name).
    params : dict or None
        Its parameters (strings or values; the rest take their defaults), checked by the
        catalog.
    board : str
        A key of :data:`dnnhw.boards.board.BOARDS`: ``icebreaker`` or ``ulx3s``.
    baud : int
        The UART's line rate, bits a second; the divisor (board clock / baud, rounded)
        must be 2 .. 2 ** 16 and give the baud within :data:`MAX_BAUD_ERROR`.
    max_payload : int
        The bridge's frame buffer, 16 .. 4096 bytes.
    git : str or None
        The ID's ``git=``; ``None``: ``git rev-parse --short HEAD`` of this checkout, or
        ``unknown``.

    Members
    -------
    core, params, board, baud, max_payload, git
        As given, resolved (``core`` the catalog row, ``params`` every parameter,
        ``board`` the :class:`~dnnhw.boards.board.Board` row).
    module : str
        The core's generated module name (:meth:`~dnnhw.catalog.Core.module_name`).
    component : :class:`amaranth.lib.wiring.Component`
        The core's component.
    bridge : :class:`~dnnhw.rtl.uart_bridge.UARTBridge`
        The bridge: ``sinks`` and ``sources`` the widths of the core's streams.
    sidecar : dict
        The core's sidecar (:func:`dnnhw.generate.describe` of ``component``).
    sinks, sources : tuple of str
        The core's input and output streams in sidecar order: ``WRITE``'s and ``READ``'s
        stream numbers.
    clock_hz : int
        The board clock.
    divisor : int
        Board clock cycles a UART bit.
    ident : str
        The ``ID`` payload: ``dnnhw=1;core=;module=;git=;clock=;baud=;max_payload=``.
    core_error_signals : tuple of str
        The core's outputs ORed into the bridge's ``core_error``.
    sink_queue_depth : int
        Beats of the queue in front of each input stream: one host turn
        (:func:`~dnnhw.spec.board.turn_beats`) when the core has several, so that inputs
        taken in step never deadlock the one frame in flight (docs/board.md section 3);
        0 (no queue) with one.

    The core's plain inputs are held at their signature's reset values, which a core sets
    to what works without a driver (``clear_overflow`` at 0, a Stripes tile's ``msb`` at
    its full precision); its other plain outputs are left unconnected.
    """

    def __init__(self, core, params=None, *, board, baud=115200, max_payload=256, git=None):
        self.board = get_board(board)
        self.core = get_core(core) if isinstance(core, str) else core
        self.params = self.core.resolve(params)
        if not isinstance(baud, int) or isinstance(baud, bool) or baud <= 0:
            raise ParameterError(f"baud must be a positive integer, got {baud!r}")
        if not isinstance(max_payload, int) or max_payload not in MAX_PAYLOAD_RANGE:
            raise ParameterError(f"max_payload must be an integer in "
                                 f"{MAX_PAYLOAD_RANGE[0]}..{MAX_PAYLOAD_RANGE[-1]}, "
                                 f"got {max_payload!r}")
        if git is None:
            git = _git_hash()
        if not isinstance(git, str) or not git or any(c in git for c in ";="):
            raise ParameterError(f"git must be a non-empty string without ';' or '=', "
                                 f"got {git!r}")
        self.baud, self.max_payload, self.git = baud, max_payload, git

        self.clock_hz = round(self.board.platform_class()().default_clk_frequency)
        self.divisor = round(self.clock_hz / baud)
        if not 2 <= self.divisor <= 1 << 16:
            raise ParameterError(
                f"baud {baud} needs a divisor of {self.clock_hz} / {baud} = "
                f"{self.clock_hz / baud:.2f} cycles a bit on the {self.board.name}'s "
                f"{self.clock_hz} Hz clock; the UART takes 2 .. 65536")
        actual = self.clock_hz / self.divisor
        if abs(actual - baud) / baud > MAX_BAUD_ERROR:
            raise ParameterError(
                f"baud {baud} is {100 * abs(actual - baud) / baud:.1f} % off at the "
                f"{self.board.name}'s {self.clock_hz} Hz clock (divisor {self.divisor} "
                f"gives {actual:.0f}); at most {100 * MAX_BAUD_ERROR:g} % is allowed")

        self.module = self.core.module_name(self.params)
        self.component = self.core.build(self.params)
        self.sidecar = describe(self.component, core=self.core.name, module=self.module,
                                params=self.params)
        streams = self.sidecar["streams"]
        self.sinks = tuple(name for name, s in streams.items() if s["role"] == "sink")
        self.sources = tuple(name for name, s in streams.items() if s["role"] == "source")
        if not self.sinks or not self.sources:
            raise ParameterError(f"core '{self.core.name}' needs input and output streams "
                                 f"for the bridge; it has sinks {list(self.sinks)} and "
                                 f"sources {list(self.sources)}")
        signals = self.sidecar["signals"]
        self.core_error_signals = tuple(
            name for name, s in signals.items()
            if s["direction"] == "out" and s["width"] == 1 and name in ERROR_SIGNALS)
        self.ident = ";".join(f"{key}={value}" for key, value in (
            ("dnnhw", PROTOCOL_VERSION), ("core", self.core.name), ("module", self.module),
            ("git", git), ("clock", self.clock_hz), ("baud", baud),
            ("max_payload", max_payload)))
        self.sink_queue_depth = 0
        if len(self.sinks) > 1:
            self.sink_queue_depth = turn_beats(
                max_payload, [streams[name]["width"] for name in self.sinks])
        # Built here so that a core the bridge cannot carry (a beat over 512 bits, an ID
        # longer than max_payload) is refused before any elaboration.
        try:
            self.bridge = UARTBridge(
                divisor=self.divisor, ident=self.ident, max_payload=max_payload,
                sinks=tuple(streams[name]["width"] for name in self.sinks),
                sources=tuple(streams[name]["width"] for name in self.sources))
        except (TypeError, ValueError) as error:
            raise ParameterError(f"the UART bridge cannot carry core '{self.core.name}' "
                                 f"at {self.params}: {error}") from None

    def platform(self):
        """A fresh instance of the board's amaranth-boards platform."""
        return self.board.platform_class()()

    def elaborate(self, platform):
        if not isinstance(platform, self.board.platform_class()):
            raise TypeError(f"BoardTop for the {self.board.name} elaborates for "
                            f"{self.board.platform}, not for {platform!r}")
        m = Module()
        bridge = self.add_core(m)

        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx = uart_rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = uart_tx = io.Buffer("o", uart.tx)
        m.d.comb += [bridge.rx.eq(uart_rx.i), uart_tx.o.eq(bridge.tx)]

        indicators = self.indicators()
        for index, shown in enumerate(self.board.leds):
            # The buffer applies the pin's inversion (the iCEBreaker's LEDs are active low).
            led = io.Buffer("o", platform.request("led", index, dir="-"))
            m.submodules[f"led_{index}"] = led
            m.d.comb += led.o.eq(indicators[shown])
        return m

    def indicators(self):
        """What the board's LEDs can show (``Board.leds`` names them), as values of the
        bridge's outputs."""
        bridge = self.bridge
        return {"activity": bridge.activity, "busy": bridge.busy,
                "frame_error": bridge.frame_error, "core_error": bridge.core_error,
                "error": bridge.frame_error | bridge.core_error}

    def add_core(self, m):
        """Add the core and the bridge to module ``m``, their streams and error wired up,
        and return the bridge, whose ``rx`` and ``tx`` the caller connects: the board's
        pins in :meth:`elaborate`, a simulation top's ports in :mod:`dnnhw.boards.sim`."""
        m.submodules.core = core = self.component
        m.submodules.bridge = bridge = self.bridge

        for index, (bridge_side, name) in enumerate(zip(bridge.to_core, self.sinks)):
            core_side = _stream(core, name)
            if self.sink_queue_depth:
                queue = fifo.SyncFIFOBuffered(width=len(bridge_side.payload),
                                              depth=self.sink_queue_depth)
                m.submodules[f"sink_queue_{index}"] = queue
                m.d.comb += [queue.w_data.eq(bridge_side.payload),
                             queue.w_en.eq(bridge_side.valid),
                             bridge_side.ready.eq(queue.w_rdy),
                             core_side.valid.eq(queue.r_rdy),
                             core_side.payload.eq(queue.r_data),
                             queue.r_en.eq(core_side.ready)]
            else:
                m.d.comb += [core_side.valid.eq(bridge_side.valid),
                             core_side.payload.eq(bridge_side.payload),
                             bridge_side.ready.eq(core_side.ready)]
        for bridge_side, name in zip(bridge.from_core, self.sources):
            core_side = _stream(core, name)
            if isinstance(Value.cast(core_side.ready), Const):
                # An always-ready output would drop beats whenever the UART is behind.
                raise TypeError(f"output stream '{name}' of core '{self.core.name}' is "
                                f"always ready; the bridge needs back-pressure")
            m.d.comb += [bridge_side.valid.eq(core_side.valid),
                         bridge_side.payload.eq(core_side.payload),
                         core_side.ready.eq(bridge_side.ready)]
        for name, signal in self.sidecar["signals"].items():
            if signal["direction"] == "in":
                port = getattr(core, name)
                m.d.comb += port.eq(port.init)
        m.d.comb += bridge.core_error.eq(
            _any(getattr(core, name) for name in self.core_error_signals))
        return bridge


def _any(signals):
    """The OR of 1-bit ``signals`` (0 for none)."""
    result = Const(0, 1)
    for signal in signals:
        result = result | signal
    return result
