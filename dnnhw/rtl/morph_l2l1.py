"""The L2-L1 transfer engine of Morph's array: one tile between the levels, a word a cycle.

Every L2-L1 job of the sequencer (``l1_read_inputs``, ``l1_read_weights``,
``l1_read_psums``, ``l1_write_psums``; :data:`dnnhw.rtl.morph_program.RUNS`) is a nest of
four loops over the L2 tile, ``(n0, n1, n2, n3)`` row-major, whose word ``(i0, i1, i2,
i3)`` sits at L2 address ``l2_addr + i0*s0 + i1*s1 + i2*s2 + i3``
(``docs/morph-array.md``, *L2 to L1*). Inputs and weights go to (come from) the L1 copies
densely, word ``p`` of the walk at address ``p``; the copies are written together, so the
engine drives one write port that the top broadcasts. Partial sums go to the PE banks:
word ``(k, f, h, w)`` belongs to PE ``(k mod Kp, h mod Hp, w mod Wp)`` of the job's block,
at entry ``(k div Kp)*e0 + f*e1 + (h div Hp)*e2 + w div Wp``. That is the
:class:`~dnnhw.rtl.morph_walker.LoopWalker` with two streams (the L2 address, and the
entry stepping with the quotients) and the moduli ``Kp, 1, Hp, Wp``, whose remainders
name the bank. :class:`dnnhw.sim.morph_machine.Machine` (``_engine``, kinds ``"l2_l1"``
and ``"l1_l2"``) is the reference.

Both sides are on chip, so nothing ever waits: one read a cycle from the source, its word
written into the destination the next cycle.
"""

from amaranth.hdl import Cat, Module, Mux, ResetInserter, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ._checks import check_int
from .morph_walker import LoopWalker, fits_signed


__all__ = ["L2L1Engine"]

#: The ``operand`` codes.
INPUTS, WEIGHTS, PSUMS = 0, 1, 2


def _bits(limit):
    """Bits of an address below ``limit`` (at least one)."""
    return max(1, (limit - 1).bit_length())


