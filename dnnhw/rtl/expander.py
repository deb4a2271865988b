from amaranth.hdl import Signal, Module, unsigned
from amaranth.lib import data
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ._pipeline import LaneNetwork, delay_line, delay_memory, network_stage

from .prefix_sum import PrefixCount
from .compactor import BubbleCollapser


__all__ = ["BubbleExpander"]


class BubbleExpander(LaneNetwork):
    """Bubble-inserting shifter: the inverse of :class:`BubbleCollapser`.

    ``elements[j]`` becomes ``packed[i]`` when ``mask[j]`` is set and ``j`` is the ``i``-th
    set bit of ``mask``, and zero otherwise; ``packed`` lanes at or past ``popcount(mask)``
    are ignored. The packed element ``i`` must move up by ``d_i``, the number of clear mask
    bits below its destination. Those amounts are found by collapsing the per-lane counts
    of clear bits below each lane (a prefix count of ``~mask``) with the mask itself, so
    ``d_i`` lands in lane ``i``. The data then runs through the collapsing stages in
    reverse (MSB first, moving up), which visits the same lane assignments backwards and is
    conflict-free for the same reason.

    Fully pipelined with ``registered=True`` (one vector per cycle, latency
    :attr:`latency`); wrap in ``EnableInserter`` to stall.

    Parameters
    ----------
    lanes : int
        Vector length, 2..1024.
    width : int
        Bits per element, 1..64.
    registered : bool

    Members
    -------
    packed : In(ArrayLayout(width, lanes))
    mask : In(lanes)
    elements : Out(ArrayLayout(width, lanes))
    """

    def members(self):
        lanes, width = self._lanes, self._width
        return {
            "packed": In(data.ArrayLayout(unsigned(width), lanes)),
            "mask": In(lanes),
            "elements": Out(data.ArrayLayout(unsigned(width), lanes)),
        }

    @property
    def latency(self):
        """Prefix count, amount collapse and expansion: one cycle per level each."""
        return 3 * self.stages if self._registered else 0

    def elaborate(self, platform):
        m = Module()
        n, w = self._lanes, self._width
        m.submodules.prefix = prefix = PrefixCount(count=n, registered=self._registered)
        m.submodules.collapser = collapser = BubbleCollapser(
            lanes=n, width=max(1, ceil_log2(n)), registered=self._registered)

        # Amounts: clear mask bits below each lane, collapsed onto the packed lanes.
        m.d.comb += prefix.bits.eq(~self.mask)
        mask_p = delay_line(m, self.mask, prefix.latency, "mask")
        m.d.comb += collapser.keep.eq(mask_p)
        for j in range(n):
            m.d.comb += [
                collapser.elements[j].eq(prefix.counts[j]),
                collapser.shift[j].eq(prefix.counts[j]),
            ]
        # Packed lanes past popcount(mask) = n - zeros are dropped.
        nonzeros = Signal(range(n + 1))
        m.d.comb += nonzeros.eq(n - prefix.total)
        in_use = Signal(n)
        for i in range(n):
            m.d.comb += in_use[i].eq(i < nonzeros)
        in_use_c = delay_line(m, in_use, collapser.latency, "in_use")
        # The data waits for its shift amounts: in a memory, not 2 log2(n) registers a bit.
        packed_c = delay_memory(m, self.packed, prefix.latency + collapser.latency,
                                "packed_delay")

        lane_layout = data.StructLayout({"value": unsigned(w),
                                         "up": unsigned(collapser.shift_bits)})
        lanes = []
        for i in range(n):
            lane = Signal(lane_layout, name=f"in{i}")
            m.d.comb += [
                lane.value.eq(packed_c.as_value().word_select(i, w) & in_use_c[i].replicate(w)),
                lane.up.eq(collapser.packed[i] & in_use_c[i].replicate(collapser.shift_bits)),
            ]
            lanes.append(lane)
        for stage in reversed(range(self.stages)):
            step = 1 << stage
            values = []
            for p in range(n):
                here = lanes[p].as_value() & (~lanes[p].up[stage]).replicate(lane_layout.size)
                if p >= step:
                    moves = lanes[p - step].up[stage]
                    values.append(here | (lanes[p - step].as_value()
                                          & moves.replicate(lane_layout.size)))
                else:
                    values.append(here)
            lanes = network_stage(m, values, lane_layout, f"x{stage}_lane",
                                  registered=self._registered)
        for j in range(n):
            m.d.comb += self.elements[j].eq(lanes[j].value)
        return m
