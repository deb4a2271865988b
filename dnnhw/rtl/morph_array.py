"""Morph's tiled 3D-convolution array: the sequencer, its engines, the buffers, counters.

The plan and every rule are in ``docs/morph-array.md``; the loop nest the sequencer runs
is :mod:`.morph_program`, and each ``run`` of it goes to one engine:

- :class:`~.morph_dram.DramEngine`: DRAM to L2 and back, one request per row;
- :class:`~.morph_l2l1.L2L1Engine`: L2 to the L1 copies and PE banks and back;
- :class:`~.morph_blocks.BlocksEngine`: the PE blocks (:class:`~.morph_pe.PeArray`).

Only one engine runs at a time (the model's serial phases), so the buffers' ports go to
whichever runs. The configuration port writes the sequencer's registers, the two loop
orders and ``START``; the counter port reads the counters after a layer.
"""

import math

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ._checks import check_bool, check_int
from .counter_bank import CounterBank
from .morph_blocks import BlocksEngine
from .morph_dram import DramEngine
from .morph_l2l1 import L2L1Engine
from .morph_program import (ADDRESS_ORDER1, ADDRESS_ORDER2, ADDRESS_START, COUNTERS, DIMS,
                            JOBS, RUNS, sequencer_program)
from .morph_sequencer import MULTIPLIERS, MorphSequencer
from .ram import BlockRam


__all__ = ["MorphArray", "ERRORS"]

#: ``error_code`` values: what stopped a layer.
ERRORS = ("none", "order", "divide", "dram", "l2_l1", "blocks")
_OPERAND_CODE = {"inputs": 0, "weights": 1, "psums": 2}


def _is_power_of_two(value):
    return value & (value - 1) == 0