class L2L1Engine(wiring.Component):
    """Moves one tile between the L2 and the L1 (inputs, weights or partial sums).

    A ``start`` pulse while idle launches the job in the job registers (``write``,
    ``operand``, ``counts``, ``strides``, ``l2_addr``, ``entry_strides``, ``kp_run``,
    ``hp_run``, ``wp_run``), which must hold until ``busy`` falls. ``busy`` is high from
    the cycle after ``start`` until the cycle the last word is written: for a job of
    ``words = n0*n1*n2*n3`` words, exactly ``words +`` :attr:`OVERHEAD` cycles (1: the
    source read of each word precedes its destination write by one cycle), in both
    directions. ``start`` may come again in the first cycle ``busy`` is low.

    Word ``p`` of the walk is read in busy cycle ``p`` (counting from 0) and written in
    busy cycle ``p + 1``; ``beat`` marks the write cycles. A fill (``write`` = 0) reads
    the L2 and writes the operand's L1 (``in_*``, ``w_*`` or the PE banks' ``bank_we``);
    a write-back (``write`` = 1, partial sums only) reads the PE banks (``bank_re``) and
    writes the L2. Reads and writes of the banks never share a job, so ``bank`` and
    ``entry`` serve both: the word read in a write-back, the word written in a fill.

    Errors: a job that is not one of the four (``operand`` 3, a write-back of inputs or
    weights), a count outside ``1..65535`` (a count of zero, or one beyond the walker's
    16-bit counters), or for partial sums a block side outside ``1`` to the built one,
    moves nothing, and ``busy`` is high for :attr:`OVERHEAD` cycles. A word whose L2
    address is outside ``0 .. l2_words - 1``, whose L1 address is outside the operand's
    copy, or whose entry is outside the PE bank, ends the job there, as the machine
    raises there: the words before it are moved, it and the rest are not, and ``busy``
    falls the cycle after (``busy`` is then high for the words moved plus
    :attr:`OVERHEAD`). Either way ``error`` is high for one cycle, the first with
    ``busy`` low. Addresses and entries are the job registers' sums modulo
    ``2 ** value_width`` (the sequencer's two's complement registers): a negative one
    reads as at least ``2 ** (value_width - 1)``, which is outside every buffer (the
    parameter checks make sure of that).
    The hardware walks them in far fewer bits (one above a buffer's address bits), with
    the same result for every job: see :meth:`elaborate`.

    Parameters
    ----------
    kp, hp, wp : int
        The built PE block, 1..16 each: the banks are ``kp * hp * wp``, PE ``(kk, i, j)``
        at ``(kk * hp + i) * wp + j``.
    value_width : int
        Bits of the job registers, 16..32 (the sequencer's ``value_width``).
    l2_addr_width : int
        Bits of an L2 word address, 4..24, below ``value_width``.
    l2_words : int or None
        Words of the L2, 1..``2 ** l2_addr_width`` (default: all of them).
    word_width : int
        Bits of a word, 8..64, the same in the L2 and the L1.
    l1_input_words, l1_weight_words : int
        Words of one L1 input copy, of one weight copy, 1..65536.
    psum_entries : int
        Entries of one PE's partial-sum bank, 1..65536 and at most
        ``2 ** (value_width - 1)``.

    Members
    -------
    start : In(1)
    write : In(1)
        0: L2 to L1; 1: L1 to L2 (partial sums only).
    operand : In(2)
        0 inputs, 1 weights, 2 partial sums.
    counts : In(ArrayLayout(value_width, 4))
        ``n0`` (outermost) to ``n3``.
    strides : In(ArrayLayout(value_width, 3))
        L2 strides ``s0, s1, s2`` of the three outer levels (the innermost's is 1).
    l2_addr : In(value_width)
        L2 address of the first word.
    entry_strides : In(ArrayLayout(value_width, 3))
        ``e0, e1, e2`` of the partial-sum entries.
    kp_run, hp_run, wp_run : In(value_width)
        The job's PE block (the mapping's), each at most the built one.
    busy, beat, error : Out(1)
    l2_raddr : Out(l2_addr_width)
    l2_re : Out(1)
    l2_rdata : In(word_width)
        Data of the read enabled in the previous cycle, held while ``l2_re`` is low.
    l2_waddr : Out(l2_addr_width)
    l2_wdata : Out(word_width)
    l2_we : Out(1)
    in_waddr, in_wdata, in_we : Out
        The L1 input write port (every copy).
    w_waddr, w_wdata, w_we : Out
        The L1 weight write port (every copy).
    bank : Out(range of ``kp * hp * wp``)
    entry : Out(range of ``psum_entries``)
    bank_we : Out(1)
    bank_wdata : Out(word_width)
    bank_re : Out(1)
    bank_rdata : In(word_width)
        The selected bank's data of the read enabled in the previous cycle.
    """

    #: Cycles of ``busy`` beyond the job's words.
    OVERHEAD = 1

    def __init__(self, *, kp, hp, wp, value_width=32, l2_addr_width, l2_words=None,
                 word_width, l1_input_words, l1_weight_words, psum_entries):
        self._kp = check_int("kp", kp, 1, 16)
        self._hp = check_int("hp", hp, 1, 16)
        self._wp = check_int("wp", wp, 1, 16)
        self._value_width = check_int("value_width", value_width, 16, 32)
        self._l2_addr_width = check_int("l2_addr_width", l2_addr_width, 4, 24)
        if l2_addr_width >= value_width:
            raise ValueError(f"l2_addr_width must be below value_width ({value_width}), "
                             f"got {l2_addr_width}")
        if l2_words is None:
            l2_words = 1 << l2_addr_width
        self._l2_words = check_int("l2_words", l2_words, 1, 1 << l2_addr_width)
        self._word_width = check_int("word_width", word_width, 8, 64)
        self._l1_input_words = check_int("l1_input_words", l1_input_words, 1, 65536)
        self._l1_weight_words = check_int("l1_weight_words", l1_weight_words, 1, 65536)
        self._psum_entries = check_int("psum_entries", psum_entries, 1,
                                       min(65536, 1 << (value_width - 1)))
        values = unsigned(value_width)
        word = unsigned(word_width)
        l2_addr = unsigned(l2_addr_width)
        super().__init__({
            "start": In(1),
            "write": In(1),
            "operand": In(2),
            "counts": In(data.ArrayLayout(values, 4)),
            "strides": In(data.ArrayLayout(values, 3)),
            "l2_addr": In(values),
            "entry_strides": In(data.ArrayLayout(values, 3)),
            "kp_run": In(values),
            "hp_run": In(values),
            "wp_run": In(values),
            "busy": Out(1),
            "beat": Out(1),
            "error": Out(1),
            "l2_raddr": Out(l2_addr),
            "l2_re": Out(1),
            "l2_rdata": In(word),
            "l2_waddr": Out(l2_addr),
            "l2_wdata": Out(word),
            "l2_we": Out(1),
            "in_waddr": Out(_bits(l1_input_words)),
            "in_wdata": Out(word),
            "in_we": Out(1),
            "w_waddr": Out(_bits(l1_weight_words)),
            "w_wdata": Out(word),
            "w_we": Out(1),
            "bank": Out(_bits(kp * hp * wp)),
            "entry": Out(_bits(psum_entries)),
            "bank_we": Out(1),
            "bank_wdata": Out(word),
            "bank_re": Out(1),
            "bank_rdata": In(word),
        })

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
    def value_width(self):
        return self._value_width

    @property
    def l2_addr_width(self):
        return self._l2_addr_width

    @property
    def l2_words(self):
        return self._l2_words

    @property
    def word_width(self):
        return self._word_width

    @property
    def l1_input_words(self):
        return self._l1_input_words

    @property
    def l1_weight_words(self):
        return self._l1_weight_words

    @property
    def psum_entries(self):
        return self._psum_entries

    def _stream_widths(self):
        """Bits of the L2 addresses and of the entries as walked: one above the buffer's
        (see :meth:`elaborate`), or ``value_width`` if that is no more."""
        return (min(self._value_width, _bits(self._l2_words) + 1),
                min(self._value_width, _bits(self._psum_entries) + 1))

    def elaborate(self, platform):
        m = Module()
        count_width = 16
        vw = self._value_width
        # The two streams are walked in few bits, with the result of the job registers'
        # sums modulo 2 ** value_width. Every word is checked (its L2 address always, its
        # entry for partial sums) and the walk stops at the first bad one, so each level
        # steps from the value of a word already checked, inside a buffer of at most
        # 2 ** b words (b = _bits(size)). A stride in -2 ** b .. 2 ** b - 1 (a small one)
        # then gives the true sum modulo 2 ** (b + 1), which is inside the buffer exactly
        # when the sum is; any other stride gives a value outside the buffer whatever it
        # is: the word is `poisoned` instead, as is a first word at 2 ** b or beyond.
        l2_width, entry_width = self._stream_widths()
        built = (self._kp, 1, self._hp, self._wp)
        # A level's modulus is at most the built block side (checked for partial sums, 1
        # otherwise); f has none.
        modulus_widths = [0 if side == 1 else side.bit_length() for side in built]
        # A job that stops early resets the walker: it has no other way to end a walk.
        abort = Signal()
        walker = LoopWalker(levels=4, streams=2, count_width=count_width,
                            value_width=max(l2_width, entry_width),
                            value_widths=(l2_width, entry_width),
                            modulus_widths=modulus_widths,
                            by_quotient=((), (0, 2, 3)))
        m.submodules.walker = ResetInserter(abort)(walker)

        psums = self.operand == PSUMS
        # Stream 0: the L2 address; stream 1: the PE-bank entry, stepping with the
        # quotients of k, h, w by the job's block (f has modulus 1).
        moduli = [self.kp_run, 1, self.hp_run, self.wp_run]
        entry_strides = [self.entry_strides[0], self.entry_strides[1],
                         self.entry_strides[2], 1]
        l2_strides = [self.strides[0], self.strides[1], self.strides[2], 1]
        for l in range(4):
            m.d.comb += [
                walker.count[l].eq(self.counts[l][:count_width]),
                walker.modulus[l].eq(Mux(psums, moduli[l], 1)),
                walker.quotient[l].eq(0b00 if l == 1 else 0b10),
                walker.stride[l][0].eq(l2_strides[l]),
                walker.stride[l][1].eq(entry_strides[l]),
            ]
        m.d.comb += [walker.base[0].eq(self.l2_addr), walker.base[1].eq(0),
                     walker.out.ready.eq(1)]

        payload = walker.out.payload
        last = payload.last

        def big(value, size):
            """``value`` is not small for a buffer of ``size`` words."""
            return ~fits_signed(value, _bits(size) + 1)

        def moves(l):
            """Level ``l`` is the one this transfer moves."""
            return ~last[l] & (last[l + 1:].all() if l < 3 else 1)

        # The entry steps at k, h and w only when the remainder wraps (for partial sums,
        # the only jobs whose entries count, the modulus is the job's block side).
        entry_steps = []
        for l in range(3):
            width = modulus_widths[l]
            entry_steps.append(payload.remainder[l][:width] + 1 >= moduli[l][:width]
                               if width else 1)
        l2_poisoned = Signal()
        entry_poisoned = Signal()
        if l2_width < vw:
            with m.If(walker.start):
                m.d.sync += l2_poisoned.eq(self.l2_addr[_bits(self._l2_words):] != 0)
            with m.Elif(walker.out.valid):
                m.d.sync += l2_poisoned.eq(Cat(*(
                    moves(l) & big(l2_strides[l], self._l2_words) for l in range(3))).any())
        if entry_width < vw:
            with m.If(walker.start):
                m.d.sync += entry_poisoned.eq(0)
            with m.Elif(walker.out.valid):
                m.d.sync += entry_poisoned.eq(Cat(*(
                    moves(l) & entry_steps[l] & big(entry_strides[l], self._psum_entries)
                    for l in range(3))).any())

        def above(value, limit):
            """``value > limit`` (a constant), ``value`` unsigned."""
            edge = max(1, limit.bit_length())
            return (value[edge:] != 0) | (value[:edge] > limit)

        # The job, checked at the start.
        bad_job = Signal()
        checks = [self.operand == 3, self.write & ~psums]
        checks += [(c == 0) | (c >> count_width != 0) for c in self.counts]
        for run, side in ((self.kp_run, self._kp), (self.hp_run, self._hp),
                          (self.wp_run, self._wp)):
            checks.append(psums & ((run == 0) | above(run, side)))
        m.d.comb += bad_job.eq(Cat(*checks).any())

        # The dense L1 address of inputs and weights: the words moved so far.
        position = Signal(range(max(self._l1_input_words, self._l1_weight_words) + 1))
        l2_value = payload.value[0][:l2_width]
        entry_value = payload.value[1][:entry_width]
        limit = Mux(self.operand == INPUTS, self._l1_input_words, self._l1_weight_words)
        l1_ok = Mux(psums, ~entry_poisoned & (entry_value < self._psum_entries),
                    position < limit)
        word_ok = Signal()
        m.d.comb += word_ok.eq(~l2_poisoned & (l2_value < self._l2_words) & l1_ok)
        move = Signal()     # this cycle's word is read from its source
        m.d.comb += [move.eq(walker.out.valid & word_ok),
                     abort.eq(walker.out.valid & ~word_ok)]
        bank = Signal.like(self.bank)
        m.d.comb += bank.eq((payload.remainder[0] * self._hp + payload.remainder[2])
                            * self._wp + payload.remainder[3])

        # The word read this cycle is written the next: its destination, registered.
        pending = Signal()
        pending_position = Signal.like(position)
        pending_l2 = Signal(self._l2_addr_width)
        pending_bank = Signal.like(self.bank)
        pending_entry = Signal.like(self.entry)
        m.d.sync += [pending.eq(move), pending_position.eq(position),
                     pending_l2.eq(l2_value), pending_bank.eq(bank),
                     pending_entry.eq(entry_value)]
        with m.If(move):
            m.d.sync += position.eq(position + 1)

        # A refused job keeps busy high for one cycle, moving nothing.
        refused = Signal()
        fault = Signal()    # the job (running or just ended) has an error
        accept = Signal()
        m.d.comb += [
            self.busy.eq(walker.running | pending | refused),
            accept.eq(self.start & ~self.busy),
            walker.start.eq(accept & ~bad_job),
            self.error.eq(fault & ~self.busy),
        ]
        m.d.sync += refused.eq(accept & bad_job)
        with m.If(accept):
            m.d.sync += [fault.eq(bad_job), position.eq(0)]
        with m.Elif(abort):
            m.d.sync += fault.eq(1)
        with m.Elif(self.error):
            m.d.sync += fault.eq(0)

        fill = ~self.write
        m.d.comb += [
            self.beat.eq(pending),
            # Fill: read the L2 now, write the L1 next cycle.
            self.l2_re.eq(move & fill),
            self.l2_raddr.eq(l2_value),
            self.in_we.eq(pending & fill & (self.operand == INPUTS)),
            self.in_waddr.eq(pending_position),
            self.in_wdata.eq(self.l2_rdata),
            self.w_we.eq(pending & fill & (self.operand == WEIGHTS)),
            self.w_waddr.eq(pending_position),
            self.w_wdata.eq(self.l2_rdata),
            self.bank_we.eq(pending & fill & psums),
            self.bank_wdata.eq(self.l2_rdata),
            # Write-back: read the bank now, write the L2 next cycle.
            self.bank_re.eq(move & self.write),
            self.bank.eq(Mux(self.write, bank, pending_bank)),
            self.entry.eq(Mux(self.write, entry_value, pending_entry)),
            self.l2_we.eq(pending & self.write),
            self.l2_waddr.eq(pending_l2),
            self.l2_wdata.eq(self.bank_rdata),
        ]
        return m
