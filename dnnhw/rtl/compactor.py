from amaranth.hdl import Signal, Module, unsigned
from amaranth.lib import data
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ._pipeline import LaneNetwork, network_stage


__all__ = ["BubbleCollapser"]


class BubbleCollapser(LaneNetwork):
    """Bubble-collapsing shifter: packs the kept elements of a vector to its low end.

    Element ``j`` is kept when ``keep[j]`` is set and must then move down by
    ``shift[j]``, the number of dropped elements below it (an exclusive prefix count of
    ``~keep``). Stage ``k`` of ``log2(lanes)`` stages moves an element down by ``2**k``
    when bit ``k`` of its shift is set. Taking the bits LSB first makes the network
    conflict-free: two kept elements ``j < j'`` have shifts differing by at most
    ``j' - j - 1``, so after any stage they still sit in distinct lanes. Each lane of
    each stage is therefore an AND-OR of two candidates: one 4-input function per bit.

    Dropped elements enter as zero with a zero shift, so the packed vector is zero above
    the kept elements. Cost: ``lanes * log2(lanes)`` two-way selects of
    ``width + log2(lanes)`` bits, the N log N growth.

    Parameters
    ----------
    lanes : int
        Vector length, 2..1024.
    width : int
        Bits per element, 1..64.
    registered : bool
        Register after every stage (latency ``stages`` cycles) or stay combinational.

    Members
    -------
    elements : In(ArrayLayout(width, lanes))
    keep : In(lanes)
    shift : In(ArrayLayout(log2(lanes), lanes))
    packed : Out(ArrayLayout(width, lanes))
    """

    def members(self):
        lanes, width = self._lanes, self._width
        return {
            "elements": In(data.ArrayLayout(unsigned(width), lanes)),
            "keep": In(lanes),
            "shift": In(data.ArrayLayout(unsigned(self.shift_bits), lanes)),
            "packed": Out(data.ArrayLayout(unsigned(width), lanes)),
        }

    @property
    def shift_bits(self):
        return max(1, ceil_log2(self._lanes))

    @property
    def latency(self):
        return self.stages if self._registered else 0

    def elaborate(self, platform):
        m = Module()
        n = self._lanes
        lane_layout = data.StructLayout({"value": unsigned(self._width),
                                         "shift": unsigned(self.shift_bits)})
        lanes = []
        for j in range(n):
            lane = Signal(lane_layout, name=f"in{j}")
            m.d.comb += [
                lane.value.eq(self.elements[j] & self.keep[j].replicate(self._width)),
                lane.shift.eq(self.shift[j] & self.keep[j].replicate(self.shift_bits)),
            ]
            lanes.append(lane)
        for stage in range(self.stages):
            step = 1 << stage
            values = []
            for p in range(n):
                stays = ~lanes[p].shift[stage]
                here = lanes[p].as_value() & stays.replicate(lane_layout.size)
                if p + step < n:
                    moves = lanes[p + step].shift[stage]
                    arriving = lanes[p + step].as_value() & moves.replicate(lane_layout.size)
                    values.append(here | arriving)
                else:
                    values.append(here)
            lanes = network_stage(m, values, lane_layout, f"s{stage}_lane",
                                  registered=self._registered)
        for p in range(n):
            m.d.comb += self.packed[p].eq(lanes[p].value)
        return m
