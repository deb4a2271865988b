"""Morph's PE block: ``kp x hp x wp`` multiply-accumulate PEs for a 3D convolution.

Each cycle of a block the array reads one weight per filter row (``kp`` lanes) and one
input per output position (``hp x wp`` lanes); PE ``(kk, i, j)`` multiplies weight lane
``kk`` by input lane ``i * wp + j`` into its own accumulator, so inputs are broadcast
along the filter rows and weights along the positions (``docs/morph-array.md``, *PE
side*).

The multipliers are written the way Yosys infers DSP blocks from (``SB_MAC16`` with
``synth_ice40 -dsp``, ``MULT18X18D`` with ``synth_ecp5``): registered operands, a plain
signed ``width x width`` product, a registered product. The accumulate add and its
``first`` / ``load`` selection stay outside the multiplier, in logic.
"""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ._checks import check_int
from ._pipeline import delay_line


__all__ = ["PeArray"]


class PeArray(wiring.Component):
    """``kp x hp x wp`` MAC PEs in a fixed three-stage pipeline: operand registers (O),
    product registers (P), accumulators (A).

    A MAC cycle is one with ``valid`` high; every other cycle changes nothing. An
    accumulation is a run of MAC cycles from one with ``first`` to one with ``last`` (the
    same cycle for a one-MAC accumulation); the next may start in the cycle after
    ``last``, and ``valid`` may be low for any number of cycles within one. Its first MAC
    starts each accumulator from its ``acc_in`` lane if ``load`` is high, else from zero;
    ``load`` is sampled with that MAC, ``acc_in`` :attr:`acc_in_delay` cycles after it, in
    the accumulate stage, so that the starting sums need no registers of their own on the
    way (a caller reading them from a block RAM reads that much later).
    :attr:`latency` cycles after the ``last`` MAC, ``acc_valid`` is high for one cycle
    with every PE's sum on ``acc_out``.

    Accumulators wrap modulo ``2 ** acc_width`` (two's complement): the caller sizes
    ``acc_width`` so that no sum it needs overflows.

    PE ``(kk, i, j)`` has the flat index ``(kk * hp + i) * wp + j`` in ``acc_in`` and
    ``acc_out``.

    Parameters
    ----------
    kp : int
        Filter rows (weight lanes), 1..16.
    hp, wp : int
        Output rows and columns of the block (input lanes ``hp * wp``), each 1..16;
        ``kp * hp * wp`` at most 256.
    width : int
        Bits of inputs and weights, signed two's complement: 8 or 16.
    acc_width : int
        Bits of an accumulator, signed: ``2 * width``..64.

    Members
    -------
    valid : In(1)
        This cycle is a MAC cycle.
    inputs : In(ArrayLayout(signed(width), hp * wp))
        Input lane ``i * wp + j``, for the PEs of position ``(i, j)``.
    input_mask : In(hp * wp)
        Bit ``i * wp + j`` set: the tap lies inside the input; clear: it is padding, and
        that lane's operand is zero whatever ``inputs`` holds.
    weights : In(ArrayLayout(signed(width), kp))
        Weight lane ``kk``, for the PEs of filter row ``kk``.
    first, last : In(1)
        With ``valid``: this MAC starts / ends an accumulation.
    load : In(1)
        With ``valid & first``: start from ``acc_in`` instead of zero.
    acc_in : In(ArrayLayout(signed(acc_width), kp * hp * wp))
        The starting sums, sampled :attr:`acc_in_delay` cycles after ``valid & first &
        load``.
    acc_valid : Out(1)
        High for one cycle, :attr:`latency` cycles after each ``valid & last`` cycle.
    acc_out : Out(ArrayLayout(signed(acc_width), kp * hp * wp))
        Every PE's sum while ``acc_valid`` is high (the running sums otherwise).
    """

    #: Cycles from a ``valid & last`` cycle to its ``acc_valid``: the operand, product
    #: and accumulator registers.
    LATENCY = 3
    #: Cycles from a ``first`` MAC to the cycle its ``acc_in`` is sampled.
    ACC_IN_DELAY = LATENCY - 1

    def __init__(self, *, kp=2, hp=2, wp=2, width=16, acc_width=48):
        check_int("kp", kp, 1, 16)
        check_int("hp", hp, 1, 16)
        check_int("wp", wp, 1, 16)
        if kp * hp * wp > 256:
            raise ValueError(f"kp * hp * wp must be in 1..256, got {kp} * {hp} * {wp} = "
                             f"{kp * hp * wp}")
        check_int("width", width, 8, 16)
        if width not in (8, 16):
            raise ValueError(f"width must be 8 or 16, got {width}")
        check_int("acc_width", acc_width, 2 * width, 64)
        self._kp = kp
        self._hp = hp
        self._wp = wp
        self._width = width
        self._acc_width = acc_width
        super().__init__({
            "valid": In(1),
            "inputs": In(data.ArrayLayout(signed(width), self.positions)),
            "input_mask": In(self.positions),
            "weights": In(data.ArrayLayout(signed(width), kp)),
            "first": In(1),
            "load": In(1),
            "acc_in": In(self.acc_layout),
            "last": In(1),
            "acc_valid": Out(1),
            "acc_out": Out(self.acc_layout),
        })

    # --- derived values -------------------------------------------------------------------

    @property
    def kp(self):
        return self._kp

    @property
    def hp(self):
        return self._hp

    @property
    def wp(self):
        return self._wp

    @property
    def width(self):
        return self._width

    @property
    def acc_width(self):
        return self._acc_width

    @property
    def positions(self):
        """Output positions, the input lanes: ``hp * wp``."""
        return self._hp * self._wp

    @property
    def pes(self):
        """PEs, the multipliers: ``kp * hp * wp``."""
        return self._kp * self.positions

    @property
    def acc_layout(self):
        return data.ArrayLayout(signed(self._acc_width), self.pes)

    @property
    def latency(self):
        """Cycles from a ``valid & last`` cycle to its ``acc_valid``; the same for every
        parameter."""
        return self.LATENCY

    @property
    def acc_in_delay(self):
        """Cycles from a ``valid & first`` cycle to the one that samples ``acc_in``."""
        return self.ACC_IN_DELAY

    # --- the hardware ---------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        width, acc_shape = self._width, signed(self._acc_width)

        # Control and starting sums travel beside the operands to stage A. Only the valid
        # bits need a reset; everything else counts only under them.
        valid_a = delay_line(m, self.valid, 2, "valid", reset=True)
        first_a = delay_line(m, self.first, 2, "first")
        last_a = delay_line(m, self.last, 2, "last")
        load_a = delay_line(m, self.load, 2, "load")

        # O: the operands, one register per lane, shared by the PEs the lane feeds. A
        # padding tap is zeroed here, once per position rather than once per PE.
        inputs_o = [Signal(signed(width), name=f"input_o{p}", reset_less=True)
                    for p in range(self.positions)]
        weights_o = [Signal(signed(width), name=f"weight_o{kk}", reset_less=True)
                     for kk in range(self._kp)]
        for p, input_o in enumerate(inputs_o):
            m.d.sync += input_o.eq(Mux(self.input_mask[p], self.inputs[p], 0))
        for kk, weight_o in enumerate(weights_o):
            m.d.sync += weight_o.eq(self.weights[kk])

        m.d.sync += self.acc_valid.eq(valid_a & last_a)
        for kk in range(self._kp):
            for p in range(self.positions):
                pe = kk * self.positions + p
                # P: a plain signed product of the registered operands, registered: the
                # shape Yosys maps to one DSP block.
                product = Signal(signed(2 * width), name=f"product_p{pe}", reset_less=True)
                m.d.sync += product.eq(inputs_o[p] * weights_o[kk])
                # A: the accumulator, which is also the output; it wraps by truncation.
                acc = self.acc_out[pe]
                base = Signal(acc_shape, name=f"base_a{pe}")
                m.d.comb += base.eq(Mux(first_a, Mux(load_a, self.acc_in[pe], 0), acc))
                with m.If(valid_a):
                    m.d.sync += acc.eq(base + product)
        return m
