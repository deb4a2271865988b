"""A loop nest that walks addresses: every transfer and every PE block of Morph's array.

Each of Morph's data movements is a nest of counted loops whose body touches one word at
addresses that are affine in the loop indices: a tile of inputs from DRAM into the L2 (the
channels, frames and rows of a clipped halo box), a sub-tile from the L2 into the L1, the
partial sums between the levels, the taps of a PE block. :class:`LoopWalker` is that nest
in hardware, with every count, stride and base given at run time, so one walker serves them
all. Coordinates (the input row a tap reads, to test it against the padding) are streams
like addresses: a stream is any value affine in the indices.

Some layouts step by the quotient of an index: the L1 partial sums of output ``(k, ...)``
live in PE ``k mod Kp`` at an entry that steps with ``k div Kp``. So each level also counts
its index modulo a run-time ``modulus`` (its remainder is an output), and a stream can be
marked to step at that level only when the remainder wraps.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ._checks import check_int


__all__ = ["LoopWalker"]


class LoopWalker(wiring.Component):
    """A nest of ``levels`` counted loops emitting ``streams`` affine values per iteration.

    Level 0 is outermost. Iteration ``(i_0, ..., i_{L-1})`` emits, for each stream ``s``,

        ``value[s] = base[s] + sum over levels l of stride[l][s] * step_l(s)``

    modulo ``2 ** value_width``, where ``step_l(s)`` is ``i_l``, or ``i_l // modulus[l]``
    when bit ``s`` of ``quotient[l]`` is set. A stride is taken modulo ``2 ** value_width``,
    so a negative stride is its two's complement.

    A ``start`` pulse (while not running) begins the walk at iteration zero; the
    configuration (``count``, ``modulus``, ``quotient``, ``stride``, ``base``) must hold
    from ``start`` to the end. Iterations come out on ``out`` in order, one per transfer,
    the innermost index fastest; ``running`` falls with the transfer of the last one. A
    level whose count is 1 is simply absent.

    Parameters
    ----------
    levels : int
        Loops of the nest, 1 to 8.
    streams : int
        Values per iteration, 1 to 16.
    count_width : int
        Bits of a count (and of a modulus), 1 to 16: counts up to ``2 ** count_width - 1``.
    value_width : int
        Bits of each value, 1 to 32.

    Members
    -------
    count : In(ArrayLayout(count_width, levels))
        Iterations of each level, at least 1.
    modulus : In(ArrayLayout(count_width, levels))
        Each level's modulus, at least 1 (1: the quotient is the index).
    quotient : In(ArrayLayout(streams, levels))
        Bit ``s`` of level ``l``: stream ``s`` steps with the level's quotient.
    stride : In(ArrayLayout(ArrayLayout(value_width, streams), levels))
    base : In(ArrayLayout(value_width, streams))
    start : In(1)
    running : Out(1)
    out : Out(stream.Signature(...))
        Payload ``value`` (per stream), ``index`` and ``remainder`` (per level), ``first``
        and ``last`` (bit ``l``: level ``l`` is at its first / last iteration).
    """

    def __init__(self, *, levels, streams, count_width=12, value_width=24):
        self._levels = check_int("levels", levels, 1, 8)
        self._streams = check_int("streams", streams, 1, 16)
        self._count_width = check_int("count_width", count_width, 1, 16)
        self._value_width = check_int("value_width", value_width, 1, 32)
        values = data.ArrayLayout(unsigned(value_width), streams)
        counts = data.ArrayLayout(unsigned(count_width), levels)
        super().__init__({
            "count": In(counts),
            "modulus": In(counts),
            "quotient": In(data.ArrayLayout(unsigned(streams), levels)),
            "stride": In(data.ArrayLayout(values, levels)),
            "base": In(values),
            "start": In(1),
            "running": Out(1),
            "out": Out(stream.Signature(data.StructLayout({
                "value": values,
                "index": counts,
                "remainder": counts,
                "first": unsigned(levels),
                "last": unsigned(levels),
            }))),
        })

    @property
    def levels(self):
        return self._levels

    @property
    def streams(self):
        return self._streams

    @property
    def count_width(self):
        return self._count_width

    @property
    def value_width(self):
        return self._value_width

    def elaborate(self, platform):
        m = Module()
        n_levels, n_streams = self._levels, self._streams
        index = [Signal(self._count_width, name=f"index_{l}") for l in range(n_levels)]
        remainder = [Signal(self._count_width, name=f"remainder_{l}")
                     for l in range(n_levels)]
        # The value at each level: what the stream holds with every inner index at zero.
        # Stepping level l adds its stride to its own value and copies it inwards.
        level_value = [[Signal(self._value_width, name=f"value_{l}_{s}")
                        for s in range(n_streams)] for l in range(n_levels)]

        at_last = []
        wraps = []
        for l in range(n_levels):
            flag = Signal(name=f"at_last_{l}")
            m.d.comb += flag.eq(index[l] + 1 >= self.count[l])
            at_last.append(flag)
            wrap = Signal(name=f"remainder_wraps_{l}")
            m.d.comb += wrap.eq(remainder[l] + 1 >= self.modulus[l])
            wraps.append(wrap)

        payload = self.out.payload
        m.d.comb += [
            self.out.valid.eq(self.running),
            payload.first.eq(Cat(*(i == 0 for i in index))),
            payload.last.eq(Cat(*at_last)),
        ]
        for l in range(n_levels):
            m.d.comb += [payload.index[l].eq(index[l]),
                         payload.remainder[l].eq(remainder[l])]
        for s in range(n_streams):
            m.d.comb += payload.value[s].eq(level_value[n_levels - 1][s])

        # Level l steps when every level inside it is at its last iteration; the deepest
        # such level that is not itself at its last one moves, the ones inside it wrap.
        inner_last = [None] * n_levels
        done = 1
        for l in reversed(range(n_levels)):
            inner_last[l] = done
            done = done & at_last[l]
        finished = done

        with m.If(self.start & ~self.running):
            m.d.sync += self.running.eq(1)
            for l in range(n_levels):
                m.d.sync += [index[l].eq(0), remainder[l].eq(0)]
                for s in range(n_streams):
                    m.d.sync += level_value[l][s].eq(self.base[s])
        with m.Elif(self.out.valid & self.out.ready):
            with m.If(finished):
                m.d.sync += self.running.eq(0)
            with m.Else():
                # Exactly one level moves: the one whose inner levels are all last and
                # which is not last itself.
                for l in range(n_levels):
                    moves = Signal(name=f"moves_{l}")
                    m.d.comb += moves.eq(inner_last[l] & ~at_last[l])
                    with m.If(moves):
                        m.d.sync += [
                            index[l].eq(index[l] + 1),
                            remainder[l].eq(Mux(wraps[l], 0, remainder[l] + 1)),
                        ]
                        for s in range(n_streams):
                            steps = ~self.quotient[l][s] | wraps[l]
                            stepped = Signal(self._value_width, name=f"stepped_{l}_{s}")
                            m.d.comb += stepped.eq(
                                level_value[l][s] + Mux(steps, self.stride[l][s], 0))
                            for inner in range(l, n_levels):
                                m.d.sync += level_value[inner][s].eq(stepped)
                        for inner in range(l + 1, n_levels):
                            m.d.sync += [index[inner].eq(0), remainder[inner].eq(0)]
        return m

