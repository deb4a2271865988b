"""The tile loops of Morph's sequencer: five nested counters in a run-time order.

Morph's mapping gives each level a loop order over the tiles of K, C, F, H, W (a
permutation, outermost first). :class:`TileLoops` steps through every combination of tile
indices in that order and says, at each step, which dimensions' indices changed since the
previous one. An operand's tile must be refilled exactly when a dimension that indexes it
changed (``docs/morph.md``, *Residency*), so this is the residency rule in hardware.
"""

from amaranth.hdl import Cat, Module, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ._checks import check_int


__all__ = ["TileLoops", "DIMS"]

#: The dimensions, in the order ``trips``, ``index`` and ``changed`` list them.
DIMS = "KCFHW"


class TileLoops(wiring.Component):
    """Five nested tile counters whose nesting order is an input.

    ``order[p]`` is the dimension (an index into :data:`DIMS`) of loop ``p``, loop 0
    outermost; it must be a permutation and, like ``trips``, hold while running. A
    ``start`` pulse enters the first step (every index 0, every dimension marked
    changed); each ``advance`` pulse moves to the next step, the innermost loop first,
    carrying outwards; ``advance`` on the last step ends the run. A dimension of one trip
    never changes.

    Parameters
    ----------
    index_width : int
        Bits of a tile index (trip counts up to ``2 ** index_width``), 1 to 16.
    dimensions : int
        Loops of the nest, 1 to 8: 5 for :data:`DIMS`, 6 with the images (the L2 level of
        the array puts them outermost, as dimension 5).

    Members
    -------
    order : In(ArrayLayout(3, dimensions))
    trips : In(ArrayLayout(index_width + 1, dimensions))
        Tiles per dimension, each at least 1.
    start, advance : In(1)
    running : Out(1)
        High from ``start`` until ``advance`` on the last step.
    index : Out(ArrayLayout(index_width, dimensions))
        The step's tile index per dimension.
    changed : Out(dimensions)
        Bit ``d``: dimension ``d``'s index differs from the previous step's (all ones at
        the first step).
    last : Out(1)
        This is the last step.
    """

    def __init__(self, *, index_width=8, dimensions=len(DIMS)):
        self._index_width = check_int("index_width", index_width, 1, 16)
        self._dimensions = n = check_int("dimensions", dimensions, 1, 8)
        super().__init__({
            "order": In(data.ArrayLayout(unsigned(3), n)),
            "trips": In(data.ArrayLayout(unsigned(index_width + 1), n)),
            "start": In(1),
            "advance": In(1),
            "running": Out(1),
            "index": Out(data.ArrayLayout(unsigned(index_width), n)),
            "changed": Out(n),
            "last": Out(1),
        })

    @property
    def index_width(self):
        return self._index_width

    @property
    def dimensions(self):
        return self._dimensions

    def elaborate(self, platform):
        m = Module()
        n = self._dimensions
        # At each loop position: its dimension's index and whether it is at its end.
        at_end = []
        for d in range(n):
            flag = Signal(name=f"at_end_{d}")
            m.d.comb += flag.eq(self.index[d] + 1 >= self.trips[d])
            at_end.append(flag)
        end_at_position = []
        for p in range(n):
            flag = Signal(name=f"end_at_{p}")
            m.d.comb += flag.eq(Cat(at_end).bit_select(self.order[p], 1))
            end_at_position.append(flag)
        # Loop p steps when every loop inside it is at its end; it wraps when it is too.
        steps_position = []
        inner_done = 1
        for p in reversed(range(n)):
            steps = Signal(name=f"steps_{p}")
            m.d.comb += steps.eq(inner_done)
            steps_position.insert(0, steps)
            inner_done = inner_done & end_at_position[p]
        m.d.comb += self.last.eq(self.running & inner_done)

        with m.If(self.start):
            m.d.sync += self.running.eq(1)
            for d in range(n):
                m.d.sync += self.index[d].eq(0)
            m.d.sync += self.changed.eq((1 << n) - 1)
        with m.Elif(self.advance & self.running):
            with m.If(self.last):
                m.d.sync += [self.running.eq(0), self.changed.eq(0)]
            with m.Else():
                moved = []
                for d in range(n):
                    # Dimension d steps when the loop holding it does.
                    steps_d = Signal(name=f"steps_dim_{d}")
                    m.d.comb += steps_d.eq(
                        Cat(*(steps_position[p] & (self.order[p] == d)
                              for p in range(n))).any())
                    grows = steps_d & ~at_end[d]
                    wraps = steps_d & at_end[d] & (self.index[d] != 0)
                    with m.If(grows):
                        m.d.sync += self.index[d].eq(self.index[d] + 1)
                    with m.Elif(steps_d):
                        m.d.sync += self.index[d].eq(0)
                    moved.append(grows | wraps)
                m.d.sync += self.changed.eq(Cat(*moved))
        return m
