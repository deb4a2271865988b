"""The PE blocks of one L1 tile of Morph's array: the ``blocks`` job of the sequencer.

The sequencer (:mod:`dnnhw.rtl.morph_program`) launches this job once per L1 step, with
the registers of ``JOBS["blocks"]``. For each PE block ``(kb, f, hb, wb)`` of the L1 tile
and each of its cycles ``(c, t, r, s)``, every active PE ``(kk, i, j)`` does one MAC of
weight lane ``kk`` (read from filter row ``kk``'s L1 weight copy) and input lane
``(i, j)`` (read from position ``(i, j)``'s own L1 input copy, or a zero when the tap lies
in the padding). The accumulators start from the PE banks at the block's entry (if
``load``) or from zero, and drain to it after the block's last cycle
(``docs/morph-array.md``, *PE side*). :meth:`dnnhw.sim.morph_machine.Machine._blocks` is
the reference: same active PEs, same reads, same counts.

The walk is one :class:`~dnnhw.rtl.morph_walker.LoopWalker` of eight levels
``kb, f, hb, wb, c, t, r, s`` and nine streams (the input address, the weight address, the
entry, the frame, row and column of the tap, the remaining filters, rows and columns of
the block); the PE side is a :class:`~dnnhw.rtl.morph_pe.PeArray`.
"""

from amaranth.hdl import Cat, Const, Module, Mux, ResetInserter, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ._checks import check_int
from ._pipeline import delay_line
from .morph_pe import PeArray
from .morph_program import JOBS
from .morph_walker import LoopWalker, fits_signed


__all__ = ["BlocksEngine", "JOB", "SIGNED", "LAYER", "RUN_BLOCK"]

#: The job registers, in the order of ``JOBS["blocks"]``.
JOB = JOBS["blocks"]
#: The job registers that may be negative (two's complement ports).
SIGNED = ("in_base", "gf", "gh", "gw")
#: The layer's values the job reads besides its registers.
LAYER = ("T", "R", "S", "sf", "sh", "sw", "F", "H", "W")
#: The run-time PE block (each side at most the built one).
RUN_BLOCK = ("kp_run", "hp_run", "wp_run")

# The walker's levels and streams.
_LEVELS = ("kb", "f", "hb", "wb", "c", "t", "r", "s")
#: The port holding each level's count.
_COUNTS = ("kb", "f", "hb", "wb", "c", "T", "R", "S")
_IN, _WT, _ENTRY, _GF, _GH, _GW, _RK, _RH, _RW = range(9)
_STREAMS = 9
#: The levels each stream steps at (its stride is zero at the others). The coordinates'
#: taps are added to the walker's block coordinates outside it.
_ACTIVE = {
    _IN: ("f", "hb", "wb", "c", "t", "r", "s"),
    _WT: ("kb", "c", "t", "r", "s"),
    _ENTRY: ("kb", "f", "hb", "wb"),
    _GF: ("f",),
    _GH: ("hb",),
    _GW: ("wb",),
    _RK: ("kb",),
    _RH: ("hb",),
    _RW: ("wb",),
}
#: The walker's largest count.
_COUNT_MAX = (1 << 16) - 1


def _low(value, bits):
    """The low ``bits`` bits of ``value`` (a value or an int): what a walker stream of that
    width reads of it."""
    if isinstance(value, int):
        return value & ((1 << bits) - 1)
    return value[:bits]


def _bits(depth):
    """Address bits of a memory of ``depth`` words (at least one)."""
    return max(1, ceil_log2(depth))


