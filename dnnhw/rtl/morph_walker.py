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

The area is in the streams: a register per level a stream can step at, each as wide as its
stream. A user that knows which levels a stream's stride can be nonzero at (the frame
coordinate of a PE block steps only with the frame and the frame tap), how wide a stream
needs to be (an address into a small memory), how large a count or a modulus can be, says so
(``active``, ``value_widths``, ``count_widths``, ``modulus_widths``) and gets a register and
an adder per (active level, stream) pair of the stream's width, and a mux of two values
before each: the area is proportional to the sum over streams of active levels times width.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ._checks import check_int


__all__ = ["LoopWalker", "fits_signed"]


def fits_signed(value, bits):
    """``value`` (read as two's complement in its own width) lies in ``-2 ** (bits - 1)
    .. 2 ** (bits - 1) - 1``: its bits from ``bits - 1`` up are all equal. For users of
    narrow streams: a stride or a base that fits can be walked in few bits."""
    high = value[bits - 1:]
    if len(high) <= 1:
        return Const(1)
    return (high == 0) | (high == (1 << len(high)) - 1)


def _level_sets(name, value, streams, levels):
    """``value`` (per stream, an iterable of levels, or ``None``: every level) as a tuple
    of sorted tuples."""
    if value is None:
        return (tuple(range(levels)),) * streams
    value = tuple(value)
    if len(value) != streams:
        raise ValueError(f"{name} must have {streams} entries, got {len(value)}")
    sets = []
    for s, chosen in enumerate(value):
        chosen = sorted(set(chosen))
        for l in chosen:
            check_int(f"{name}[{s}]", l, 0, levels - 1)
        sets.append(tuple(chosen))
    return tuple(sets)


def _widths(name, value, n, default, lo, hi):
    """``value`` (a sequence of ``n`` ints in ``lo..hi``, or ``None``: ``default`` each)
    as a tuple."""
    if value is None:
        return (default,) * n
    value = tuple(value)
    if len(value) != n:
        raise ValueError(f"{name} must have {n} entries, got {len(value)}")
    for k, v in enumerate(value):
        check_int(f"{name}[{k}]", v, lo, hi)
    return value


