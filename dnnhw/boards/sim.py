"""A board top for simulation: :class:`~dnnhw.boards.top.BoardTop`'s core and bridge with
the UART and the LEDs as plain ports instead of a platform's pins.

The wiring of core and bridge is :meth:`BoardTop.add_core`, the very code a board build
elaborates; only the pins differ. The board's clock is kept (the ID's ``clock=`` is the
board's), so a tiny divisor means a high ``baud`` (12 MHz / 1.5 Mbaud = 8 clocks a bit on
the iCEBreaker): a byte is 80 clock cycles, which keeps a simulated frame short.
"""

import hashlib
from pathlib import Path

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from dnnhw.rtl._parts import owned

from .board import get_board
from .top import BoardTop


__all__ = ["SimBoardTop", "sim_board_top", "write_sim_top"]


class SimBoardTop(wiring.Component):
    """``top`` (a :class:`BoardTop`) with ports ``rx: In(1)`` (idle high), ``tx: Out(1)``
    and ``leds: Out(n)`` (bit ``i`` is the board's LED ``i``, active high) in place of the
    board's pins."""

    def __init__(self, top):
        if not isinstance(top, BoardTop):
            raise TypeError(f"top must be a BoardTop, got {type(top).__name__}")
        self.top = owned(top)            # elaborated through add_core, not on its own
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1),
                          "leds": Out(max(1, len(top.board.leds)))})

    def elaborate(self, platform):
        m = Module()
        bridge = self.top.add_core(m)
        m.d.comb += [bridge.rx.eq(self.rx), self.tx.eq(bridge.tx)]
        indicators = self.top.indicators()
        for index, shown in enumerate(self.top.board.leds):
            m.d.comb += self.leds[index].eq(indicators[shown])
        return m


def sim_board_top(core, params=None, *, board="icebreaker", divisor=8, max_payload=256,
                  git="sim"):
    """A :class:`SimBoardTop` for ``core`` at ``params`` whose UART runs ``divisor`` clock
    cycles a bit at the ``board``'s clock (the baud is ``clock / divisor``)."""
    row = get_board(board)
    clock_hz = round(row.platform_class()().default_clk_frequency)
    if clock_hz % divisor:
        raise ValueError(f"divisor {divisor} does not divide the {row.name}'s "
                         f"{clock_hz} Hz clock")
    baud = clock_hz // divisor
    return SimBoardTop(BoardTop(core, params, board=board, baud=baud,
                                max_payload=max_payload, git=git))


def write_sim_top(core, params=None, *, build_dir, divisor=8, board="icebreaker"):
    """Write the Verilog of :func:`sim_board_top` into ``build_dir``; return ``(path of
    the Verilog, sidecar)``. The module is ``dnnhw_board_sim_<digest of the Verilog>``,
    so each design gets its own simulator build. The sidecar is the top's (``module``,
    ``clock``, ``reset``, the UART's ``divisor``, ``baud`` and ``timeout_bits``,
    ``max_payload``, ``ident``, ``leds``) with the core's own inside (``core_sidecar``)
    and its catalog row's ``board_job`` (``module:function`` or None): what
    :mod:`dnnhw.sim.board` reads."""
    from amaranth.back import verilog

    sim_top = sim_board_top(core, params, board=board, divisor=divisor)
    top = sim_top.top
    text = verilog.convert(sim_top, name="dnnhw_board_sim", emit_src=False)
    module = f"dnnhw_board_sim_{hashlib.sha256(text.encode()).hexdigest()[:10]}"
    text = text.replace("dnnhw_board_sim", module)
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    v_path = build_dir / f"{module}.v"
    if not v_path.is_file() or v_path.read_text() != text:
        v_path.write_text(text)
    sidecar = {"module": module, "clock": "clk", "reset": "rst", "divisor": top.divisor,
               "baud": top.baud, "timeout_bits": top.bridge.timeout_bits,
               "max_payload": top.max_payload, "ident": top.ident,
               "leds": list(top.board.leds), "core_sidecar": top.sidecar,
               "board_job": top.core.board_job}
    return v_path, sidecar
