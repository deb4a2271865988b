"""The DRAM transfer engine of Morph's array: one tile between the DRAM and the L2.

A tile in DRAM is a nest of three row loops; each row is a contiguous run of ``row_len``
words. :class:`DramEngine` issues one memory request per row, back to back and ahead of the
data (row ``i + 1`` is requested without waiting for row ``i``'s data), and moves the words
one a cycle: a *fill* writes the read data into the L2 as it arrives, a *write-back* reads
the L2 and sends the words as write data. In the L2 the tile is dense: its words sit at
``l2_addr, l2_addr + 1, ...`` in row order. This is the ``dram_read`` / ``dram_write`` job
of the sequencer (:data:`dnnhw.rtl.morph_program.JOBS`, ``dram_*``), with the semantics of
:meth:`dnnhw.sim.morph_machine.Machine._engine`.
"""

from amaranth.hdl import Cat, Module, Mux, ResetInserter, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ._checks import check_int
from .morph_walker import LoopWalker, fits_signed


__all__ = ["DramEngine"]


class DramEngine(wiring.Component):
    """Moves one tile between the DRAM (through the memory port) and the L2.

    The job. Rows ``(i0, i1, i2)``, ``i0 < rows[0]`` outermost, in row-major order; row
    ``(i0, i1, i2)`` starts at DRAM word

        ``dram_addr + i0 * strides[0] + i1 * strides[1] + i2 * strides[2]``

    (modulo ``2 ** value_width``: a negative stride is its two's complement) and has
    ``row_len`` words. A fill (``write`` = 0) reads each row with one request of length
    ``row_len`` and writes the words into the L2 at ``l2_addr, l2_addr + 1, ...`` in
    arrival order; a write-back (``write`` = 1) reads the L2 words from ``l2_addr`` upward
    and writes them to the rows in the same order. Requests go out one a cycle, ahead of
    the data; a write-back's data may also lead its row's request by that one row (the
    memory queues write data, ``dnnhw.sim.memory``).

    Handshake. A ``start`` pulse while not ``busy`` takes the job; the job registers
    (``write``, ``rows``, ``row_len``, ``strides``, ``dram_addr``, ``l2_addr``) must hold
    from ``start`` until ``busy`` falls. ``busy`` is high from the cycle after ``start``
    to the job's end: a fill ends in the cycle its last word is written into the L2, a
    write-back in the cycle its last request and its last data word have both been
    accepted (whichever comes later). The engine drives its memory and L2 ports only
    while busy (every ``valid``, ``ready``, ``l2_we`` and ``l2_re`` is low otherwise).

    Cycles. With a memory that accepts every request at once, offers the first beat of a
    read accepted in cycle ``t`` in cycle ``t + L`` with the beats back to back, and never
    stalls write data, ``busy`` is high for exactly

    * ``words + L + READ_OVERHEAD`` cycles for a fill (``READ_OVERHEAD`` = 0: the first
      request goes out in the first busy cycle, every beat is written into the L2 in the
      cycle it arrives), and
    * ``words + WRITE_OVERHEAD`` cycles for a write-back (``WRITE_OVERHEAD`` = 1: the L2
      read of the first word, in the first busy cycle; then a word a cycle),

    ``words = rows[0] * rows[1] * rows[2] * row_len``. The engine waits only on
    handshakes and never chooses by timing, so with random latency, read gaps and
    request / write-data backpressure it takes at most those cycles plus the memory's
    counted stall cycles (:attr:`dnnhw.sim.memory.MemoryModel.stall_cycles`).

    Errors. Every job register is read as a two's-complement ``value_width``-bit number.
    The job fails when

    1. (checked at ``start``) a count ``rows[k]`` is outside ``1 .. 2 ** COUNT_WIDTH - 1``
       (the row walker's counters), ``row_len`` outside ``1 .. 2 ** length_width - 1``, or
       ``l2_addr`` outside the L2, ``0 .. 2 ** l2_addr_width - 1``: then no request is
       issued and nothing moves; or
    2. (checked per row, as it is about to be requested) the row's DRAM words
       ``a .. a + row_len - 1`` are not all inside ``0 .. 2 ** addr_width - 1`` (a negative
       ``a`` is outside), or its L2 words are not all inside the L2: then that row and
       every later one are not requested. The rows before it complete normally (a fill
       takes and writes every beat it asked for, a write-back sends every word of every
       write it requested), so the memory port is left idle, with no read data owed and
       no write short of data.

    Either way ``busy`` falls as soon as the requested rows have moved (one cycle after
    ``start`` when nothing was requested) and ``error`` is high for one cycle, the first
    one with ``busy`` low. A successful job leaves ``error`` low. The engine never hangs:
    it waits only for data its own requests are owed. (The row addresses are computed
    modulo ``2 ** value_width``, so an address whose true value does not fit a
    ``value_width``-bit register may alias; the sequencer's registers are that wide, so
    its addresses fit. With ``addr_width >= value_width`` only the lower half of the DRAM,
    the non-negative addresses, is reachable.)

    The hardware walks the row addresses in only ``addr_width + 1`` bits (when that is
    below ``value_width``), with the same result for every job: each row is stepped to
    from a row that was checked to lie in the DRAM, so a stride outside ``-2 **
    addr_width .. 2 ** addr_width - 1`` always lands outside it (the row is marked bad
    without its address), and a small one gives an address below ``2 ** addr_width``
    exactly when the true sum is inside.

    Parameters
    ----------
    value_width : int
        Bits of a job register, 16 to 32.
    addr_width : int
        Bits of a DRAM word address (the request's ``addr``), 8 to 32.
    length_width : int
        Bits of a request's ``length``, 4 to 16: rows of up to ``2 ** length_width - 1``.
    l2_addr_width : int
        Bits of an L2 word address, 4 to 24.
    word_width : int
        Bits of a memory (and L2) word, 8 to 64.

    Members
    -------
    start : In(1)
    write : In(1)
        0: fill (DRAM to L2); 1: write-back (L2 to DRAM).
    rows : In(ArrayLayout(unsigned(value_width), 3))
        Rows of each loop, ``rows[0]`` outermost.
    row_len : In(unsigned(value_width))
    strides : In(ArrayLayout(unsigned(value_width), 3))
        DRAM words between consecutive rows of each loop, modulo ``2 ** value_width``.
    dram_addr, l2_addr : In(unsigned(value_width))
        The first row's DRAM address; the tile's first L2 address.
    busy : Out(1)
    error : Out(1)
        High for one cycle, after busy falls, when the job failed (see *Errors*).
    beat : Out(1)
        A word moved this cycle: a read beat written into the L2, or a write-data beat
        accepted by the memory.
    waiting : Out(1)
        ``busy`` and no ``beat`` this cycle.
    mem_req : Out(stream.Signature(StructLayout({"write": 1, "addr": addr_width,
        "length": length_width})))
    mem_wdata : Out(stream.Signature(word_width))
    mem_rdata : In(stream.Signature(word_width))
    l2_waddr : Out(l2_addr_width)
    l2_wdata : Out(word_width)
    l2_we : Out(1)
    l2_raddr : Out(l2_addr_width)
    l2_re : Out(1)
    l2_rdata : In(word_width)
        The word of the read enabled in the previous cycle with ``l2_re``, held while
        ``l2_re`` is low (an ``amaranth.lib.memory`` synchronous read port with enable,
        not transparent).
    """

    #: Busy cycles of a fill beyond ``words + L`` (``L``: the memory's latency).
    READ_OVERHEAD = 0
    #: Busy cycles of a write-back beyond ``words``.
    WRITE_OVERHEAD = 1
    #: Bits of the row walker's counters: each ``rows[k]`` is at most ``2**16 - 1``.
    COUNT_WIDTH = 16

    def __init__(self, *, value_width=32, addr_width=24, length_width=12, l2_addr_width,
                 word_width=32):
        self._value_width = check_int("value_width", value_width, 16, 32)
        self._addr_width = check_int("addr_width", addr_width, 8, 32)
        self._length_width = check_int("length_width", length_width, 4, 16)
        self._l2_addr_width = check_int("l2_addr_width", l2_addr_width, 4, 24)
        self._word_width = check_int("word_width", word_width, 8, 64)
        values = data.ArrayLayout(unsigned(value_width), 3)
        request = data.StructLayout({"write": 1, "addr": unsigned(addr_width),
                                     "length": unsigned(length_width)})
        super().__init__({
            "start": In(1),
            "write": In(1),
            "rows": In(values),
            "row_len": In(unsigned(value_width)),
            "strides": In(values),
            "dram_addr": In(unsigned(value_width)),
            "l2_addr": In(unsigned(value_width)),
            "busy": Out(1),
            "error": Out(1),
            "beat": Out(1),
            "waiting": Out(1),
            "mem_req": Out(stream.Signature(request)),
            "mem_wdata": Out(stream.Signature(unsigned(word_width))),
            "mem_rdata": In(stream.Signature(unsigned(word_width))),
            "l2_waddr": Out(unsigned(l2_addr_width)),
            "l2_wdata": Out(unsigned(word_width)),
            "l2_we": Out(1),
            "l2_raddr": Out(unsigned(l2_addr_width)),
            "l2_re": Out(1),
            "l2_rdata": In(unsigned(word_width)),
        })

    @property
    def value_width(self):
        return self._value_width

    @property
    def addr_width(self):
        return self._addr_width

    @property
    def length_width(self):
        return self._length_width

    @property
    def l2_addr_width(self):
        return self._l2_addr_width

    @property
    def word_width(self):
        return self._word_width

    def _row_width(self):
        """Bits the row addresses are walked in: ``addr_width + 1`` (a checked row plus a
        small stride, modulo 2 ** (addr_width + 1)), or ``value_width`` if that is no
        more."""
        return min(self._value_width, self._addr_width + 1)

    def elaborate(self, platform):
        m = Module()
        vw, lw, l2w = self._value_width, self._length_width, self._l2_addr_width
        req, wdata, rdata = self.mem_req, self.mem_wdata, self.mem_rdata

        # ---- the job's up-front checks, in the start cycle --------------------------------
        def within(value, lo, bits):
            """``lo <= value <= 2 ** bits - 1`` for ``lo`` 0 or 1, ``value`` read as a
            two's-complement ``vw``-bit number (a negative one has its top bit set)."""
            ok = value[min(bits, vw - 1):] == 0
            return ok & (value != 0) if lo else ok

        job_ok = Signal()
        m.d.comb += job_ok.eq(
            within(self.rows[0], 1, self.COUNT_WIDTH)
            & within(self.rows[1], 1, self.COUNT_WIDTH)
            & within(self.rows[2], 1, self.COUNT_WIDTH)
            & within(self.row_len, 1, lw)
            & within(self.l2_addr, 0, l2w))
        take = Signal()
        m.d.comb += take.eq(self.start & ~self.busy)
        # Checked at start, so the low bits are the value from here on.
        row_len = Signal(lw)
        m.d.comb += row_len.eq(self.row_len)

        # ---- the row walker: one DRAM address per row ---------------------------------
        # The row addresses are walked in `aw` = addr_width + 1 bits (see `_row_width`).
        # Every row the walk steps from was checked to lie in the DRAM (the walk stops at
        # the first bad one), so a stride in -2 ** addr_width .. 2 ** addr_width - 1 (a
        # small one) gives the sum modulo 2 ** aw, which is inside exactly when the true
        # sum is; any other stride gives a row outside the DRAM whatever its exact value:
        # that row is `poisoned` instead. So is a first row not below 2 ** addr_width.
        aw = self._row_width()
        narrow = aw < vw
        walker = LoopWalker(levels=3, streams=1, count_width=self.COUNT_WIDTH,
                            value_width=aw, modulus_widths=(0, 0, 0))
        abort = Signal()        # a bad row: stop the walk (reset the walker)
        m.submodules.walker = ResetInserter(abort)(walker)
        for k in range(3):
            m.d.comb += [walker.count[k].eq(self.rows[k]), walker.modulus[k].eq(1),
                         walker.quotient[k].eq(0), walker.stride[k][0].eq(self.strides[k])]
        m.d.comb += [walker.base[0].eq(self.dram_addr), walker.start.eq(take & job_ok)]
        last = walker.out.payload.last
        poisoned = Signal()
        if narrow:
            edge = self._addr_width
            big = [~fits_signed(stride, edge + 1) for stride in self.strides]
            # The level a transfer moves: the deepest one not at its last row.
            steps_big = Cat(*(big[k] & ~last[k] & (last[k + 1:].all() if k < 2 else 1)
                              for k in range(3))).any()
            with m.If(walker.start):
                m.d.sync += poisoned.eq(self.dram_addr[edge:] != 0)
            with m.Elif(walker.out.valid & walker.out.ready):
                m.d.sync += poisoned.eq(steps_big)

        # The L2 address of the next row to request (rows are dense in the L2).
        l2_next = Signal(l2w + 1)
        row_addr = walker.out.payload.value[0][:aw]
        row_ok = Signal()
        in_dram = row_addr + row_len <= (1 << self._addr_width)
        m.d.comb += row_ok.eq(
            (~poisoned & in_dram if narrow else ~row_addr[aw - 1] & in_dram)
            & (l2_next + row_len <= (1 << l2w)))
        presenting = Signal()   # a legal row on mem_req
        m.d.comb += [
            presenting.eq(walker.out.valid & row_ok),
            abort.eq(walker.out.valid & ~row_ok),
            req.valid.eq(presenting),
            req.payload.write.eq(self.write),
            req.payload.addr.eq(row_addr),
            req.payload.length.eq(row_len),
            walker.out.ready.eq(req.ready & presenting),
        ]
        req_fire = Signal()
        m.d.comb += req_fire.eq(req.valid & req.ready)
        walk_ends = Signal()    # no request after this cycle's
        m.d.comb += walk_ends.eq(~walker.running | abort
                                 | (req_fire & (walker.out.payload.last == 0b111)))

        # ---- the data -----------------------------------------------------------------
        # `owed`: words of the requests accepted so far minus the words moved. A fill's is
        # never negative (data follows its request); a write-back's data may lead by the
        # row on mem_req, so it may be down to -(row_len - 1) until that row is accepted.
        owed = Signal(signed(max(l2w, lw) + 2))
        l2_ptr = Signal(l2w)    # the L2 word to write (fill) / read next (write-back)
        have = Signal()         # write-back: l2_rdata holds the next word to send
        beat = Signal()
        fill = Signal()
        m.d.comb += fill.eq(self.busy & ~self.write)
        back = Signal()
        m.d.comb += back.eq(self.busy & self.write)

        # Fill: every beat is written into the L2 in the cycle it arrives.
        m.d.comb += [
            rdata.ready.eq(fill),
            self.l2_waddr.eq(l2_ptr),
            self.l2_wdata.eq(rdata.payload),
            self.l2_we.eq(fill & rdata.valid),
        ]
        # Write-back: a one-word prefetch through the L2 read port. The word on l2_rdata
        # goes out once its row is requested (or on mem_req); the next is read as the
        # slot empties, so the port holds the word while mem_wdata is stalled.
        covered = Signal(owed.shape())
        m.d.comb += covered.eq(owed + Mux(presenting, row_len, 0))
        m.d.comb += [
            wdata.valid.eq(back & have & (covered > 0)),
            wdata.payload.eq(self.l2_rdata),
        ]
        wdata_fire = Signal()
        m.d.comb += wdata_fire.eq(wdata.valid & wdata.ready)
        m.d.comb += beat.eq(Mux(self.write, wdata_fire, self.l2_we))

        owed_next = Signal(owed.shape())
        m.d.comb += owed_next.eq(owed + Mux(req_fire, row_len, 0) - beat)
        finish = Signal()       # the job's last cycle
        m.d.comb += finish.eq(self.busy & walk_ends & (owed_next == 0))
        m.d.comb += [
            self.l2_raddr.eq(l2_ptr),
            self.l2_re.eq(back & (~have | wdata_fire) & ~finish),
        ]

        m.d.comb += [self.beat.eq(beat), self.waiting.eq(self.busy & ~beat)]

        # ---- state --------------------------------------------------------------------
        failed = Signal()
        m.d.sync += self.error.eq(0)
        with m.If(take):
            m.d.sync += [
                self.busy.eq(1),
                failed.eq(~job_ok),
                owed.eq(0),
                l2_next.eq(self.l2_addr),
                l2_ptr.eq(self.l2_addr),
                have.eq(0),
            ]
        with m.Elif(self.busy):
            m.d.sync += owed.eq(owed_next)
            with m.If(req_fire):
                m.d.sync += l2_next.eq(l2_next + row_len)
            with m.If(self.l2_we | self.l2_re):
                m.d.sync += l2_ptr.eq(l2_ptr + 1)
            with m.If(self.l2_re):
                m.d.sync += have.eq(1)
            with m.Elif(wdata_fire):
                m.d.sync += have.eq(0)
            with m.If(abort):
                m.d.sync += failed.eq(1)
            with m.If(finish):
                m.d.sync += [self.busy.eq(0), self.error.eq(failed | abort)]
        return m