class LoopWalker(wiring.Component):
    """A nest of ``levels`` counted loops emitting ``streams`` affine values per iteration.

    Level 0 is outermost. Iteration ``(i_0, ..., i_{L-1})`` emits, for each stream ``s``,

        ``value[s] = base[s] + sum over active levels l of s of stride[l][s] * step_l(s)``

    modulo ``2 ** value_widths[s]``, where ``step_l(s)`` is ``i_l``, or ``i_l //
    modulus[l]`` when bit ``s`` of ``quotient[l]`` is set (at a level of
    ``by_quotient[s]``). A stride is taken modulo
    ``2 ** value_widths[s]``, so a negative stride is its two's complement; a stride at a
    level that is not active for its stream is ignored (read as zero). The value comes out
    zero-extended to ``value_width`` bits: a user that wants it signed reads its low
    ``value_widths[s]`` bits as two's complement.

    A ``start`` pulse (while not running) begins the walk at iteration zero; the
    configuration (``count``, ``modulus``, ``quotient``, ``stride``, ``base``) must hold
    from ``start`` to the end. Iterations come out on ``out`` in order, one per transfer,
    the innermost index fastest; ``running`` falls with the transfer of the last one. A
    level whose count is 1 is simply absent.

    The walk keeps one register per active level of each stream: the stream's value with
    every inner index at zero. The value at any level is that of its nearest active level
    at or above it (the base if there is none). When level ``l`` moves, a stream active at
    ``l`` adds its stride to the level's register; a stream not active at ``l`` takes the
    value of its nearest active level above ``l``; either way the stream's active levels
    inside ``l`` take the new value.

    Parameters
    ----------
    levels : int
        Loops of the nest, 1 to 8.
    streams : int
        Values per iteration, 1 to 16.
    count_width : int
        Bits of the ``count`` and ``modulus`` ports (and of ``index`` and ``remainder``),
        1 to 16.
    value_width : int
        Bits of the ``stride``, ``base`` and ``value`` ports, 1 to 32.
    active : sequence of sequences of int, optional
        Per stream, the levels its stride can be nonzero at (default: every level).
    value_widths : sequence of int, optional
        Per stream, the bits its values are computed in, 1 to ``value_width`` (default:
        ``value_width``).
    count_widths : sequence of int, optional
        Per level, the bits of its count, 1 to ``count_width`` (default ``count_width``):
        the level reads the low bits of ``count[l]``, at most ``2 ** count_widths[l] - 1``.
    modulus_widths : sequence of int, optional
        Per level, the bits of its modulus, 0 to ``count_width`` (default ``count_width``):
        the level reads the low bits of ``modulus[l]``, at most ``2 ** modulus_widths[l] -
        1``; 0: the level has no modulus (it is 1, whatever the port says: the remainder
        is 0 and the quotient is the index).
    by_quotient : sequence of sequences of int, optional
        Per stream, the levels at which it may step by quotient (default: every level);
        elsewhere its bit of ``quotient[l]`` is ignored (read as 0).

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

    def __init__(self, *, levels, streams, count_width=12, value_width=24, active=None,
                 value_widths=None, count_widths=None, modulus_widths=None,
                 by_quotient=None):
        self._levels = check_int("levels", levels, 1, 8)
        self._streams = check_int("streams", streams, 1, 16)
        self._count_width = check_int("count_width", count_width, 1, 16)
        self._value_width = check_int("value_width", value_width, 1, 32)
        self._active = _level_sets("active", active, streams, levels)
        self._by_quotient = _level_sets("by_quotient", by_quotient, streams, levels)
        self._value_widths = _widths("value_widths", value_widths, streams, value_width,
                                     1, value_width)
        self._count_widths = _widths("count_widths", count_widths, levels, count_width,
                                     1, count_width)
        self._modulus_widths = _widths("modulus_widths", modulus_widths, levels,
                                       count_width, 0, count_width)
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

    @property
    def active(self):
        """Per stream, the sorted tuple of its active levels."""
        return self._active

    @property
    def by_quotient(self):
        """Per stream, the sorted tuple of the levels it may step by quotient at."""
        return self._by_quotient

    @property
    def value_widths(self):
        return self._value_widths

    @property
    def count_widths(self):
        return self._count_widths

    @property
    def modulus_widths(self):
        return self._modulus_widths

    def elaborate(self, platform):
        m = Module()
        n_levels, n_streams = self._levels, self._streams
        index = [Signal(self._count_widths[l], name=f"index_{l}") for l in range(n_levels)]
        remainder = [Signal(self._modulus_widths[l], name=f"remainder_{l}")
                     if self._modulus_widths[l] else None for l in range(n_levels)]

        at_last = []
        wraps = []
        for l in range(n_levels):
            flag = Signal(name=f"at_last_{l}")
            count = self.count[l][:self._count_widths[l]]
            m.d.comb += flag.eq(index[l] + 1 >= count)
            at_last.append(flag)
            if remainder[l] is None:
                wraps.append(Const(1))
            else:
                wrap = Signal(name=f"remainder_wraps_{l}")
                modulus = self.modulus[l][:self._modulus_widths[l]]
                m.d.comb += wrap.eq(remainder[l] + 1 >= modulus)
                wraps.append(wrap)

        # Level l moves when every level inside it is at its last iteration and it is not:
        # the deepest level not at its last one. `last_from[l]`: levels l.. are all last.
        last_from = [None] * (n_levels + 1)
        last_from[n_levels] = Const(1)
        for l in reversed(range(n_levels)):
            flag = Signal(name=f"last_from_{l}")
            m.d.comb += flag.eq(last_from[l + 1] & at_last[l])
            last_from[l] = flag
        finished = last_from[0]

        launch = Signal()
        fire = Signal()     # an iteration is taken and the walk goes on
        m.d.comb += [launch.eq(self.start & ~self.running),
                     fire.eq(self.out.valid & self.out.ready & ~finished)]
        moves = []
        for l in range(n_levels):
            flag = Signal(name=f"moves_{l}")
            m.d.comb += flag.eq(fire & last_from[l + 1] & ~at_last[l])
            moves.append(flag)
        # `above[l]`: the moving level is above l (or the walk starts): l restarts.
        above = []
        for l in range(n_levels):
            flag = Signal(name=f"above_{l}")
            m.d.comb += flag.eq(launch | (fire & last_from[l]))
            above.append(flag)

        payload = self.out.payload
        m.d.comb += [
            self.out.valid.eq(self.running),
            payload.first.eq(Cat(*(i == 0 for i in index))),
            payload.last.eq(Cat(*at_last)),
        ]
        for l in range(n_levels):
            m.d.comb += payload.index[l].eq(index[l])
            if remainder[l] is not None:
                m.d.comb += payload.remainder[l].eq(remainder[l])

        # The counters.
        with m.If(launch):
            m.d.sync += self.running.eq(1)
        with m.Elif(self.out.valid & self.out.ready & finished):
            m.d.sync += self.running.eq(0)
        for l in range(n_levels):
            with m.If(above[l]):
                m.d.sync += index[l].eq(0)
                if remainder[l] is not None:
                    m.d.sync += remainder[l].eq(0)
            with m.Elif(moves[l]):
                m.d.sync += index[l].eq(index[l] + 1)
                if remainder[l] is not None:
                    m.d.sync += remainder[l].eq(Mux(wraps[l], 0, remainder[l] + 1))

        # The streams: a register per active level. Its next value, when a level at or
        # above it moves, is its own stepped value if it is the one moving, else the next
        # value of the active level above it (which is that level's stepped value, or its
        # current value if it does not move, or further up the chain, the base).
        for s in range(n_streams):
            width = self._value_widths[s]
            outer = self.base[s][:width]    # the next value of the level above
            current = self.base[s][:width]  # the value of the innermost active level
            active = self._active[s]
            for k, l in enumerate(active):
                reg = Signal(width, name=f"value_{l}_{s}")
                # The stepped value is used when l moves (for itself, and for the stream's
                # active levels inside l). It must hold the register's value otherwise only
                # if an active level inside l takes it while a level between them moves,
                # or if the stream may step by quotient here (on wraps only).
                gap = k + 1 < len(active) and active[k + 1] != l + 1
                divided = remainder[l] is not None and l in self._by_quotient[s]
                stride = self.stride[l][s][:width]
                if divided:
                    stride = Mux(moves[l] & (~self.quotient[l][s] | wraps[l]), stride, 0)
                elif gap:
                    stride = Mux(moves[l], stride, 0)
                stepped = Signal(width, name=f"stepped_{l}_{s}")
                m.d.comb += stepped.eq(reg + stride)
                following = Signal(width, name=f"next_{l}_{s}")
                m.d.comb += following.eq(Mux(above[l], outer, stepped))
                with m.If(above[l] | moves[l]):
                    m.d.sync += reg.eq(following)
                outer, current = following, reg
            m.d.comb += payload.value[s].eq(current)
        return m
