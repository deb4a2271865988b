"""Pipeline helpers shared by the rtl components."""

from amaranth.hdl import Signal


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
