"""Pipeline helpers shared by the rtl components."""

from amaranth.hdl import Signal
from amaranth.lib import wiring
from amaranth.utils import ceil_log2

from ._checks import check_bool, check_int


class LaneNetwork(wiring.Component):
    """Base of the log-depth lane networks (the bubble collapser and expander): their
    parameters, checked once, and the stage count.

    Subclasses define ``members()``, their signature's members, which may read the
    checked parameters.

    Parameters
    ----------
    lanes : int
        Vector length, 2..1024.
    width : int
        Bits per element, 1..64.
    registered : bool
        One register per stage (pipelined) or none (combinational).
    """

    def __init__(self, *, lanes, width, registered=False):
        check_int("lanes", lanes, 2, 1024)
        check_int("width", width, 1, 64)
        check_bool("registered", registered)
        self._lanes = lanes
        self._width = width
        self._registered = registered
        super().__init__(self.members())

    def members(self):
        raise NotImplementedError

    @property
    def stages(self):
        """Network levels: ``ceil(log2(lanes))``."""
        return ceil_log2(self._lanes)


def delay_line(m, value, cycles, name, *, reset=False):
    """``value`` registered ``cycles`` times in ``m.d.sync`` (under any enable on ``m``).

    Data is delayed without reset, which keeps reset out of wide enables and selects;
    pass ``reset=True`` for valid bits that must be clear after reset.
    """
    for k in range(cycles):
        reg = Signal.like(value, name=f"{name}_d{k}", reset_less=not reset)
        m.d.sync += reg.eq(value)
        value = reg
    return value


def network_stage(m, values, shape, name, *, registered):
    """One stage of a log-depth network: ``values[j]`` into a signal ``{name}{j}``.

    Registered in ``m.d.sync`` (a pipeline stage) or driven in ``m.d.comb``; without
    reset either way, as the data of every lane is, to keep reset out of its logic.
    Returns the signals, the next stage's inputs.
    """
    domain = "sync" if registered else "comb"
    lanes = []
    for j, value in enumerate(values):
        lane = Signal(shape, name=f"{name}{j}", reset_less=True)
        m.d[domain] += lane.eq(value)
        lanes.append(lane)
    return lanes
