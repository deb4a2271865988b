from amaranth.hdl import Const, Module, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for, ceil_log2

from ._checks import check_bool, check_int
from ._pipeline import network_stage


__all__ = ["PrefixCount", "adder_tree", "popcount_tree"]


class PrefixCount(wiring.Component):
    """Exclusive prefix count of a bit vector, by a Sklansky parallel-prefix network.

    ``counts[j]`` is the number of ones in ``bits[0:j]`` and ``total`` the number in all of
    ``bits``. The network has ``ceil(log2(count))`` levels; level ``d`` adds, inside every
    block of ``2**(d+1)`` lanes, the last sum of the lower half to each lane of the upper
    half, so depth is logarithmic (not a ripple chain) and each level is one small adder
    per lane.

    With ``registered=True`` a register follows every level (latency ``levels`` cycles,
    one new vector per cycle); wrap the component in ``EnableInserter`` to stall it.

    Parameters
    ----------
    count : int
        Number of input bits, 1..1024.
    registered : bool
        Register each level (pipelined) or not (combinational).

    Members
    -------
    bits : In(count)
    counts : Out(ArrayLayout(unsigned(bits_for(count)), count))
        Exclusive prefix counts.
    total : Out(unsigned(bits_for(count)))
    """

    def __init__(self, *, count, registered=False):
        check_int("count", count, 1, 1024)
        check_bool("registered", registered)
        self._count = count
        self._registered = registered
        super().__init__({
            "bits": In(count),
            "counts": Out(data.ArrayLayout(unsigned(bits_for(count)), count)),
            "total": Out(unsigned(bits_for(count))),
        })

    @property
    def count(self):
        return self._count

    @property
    def levels(self):
        return ceil_log2(self._count)

    @property
    def latency(self):
        """Cycles from ``bits`` to ``counts``: one per level when registered, else 0."""
        return self.levels if self._registered else 0

    def elaborate(self, platform):
        m = Module()
        n = self._count
        size = 1 << self.levels
        count_shape = unsigned(bits_for(size))
        # Inclusive sums over the lanes padded to a power of two (padding lanes are zero).
        sums = [self.bits[j] if j < n else Const(0, 1) for j in range(size)]
        for level in range(self.levels):
            half = 1 << level
            values = []
            for j in range(size):
                block_base = j & ~(2 * half - 1)
                if j & half:
                    values.append(sums[j] + sums[block_base + half - 1])
                else:
                    values.append(sums[j])
            sums = network_stage(m, values, count_shape, f"l{level}_sum",
                                 registered=self._registered)
        # Exclusive count = inclusive count of the previous lane; the total is the last.
        m.d.comb += self.counts[0].eq(0)
        for j in range(1, n):
            m.d.comb += self.counts[j].eq(sums[j - 1])
        m.d.comb += self.total.eq(sums[n - 1] if self.levels else self.bits[0])
        return m


def adder_tree(terms):
    """The sum of ``terms`` (Amaranth values) as a balanced tree of adders, log depth."""
    terms = list(terms)
    if not terms:
        return Const(0, 1)
    while len(terms) > 1:
        pairs = [terms[k] + terms[k + 1] for k in range(0, len(terms) - 1, 2)]
        terms = pairs + ([terms[-1]] if len(terms) % 2 else [])
    return terms[0]


def popcount_tree(bits):
    """Number of ones in ``bits`` (an Amaranth value) as a balanced adder tree, log depth."""
    return adder_tree(bits[j] for j in range(len(bits)))
