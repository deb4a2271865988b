"""Pipeline helpers shared by the rtl components."""

from amaranth.hdl import Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
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


def delay_memory(m, value, cycles, name):
    """``value`` delayed ``cycles`` cycles in ``m.d.sync`` (under any enable on ``m``), in a
    memory of ``cycles`` words instead of ``cycles`` registers.

    For wide data that only waits beside a pipeline: a register that no logic feeds takes a
    logic cell of its own on the iCE40, and a memory (block RAM there, LUT RAM on the ECP5)
    does not. The word written at enabled cycle ``t`` is read at ``t + cycles - 1`` into the
    read port's register, which is the output; a read never meets the write to its own word
    when ``cycles >= 2``. Shorter delays are registers. Data only: the words hold no reset
    value.
    """
    if cycles < 2:
        return delay_line(m, value, cycles, name)
    width = len(value.as_value()) if hasattr(value, "as_value") else len(value)
    memory = Memory(shape=width, depth=cycles, init=[])
    m.submodules[name] = memory
    write = memory.write_port()
    read = memory.read_port()
    write_at = Signal(range(cycles), name=f"{name}_write_at")
    read_at = Signal(range(cycles), init=1, name=f"{name}_read_at")
    m.d.comb += [write.addr.eq(write_at), write.data.eq(value), write.en.eq(1),
                 read.addr.eq(read_at)]
    m.d.sync += [write_at.eq(Mux(write_at == cycles - 1, 0, write_at + 1)),
                 read_at.eq(Mux(read_at == cycles - 1, 0, read_at + 1))]
    out = Signal.like(value, name=f"{name}_out", reset_less=True)
    m.d.comb += out.eq(read.data)
    return out


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
