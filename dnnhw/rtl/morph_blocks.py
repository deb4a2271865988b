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
from .morph_walker import LoopWalker


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
#: The walker's largest count.
_COUNT_MAX = (1 << 16) - 1


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
                 max_taps=7):
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
        self._kp, self._hp, self._wp = kp, hp, wp
        self._width = width
        self._acc_width = acc_width
        self._value_width = value_width
        self._l1_input_words = l1_input_words
        self._l1_weight_words = l1_weight_words
        self._psum_entries = psum_entries
        self._max_taps = max_taps
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

    def elaborate(self, platform):
        m = Module()
        kp, hp, wp = self._kp, self._hp, self._wp
        vw = self._value_width
        limits = self.count_limits
        count_width = max(limits.values()).bit_length()

        busy = self.busy
        launch = Signal()
        m.d.comb += launch.eq(self.start & ~busy)

        # ---- the start's checks: counts in range, the run-time block within the built one
        counts = [getattr(self, name) for name in _COUNTS]
        checks = []
        for name, value in zip(_COUNTS, counts):
            checks.append((value >= 1) & (value <= limits[name]))
        for name, built in zip(RUN_BLOCK, (kp, hp, wp)):
            value = getattr(self, name)
            checks.append((value >= 1) & (value <= built))
        job_ok = Signal()
        m.d.comb += job_ok.eq(Cat(*checks).all())
        bad_start = Signal()
        m.d.sync += bad_start.eq(launch & ~job_ok)

        # ---- the walker: eight levels, nine streams; stopped (reset) by an error
        abort = Signal()
        walker = LoopWalker(levels=len(_LEVELS), streams=_STREAMS, count_width=count_width,
                            value_width=vw)
        m.submodules.walker = ResetInserter(abort)(walker)
        tap_bits = self._max_taps.bit_length()
        rs = Signal(2 * tap_bits)
        trs = Signal(3 * tap_bits)
        m.d.comb += [rs.eq(self.R[:tap_bits] * self.S[:tap_bits]),
                     trs.eq(self.T[:tap_bits] * rs)]
        strides = {
            _IN: {"f": self.in_f, "hb": self.in_hb, "wb": self.wp_step, "c": self.in_c,
                  "t": self.in_t, "r": self.in_r, "s": 1},
            _WT: {"kb": self.w_kb, "c": trs, "t": rs, "r": self.S, "s": 1},
            _ENTRY: {"kb": self.e_kb, "f": self.e_f, "hb": self.e_hb, "wb": 1},
            _GF: {"f": self.sf, "t": 1},
            _GH: {"hb": self.hp_step, "r": 1},
            _GW: {"wb": self.wp_step, "s": 1},
            _RK: {"kb": -self.kp_run},
            _RH: {"hb": -self.hp_run},
            _RW: {"wb": -self.wp_run},
        }
        bases = {_IN: self.in_base, _WT: 0, _ENTRY: 0, _GF: self.gf, _GH: self.gh,
                 _GW: self.gw, _RK: self.rem_k, _RH: self.rem_h, _RW: self.rem_w}
        for l, level in enumerate(_LEVELS):
            m.d.comb += [walker.count[l].eq(counts[l]), walker.modulus[l].eq(1),
                         walker.quotient[l].eq(0)]
            for s in range(_STREAMS):
                m.d.comb += walker.stride[l][s].eq(strides[s].get(level, 0))
        for s in range(_STREAMS):
            m.d.comb += walker.base[s].eq(bases[s])
        m.d.comb += [walker.start.eq(launch & job_ok), walker.out.ready.eq(1)]

        # ---- stage W: the walker's iteration; the reads go out
        p = walker.out.payload
        valid = walker.out.valid
        value = [p.value[s].as_signed() for s in range(_STREAMS)]
        block_first = p.first[4:].all()
        block_last = p.last[4:].all()
        job_last = p.last.all()

        def prefix(remaining, run, n, name):
            """Lane ``x`` active: ``x < run`` and ``x < remaining`` (a prefix mask)."""
            mask = Signal(n, name=name)
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

        f_in = Signal()
        m.d.comb += f_in.eq(inside(value[_GF], self.F))
        h_in = Signal(hp)
        w_in = Signal(wp)
        m.d.comb += [h_in.eq(Cat(*(inside(value[_GH] + self.sh * i, self.H)
                                   for i in range(hp)))),
                     w_in.eq(Cat(*(inside(value[_GW] + self.sw * j, self.W)
                                   for j in range(wp))))]
        h_read = Signal(hp)
        w_read = Signal(wp)
        m.d.comb += [h_read.eq(h_ok & h_in), w_read.eq(w_ok & w_in)]
        row_read = Signal()
        m.d.comb += row_read.eq(valid & any_k & f_in)

        # Inputs: position (i, j) reads its copy at a + i*in_row + j*in_col.
        input_errors = []
        for i in range(hp):
            for j in range(wp):
                pos = i * wp + j
                addr = Signal(signed(vw + 7), name=f"in_addr{pos}")
                m.d.comb += addr.eq(value[_IN] + self.in_row * i + self.in_col * j)
                wants = Signal(name=f"in_wants{pos}")
                m.d.comb += wants.eq(row_read & h_read[i] & w_read[j])
                ok = inside(addr, self._l1_input_words)
                m.d.comb += [self.in_raddr[pos].eq(addr), self.in_re[pos].eq(wants & ok)]
                input_errors.append(wants & ~ok)
        # Weights: filter row kk reads its copy at w + kk*w_row.
        weight_errors = []
        for kk in range(kp):
            addr = Signal(signed(vw + 6), name=f"w_addr{kk}")
            m.d.comb += addr.eq(value[_WT] + self.w_row * kk)
            wants = Signal(name=f"w_wants{kk}")
            m.d.comb += wants.eq(valid & any_pos & k_ok[kk])
            ok = inside(addr, self._l1_weight_words)
            m.d.comb += [self.w_raddr[kk].eq(addr), self.w_re[kk].eq(wants & ok)]
            weight_errors.append(wants & ~ok)
        # The block's entry: its accumulators load from it at its first cycle.
        entry = value[_ENTRY]
        entry_ok = Signal()
        m.d.comb += entry_ok.eq(inside(entry, self._psum_entries))
        load = Signal()
        m.d.comb += load.eq(self.load != 0)
        m.d.comb += [self.bank_raddr.eq(entry),
                     self.bank_re.eq(valid & block_first & load & any_pe & entry_ok)]

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
            self.psum_reads.eq(Mux(self.bank_re, block_pes, 0)),
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
        entry_bits = _bits(self._psum_entries)
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