class MorphArray(wiring.Component):
    """A Morph array of ``kp x hp x wp`` PEs with an L2 of ``l2_banks`` banks.

    Parameters
    ----------
    kp, hp, wp : int
        The PE block, 1..16 each.
    width : int
        Operand bits, 8 or 16 (inputs and weights, signed).
    max_channels, max_kernel : int
        The largest input channels and kernel side the array accepts: the accumulators
        are sized for them, ``2 * width + ceil(log2(max_channels * max_kernel ** 3))``
        bits, unless ``acc_width`` is given (and then checked against them).
    acc_width : int or None
        Accumulator bits (also the width of a memory word and of the L2).
    l2_banks, l2_bank_words : int
        The L2: banks of a power of two words each.
    l1_input_words, l1_weight_words, l1_psum_entries : int
        One L1 input copy (per output position), one weight copy (per filter row), one
        PE's partial-sum bank.
    addr_width : int
        Bits of a memory word address.
    value_width : int
        Bits of the sequencer's registers and of the job registers, 16 to 32: addresses,
        sizes and strides. The loader proves a layer's values fit
        (:func:`dnnhw.sim.morph_loader.check`); 16 bits address 32 Ki words.
    index_width : int
        Bits of a tile index, 2 to 12: up to ``2 ** index_width`` tiles along each
        dimension at each level, and images.
    coord_width : int or None
        Bits the taps' frame, row and column are computed in, 8 to ``value_width``
        (default ``value_width``); the loader checks a layer's sides and padding fit.
    multiplier : str
        The sequencer's multiplier, ``"dsp"`` or ``"serial"``.
    l2_spram : bool
        Build the L2 as single-port memories marked for the UP5K's SPRAM (four of 16 Ki
        words of 16 bits: a memory of 16 Ki words of ``acc_width`` bits takes
        ``ceil(acc_width / 16)`` of them). The banks are then address ranges of memories
        of :data:`SPRAM_WORDS` words each (several banks share one when they are smaller):
        the array never reads and writes the L2 in one cycle, so banks need no ports of
        their own; a mapping still partitions them among the operands.

    Members
    -------
    config : In(stream.Signature({addr: 8, data: value_width}))
        Register writes (addresses of :data:`~.morph_program.CONFIG` in the program's
        register map), ``ADDRESS_ORDER2`` / ``ADDRESS_ORDER1`` (loop orders, three bits
        per loop, outermost first) and ``ADDRESS_START``. Not ready while a layer runs.
    busy : Out(1)
        A layer runs.
    done, error : Out(1)
        The layer finished, or stopped; each rises once the counters hold the layer's
        counts (a few dozen cycles after the last job, :class:`~.counter_bank.CounterBank`)
        and holds until the next ``START``.
    error_code : Out(range(len(ERRORS)))
    mem_req, mem_wdata : Out(stream), mem_rdata : In(stream)
        The memory port (``docs/morph-array.md``, *Ports*).
    counter_addr : In(range(len(COUNTERS))), counter_data : Out(48)
        After ``done`` or ``error``: ``counter_data`` is the counter ``counter_addr``
        named in the previous cycle (the counters are a block RAM).
    """

    COUNTER_WIDTH = 48
    #: Words of one of the UP5K's SPRAMs: the depth of an L2 memory with ``l2_spram``.
    SPRAM_WORDS = 16384
    #: Bits of a request's length: rows of up to 4095 words.
    LENGTH_WIDTH = 12

    def __init__(self, *, kp=2, hp=2, wp=2, width=16, max_channels=512, max_kernel=3,
                 acc_width=None, l2_banks=4, l2_bank_words=8192, l1_input_words=1024,
                 l1_weight_words=1024, l1_psum_entries=256, addr_width=24,
                 value_width=32, index_width=8, coord_width=None, multiplier="dsp",
                 l2_spram=False):
        self._kp = check_int("kp", kp, 1, 16)
        self._hp = check_int("hp", hp, 1, 16)
        self._wp = check_int("wp", wp, 1, 16)
        if width not in (8, 16):
            raise ValueError(f"width must be 8 or 16, got {width!r}")
        self._width = width
        self._max_channels = check_int("max_channels", max_channels, 1, 1 << 15)
        self._max_kernel = check_int("max_kernel", max_kernel, 1, 15)
        needed = 2 * width + math.ceil(math.log2(max_channels * max_kernel ** 3))
        if acc_width is None:
            acc_width = needed
        check_int("acc_width", acc_width, 2 * width, 64)
        if acc_width < needed:
            raise ValueError(f"acc_width must be at least {needed} for {max_channels} "
                             f"channels of {max_kernel}^3 taps at {width} bits, got "
                             f"{acc_width}")
        self._acc_width = acc_width
        self._l2_banks = check_int("l2_banks", l2_banks, 1, 64)
        self._l2_bank_words = check_int("l2_bank_words", l2_bank_words, 16, 1 << 20)
        if not _is_power_of_two(l2_bank_words):
            raise ValueError(f"l2_bank_words must be a power of two, got {l2_bank_words}")
        self._l1_input_words = check_int("l1_input_words", l1_input_words, 1, 1 << 16)
        self._l1_weight_words = check_int("l1_weight_words", l1_weight_words, 1, 1 << 16)
        self._l1_psum_entries = check_int("l1_psum_entries", l1_psum_entries, 1, 1 << 16)
        self._addr_width = check_int("addr_width", addr_width, 8, 30)
        self._value_width = check_int("value_width", value_width, 16, 32)
        self._index_width = check_int("index_width", index_width, 2, 12)
        if coord_width is None:
            coord_width = value_width
        self._coord_width = check_int("coord_width", coord_width, 8, value_width)
        if self._l2_address_bits >= value_width:
            raise ValueError(f"value_width must exceed the L2's {self._l2_address_bits} "
                             f"address bits ({self.l2_words} words), got {value_width}")
        if multiplier not in MULTIPLIERS:
            raise ValueError(f"multiplier must be one of {', '.join(MULTIPLIERS)}, "
                             f"got {multiplier!r}")
        self._multiplier = multiplier
        check_bool("l2_spram", l2_spram)
        self._l2_spram = l2_spram
        self._program = sequencer_program()
        super().__init__({
            "config": In(stream.Signature(data.StructLayout({
                "addr": 8, "data": signed(value_width)}))),
            "busy": Out(1),
            "done": Out(1),
            "error": Out(1),
            "error_code": Out(range(len(ERRORS))),
            "mem_req": Out(stream.Signature(data.StructLayout({
                "write": 1, "addr": addr_width, "length": self.LENGTH_WIDTH}))),
            "mem_wdata": Out(stream.Signature(acc_width)),
            "mem_rdata": In(stream.Signature(acc_width)),
            "counter_addr": In(range(len(COUNTERS))),
            "counter_data": Out(self.COUNTER_WIDTH),
        })

    # ---- what the host needs --------------------------------------------------------
    kp = property(lambda self: self._kp)
    hp = property(lambda self: self._hp)
    wp = property(lambda self: self._wp)
    width = property(lambda self: self._width)
    acc_width = property(lambda self: self._acc_width)
    l2_banks = property(lambda self: self._l2_banks)
    l2_bank_words = property(lambda self: self._l2_bank_words)
    l1_input_words = property(lambda self: self._l1_input_words)
    l1_weight_words = property(lambda self: self._l1_weight_words)
    l1_psum_entries = property(lambda self: self._l1_psum_entries)
    addr_width = property(lambda self: self._addr_width)
    value_width = property(lambda self: self._value_width)
    index_width = property(lambda self: self._index_width)
    coord_width = property(lambda self: self._coord_width)

    @property
    def max_trips(self):
        """The most tiles along a dimension (and images) the sequencer steps."""
        return 1 << self._index_width
    l2_spram = property(lambda self: self._l2_spram)
    program = property(lambda self: self._program)

    @property
    def pes(self):
        return self._kp * self._hp * self._wp

    @property
    def mul_cycles(self):
        return 2 if self._multiplier == "dsp" else 1 + self._value_width

    @property
    def layer_bits(self):
        """The layer registers the engines read in few bits (checked against the built
        block and kernel first, and otherwise used in those bits only): the kernel
        sides and the run-time block."""
        return {"T": self._max_kernel.bit_length(), "R": self._max_kernel.bit_length(),
                "S": self._max_kernel.bit_length(), "Kp": self._kp.bit_length(),
                "Hp": self._hp.bit_length(), "Wp": self._wp.bit_length()}

    @property
    def l2_words(self):
        return self._l2_banks * self._l2_bank_words

    @property
    def _l2_address_bits(self):
        return max(4, (self.l2_words - 1).bit_length())

    # ---- the hardware ---------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        kp, hp, wp = self._kp, self._hp, self._wp
        pes = kp * hp * wp
        positions = hp * wp
        word = self._acc_width
        vw = self._value_width
        l2_addr_width = self._l2_address_bits
        # The L2's memories: a bank each, or with SPRAM, memories of SPRAM_WORDS words
        # that hold several smaller banks.
        memory_words = self._l2_bank_words
        if self._l2_spram:
            memory_words = min(max(memory_words, self.SPRAM_WORDS), self.l2_words)
        memories = -(-self.l2_words // memory_words)
        bank_bits = (memory_words - 1).bit_length()

        m.submodules.sequencer = seq = MorphSequencer(program=self._program,
                                                      value_width=vw,
                                                      index_width=self._index_width,
                                                      multiplier=self._multiplier,
                                                      layer_bits=self.layer_bits)
        m.submodules.dram = dram = DramEngine(value_width=vw, addr_width=self._addr_width,
                                              length_width=self.LENGTH_WIDTH,
                                              l2_addr_width=l2_addr_width,
                                              word_width=word)
        m.submodules.l2l1 = l2l1 = L2L1Engine(
            kp=kp, hp=hp, wp=wp, value_width=vw, l2_addr_width=l2_addr_width,
            l2_words=self.l2_words, word_width=word, l1_input_words=self._l1_input_words,
            l1_weight_words=self._l1_weight_words, psum_entries=self._l1_psum_entries)
        m.submodules.blocks = blocks = BlocksEngine(
            kp=kp, hp=hp, wp=wp, width=self._width, acc_width=word, value_width=vw,
            l1_input_words=self._l1_input_words, l1_weight_words=self._l1_weight_words,
            psum_entries=self._l1_psum_entries, max_taps=self._max_kernel,
            coord_width=self._coord_width)

        # ---- configuration ----------------------------------------------------------
        order2 = Signal(data.ArrayLayout(unsigned(3), len(DIMS)))
        order1 = Signal(data.ArrayLayout(unsigned(3), len(DIMS)))
        m.d.comb += [seq.order2.eq(order2), seq.order1.eq(order1)]
        running = Signal()
        m.d.comb += [running.eq(seq.running), self.busy.eq(seq.running)]
        m.d.comb += self.config.ready.eq(~seq.running)
        take = self.config.valid & self.config.ready
        addr, value = self.config.payload.addr, self.config.payload.data
        m.d.comb += [seq.config_we.eq(take & (addr < seq.register_count)),
                     seq.config_addr.eq(addr), seq.config_data.eq(value)]

        def permutation(order):
            return Cat(*(Cat(*(order[p] == d for p in range(len(DIMS)))).any()
                         for d in range(len(DIMS)))).all()

        start = Signal()
        # What ended the layer; `done` and `error` wait for the counters to settle.
        finished, failed = Signal(), Signal()
        with m.If(take & (addr == ADDRESS_ORDER2)):
            m.d.sync += order2.eq(value[:3 * len(DIMS)])
        with m.If(take & (addr == ADDRESS_ORDER1)):
            m.d.sync += order1.eq(value[:3 * len(DIMS)])
        with m.If(take & (addr == ADDRESS_START)):
            m.d.sync += [finished.eq(0), failed.eq(0), self.error_code.eq(0)]
            with m.If(permutation(order2) & permutation(order1)):
                m.d.comb += start.eq(1)
            with m.Else():
                m.d.sync += [failed.eq(1), self.error_code.eq(ERRORS.index("order"))]
        m.d.comb += seq.start.eq(start)
        with m.If(seq.done):
            m.d.sync += finished.eq(1)

        # ---- jobs -------------------------------------------------------------------
        runs = list(RUNS)
        current = Signal(range(len(runs)))
        with m.If(seq.job_start):
            m.d.sync += current.eq(seq.job_run)
        run = Signal(range(len(runs)))
        m.d.comb += run.eq(Mux(seq.job_start, seq.job_run, current))

        def is_kind(kinds):
            return Cat(*(run == i for i, r in enumerate(runs) if RUNS[r][1] in kinds)).any()

        def operand_code(kinds):
            code = Const(0, 2)
            for i, r in enumerate(runs):
                if RUNS[r][1] in kinds:
                    code = Mux(run == i, _OPERAND_CODE[RUNS[r][2]], code)
            return code

        dram_kinds, l2l1_kinds = ("dram_read", "dram_write"), ("l2_l1", "l1_l2")
        job, layer = seq.job, seq.layer
        m.d.comb += [
            dram.start.eq(seq.job_start & is_kind(dram_kinds)),
            dram.write.eq(is_kind(("dram_write",))),
            dram.row_len.eq(job.dram.row_len),
            dram.dram_addr.eq(job.dram.dram_addr),
            dram.l2_addr.eq(job.dram.l2_addr),
            l2l1.start.eq(seq.job_start & is_kind(l2l1_kinds)),
            l2l1.write.eq(is_kind(("l1_l2",))),
            l2l1.operand.eq(operand_code(l2l1_kinds)),
            l2l1.l2_addr.eq(job.l2l1.l2_addr),
            l2l1.kp_run.eq(layer.Kp), l2l1.hp_run.eq(layer.Hp), l2l1.wp_run.eq(layer.Wp),
            blocks.start.eq(seq.job_start & is_kind(("blocks",))),
        ]
        for i in range(3):
            m.d.comb += [dram.rows[i].eq(getattr(job.dram, f"rows{i}")),
                         dram.strides[i].eq(getattr(job.dram, f"ds{i}")),
                         l2l1.strides[i].eq(getattr(job.l2l1, f"s{i}")),
                         l2l1.entry_strides[i].eq(getattr(job.l2l1, f"e{i}"))]
        for i in range(4):
            m.d.comb += l2l1.counts[i].eq(getattr(job.l2l1, f"n{i}"))
        for field in JOBS["blocks"]:
            m.d.comb += getattr(blocks, field).eq(getattr(job.blocks, field))
        for name in ("T", "R", "S", "sf", "sh", "sw", "F", "H", "W"):
            m.d.comb += getattr(blocks, name).eq(getattr(layer, name))
        m.d.comb += [blocks.kp_run.eq(layer.Kp), blocks.hp_run.eq(layer.Hp),
                     blocks.wp_run.eq(layer.Wp)]
        m.d.comb += seq.job_busy.eq(dram.busy | l2l1.busy | blocks.busy)

        # ---- errors stop the layer ----------------------------------------------------
        for source, flag in (("divide", seq.error), ("dram", dram.error),
                             ("l2_l1", l2l1.error), ("blocks", blocks.error)):
            with m.If(flag & ~failed):
                m.d.sync += [failed.eq(1), self.error_code.eq(ERRORS.index(source))]
        m.d.comb += seq.abort.eq(failed)

        # ---- the memory port ----------------------------------------------------------
        wiring.connect(m, dram.mem_req, wiring.flipped(self.mem_req))
        wiring.connect(m, dram.mem_wdata, wiring.flipped(self.mem_wdata))
        wiring.connect(m, wiring.flipped(self.mem_rdata), dram.mem_rdata)

        # ---- the L2 -------------------------------------------------------------------
        dram_active = Signal()
        m.d.comb += dram_active.eq(dram.busy | dram.start)
        l2_raddr = Signal(l2_addr_width)
        l2_re = Signal()
        l2_waddr = Signal(l2_addr_width)
        l2_wdata = Signal(word)
        l2_we = Signal()
        with m.If(dram_active):
            m.d.comb += [l2_raddr.eq(dram.l2_raddr), l2_re.eq(dram.l2_re),
                         l2_waddr.eq(dram.l2_waddr), l2_wdata.eq(dram.l2_wdata),
                         l2_we.eq(dram.l2_we)]
        with m.Else():
            m.d.comb += [l2_raddr.eq(l2l1.l2_raddr), l2_re.eq(l2l1.l2_re),
                         l2_waddr.eq(l2l1.l2_waddr), l2_wdata.eq(l2l1.l2_wdata),
                         l2_we.eq(l2l1.l2_we)]
        read_bank = Signal(range(memories))
        with m.If(l2_re):
            m.d.sync += read_bank.eq(l2_raddr >> bank_bits)
        l2_data = []
        for b in range(memories):
            # One engine at a time, and each job only reads or only writes the L2: a
            # memory never sees a read and a write in one cycle, so a single port will do
            # (the UP5K's SPRAM), and no read meets a write to its word.
            bank = BlockRam(shape=word, depth=memory_words,
                            single_port=self._l2_spram, huge=self._l2_spram)
            m.submodules[f"l2_bank{b}"] = bank
            m.d.comb += [bank.read_addr.eq(l2_raddr[:bank_bits]),
                         bank.read_en.eq(l2_re & ((l2_raddr >> bank_bits) == b)),
                         bank.write_addr.eq(l2_waddr[:bank_bits]),
                         bank.write_data.eq(l2_wdata),
                         bank.write_en.eq(l2_we & ((l2_waddr >> bank_bits) == b))]
            l2_data.append(bank.read_data)
        m.d.comb += [dram.l2_rdata.eq(Array(l2_data)[read_bank]),
                     l2l1.l2_rdata.eq(Array(l2_data)[read_bank])]

        # ---- the L1: input copies, weight copies, PE banks ----------------------------
        # Replicated copies: one write port for all of them, a read port each.
        for name, copies, depth, write, read in (
                ("inputs", positions, self._l1_input_words,
                 (l2l1.in_waddr, l2l1.in_wdata, l2l1.in_we),
                 (blocks.in_raddr, blocks.in_re, blocks.in_rdata)),
                ("weights", kp, self._l1_weight_words,
                 (l2l1.w_waddr, l2l1.w_wdata, l2l1.w_we),
                 (blocks.w_raddr, blocks.w_re, blocks.w_rdata))):
            for c in range(copies):
                # Written by the L2-L1 engine, read by the blocks engine: never at once.
                copy = BlockRam(shape=signed(self._width), depth=depth)
                m.submodules[f"l1_{name}{c}"] = copy
                m.d.comb += [copy.write_addr.eq(write[0]), copy.write_data.eq(write[1]),
                             copy.write_en.eq(write[2]),
                             copy.read_addr.eq(read[0][c]), copy.read_en.eq(read[1][c]),
                             read[2][c].eq(copy.read_data)]
        bank_read = Signal(range(pes))
        with m.If(l2l1.bank_re):
            m.d.sync += bank_read.eq(l2l1.bank)
        bank_data = []
        blocks_active = Signal()
        m.d.comb += blocks_active.eq(blocks.busy | blocks.start)
        for pe in range(pes):
            # The blocks engine reads a block's entry at its first cycle and writes it back
            # after its last, and every block of a job has its own entry; the L2-L1 engine
            # only reads or only writes: no read meets a write to its word.
            bank = BlockRam(shape=word, depth=self._l1_psum_entries)
            m.submodules[f"l1_psums{pe}"] = bank
            with m.If(blocks_active):
                m.d.comb += [bank.write_addr.eq(blocks.bank_waddr),
                             bank.write_data.eq(blocks.bank_wdata[pe]),
                             bank.write_en.eq(blocks.bank_we[pe]),
                             bank.read_addr.eq(blocks.bank_raddr),
                             bank.read_en.eq(blocks.bank_re)]
            with m.Else():
                m.d.comb += [bank.write_addr.eq(l2l1.entry), bank.write_data.eq(l2l1.bank_wdata),
                             bank.write_en.eq(l2l1.bank_we & (l2l1.bank == pe)),
                             bank.read_addr.eq(l2l1.entry),
                             bank.read_en.eq(l2l1.bank_re & (l2l1.bank == pe))]
            m.d.comb += blocks.bank_rdata[pe].eq(bank.read_data)
            bank_data.append(bank.read_data)
        m.d.comb += l2l1.bank_rdata.eq(Array(bank_data)[bank_read])

        # ---- counters -----------------------------------------------------------------
        # Each counter's terms this cycle, with the most each can be.
        terms = {name: [] for name in COUNTERS}
        for i, r in enumerate(runs):
            _, kind, operand = RUNS[r]
            if kind == "blocks":
                continue
            src, dst = {"dram_read": ("dram", "l2"), "dram_write": ("l2", "dram"),
                        "l2_l1": ("l2", "l1"), "l1_l2": ("l1", "l2")}[kind]
            beat = dram.beat if kind in dram_kinds else l2l1.beat
            moved = beat & (current == i)
            terms[f"{src}.{operand}.reads"].append((moved, 1))
            terms[f"{dst}.{operand}.writes"].append((moved, 1))
        terms["l1.inputs.reads"].append((blocks.input_reads, positions))
        terms["l1.weights.reads"].append((blocks.weight_reads, kp))
        terms["l1.psums.reads"].append((blocks.psum_reads, pes))
        terms["l1.psums.writes"].append((blocks.psum_writes, pes))
        terms["macs"].append((blocks.macs, pes))
        terms["cycles"].append((running, 1))
        terms["compute_cycles"].append((blocks.computing, 1))
        terms["stall_cycles"].append((dram.waiting, 1))
        # A movement no job makes (weights are never written back) counts nothing.
        m.submodules.counters = bank = CounterBank(
            max_increments=[max(1, sum(most for _, most in terms[name])) for name in COUNTERS],
            width=self.COUNTER_WIDTH)
        for i, name in enumerate(COUNTERS):
            total = 0
            for term, _ in terms[name]:
                total = total + term
            m.d.comb += bank.increments[f"c{i}"].eq(total)
        m.d.comb += [bank.clear.eq(start), bank.read_addr.eq(self.counter_addr),
                     self.counter_data.eq(bank.read_data)]
        # Nothing counts once the sequencer and its jobs have stopped, so settled holds.
        quiet = bank.settled & ~running & ~seq.job_busy
        m.d.comb += [self.done.eq(finished & quiet), self.error.eq(failed & quiet)]
        return m
