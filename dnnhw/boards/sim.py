"""A board top for simulation: :class:`~dnnhw.boards.top.BoardTop`'s core and bridge with
the UART and the LEDs as plain ports instead of a platform's pins.

The wiring of core and bridge is :meth:`BoardTop.add_core`, the very code a board build
elaborates; only the pins differ. The board's clock is kept (the ID's ``clock=`` is the
board's), so a tiny divisor means a high ``baud`` (12 MHz / 1.5 Mbaud = 8 clocks a bit on
the iCEBreaker): a byte is 80 clock cycles, which keeps a simulated frame short.
"""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from dnnhw.rtl._parts import owned

from .board import get_board
from .top import BoardTop


__all__ = ["SimBoardTop", "sim_board_top"]


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
