"""A skid buffer: a two-entry stream register whose ``i.ready`` is itself a register.

A plain pipeline register on a stream either passes ``o.ready`` back to ``i.ready`` in
the same cycle (a combinational path through every stage) or halves the throughput. The
skid buffer keeps one beat a cycle with neither: ``i.ready`` only says whether the second
entry (the *skid*) is free, so the sender learns of a stall a cycle late, and the skid
entry holds the one beat that arrives in that cycle.

``o`` always shows the *main* entry. A beat that comes in goes to main when main is
empty or leaving in the same cycle, and to skid otherwise; when main leaves, skid (if
full) moves into it.
"""

from amaranth.hdl import Module, Shape, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


__all__ = ["SkidBuffer"]


class SkidBuffer(wiring.Component):
    """Two-entry stream buffer that cuts the ready path: ``i.ready`` depends on no input.

    With ``o.ready`` always high it passes one beat per cycle, each :attr:`latency` cycle
    after it came in; the stream rules hold on ``o`` (``valid`` never depends on
    ``ready``; ``valid`` and ``payload`` hold until the transfer) and beats leave in
    order, none dropped or repeated.

    Parameters
    ----------
    shape : shape-castable
        The payload: an integer width, ``signed(n)``, a ``data`` layout...

    Members
    -------
    i : In(stream.Signature(shape))
        Beats in. ``ready`` is low exactly while both entries are full.
    o : Out(stream.Signature(shape))
        The same beats out, in order.
    """

    def __init__(self, *, shape):
        try:
            Shape.cast(shape)
        except TypeError:
            raise TypeError(f"shape must be a shape-castable object (a width, signed(n), a "
                            f"data layout...), got {shape!r}") from None
        self._shape = shape
        super().__init__({
            "i": In(stream.Signature(shape)),
            "o": Out(stream.Signature(shape)),
        })

    @property
    def shape(self):
        return self._shape

    @property
    def capacity(self):
        """Beats it can hold: the main entry and the skid entry."""
        return 2

    @property
    def latency(self):
        """Cycles from a beat's transfer on ``i`` to its ``valid`` on ``o``."""
        return 1

    def elaborate(self, platform):
        m = Module()
        main = Signal(self._shape)
        main_valid = Signal()
        skid = Signal(self._shape)
        skid_valid = Signal()
        push = self.i.valid & self.i.ready
        pop = self.o.valid & self.o.ready
        m.d.comb += [
            self.i.ready.eq(~skid_valid),
            self.o.valid.eq(main_valid),
            self.o.payload.eq(main),
        ]
        with m.If(pop):
            with m.If(skid_valid):
                m.d.sync += [main.eq(skid), skid_valid.eq(0)]
            with m.Elif(push):
                m.d.sync += main.eq(self.i.payload)
            with m.Else():
                m.d.sync += main_valid.eq(0)
        with m.Elif(push):
            with m.If(main_valid):
                m.d.sync += [skid.eq(self.i.payload), skid_valid.eq(1)]
            with m.Else():
                m.d.sync += [main.eq(self.i.payload), main_valid.eq(1)]
        return m
