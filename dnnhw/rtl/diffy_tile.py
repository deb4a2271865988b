"""A bit-serial MAC tile of the Diffy family (Mahmoud et al., MICRO 2018), in four modes.

The tile computes ``filters`` (F) x ``windows`` (W) convolution outputs at once: F filters
(rows) by W output positions (columns), each output a sum over ``lanes`` (L) input
channels per step. Its unit of work is a *pallet*: for one kernel position and one group
of L channels, the L activations of each of the W windows (one *brick* per column) and
the L weights of each of the F filters. A *group* is the sequence of pallets that
completes the W x F outputs; its last pallet carries ``last``.

Modes (one generator; only the front-end and the step logic differ):

``diffy``
    the delta front-end replaces each column's activations with their difference from
    the previous window's (``d(x) = a(x) - a(x - stride)``; column 0 uses the ``prev``
    brick, columns flagged ``raw`` keep the raw values), the PEs process the deltas' terms,
    and the reconstruction back-end rebuilds the outputs with a running sum along X
    (``o(x) = o(x - 1) + sum(w * d)``, restarting at a ``raw`` column; the last column's
    outputs carry over to the next group).
``pragmatic``
    the same term-serial PEs on the raw activations.
``stripes``
    bit-serial over a fixed precision: ``msb + 1`` steps per pallet, one bit per step;
    bit ``msb`` is the two's complement sign bit when ``msb_signed`` is set.
``bitparallel``
    the value-agnostic baseline: L multipliers per PE, one pallet per cycle.

Term-serial step rule (``diffy`` and ``pragmatic``, as in ``dnnhw.golden.diffy_published``): every
lane holds the terms of its activation (see :mod:`dnnhw.rtl.terms`). Each step, each
column takes as its *base* the lowest remaining term offset over its lanes, and every
lane whose lowest remaining term lies in ``[base, base + 2**shifter_bits - 1]`` retires
it. The PE shifts each retired term's weight by its offset above the base (second-stage
shifter, ``0 .. 2**B - 1``), sums the lanes in an adder tree, shifts the sum by the base
(first-stage, common shifter) and accumulates. The W columns share the pallet's weights,
so a pallet holds the tile until its slowest column is empty: it takes the maximum over
columns of their steps, and at least one step (an all-zero pallet still costs a cycle).

Pipeline (one enable, held off only while the output's two-entry buffer, a
:class:`~dnnhw.rtl.skid_buffer.SkidBuffer`, is full): input join, delta and magnitude (E),
term encoding (T, term-serial modes only), step (S), the step registered (P), the PEs'
products or per-lane shifts and the first half of their adder trees (M: partial sums of
:attr:`~DiffyTile.lane_group` lanes), the rest of the trees (Q), first-stage shift and
accumulate (R), then the back-end into the output buffer. The multi-step modes'
S has two banks: the next pallet waits in the idle one and steps in the cycle after the
current one empties, so pallets follow each other without a bubble, and the step decision
drives a bank select, not the load of every S register. With inputs always valid and the
output always ready, the last output leaves ``steps + latency - 1`` cycles after the
first input transfer, where ``steps`` is the sum of the pallets' steps.
The ``step`` output is high in every cycle the tile performs a step.

Accumulators are :attr:`acc_width` bits: wide enough for any sum of ``max_products``
products (``C * R * S`` of a layer) of ``width``-bit weights and ``width + 1``-bit deltas,
so no output of a layer within that size can overflow.

The component's parameters and ports are described on :class:`DiffyTile`.
"""

from amaranth.hdl import Cat, EnableInserter, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from dnnhw.spec import diffy_tile as spec
from dnnhw.spec.diffy_tile import MODES

from ._checks import check_int
from .prefix_sum import adder_tree, popcount_tree
from .skid_buffer import SkidBuffer
from .terms import (check_encoding, lowest_set_bit, magnitude_terms, sign_magnitude,
                    term_bits)


__all__ = ["MODES", "DiffyTile"]