class BlocksEngine(wiring.Component):
    """The PE blocks of one L1 tile, one tap a cycle, blocks back to back.

    A ``start`` pulse while not ``busy`` launches the job; every input below must hold
    from ``start`` until ``busy`` falls. ``busy`` is high from the cycle after ``start``
    for exactly ``kb * f * hb * wb * c * T * R * S + OVERHEAD`` cycles (:attr:`OVERHEAD`
    = 4: one cycle of L1 read latency and the three of :class:`PeArray`), and falls in
    the cycle after the last block's drain is written into the PE banks. Blocks follow
    each other with no bubble: block ``b + 1`` loads its accumulators (reads its entry)
    while block ``b`` is still in the pipeline, and block ``b`` drains later, to its own
    entry, which the sequencer's entries make different.

    PE ``(kk, i, j)`` of block ``(kb, f, hb, wb)`` (``kk < kp_run``, ``i < hp_run``,
    ``j < wp_run``) is active when ``kk < rem_k - kb * kp_run``, ``i < rem_h - hb *
    hp_run`` and ``j < rem_w - wb * wp_run``; an inactive PE counts nothing and writes
    nothing. Every cycle ``(c, t, r, s)`` of the block, with

    - ``a = in_base + f*in_f + hb*in_hb + wb*wp_step + c*in_c + t*in_t + r*in_r + s``,
    - ``gf + f*sf + t``, ``gh + hb*hp_step + r``, ``gw + wb*wp_step + s`` the tap's frame,
      row and column of position ``(0, 0)`` in the layer's input,
    - ``w = kb*w_kb + ((c*T + t)*R + r)*S + s``,

    active position ``(i, j)`` reads its input copy at ``a + i*in_row + j*in_col`` if its
    tap (row ``+ i*sh``, column ``+ j*sw``) lies inside ``F x H x W``, and feeds a zero
    otherwise (PeArray's ``input_mask``); active filter row ``kk`` reads its weight copy
    at ``w + kk*w_row``. The block's entry is ``kb*e_kb + f*e_f + hb*e_hb + wb``. This is
    :meth:`dnnhw.sim.morph_machine.Machine._blocks`, read for read.

    Errors: a count (``kb, f, hb, wb, c, T, R, S``) below 1 or above its limit (see
    :attr:`count_limits`), or a run-time block side outside ``1..`` the built one, starts
    nothing; a read outside its copy or an entry outside the banks is not made, and ends
    the walk there. Either way ``busy`` falls :attr:`OVERHEAD` cycles after the failing
    cycle (a bad start fails in the cycle after ``start``), with no memory access after
    it, and ``error`` is high for one cycle, the first with ``busy`` low (it is low then
    after a good job). What the banks hold after an error is unspecified; the counts
    after it mean nothing.

    Arithmetic. The registers are ``value_width``-bit two's complement: the addresses, the
    entries, the coordinates and the remaining counts (``rem_k - kb * kp_run``, ...) are
    the sums above modulo ``2 ** value_width``, read as signed; a position's offsets
    (``i*in_row + j*in_col``, ``i*sh``, ...) are added to them without wrapping. The
    hardware computes in far fewer bits (:meth:`stream_widths`), with the same result for
    every job but these:

    - the input address ``a`` is computed in ``W = stream_widths()[0]`` bits: exact while
      ``a`` stays within ``-2 ** (W - 1) .. 2 ** (W - 1) - 1``, which every job of the
      sequencer's for a layer that fits (whose taps lie at most ``T - 1``, ``R - 1``,
      ``S - 1`` outside its L1 box) does: ``W`` leaves room for ``2 * max_taps + 1``
      copies' worth of words. Beyond, a read may be judged wrongly (a good job's reads
      are right whatever ``a`` does);
    - a ``rem_*`` register of ``2 ** (value_width - 1)`` or more is negative (it never
      wraps around to positive as the block index grows);
    - with ``coord_width`` below ``value_width``, the coordinates (offsets included) are
      computed modulo ``2 ** coord_width``: exact while the tap of every active position
      lies within ``-2 ** (coord_width - 1) .. 2 ** (coord_width - 1) - 1``, any size;
    - in the cycle a weight read fails because its filter row's address step is out of
      range, the other filter rows' reads (in range or not) are not made either.

    The weight addresses and the entries are exact: each is stepped from one that was
    checked, so a stride too large for the narrow width gives an address outside the
    copy, and is flagged as such.

    Parameters
    ----------
    kp, hp, wp : int
        The built PE block (filter rows, output rows, output columns), each 1..16, their
        product at most 256.
    width : int
        Bits of inputs and weights, signed: 8 or 16.
    acc_width : int
        Bits of an accumulator, signed: ``2 * width``..64 (as :class:`PeArray`).
    value_width : int
        Bits of a job register (the sequencer's), 16..32.
    l1_input_words, l1_weight_words : int
        Words of one L1 input copy and of one weight copy, 1..65536.
    psum_entries : int
        Entries of one PE bank, 1..65536.
    max_taps : int
        The largest ``T``, ``R`` and ``S`` the job may have, 1..64.
    coord_width : int or None
        Bits the tap coordinates are computed in, 8..``value_width`` (default
        ``value_width``: exact for every job; see *Arithmetic*).

    Members
    -------
    start : In(1)
    kb, f, hb, wb, c, load, in_base, ..., rem_w : In(value_width)
        The job registers of ``JOBS["blocks"]`` (:data:`JOB`); ``in_base``, ``gf``,
        ``gh``, ``gw`` signed, the others unsigned. ``load`` nonzero: the accumulators
        start from the banks.
    T, R, S, sf, sh, sw, F, H, W : In(value_width)
        The layer's kernel, strides and input size.
    kp_run, hp_run, wp_run : In(value_width)
        The run-time PE block.
    busy : Out(1)
    error : Out(1)
    in_raddr : Out(ArrayLayout(bits(l1_input_words), hp * wp))
    in_re : Out(hp * wp)
    in_rdata : In(ArrayLayout(signed(width), hp * wp))
        Position ``p = i * wp + j``'s input copy (built ``wp``): a read enabled in one
        cycle gives its data in the next, held while the read is not enabled (a
        ``amaranth.lib.memory`` read port). ``bits(n)`` is ``max(1, ceil_log2(n))``.
    w_raddr : Out(ArrayLayout(bits(l1_weight_words), kp))
    w_re : Out(kp)
    w_rdata : In(ArrayLayout(signed(width), kp))
        Filter row ``kk``'s weight copy, the same way.
    bank_raddr : Out(bits(psum_entries))
    bank_re : Out(1)
    bank_rdata : In(ArrayLayout(signed(acc_width), kp * hp * wp))
        The PE banks' shared read port (one cycle of latency); PE ``(kk, i, j)`` is lane
        ``(kk * hp + i) * wp + j`` (built ``hp``, ``wp``).
    bank_waddr : Out(bits(psum_entries))
    bank_we : Out(kp * hp * wp)
    bank_wdata : Out(ArrayLayout(signed(acc_width), kp * hp * wp))
        The PE banks' write port: PE lane ``pe`` writes ``bank_wdata[pe]`` at
        ``bank_waddr`` when ``bank_we[pe]`` is set.
    computing : Out(1)
        A MAC cycle of the walk (one of the job's ``kb*f*hb*wb*c*T*R*S``): the model's
        compute cycles.
    macs, psum_reads, psum_writes : Out(range(kp * hp * wp + 1))
    input_reads : Out(range(hp * wp + 1))
    weight_reads : Out(range(kp + 1))
        This cycle's MACs of the active PEs (padding taps included), input words read
        (active positions whose tap is inside the input), weight words read (active
        filter rows), accumulators loaded and drained: the array's L1 counters. Over a
        job they sum to what the machine counts.
    """

    #: Cycles ``busy`` stays high beyond the job's MAC cycles: the L1 read and
    #: :class:`PeArray`'s three stages.
    OVERHEAD = 1 + PeArray.LATENCY

    def __init__(self, *, kp=2, hp=2, wp=2, width=16, acc_width=48, value_width=32,
                 l1_input_words=1024, l1_weight_words=1024, psum_entries=256,
                 max_taps=7, coord_width=None):
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
        check_int("value_width", value_width, 16, 32)
        check_int("l1_input_words", l1_input_words, 1, 1 << 16)
        check_int("l1_weight_words", l1_weight_words, 1, 1 << 16)
        check_int("psum_entries", psum_entries, 1, 1 << 16)
        check_int("max_taps", max_taps, 1, 64)
        if coord_width is None:
            coord_width = value_width
        check_int("coord_width", coord_width, 8, value_width)
        self._kp, self._hp, self._wp = kp, hp, wp
        self._width = width
        self._acc_width = acc_width
        self._value_width = value_width
        self._l1_input_words = l1_input_words
        self._l1_weight_words = l1_weight_words
        self._psum_entries = psum_entries
        self._max_taps = max_taps
        self._coord_width = coord_width
        pes, positions = self.pes, self.positions
        members = {"start": In(1)}
        for name in JOB:
            members[name] = In(signed(value_width) if name in SIGNED
                               else unsigned(value_width))
        for name in LAYER + RUN_BLOCK:
            members[name] = In(unsigned(value_width))
        members.update({
            "busy": Out(1),
            "error": Out(1),
            "in_raddr": Out(data.ArrayLayout(unsigned(_bits(l1_input_words)), positions)),
            "in_re": Out(positions),
            "in_rdata": In(data.ArrayLayout(signed(width), positions)),
            "w_raddr": Out(data.ArrayLayout(unsigned(_bits(l1_weight_words)), kp)),
            "w_re": Out(kp),
            "w_rdata": In(data.ArrayLayout(signed(width), kp)),
            "bank_raddr": Out(_bits(psum_entries)),
            "bank_re": Out(1),
            "bank_rdata": In(data.ArrayLayout(signed(acc_width), pes)),
            "bank_waddr": Out(_bits(psum_entries)),
            "bank_we": Out(pes),
            "bank_wdata": Out(data.ArrayLayout(signed(acc_width), pes)),
            "macs": Out(range(pes + 1)),
            "computing": Out(1),
            "input_reads": Out(range(positions + 1)),
            "weight_reads": Out(range(kp + 1)),
            "psum_reads": Out(range(pes + 1)),
            "psum_writes": Out(range(pes + 1)),
        })
        super().__init__(members)

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
    def value_width(self):
        return self._value_width

    @property
    def l1_input_words(self):
        return self._l1_input_words

    @property
    def l1_weight_words(self):
        return self._l1_weight_words

    @property
    def psum_entries(self):
        return self._psum_entries

    @property
    def max_taps(self):
        return self._max_taps

    @property
    def coord_width(self):
        return self._coord_width

    @property
    def positions(self):
        """Output positions of the built block, the input copies: ``hp * wp``."""
        return self._hp * self._wp

    @property
    def pes(self):
        """PEs of the built block, the PE banks: ``kp * hp * wp``."""
        return self._kp * self.positions

    @property
    def count_limits(self):
        """The largest legal value of each count: ``kb, f, hb, wb`` up to
        ``psum_entries`` (each block has its own entry), ``c`` up to the smaller L1 copy
        (each channel takes a word of each), ``T, R, S`` up to ``max_taps``; none above
        the walker's 65535."""
        blocks = min(self._psum_entries, _COUNT_MAX)
        channels = min(self._l1_input_words, self._l1_weight_words, _COUNT_MAX)
        limits = {name: blocks for name in ("kb", "f", "hb", "wb")}
        limits["c"] = channels
        limits.update({name: self._max_taps for name in ("T", "R", "S")})
        return limits

    def cycles(self, job, T, R, S):
        """``busy`` cycles of a good ``job`` (a dict of the job registers) with kernel
        ``T x R x S``: its MAC cycles plus :attr:`OVERHEAD`."""
        return (job["kb"] * job["f"] * job["hb"] * job["wb"] * job["c"] * T * R * S
                + self.OVERHEAD)

    # --- the hardware ---------------------------------------------------------------------

    def stream_widths(self):
        """Bits each of the walker's streams is computed in: the input address, the
        weight address, the entry, the frame, row and column coordinates, the remaining
        filters, rows and columns (see *Arithmetic*)."""
        vw = self._value_width
        blocks = self.count_limits["kb"]
        widths = [0] * _STREAMS
        widths[_IN] = min(vw, _bits(self._l1_input_words)
                          + (2 * self._max_taps + 1).bit_length() + 1)
        widths[_WT] = min(vw, _bits(self._l1_weight_words) + 2)
        widths[_ENTRY] = min(vw, _bits(self._psum_entries) + 1)
        for stream in (_GF, _GH, _GW):
            widths[stream] = self._coord_width
        for stream, side in ((_RK, self._kp), (_RH, self._hp), (_RW, self._wp)):
            widths[stream] = min(vw, ((blocks - 1) * side + side).bit_length() + 1)
        return widths

    def elaborate(self, platform):
        m = Module()
        kp, hp, wp = self._kp, self._hp, self._wp
        vw = self._value_width
        limits = self.count_limits
        count_widths = [limits[name].bit_length() for name in _COUNTS]
        widths = self.stream_widths()

        busy = self.busy
        launch = Signal()
        m.d.comb += launch.eq(self.start & ~busy)

        def in_range(value, limit):
            """``1 <= value <= limit`` for a constant ``limit``, ``value`` unsigned."""
            edge = limit.bit_length()
            low = value[:edge]
            return (value[edge:] == 0) & (low != 0) & (low <= limit)

        def big(value, bits, signed=True):
            """``value`` is outside ``-2 ** bits .. 2 ** bits - 1`` (read as signed), or
            (``signed=False``) at least ``2 ** bits``."""
            if len(value) <= bits:
                return Const(0)
            if not signed:
                return value[bits:] != 0
            return ~fits_signed(value, bits + 1)

        # ---- the start's checks: counts in range, the run-time block within the built one
        counts = [getattr(self, name) for name in _COUNTS]
        checks = []
        for name, value in zip(_COUNTS, counts):
            checks.append(in_range(value, limits[name]))
        for name, built in zip(RUN_BLOCK, (kp, hp, wp)):
            checks.append(in_range(getattr(self, name), built))
        job_ok = Signal()
        m.d.comb += job_ok.eq(Cat(*checks).all())
        bad_start = Signal()
        m.d.sync += bad_start.eq(launch & ~job_ok)

        # ---- the walker: eight levels, nine streams; stopped (reset) by an error
        abort = Signal()
        walker = LoopWalker(levels=len(_LEVELS), streams=_STREAMS,
                            count_width=max(count_widths), value_width=vw,
                            active=[tuple(_LEVELS.index(level) for level in _ACTIVE[s])
                                    for s in range(_STREAMS)],
                            value_widths=widths, count_widths=count_widths,
                            modulus_widths=[0] * len(_LEVELS))
        m.submodules.walker = ResetInserter(abort)(walker)
        # T, R, S are checked at the start: their low bits are their values, and their
        # products are narrow.
        tap_bits = self._max_taps.bit_length()
        rs = Signal(2 * tap_bits)
        trs = Signal(3 * tap_bits)
        m.d.comb += [rs.eq(self.R[:tap_bits] * self.S[:tap_bits]),
                     trs.eq(self.T[:tap_bits] * rs)]
        strides = {
            _IN: {"f": self.in_f, "hb": self.in_hb, "wb": self.wp_step, "c": self.in_c,
                  "t": self.in_t, "r": self.in_r, "s": 1},
            _WT: {"kb": self.w_kb, "c": trs, "t": rs, "r": self.S[:tap_bits], "s": 1},
            _ENTRY: {"kb": self.e_kb, "f": self.e_f, "hb": self.e_hb, "wb": 1},
            _GF: {"f": self.sf},
            _GH: {"hb": self.hp_step},
            _GW: {"wb": self.wp_step},
            _RK: {"kb": -self.kp_run},
            _RH: {"hb": -self.hp_run},
            _RW: {"wb": -self.wp_run},
        }
        assert all(set(strides[s]) == set(_ACTIVE[s]) for s in range(_STREAMS))

        def remaining(value, width):
            """A ``rem_*`` register as the walker's base: read as signed, so one with its
            top bit set is negative; in ``width`` bits, a value too large for them is
            clamped to the largest, which keeps every lane active in every block."""
            if width == vw:
                return value
            return Mux(value[vw - 1], Const((1 << width) - 1, width),
                       Mux(value[width - 1:] != 0, Const((1 << (width - 1)) - 1, width),
                           value[:width]))

        bases = {_IN: self.in_base, _WT: 0, _ENTRY: 0, _GF: self.gf, _GH: self.gh,
                 _GW: self.gw, _RK: remaining(self.rem_k, widths[_RK]),
                 _RH: remaining(self.rem_h, widths[_RH]),
                 _RW: remaining(self.rem_w, widths[_RW])}
        for l, level in enumerate(_LEVELS):
            m.d.comb += [walker.count[l].eq(counts[l]), walker.modulus[l].eq(1),
                         walker.quotient[l].eq(0)]
            for s in range(_STREAMS):
                if level in strides[s]:
                    m.d.comb += walker.stride[l][s].eq(_low(strides[s][level], widths[s]))
        for s in range(_STREAMS):
            m.d.comb += walker.base[s].eq(_low(bases[s], widths[s]))
        m.d.comb += [walker.start.eq(launch & job_ok), walker.out.ready.eq(1)]

        # ---- stage W: the walker's iteration; the reads go out
        p = walker.out.payload
        valid = walker.out.valid
        value = [p.value[s][:widths[s]].as_signed() for s in range(_STREAMS)]
        index = {level: p.index[l][:count_widths[l]] for l, level in enumerate(_LEVELS)}
        block_first = p.first[4:].all()
        block_last = p.last[4:].all()
        job_last = p.last.all()
        # The level this iteration's transfer moves: the deepest one not at its last.
        moving = {}
        for l, level in enumerate(_LEVELS):
            moving[level] = ~p.last[l] & (p.last[l + 1:].all() if l + 1 < len(_LEVELS)
                                          else 1)

        # The weight addresses and the entries are walked in few bits, and exactly: every
        # one a block with an active PE uses is checked (its first filter row's weight
        # every cycle, its entry), the walk stops at the first bad one, and such a block
        # steps each from a value that was checked: one of an earlier cycle of the block,
        # or of the first cycle of an earlier block, which has an active PE if this one
        # does (the remaining counts only fall). So a stride in -2 ** b .. 2 ** b - 1 (b:
        # the buffer's address bits) gives the sum exactly, in b + 2 signed bits (b + 1
        # for the entries, which only need to be found inside or not; the other filter
        # rows add their offsets to the exact weight address); any other stride gives a
        # value outside the buffer whatever it is: the value is `poisoned` instead.
        def poisoned(stream, size, signed_strides):
            if widths[stream] == vw:
                return Const(0)
            flag = Signal(name=f"poisoned_{stream}")
            bits = _bits(size)
            steps = []
            for level in _ACTIVE[stream]:
                stride = strides[stream][level]
                if not isinstance(stride, int):
                    steps.append(moving[level] & big(stride, bits, signed_strides[level]))
            # A level without the stream between two with it restarts it from the outer
            # one (checked, as above): clean. One inside all of the stream's keeps it.
            deepest = max(_LEVELS.index(level) for level in _ACTIVE[stream])
            inner = [moving[level] for level in _LEVELS[deepest + 1:]]
            keep = Cat(*inner).any() if inner else Const(0)
            with m.If(walker.start):
                m.d.sync += flag.eq(0)
            with m.Elif(valid & ~keep):
                m.d.sync += flag.eq(Cat(*steps).any())
            return flag

        wt_poisoned = poisoned(_WT, self._l1_weight_words,
                               {"kb": True, "c": False, "t": False, "r": False})
        entry_poisoned = poisoned(_ENTRY, self._psum_entries,
                                  {"kb": True, "f": True, "hb": True})

        def prefix(remaining, run, n, name):
            """Lane ``x`` active: ``x < run`` and ``x < remaining`` (a prefix mask)."""
            mask = Signal(n, name=name)
            run = run[:n.bit_length()]      # checked at the start: 1..n
            m.d.comb += mask.eq(Cat(*((remaining > x) & (run > x) for x in range(n))))
            return mask

        k_ok = prefix(value[_RK], self.kp_run, kp, "k_ok")
        h_ok = prefix(value[_RH], self.hp_run, hp, "h_ok")
        w_ok = prefix(value[_RW], self.wp_run, wp, "w_ok")
        any_k, any_pos = k_ok[0], h_ok[0] & w_ok[0]
        any_pe = Signal()
        m.d.comb += any_pe.eq(any_k & any_pos)

        def inside(coordinate, size):
            return (coordinate >= 0) & (coordinate < size)

        # The taps' coordinates: the block's (a walker stream) plus the tap's index.
        cw = self._coord_width

        def coordinate(stream, tap):
            at = Signal(signed(cw), name=f"coordinate_{stream}")
            m.d.comb += at.eq(p.value[stream][:cw] + index[tap])
            return at

        gf, gh, gw = coordinate(_GF, "t"), coordinate(_GH, "r"), coordinate(_GW, "s")
        if cw == vw:
            # Exactly the definition: each position's offset added to the signed
            # coordinate without wrapping, against the full sizes.
            def lanes(at, step, size, n):
                return Cat(*(inside(at + step * x, size) for x in range(n)))
        else:
            # In cw bits: a size beyond them is as good as 2 ** (cw - 1).
            def lanes(at, step, size, n):
                top = 1 << (cw - 1)
                size = Mux(size[cw - 1:] != 0, top, size[:cw - 1])
                out = []
                for x in range(n):
                    lane = Signal(signed(cw))
                    m.d.comb += lane.eq(at + step[:cw] * x if x else at)
                    out.append(inside(lane, size))
                return Cat(*out)

        f_in = Signal()
        m.d.comb += f_in.eq(lanes(gf, 0, self.F, 1))
        h_in = Signal(hp)
        w_in = Signal(wp)
        m.d.comb += [h_in.eq(lanes(gh, self.sh, self.H, hp)),
                     w_in.eq(lanes(gw, self.sw, self.W, wp))]
        h_read = Signal(hp)
        w_read = Signal(wp)
        m.d.comb += [h_read.eq(h_ok & h_in), w_read.eq(w_ok & w_in)]
        row_read = Signal()
        m.d.comb += row_read.eq(valid & any_k & f_in)

        def offset(step, width):
            """A lane's step in ``width`` bits, and whether it is at least ``2 **
            width`` (which puts every lane beyond the first outside a buffer of at most
            ``2 ** (width - 1)`` words, from any value the stream holds)."""
            if width == vw:
                return step, Const(0)
            return step[:width], big(step, width, signed=False)

        # Inputs: position (i, j) reads its copy at a + i*in_row + j*in_col.
        wi = widths[_IN]
        in_row, row_big = offset(self.in_row, wi)
        in_col, col_big = offset(self.in_col, wi)
        input_errors = []
        for i in range(hp):
            for j in range(wp):
                pos = i * wp + j
                addr = Signal(signed(wi + 7), name=f"in_addr{pos}")
                m.d.comb += addr.eq(value[_IN] + in_row * i + in_col * j)
                wants = Signal(name=f"in_wants{pos}")
                m.d.comb += wants.eq(row_read & h_read[i] & w_read[j])
                ok = inside(addr, self._l1_input_words)
                if i:
                    ok &= ~row_big
                if j:
                    ok &= ~col_big
                m.d.comb += [self.in_raddr[pos].eq(addr), self.in_re[pos].eq(wants & ok)]
                input_errors.append(wants & ~ok)
        # Weights: filter row kk reads its copy at w + kk*w_row.
        ww = widths[_WT]
        w_row, w_row_big = offset(self.w_row, ww)
        weight_errors = []
        for kk in range(kp):
            addr = Signal(signed(ww + 6), name=f"w_addr{kk}")
            m.d.comb += addr.eq(value[_WT] + w_row * kk)
            wants = Signal(name=f"w_wants{kk}")
            m.d.comb += wants.eq(valid & any_pos & k_ok[kk])
            ok = inside(addr, self._l1_weight_words) & ~wt_poisoned
            if kk:
                ok &= ~w_row_big
            m.d.comb += [self.w_raddr[kk].eq(addr), self.w_re[kk].eq(wants & ok)]
            weight_errors.append(wants & ~ok)
        # The block's entry: its accumulators load from it at its first cycle.
        entry = value[_ENTRY]
        entry_ok = Signal()
        if widths[_ENTRY] == vw:
            m.d.comb += entry_ok.eq(inside(entry, self._psum_entries))
        else:
            m.d.comb += entry_ok.eq(~entry_poisoned
                                    & (entry.as_unsigned() < self._psum_entries))
        load = Signal()
        m.d.comb += load.eq(self.load != 0)
        # The read is made PeArray.ACC_IN_DELAY cycles late, so that its data arrives in
        # the PEs' accumulate stage (they sample acc_in there: no registers carry it).
        entry_bits = _bits(self._psum_entries)
        bank_read = Signal()
        m.d.comb += bank_read.eq(valid & block_first & load & any_pe & entry_ok)
        late = delay_line(m, Cat(entry[:entry_bits], bank_read), PeArray.ACC_IN_DELAY,
                          "bank_read", reset=True)
        m.d.comb += [self.bank_raddr.eq(late[:entry_bits]), self.bank_re.eq(late[-1])]

        err_now = Signal()
        m.d.comb += err_now.eq(Cat(*input_errors, *weight_errors,
                                   valid & any_pe & ~entry_ok, bad_start).any())
        m.d.comb += abort.eq(err_now)
        final = Signal()
        m.d.comb += final.eq((valid & job_last) | err_now)

        # This cycle's reads and MACs.
        def popcount(bits, n):
            return sum((bits[x] for x in range(n)), Const(0, range(n + 1)))

        nk, nh, nw = popcount(k_ok, kp), popcount(h_ok, hp), popcount(w_ok, wp)
        block_pes = Signal(range(self.pes + 1))
        m.d.comb += block_pes.eq(nk * nh * nw)
        m.d.comb += [
            self.macs.eq(Mux(valid, block_pes, 0)),
            self.computing.eq(valid),
            self.input_reads.eq(Mux(row_read, popcount(h_read, hp) * popcount(w_read, wp),
                                    0)),
            self.weight_reads.eq(Mux(valid & any_pos, nk, 0)),
            self.psum_reads.eq(Mux(bank_read, block_pes, 0)),
        ]

        # ---- stage D: the data is back; into the PEs
        m.submodules.pe = pe = PeArray(kp=kp, hp=hp, wp=wp, width=self._width,
                                       acc_width=self._acc_width)
        valid_d = Signal()
        first_d = Signal()
        last_d = Signal()
        load_d = Signal()
        mask_d = Signal(self.positions)
        m.d.sync += [valid_d.eq(valid), first_d.eq(block_first), last_d.eq(block_last),
                     load_d.eq(load), mask_d.eq(self.in_re)]
        m.d.comb += [
            pe.valid.eq(valid_d),
            pe.first.eq(first_d),
            pe.last.eq(last_d),
            pe.load.eq(load_d),
            pe.input_mask.eq(mask_d),
            pe.inputs.eq(self.in_rdata),
            pe.weights.eq(self.w_rdata),
            pe.acc_in.eq(self.bank_rdata),
        ]

        # ---- the drain: PeArray.LATENCY cycles after stage D, the block's entry and mask
        drain_info = Signal(entry_bits + 1 + kp + hp + wp)
        m.d.comb += drain_info.eq(Cat(entry[:entry_bits], entry_ok, k_ok, h_ok, w_ok))
        drained = delay_line(m, drain_info, self.OVERHEAD, "drain")
        entry_x = drained[:entry_bits]
        entry_ok_x = drained[entry_bits]
        k_x = drained[entry_bits + 1:entry_bits + 1 + kp]
        h_x = drained[entry_bits + 1 + kp:entry_bits + 1 + kp + hp]
        w_x = drained[entry_bits + 1 + kp + hp:]
        drain = Signal()
        m.d.comb += drain.eq(pe.acc_valid & entry_ok_x)
        m.d.comb += [self.bank_waddr.eq(entry_x), self.bank_wdata.eq(pe.acc_out)]
        for kk in range(kp):
            for i in range(hp):
                for j in range(wp):
                    lane = (kk * hp + i) * wp + j
                    m.d.comb += self.bank_we[lane].eq(drain & k_x[kk] & h_x[i] & w_x[j])
        m.d.comb += self.psum_writes.eq(
            Mux(drain, popcount(k_x, kp) * popcount(h_x, hp) * popcount(w_x, wp), 0))

        # ---- busy and error
        finished = delay_line(m, final, self.OVERHEAD, "final", reset=True)
        failed = Signal()
        with m.If(launch):
            m.d.sync += [busy.eq(1), failed.eq(0)]
        with m.Else():
            with m.If(finished):
                m.d.sync += busy.eq(0)
            with m.If(err_now):
                m.d.sync += failed.eq(1)
        m.d.sync += self.error.eq(busy & finished & failed)
        return m