class DiffyTile(wiring.Component):
    """A ``filters`` x ``windows`` tile of bit-serial (or bit-parallel) PEs with ``lanes``
    activation lanes each; see the module docstring for the modes, the step rule and the
    pipeline.

    Parameters
    ----------
    lanes : int
        Activation lanes (input channels per brick), 1..16.
    filters : int
        Filters (PE rows), 1..16.
    windows : int
        Windows (PE columns), 1..16.
    width : int
        Bits of activations and weights (signed two's complement), 8..16.
    shifter_bits : int
        B: the per-lane shifter reaches ``2**B - 1`` above the base, 0..4.
    mode : str
        ``"diffy"``, ``"pragmatic"``, ``"stripes"`` or ``"bitparallel"``.
    encoding : str
        Term encoding of the term-serial modes: ``"best"``, ``"csd"`` or ``"plain"``.
    max_products : int
        The largest number of products summed into one output, 1..2**20.

    Members
    -------
    a : In(stream.Signature(activation_layout))
        One pallet's activations: ``acts[w * lanes + l]``, ``prev[l]`` (the brick of the
        window before column 0, used by ``diffy``), ``raw`` (bit w: column w starts a row or
        is idle), ``last`` (the group's last pallet).
    w : In(stream.Signature(weight_layout))
        The same pallet's weights: ``weights[f * lanes + l]``.
    o : Out(stream.Signature(output_layout))
        One beat per group: ``sums[f * windows + w]``.
    step : Out(1)
        High in every cycle the tile performs a step.
    msb, msb_signed : In
        ``stripes`` only: the top bit processed (precision - 1) and whether it is a sign
        bit; their defaults (``width - 1``, 1) are the full signed precision.
    """

    #: Cycles from a pallet's input transfer to its group's output transfer when the
    #: group is that one single-step pallet, in ``stripes`` and ``bitparallel``: E, S, P,
    #: M, Q, R, output buffer. The term-serial modes have one stage more (see
    #: :meth:`latency_of`).
    LATENCY = 7

    #: Lanes of a column that read the active S bank through one copy of its select.
    SELECT_GROUP = 4

    @classmethod
    def latency_of(cls, mode):
        """The latency of a tile in ``mode``: :attr:`LATENCY`, plus one for the term
        encoding stage T of ``diffy`` and ``pragmatic`` (delta, magnitude, NAF and the
        choice of encoding do not fit one cycle)."""
        return cls.LATENCY + (mode in spec.TERM_SERIAL_MODES)

    def __init__(self, *, lanes=4, filters=4, windows=4, width=16, shifter_bits=2,
                 mode="diffy", encoding="best", max_products=4608):
        for name, value, legal in (("lanes", lanes, spec.LANES),
                                   ("filters", filters, spec.FILTERS),
                                   ("windows", windows, spec.WINDOWS),
                                   ("width", width, spec.WIDTHS),
                                   ("shifter_bits", shifter_bits, spec.SHIFTER_BITS)):
            check_int(name, value, legal[0], legal[-1])
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        check_encoding(encoding)
        check_int("max_products", max_products, spec.MAX_PRODUCTS[0], spec.MAX_PRODUCTS[-1])
        self._lanes = lanes
        self._filters = filters
        self._windows = windows
        self._width = width
        self._shifter_bits = shifter_bits
        self._mode = mode
        self._encoding = encoding
        self._max_products = max_products
        members = {
            "a": In(stream.Signature(self.activation_layout)),
            "w": In(stream.Signature(self.weight_layout)),
            "o": Out(stream.Signature(self.output_layout)),
            "step": Out(1),
        }
        if mode == "stripes":
            # Reset to the full signed precision, which every layer fits: a top that
            # does not drive them (a board top) computes right, only slower.
            members["msb"] = In(range(width), init=width - 1)
            members["msb_signed"] = In(1, init=1)
        super().__init__(members)

    # --- derived values -------------------------------------------------------------------

    @property
    def lanes(self):
        return self._lanes

    @property
    def filters(self):
        return self._filters

    @property
    def windows(self):
        return self._windows

    @property
    def width(self):
        return self._width

    @property
    def shifter_bits(self):
        return self._shifter_bits

    @property
    def mode(self):
        return self._mode

    @property
    def encoding(self):
        return self._encoding

    @property
    def max_products(self):
        return self._max_products

    @property
    def term_bits(self):
        """Term offsets per lane: ``width + 1`` for deltas, else ``width``."""
        return term_bits(self._width, delta=self._mode == "diffy")

    @property
    def acc_width(self):
        """Accumulator and output bits: ``|w * d| < 2**(2 * width - 1)``, times
        ``max_products``, signed."""
        return 2 * self._width + ceil_log2(self._max_products)

    @property
    def activation_layout(self):
        return data.StructLayout({
            "acts": data.ArrayLayout(signed(self._width), self._windows * self._lanes),
            "prev": data.ArrayLayout(signed(self._width), self._lanes),
            "raw": self._windows,
            "last": 1,
        })

    @property
    def weight_layout(self):
        return data.StructLayout({
            "weights": data.ArrayLayout(signed(self._width), self._filters * self._lanes),
        })

    @property
    def output_layout(self):
        return data.StructLayout({
            "sums": data.ArrayLayout(signed(self.acc_width), self._filters * self._windows),
        })

    @property
    def latency(self):
        return self.latency_of(self._mode)

    @property
    def lane_group(self):
        """Lanes summed into one partial sum in M: 1 in ``bitparallel`` (M holds the
        products), else about the square root of ``lanes`` (a power of two), which puts
        the shift, the inversion and about half the adder levels before M and the rest
        after it."""
        if self._mode == "bitparallel":
            return 1
        return 1 << (ceil_log2(self._lanes) // 2)

    @property
    def throughput(self):
        return {
            "diffy": "one step per cycle; a pallet takes max(1, the most steps of any "
                     "column) over the terms of the activation deltas",
            "pragmatic": "one step per cycle; a pallet takes max(1, the most steps of any "
                         "column) over the terms of the raw activations",
            "stripes": "one pallet per msb + 1 cycles",
            "bitparallel": "one pallet per cycle",
        }[self._mode]

    # --- the hardware ---------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        core = Module()       # every pipeline register, advanced by `enable`
        L, F, W, width = self._lanes, self._filters, self._windows, self._width
        mode = self._mode
        serial = mode in spec.TERM_SERIAL_MODES
        bits = self.term_bits
        span = (1 << self._shifter_bits) - 1
        acc_shape = signed(self.acc_width)

        m.submodules.output_buffer = output_buffer = SkidBuffer(shape=self.output_layout)
        enable = Signal()
        m.d.comb += enable.eq(output_buffer.i.ready)

        # --- E: join the two input streams, delta front-end, sign and magnitude ---------
        # One pallet as the stages hold it; `state` is what the steps work through: the
        # terms of every lane (term-serial modes) or its value (stripes, bit-parallel).
        def pallet(state):
            return data.StructLayout({
                "first": 1,                 # the pallet starts a group
                "last": 1,                  # the pallet ends a group
                "raw": W,
                "weights": data.ArrayLayout(signed(width), F * L),
                "state": data.StructLayout(state),
            })
        if serial:
            # E holds each lane's sign and magnitude, T its terms: the encoding's carry
            # chains (delta, magnitude, NAF) and popcounts would not fit one cycle.
            e_pallet = Signal(pallet({"signs": W * L,
                                      "magnitudes": data.ArrayLayout(bits, W * L)}))
            pallet_layout = pallet({"masks": data.ArrayLayout(bits, W * L),
                                    "negs": data.ArrayLayout(bits, W * L)})
        else:
            pallet_layout = pallet({"values": data.ArrayLayout(signed(width), W * L)})
            e_pallet = Signal(pallet_layout)
        e_valid = Signal()
        e_release = Signal()        # the next stage takes E's pallet this cycle (under enable)
        accept = Signal()
        both = self.a.valid & self.w.valid
        m.d.comb += [
            accept.eq(both & enable & (~e_valid | e_release)),
            self.a.ready.eq(accept),
            self.w.ready.eq(accept),
        ]
        first_next = Signal(init=1)           # the next pallet starts a group
        acts = self.a.payload.acts
        with core.If(accept):
            core.d.sync += [
                e_pallet.first.eq(first_next),
                first_next.eq(self.a.payload.last),
                e_pallet.last.eq(self.a.payload.last),
                e_pallet.raw.eq(self.a.payload.raw),
                e_pallet.weights.eq(self.w.payload.weights),
            ]
            for c in range(W):
                for l in range(L):
                    value = acts[c * L + l]
                    if mode == "diffy":
                        before = self.a.payload.prev[l] if c == 0 else acts[(c - 1) * L + l]
                        delta = Signal(signed(width + 1), name=f"delta_{c}_{l}")
                        m.d.comb += delta.eq(value - Mux(self.a.payload.raw[c], 0, before))
                        value = delta
                    if serial:
                        sign, magnitude = sign_magnitude(m, value, bits=bits,
                                                         name=f"enc_{c}_{l}")
                        core.d.sync += [e_pallet.state.signs[c * L + l].eq(sign),
                                        e_pallet.state.magnitudes[c * L + l].eq(magnitude)]
                    else:
                        core.d.sync += e_pallet.state.values[c * L + l].eq(value)
        with core.If(accept):
            core.d.sync += e_valid.eq(1)
        with core.Elif(e_release):
            core.d.sync += e_valid.eq(0)

        # --- T (term-serial modes): the terms of every lane ------------------------------
        s_load = Signal()           # S takes the pallet before it this cycle (under enable)
        if serial:
            t_valid = Signal()
            t_pallet = Signal(pallet_layout)
            m.d.comb += e_release.eq(enable & e_valid & (~t_valid | s_load))
            with core.If(e_release):
                core.d.sync += [
                    t_pallet.first.eq(e_pallet.first),
                    t_pallet.last.eq(e_pallet.last),
                    t_pallet.raw.eq(e_pallet.raw),
                    t_pallet.weights.eq(e_pallet.weights),
                ]
                for k in range(W * L):
                    mask, neg = magnitude_terms(m, e_pallet.state.signs[k],
                                                e_pallet.state.magnitudes[k],
                                                encoding=self._encoding, name=f"terms_{k}")
                    core.d.sync += [t_pallet.state.masks[k].eq(mask),
                                    t_pallet.state.negs[k].eq(neg)]
                core.d.sync += t_valid.eq(1)
            with core.Elif(s_load):
                core.d.sync += t_valid.eq(0)
            feed_valid, feed_pallet = t_valid, t_pallet
        else:
            m.d.comb += e_release.eq(s_load)
            feed_valid, feed_pallet = e_valid, e_pallet

        # --- S: the steps of a pallet -------------------------------------------------------
        s_valid = Signal()
        s_pallet = Signal(pallet_layout)      # the pallet stepping now
        s_started = Signal()        # the pallet has taken a step already
        s_done = Signal()           # this step empties the pallet
        # What the step hands to P, per column c and lane l:
        base = [Signal(range(bits), name=f"base_{c}") for c in range(W)]
        take = [[Signal(name=f"take_{c}_{l}") for l in range(L)] for c in range(W)]
        negate = [[Signal(name=f"negate_{c}_{l}") for l in range(L)] for c in range(W)]
        shift = [[Signal(range(span + 1), name=f"shift_{c}_{l}") for l in range(L)]
                 for c in range(W)]
        state = s_pallet.state
        lane_state = {}     # field -> per lane, the active bank's value (the stepping modes)

        if mode == "bitparallel":
            # Every pallet is one step: S is a plain pipeline register.
            m.d.comb += [s_done.eq(1), s_load.eq(enable)]
            with core.If(s_load):
                core.d.sync += [s_valid.eq(feed_valid), s_pallet.eq(feed_pallet)]
        else:
            # Two banks with a registered select: the stage before S (T, or E in stripes)
            # loads the idle bank while the active one steps, and the step decision (the
            # deepest logic of the tile) only flips the select and clears the active bank's
            # valid. With one bank it would be the load enable of every S flip-flop (about
            # 3,000 of them on a 16 x 2 x 4 tile). The select moves to the other bank when
            # the active one empties; the feed loads the selected bank when it is empty
            # (then both are) and the other bank otherwise, so pallets step in arrival
            # order and back to back, as with a single S register.
            bank = [Signal(pallet_layout, name=f"s_bank_{k}") for k in range(2)]
            bank_valid = [Signal(name=f"s_bank_valid_{k}") for k in range(2)]
            bank_load = [Signal(name=f"s_bank_load_{k}") for k in range(2)]
            select = Signal()
            m.d.comb += [
                s_pallet.eq(Mux(select, bank[1], bank[0])),
                s_valid.eq(Mux(select, bank_valid[1], bank_valid[0])),
                s_load.eq(enable & (bank_load[0] | bank_load[1])),
            ]
            for k in range(2):
                m.d.comb += bank_load[k].eq(feed_valid & ~bank_valid[k]
                                            & ((select == k) | bank_valid[1 - k]))
                with core.If(bank_load[k]):
                    core.d.sync += [bank[k].eq(feed_pallet), bank_valid[k].eq(1)]
            # The lanes' state (terms, or values in stripes) is most of a pallet: each group
            # of `SELECT_GROUP` lanes of a column reads its bank through a copy of the
            # select, so that no select drives a net spread over the whole tile. Each copy
            # toggles from its own value, so no tool merges it back into `select`.
            groups = -(-L // self.SELECT_GROUP)
            lane_select = [[Signal(name=f"select_{c}_{g}") for g in range(groups)]
                           for c in range(W)]
            select_of = [lane_select[k // L][k % L // self.SELECT_GROUP] for k in range(W * L)]
            for field in ("masks", "negs") if serial else ("values",):
                lane_state[field] = [
                    Mux(select_of[k], bank[1].state[field][k], bank[0].state[field][k])
                    for k in range(W * L)]
            with core.If(s_valid & s_done):
                core.d.sync += [copy.eq(~copy) for row in lane_select for copy in row]
                core.d.sync += [select.eq(~select), s_started.eq(0)]
                with core.If(select):
                    core.d.sync += bank_valid[1].eq(0)
                with core.Else():
                    core.d.sync += bank_valid[0].eq(0)
            with core.Elif(s_valid):
                core.d.sync += s_started.eq(1)

        if serial:
            masks, negs = lane_state["masks"], lane_state["negs"]
            left = []                 # per lane, (c, l, the mask after this step)
            column_done = []
            for c in range(W):
                lane_masks = [masks[c * L + l] for l in range(L)]
                any_term = 0
                for mask in lane_masks:
                    any_term = any_term | mask
                # A lane retires its lowest term when that term lies within `span` above the
                # column's lowest (the base): when the lane has a term among the bits up to
                # base + span, a mask made from any_term without locating the base, so that
                # the decision does not wait for the base's encoder and a subtraction.
                up_to_base = Signal(bits, name=f"up_to_base_{c}")
                window = Signal(bits, name=f"window_{c}")
                m.d.comb += [
                    base[c].eq(lowest_set_bit(any_term)),
                    up_to_base.eq(any_term ^ (any_term - 1)),
                    window.eq((up_to_base << span) | ((1 << span) - 1)),
                ]
                at_most_one = []      # per lane: it holds one term or none
                for l, mask in enumerate(lane_masks):
                    offset = Signal(range(bits), name=f"offset_{c}_{l}")
                    lowest = mask & ~(mask - 1)
                    m.d.comb += [
                        offset.eq(lowest_set_bit(mask)),
                        take[c][l].eq((mask & window).any()),
                        negate[c][l].eq((negs[c * L + l] & lowest).any()),
                        shift[c][l].eq(offset - base[c]),
                    ]
                    rest = mask & (mask - 1)      # the mask without its lowest term
                    after = Signal(bits, name=f"left_{c}_{l}")
                    m.d.comb += after.eq(Mux(take[c][l], rest, mask))
                    left.append((c, l, after))
                    at_most_one.append(~rest.any())
                # The column empties in this step when every lane holds at most one term and
                # all of them lie in the window. Said so, from the registers, rather than as
                # "no lane has a term after the step", it skips the take decision and an OR
                # over every bit of the tile: this is the step decision's critical path.
                done = Signal(name=f"column_done_{c}")
                m.d.comb += done.eq(Cat(at_most_one).all() & ~(any_term & ~window).any())
                column_done.append(done)
            m.d.comb += s_done.eq(Cat(column_done).all())
            # The active bank works through its terms.
            for k in range(2):
                for c, l, after in left:
                    with core.If((select_of[c * L + l] == k) & bank_valid[k]):
                        core.d.sync += bank[k].state.masks[c * L + l].eq(after)
        elif mode == "stripes":
            values = lane_state["values"]
            s_bit = Signal(range(width))
            top = s_bit == self.msb
            m.d.comb += s_done.eq(top)
            for c in range(W):
                m.d.comb += base[c].eq(s_bit)
                for l in range(L):
                    m.d.comb += [
                        take[c][l].eq(values[c * L + l].as_unsigned().bit_select(s_bit, 1)),
                        negate[c][l].eq(top & self.msb_signed),
                        shift[c][l].eq(0),
                    ]
            with core.If(s_valid):
                core.d.sync += s_bit.eq(Mux(top, 0, s_bit + 1))
        m.d.comb += self.step.eq(s_valid & enable)

        # --- P: the step, registered ---------------------------------------------------------
        p_valid = Signal()
        p_restart = Signal()        # the group's first step: accumulators start over
        p_final = Signal()          # the group's last step: the sums are complete
        p_raw = Signal(W)
        p_weights = Signal.like(s_pallet.weights)
        p_base = [Signal.like(base[c], name=f"p_base_{c}") for c in range(W)]
        core.d.sync += [
            p_valid.eq(s_valid),
            p_restart.eq(s_pallet.first & ~s_started),
            p_final.eq(s_pallet.last & s_done),
            p_raw.eq(s_pallet.raw),
            p_weights.eq(s_pallet.weights),
        ]
        core.d.sync += [p_base[c].eq(base[c]) for c in range(W)]
        if mode == "bitparallel":
            p_value = [[Signal(signed(width), name=f"p_value_{c}_{l}") for l in range(L)]
                       for c in range(W)]
            for c in range(W):
                for l in range(L):
                    core.d.sync += p_value[c][l].eq(state.values[c * L + l])
        else:
            p_take = [[Signal(name=f"p_take_{c}_{l}") for l in range(L)] for c in range(W)]
            p_negate = [[Signal(name=f"p_negate_{c}_{l}") for l in range(L)] for c in range(W)]
            p_shift = [[Signal.like(shift[c][l], name=f"p_shift_{c}_{l}") for l in range(L)]
                       for c in range(W)]
            for c in range(W):
                for l in range(L):
                    core.d.sync += [p_take[c][l].eq(take[c][l]),
                                    p_negate[c][l].eq(negate[c][l] & take[c][l]),
                                    p_shift[c][l].eq(shift[c][l])]

        # --- M: the PE's halfway register --------------------------------------------------
        # A PE's products and the adder tree behind them do not fit one cycle: M holds the
        # bit-parallel mode's products, and in the shift modes the sums of groups of
        # `lane_group` lanes' shifted weights (with each group's negated-lane count), so
        # that Q sums L / lane_group partials instead of L + 1 terms.
        m_valid, m_restart, m_final = Signal(), Signal(), Signal()
        m_raw = Signal(W)
        m_base = [Signal.like(base[c], name=f"m_base_{c}") for c in range(W)]
        core.d.sync += [m_valid.eq(p_valid), m_restart.eq(p_restart),
                        m_final.eq(p_final), m_raw.eq(p_raw)]
        core.d.sync += [m_base[c].eq(p_base[c]) for c in range(W)]
        group = self.lane_group
        m_partials = [[[] for _ in range(W)] for _ in range(F)]
        for f in range(F):
            for c in range(W):
                for first in range(0, L, group):
                    lanes = range(first, min(first + group, L))
                    if mode == "bitparallel":
                        assert group == 1
                        partial = p_weights[f * L + first] * p_value[c][first]
                    else:
                        terms = []
                        for l in lanes:
                            # -x = ~x + 1: invert the negated lanes here and add their
                            # count once in the tree, instead of a negating adder per lane.
                            shifted = Mux(p_take[c][l], p_weights[f * L + l] << p_shift[c][l], 0)
                            term = Signal(signed(width + span), name=f"term_{f}_{c}_{l}")
                            m.d.comb += term.eq(Mux(p_negate[c][l], ~shifted, shifted))
                            terms.append(term)
                        terms.append(popcount_tree(Cat(p_negate[c][l] for l in lanes)))
                        partial = adder_tree(terms)
                    registered = Signal(partial.shape(), name=f"m_partial_{f}_{c}_{first}")
                    core.d.sync += registered.eq(partial)
                    m_partials[f][c].append(registered)

        # --- Q: the rest of every PE's adder tree ---------------------------------------------
        q_valid = Signal()
        q_restart = Signal()
        q_final = Signal()
        q_raw = Signal(W)
        q_base = [Signal.like(base[c], name=f"q_base_{c}") for c in range(W)]
        core.d.sync += [
            q_valid.eq(m_valid),
            q_restart.eq(m_restart),
            q_final.eq(m_final),
            q_raw.eq(m_raw),
        ]
        core.d.sync += [q_base[c].eq(m_base[c]) for c in range(W)]
        q_sum = [[None] * W for _ in range(F)]
        for f in range(F):
            for c in range(W):
                tree = adder_tree(m_partials[f][c])
                q_sum[f][c] = Signal(tree.shape(), name=f"q_sum_{f}_{c}")
                core.d.sync += q_sum[f][c].eq(tree)

        # --- R: first-stage shift by the base and accumulate --------------------------------
        r_valid = Signal()
        r_raw = Signal(W)
        r_sum = [[Signal(acc_shape, name=f"r_sum_{f}_{c}") for c in range(W)] for f in range(F)]
        core.d.sync += r_valid.eq(q_valid & q_final)
        with core.If(q_valid & q_final):
            core.d.sync += r_raw.eq(q_raw)
        for f in range(F):
            for c in range(W):
                acc = Signal(acc_shape, name=f"acc_{f}_{c}")
                total = Signal(acc_shape, name=f"total_{f}_{c}")
                addend = q_sum[f][c] if mode == "bitparallel" else q_sum[f][c] << q_base[c]
                m.d.comb += total.eq(Mux(q_restart, 0, acc) + addend)
                with core.If(q_valid):
                    core.d.sync += acc.eq(total)
                    with core.If(q_final):
                        core.d.sync += r_sum[f][c].eq(total)

        # --- back-end: running sum along X (diffy), into the two-entry output buffer ---------
        result = Signal(self.output_layout)
        if mode == "diffy":
            carry = [Signal(acc_shape, name=f"carry_{f}") for f in range(F)]
            for f in range(F):
                running = carry[f]
                for c in range(W):
                    out = Signal(acc_shape, name=f"rebuilt_{f}_{c}")
                    m.d.comb += out.eq(Mux(r_raw[c], 0, running) + r_sum[f][c])
                    m.d.comb += result.sums[f * W + c].eq(out)
                    running = out
                with core.If(r_valid):
                    core.d.sync += carry[f].eq(running)
        else:
            for f in range(F):
                for c in range(W):
                    m.d.comb += result.sums[f * W + c].eq(r_sum[f][c])

        # Its ready is the pipeline's enable: a registered stall, never o.ready itself.
        m.d.comb += [
            output_buffer.i.valid.eq(r_valid),
            output_buffer.i.payload.eq(result),
        ]
        wiring.connect(m, output_buffer.o, wiring.flipped(self.o))

        m.submodules.pipeline = EnableInserter(enable)(core)
        return m

