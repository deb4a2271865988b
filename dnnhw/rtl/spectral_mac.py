"""The band-limited engine's spectral multiply-accumulate: every input channel's kept bins
times the stored filter spectra, summed over the input channels, per output channel.
``docs/bandlimit-conv.md`` is the contract (the kept set of section 2, steps 2 to 5 of
section 3, the filter words of section 4, the loading rules of section 5, the
``SpectralMAC`` bullet of section 6).

**The multiplier.** One complex multiply-accumulate a cycle. A kept bin of channel ``c``
stays at the head of ``input`` for ``out_channels`` cycles, one *op* per output channel
``o``, and is taken by the last; a bin that is not kept is taken at once, unmultiplied.
An op takes a cycle of issue and five of registers (those beyond the operands and the
products each cut a path that limited the clock; with them all, 2D ``n = 16``, 3 x 4
channels, 16-bit parts, c = 50 reaches 115 MHz on the ECP5 and 37 MHz on the UP5K,
against 66 and 29 MHz without):

0. issue: the filter memory is read at ``(o * in_channels + c) * words_per_filter +
   j``. The head bin's kept flag, storage index ``j`` and mirror flag are registers,
   loaded with the position counter (``k``, or ``k2 * n + k1`` whose bit fields are
   ``k1`` and ``k2``) from the next position's decoding: comparisons against
   generation-time constants;
1. the sample, and the coefficient in the filter memory's read register;
2. the multiplier's operands, registered again (off the block RAM);
3. the four products ``X.re w.re``, ``X.im w.im``, ``X.re w.im``, ``X.im w.re`` (the DSP
   blocks); the accumulator bank is read;
4. the complex product, conjugated coefficient or not (a mirrored bin is the sign of two
   sums, so no operand widens), and the bank's read register;
5. both registered again (off the block RAM); their sum, or for channel 0 the product
   alone (so a bank is never cleared), is written at the end of the cycle.

**Accumulator banks.** Two memories of ``out_channels * kept_bins`` words; tile ``t``
accumulates in bank ``t mod 2``. Word ``b * out_channels + o`` holds kept bin ``b`` (in
stream order) of output channel ``o``, so the ops of a channel frame write consecutive
addresses. A bank is *full* from the write of its tile's last op until the readout has
taken its last word; a tile starts only in a bank that is not full. Each bank has one
write port (the accumulation) and one read port, which serves the accumulation while
the bank is not full and the readout while it is.

**No read-modify-write hazard.** An op reads its accumulator word in stage 3 and writes
it at the end of stage 5, so of two ops on one word the later sees the earlier's write
when they issue at least three cycles apart. The ops on one word are ``(bin, o)`` of
consecutive channels of a tile: between them every other position of the frame passes
the head of ``input`` (a cycle each at least: one transfer a cycle) and the bin issues
its ``out_channels - 1`` other ops, so they are at least ``n ** dims + out_channels - 1
>= 8`` cycles apart. The first channel of a tile does not read. The worst case (1D,
``n = 8``, one kept bin, one output channel) reuses a word every 8 cycles. For the same
reason no read meets a write of its word, which lets the memories drop Yosys's
read-during-write logic (``no_rw_check``, as in :mod:`.ram`).

**Readout.** Per output channel, the ``n ** dims`` positions in stream order: a kept one
reads its word and is scaled (``sat(rnd(A, spectrum_shift))`` per part, setting
``overflow`` when the saturation changes a value), the others give 0. Five registers
(the position counter, the bank's read register, the word again, the rounded sum, the
saturated output) that all move when the output register is empty or taken; the bank is
released when its last word leaves its read register.

**Filter loading.** Words are written at consecutive addresses, wrapping to 0 after the
last; ``filters_loaded`` rises when the first set is complete. A tile starts (its first
op issues) only when a set is complete and not half overwritten; from that op until the
tile's last bin is taken no filter word is taken, so a tile uses the set present when its
first bin is multiplied. When a tile could start in the cycle a filter word is offered at
a set boundary, the tile goes first (``filters.ready`` looks at ``input.valid``).
"""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2, exact_log2

from dnnhw.spec.bandlimit import (CHANNELS, COEFFICIENT_WIDTHS, DIMS,
                                  check_compression_rate, kept_count, kept_half_width,
                                  points_for)
from dnnhw.spec.fft import WIDTHS
from ._checks import check_in, check_int
from .fft import sample_layout


__all__ = ["SpectralMAC", "coefficient_layout"]


def coefficient_layout(coefficient_width):
    """A filter word: ``re`` and ``im``, ``signed(coefficient_width)`` each."""
    return data.StructLayout({"re": signed(coefficient_width),
                              "im": signed(coefficient_width)})


def _times(value, constant):
    """``value * constant`` as shifted adds: a product by a constant needs no DSP block."""
    terms = [value << bit for bit in range(constant.bit_length()) if constant >> bit & 1]
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


class SpectralMAC(wiring.Component):
    """Multiplies the kept bins of each input channel's spectrum by the stored filter
    spectra, sums over the input channels and streams out each output channel's
    zero-filled, scaled spectrum.

    For each tile and output channel ``o``: ``A[o][k] = sum_c X[c][k] * w`` at every kept
    bin ``k``, with ``w`` the stored word of ``F[o][c]`` at ``k``'s storage index
    (conjugated when ``k`` is mirrored), exact in :attr:`accumulator_width` bits; out,
    ``sat(rnd(A, spectrum_shift))`` per part at kept bins and 0 at the others.

    Timing with no stalls: a kept bin takes ``out_channels`` cycles, a bin that is not
    kept one (:attr:`accumulate_cycles` a tile); the readout gives a sample a cycle
    (:attr:`readout_cycles` a tile) and overlaps the next tile's accumulation. A tile's
    first output is valid :attr:`latency` cycles after its last op issues (the cycle its
    last kept bin is taken) when the readout is idle.

    Parameters
    ----------
    dims : int
        1 (a tile is a row of ``n`` samples) or 2 (``n x n``).
    n : int
        FFT points per axis: ``POINTS_1D`` (8 .. 4096) for 1D, ``POINTS_2D`` (8 .. 64)
        for 2D.
    in_channels, out_channels : int
        Channels of a tile in and out, 1 .. 256.
    compression_rate : float
        ``c``, percent, ``0 <= c < 100``: sets the kept block (``spec.bandlimit``).
    width : int
        Bits of a sample's parts (signed), 8 .. 24, in and out.
    coefficient_width : int
        Bits of a filter coefficient's parts (signed), 8 .. 18.
    spectrum_shift : int
        Right shift (rounding half up) of the channel sum, 0 .. ``width +
        coefficient_width``.

    Members
    -------
    input : In(stream.Signature(sample_layout(width)))
        Every bin of every channel's spectrum: per tile, channel ``c = 0 .. in_channels -
        1``, each ``n ** dims`` bins in the forward transform's order (1D: ``k``; 2D:
        column-major, position ``k2 * n + k1`` is bin ``(k1, k2)``). ``ready`` depends on
        registers only.
    filters : In(stream.Signature(coefficient_layout(coefficient_width)))
        Filter words at consecutive addresses ``(o * in_channels + c) *
        words_per_filter + j``. ``ready`` is low while a tile is in the multiplier and
        in a cycle where a tile starts (it depends on ``input.valid``).
    output : Out(stream.Signature(sample_layout(width)))
        Per tile, per output channel ``o = 0 .. out_channels - 1``, ``n ** dims`` samples
        in the input's order. ``valid`` and ``payload`` are registers.
    overflow : Out(1)
        Sticky: a scaling saturation changed a value since reset or ``clear_overflow``.
    clear_overflow : In(1)
        Clears ``overflow`` (a saturation in the same cycle sets it again).
    filters_loaded : Out(1)
        A whole set of filter words has been written since reset.
    """

    #: An op issued in cycle ``t`` writes its bank at the end of cycle ``t + MAC_LATENCY``.
    MAC_LATENCY = 5
    #: Cycles from that write (of a tile's last op) to the tile's first ``output.valid``:
    #: the readout's read, the bank's read register, the word again, the rounded sum, the
    #: output register.
    READOUT_LATENCY = 5

    def __init__(self, *, dims, n, in_channels, out_channels, compression_rate, width,
                 coefficient_width, spectrum_shift):
        check_int("dims", dims, DIMS[0], DIMS[-1])
        points = points_for(dims)
        check_int("n", n, points[0], points[-1])
        if n not in points:
            raise ValueError(f"n must be a power of two in {points[0]}..{points[-1]} for "
                             f"dims = {dims}, got {n}")
        check_in("in_channels", in_channels, CHANNELS)
        check_in("out_channels", out_channels, CHANNELS)
        self._compression_rate = check_compression_rate(compression_rate)
        check_in("width", width, WIDTHS)
        check_in("coefficient_width", coefficient_width, COEFFICIENT_WIDTHS)
        check_int("spectrum_shift", spectrum_shift, 0, width + coefficient_width)
        self._dims, self._n = dims, n
        self._in_channels, self._out_channels = in_channels, out_channels
        self._width, self._coefficient_width = width, coefficient_width
        self._spectrum_shift = spectrum_shift
        self._half_width = kept_half_width(n, dims, self._compression_rate)
        super().__init__({
            "input": In(stream.Signature(sample_layout(width))),
            "filters": In(stream.Signature(coefficient_layout(coefficient_width))),
            "output": Out(stream.Signature(sample_layout(width))),
            "overflow": Out(1),
            "clear_overflow": In(1),
            "filters_loaded": Out(1),
        })

    dims = property(lambda self: self._dims)
    n = property(lambda self: self._n)
    in_channels = property(lambda self: self._in_channels)
    out_channels = property(lambda self: self._out_channels)
    compression_rate = property(lambda self: self._compression_rate)
    width = property(lambda self: self._width)
    coefficient_width = property(lambda self: self._coefficient_width)
    spectrum_shift = property(lambda self: self._spectrum_shift)

    @property
    def half_width(self):
        """``m``: frequencies ``k <= m`` and ``k >= n - m`` of an axis are kept."""
        return self._half_width

    @property
    def kept_per_axis(self):
        """``T = min(n, 2 m + 1)``: kept frequencies of an axis."""
        return kept_count(self._n, self._half_width)

    @property
    def columns(self):
        """``Q = min(m, n / 2) + 1``: the stored (one-sided) frequencies ``k2``."""
        return min(self._half_width, self._n // 2) + 1

    @property
    def words_per_filter(self):
        """Stored words of one filter: ``Q`` (1D) or ``Q * T`` (2D)."""
        return self.columns * (self.kept_per_axis if self._dims == 2 else 1)

    @property
    def filter_words(self):
        """Words of a whole set: ``out_channels * in_channels * words_per_filter``."""
        return self._out_channels * self._in_channels * self.words_per_filter

    @property
    def filter_memory_bits(self):
        """Bits of the filter memory: ``filter_words`` words of ``2 *
        coefficient_width``."""
        return self.filter_words * 2 * self._coefficient_width

    @property
    def bins(self):
        """Positions of a channel frame: ``n ** dims``."""
        return self._n ** self._dims

    @property
    def kept_bins(self):
        """Kept bins of a channel frame: ``T ** dims``."""
        return self.kept_per_axis ** self._dims

    @property
    def accumulator_width(self):
        """Bits of an accumulator part: ``width + coefficient_width + 1 +
        ceil(log2(in_channels))``, which no channel sum overflows."""
        return (self._width + self._coefficient_width + 1
                + ceil_log2(self._in_channels))

    @property
    def accumulator_words(self):
        """Words of each of the two banks: ``out_channels * kept_bins``."""
        return self._out_channels * self.kept_bins

    @property
    def accumulate_cycles(self):
        """Cycles a tile holds the multiplier with no stalls: per channel,
        ``out_channels`` for each kept bin and one for each other bin."""
        return self._in_channels * (self.kept_bins * self._out_channels
                                    + self.bins - self.kept_bins)

    @property
    def readout_cycles(self):
        """Cycles of a tile's readout with the output always ready: ``out_channels *
        n ** dims``."""
        return self._out_channels * self.bins

    @property
    def latency(self):
        """Cycles from the issue of a tile's last op to its first ``output.valid`` when
        the readout is idle: ``MAC_LATENCY + READOUT_LATENCY``."""
        return self.MAC_LATENCY + self.READOUT_LATENCY

    # --- Decoding a position (generation-time constants only) ---------------------------

    def _axis_kept(self, k):
        """Whether axis frequency ``k`` is kept: ``k <= m`` or ``k >= n - m``."""
        half = self._half_width
        return (k <= half) | (k >= self._n - half)

    def _axis_index(self, module, k, name):
        """``idx(k)`` of a kept ``k``: ``k`` up to ``m``, else ``k - (n - T)``."""
        index = Signal(range(self.kept_per_axis), name=name)
        module.d.comb += index.eq(Mux(k <= self._half_width, k,
                                      k - (self._n - self.kept_per_axis)))
        return index

    def _axes(self, position):
        """``(k1, k2)`` of a stream position (1D: ``(None, k)``)."""
        if self._dims == 1:
            return None, position
        bits = exact_log2(self._n)
        return position[:bits], position[bits:]

    def _kept(self, position):
        """Whether a stream position's bin is kept: along every axis."""
        k1, k2 = self._axes(position)
        kept = self._axis_kept(k2)
        return kept if k1 is None else kept & self._axis_kept(k1)

    def _storage(self, m, position, prefix):
        """The storage index ``j`` and the mirror flag of a kept position."""
        n, T = self._n, self.kept_per_axis
        k1, k2 = self._axes(position)
        mirrored = Signal(name=f"{prefix}_mirrored")
        column = Signal(range(self.columns), name=f"{prefix}_column")
        m.d.comb += [
            mirrored.eq(k2 > n // 2),
            # a mirrored bin uses the word of (-k1 mod n, n - k2)
            column.eq(Mux(mirrored, n - k2, k2)),
        ]
        if k1 is None:
            return column, mirrored
        row = self._axis_index(m, k1, f"{prefix}_row")
        # idx(-k1 mod n) = (T - idx(k1)) mod T
        row_mirrored = Signal(range(T), name=f"{prefix}_row_mirrored")
        m.d.comb += row_mirrored.eq(Mux(row == 0, 0, T - row))
        word = Signal(range(self.words_per_filter), name=f"{prefix}_word")
        m.d.comb += word.eq(_times(column, T) + Mux(mirrored, row_mirrored, row))
        return word, mirrored

    # --- The hardware ---------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        N = self.bins
        C, O = self._in_channels, self._out_channels
        W = self.words_per_filter
        width, aw = self._width, self.accumulator_width
        product_shape = signed(width + self._coefficient_width)
        acc_layout = data.StructLayout({"re": signed(aw), "im": signed(aw)})

        # No read meets a write of its word: the filter memory is written only in cycles
        # with no issue, a full bank is not written, an accumulating one is read far from
        # the word being written (the module's docstring).
        no_rw_check = {"no_rw_check": 1}

        # --- Filter memory and loading ---
        m.submodules.filter_memory = filter_memory = Memory(
            shape=coefficient_layout(self._coefficient_width), depth=self.filter_words,
            init=[], attrs=no_rw_check)
        filter_write = filter_memory.write_port()
        filter_read = filter_memory.read_port(domain="sync")
        load_addr = Signal(range(self.filter_words))
        take_word = Signal()
        m.d.comb += [
            take_word.eq(self.filters.valid & self.filters.ready),
            filter_write.addr.eq(load_addr),
            filter_write.data.eq(self.filters.payload),
            filter_write.en.eq(take_word),
        ]
        with m.If(take_word):
            with m.If(load_addr == self.filter_words - 1):
                m.d.sync += [load_addr.eq(0), self.filters_loaded.eq(1)]
            with m.Else():
                m.d.sync += load_addr.eq(load_addr + 1)

        # --- The accumulator banks: one is full from the write of its tile's last op
        # until its readout's last word has left its read register ---
        full = [Signal(name=f"bank{b}_full") for b in range(2)]
        acc_bank = Signal()              # the bank the tile in the multiplier writes
        read_bank = Signal()             # the bank the readout reads next
        bank_writes, bank_reads = [], []
        for b in range(2):
            bank = Memory(shape=acc_layout, depth=self.accumulator_words, init=[],
                          attrs=no_rw_check)
            m.submodules[f"bank{b}"] = bank
            bank_writes.append(bank.write_port())
            bank_reads.append(bank.read_port(domain="sync"))

        # --- Stage 0: issue ---
        position = Signal(range(N))      # of the bin at the head of input, in its frame
        channel = Signal(range(C))
        op = Signal(range(O))            # output channel of the bin's next op
        acc_addr = Signal(range(self.accumulator_words))   # kept bin * O + op
        channel_base = Signal(range(self.filter_words))    # c * W
        op_base = Signal(range(self.filter_words))         # (o * C + c) * W
        tile_open = Signal()             # from a tile's first op to its last bin's transfer

        # The head bin's decoding, registered with the position (from the next position)
        # to keep it off the filter memory's address path; position 0 is bin 0: kept,
        # word 0, not mirrored.
        kept = Signal(init=1)
        word = Signal(range(self.words_per_filter))
        mirrored = Signal()
        frame_end = position == N - 1
        next_position = Signal(range(N))
        m.d.comb += next_position.eq(Mux(frame_end, 0, position + 1))
        next_word, next_mirrored = self._storage(m, next_position, "next")
        go = Signal()
        issue = Signal()
        take = Signal()
        last_op = op == O - 1
        tile_end = frame_end & (channel == C - 1)
        frame_last_op = acc_addr == self.accumulator_words - 1
        m.d.comb += [
            # a tile starts only with a whole set, not half overwritten, in a free bank
            go.eq(tile_open | (self.filters_loaded & (load_addr == 0)
                               & ~Mux(acc_bank, full[1], full[0]))),
            issue.eq(self.input.valid & go & kept),
            self.input.ready.eq(go & (~kept | last_op)),
            take.eq(self.input.valid & self.input.ready),
            self.filters.ready.eq(~tile_open & ~issue),
            filter_read.addr.eq(op_base + word),
            filter_read.en.eq(issue),
        ]
        with m.If(issue):
            m.d.sync += acc_addr.eq(Mux(frame_last_op, 0, acc_addr + 1))
            with m.If(~last_op):
                m.d.sync += [op.eq(op + 1), op_base.eq(op_base + C * W)]
        with m.If(take):
            m.d.sync += [op.eq(0), position.eq(next_position),
                         kept.eq(self._kept(next_position)), word.eq(next_word),
                         mirrored.eq(next_mirrored)]
            with m.If(frame_end):
                next_base = Mux(channel == C - 1, 0, channel_base + W)
                m.d.sync += [channel_base.eq(next_base), op_base.eq(next_base)]
                with m.If(channel == C - 1):
                    m.d.sync += [channel.eq(0), acc_bank.eq(~acc_bank)]
                with m.Else():
                    m.d.sync += channel.eq(channel + 1)
            with m.Else():
                m.d.sync += op_base.eq(channel_base)
        with m.If(take & tile_end):
            m.d.sync += tile_open.eq(0)
        with m.Elif(issue):
            m.d.sync += tile_open.eq(1)

        # An op's tags, carried down the pipeline beside its data.
        def tags(stage):
            return {
                "valid": Signal(name=f"s{stage}_valid"),
                "mirrored": Signal(name=f"s{stage}_mirrored", reset_less=True),
                "bank": Signal(name=f"s{stage}_bank", reset_less=True),
                "addr": Signal(range(self.accumulator_words), name=f"s{stage}_addr",
                               reset_less=True),
                "first": Signal(name=f"s{stage}_first", reset_less=True),
                "last": Signal(name=f"s{stage}_last", reset_less=True),
            }

        s0 = {"valid": issue, "mirrored": mirrored, "bank": acc_bank, "addr": acc_addr,
              "first": channel == 0, "last": frame_last_op & (channel == C - 1)}
        stages = [s0] + [tags(k) for k in range(1, self.MAC_LATENCY + 1)]
        for src, dst in zip(stages, stages[1:]):
            m.d.sync += [dst[key].eq(src[key]) for key in dst]
        s3, s4, s5 = stages[3], stages[4], stages[5]

        # --- Stage 1: the sample; the coefficient in the filter memory's read register ---
        x1_re = Signal(signed(width), name="x1_re", reset_less=True)
        x1_im = Signal(signed(width), name="x1_im", reset_less=True)
        m.d.sync += [x1_re.eq(self.input.payload.re), x1_im.eq(self.input.payload.im)]

        # --- Stage 2: the operands again (the block RAM's clock-to-output and the
        # multiplier were one path) ---
        x_re = Signal(signed(width), name="x_re", reset_less=True)
        x_im = Signal(signed(width), name="x_im", reset_less=True)
        w = Signal(coefficient_layout(self._coefficient_width), name="w", reset_less=True)
        m.d.sync += [x_re.eq(x1_re), x_im.eq(x1_im), w.eq(filter_read.data)]

        # --- Stage 3: the four products ---
        rr, ii, ri, ir = (Signal(product_shape, name=f"product_{name}", reset_less=True)
                          for name in ("rr", "ii", "ri", "ir"))
        m.d.sync += [rr.eq(x_re * w.re), ii.eq(x_im * w.im),
                     ri.eq(x_re * w.im), ir.eq(x_im * w.re)]

        # --- Stage 4: the complex product; the bank's read register ---
        # X * w = (rr - ii, ri + ir); X * conj(w) = (rr + ii, ir - ri)
        p_shape = signed(width + self._coefficient_width + 1)
        p_re = Signal(p_shape, name="p_re", reset_less=True)
        p_im = Signal(p_shape, name="p_im", reset_less=True)
        m.d.sync += [p_re.eq(Mux(s3["mirrored"], rr + ii, rr - ii)),
                     p_im.eq(Mux(s3["mirrored"], ir - ri, ri + ir))]

        # --- Stage 5: both again (the block RAM's clock-to-output and the adder were one
        # path); the sum is written ---
        p5 = Signal(acc_layout, name="p5", reset_less=True)
        old = Signal(acc_layout, name="old", reset_less=True)
        m.d.sync += [p5.re.eq(p_re), p5.im.eq(p_im)]
        for part in ("re", "im"):
            m.d.sync += old[part].eq(
                Mux(s4["bank"], bank_reads[1].data[part], bank_reads[0].data[part]))
        for b, write in enumerate(bank_writes):
            m.d.comb += [write.addr.eq(s5["addr"]),
                         write.en.eq(s5["valid"] & (s5["bank"] == b))]
            for part in ("re", "im"):
                m.d.comb += write.data[part].eq(
                    Mux(s5["first"], p5[part], old[part] + p5[part]))
            with m.If(s5["valid"] & s5["last"] & (s5["bank"] == b)):
                m.d.sync += full[b].eq(1)

        # --- Readout: the counters read, all registers move together ---
        advance = Signal()
        read_position = Signal(range(N))
        read_channel = Signal(range(O))
        # kept bin * O + o; past a channel's last kept bin, unused until the next channel
        read_addr = Signal(range(self.accumulator_words + O))
        read_kept = Signal()
        active = Mux(read_bank, full[1], full[0])
        step = Signal()
        m.d.comb += [
            read_kept.eq(self._kept(read_position)),
            advance.eq(~self.output.valid | self.output.ready),
            step.eq(advance & active),
        ]
        for b, read in enumerate(bank_reads):
            m.d.comb += [
                read.addr.eq(Mux(full[b], read_addr, s3["addr"])),
                # while full, the read register holds a word until the next stage takes it
                read.en.eq(Mux(full[b], advance & read_kept, 1)),
            ]
        with m.If(step):
            with m.If(read_kept):
                m.d.sync += read_addr.eq(read_addr + O)
            with m.If(read_position == N - 1):
                m.d.sync += read_position.eq(0)
                with m.If(read_channel == O - 1):
                    m.d.sync += [read_channel.eq(0), read_addr.eq(0),
                                 read_bank.eq(~read_bank)]
                with m.Else():
                    m.d.sync += [read_channel.eq(read_channel + 1),
                                 read_addr.eq(read_channel + 1)]
            with m.Else():
                m.d.sync += read_position.eq(read_position + 1)

        # R1: the bank's read register; the bank is free once its last word has left it.
        r1_valid = Signal()
        r1_kept = Signal(reset_less=True)
        r1_bank = Signal(reset_less=True)
        r1_last = Signal(reset_less=True)
        with m.If(advance):
            m.d.sync += [
                r1_valid.eq(active), r1_kept.eq(read_kept), r1_bank.eq(read_bank),
                r1_last.eq((read_position == N - 1) & (read_channel == O - 1)),
            ]
        for b in range(2):
            with m.If(advance & r1_valid & r1_last & (r1_bank == b)):
                m.d.sync += full[b].eq(0)

        # R2: the word again, 0 where not kept; R3: rnd(A, spectrum_shift); the output
        # register saturates (the read, the adder and the compares were one path).
        r2_valid, r3_valid = Signal(), Signal()
        saturated = []
        for part in ("re", "im"):
            channel_sum = Signal(signed(aw), name=f"sum_{part}", reset_less=True)
            rounded = Signal(signed(aw + 1 - self._spectrum_shift), name=f"rounded_{part}",
                             reset_less=True)
            y, changed = self._saturate(m, rounded, part)
            with m.If(advance):
                m.d.sync += [
                    channel_sum.eq(Mux(r1_kept, Mux(r1_bank, bank_reads[1].data[part],
                                                    bank_reads[0].data[part]), 0)),
                    rounded.eq(self._round(channel_sum)),
                    self.output.payload[part].eq(y),
                ]
            saturated.append(changed)
        with m.If(advance):
            m.d.sync += [r2_valid.eq(r1_valid), r3_valid.eq(r2_valid),
                         self.output.valid.eq(r3_valid)]
        overflow_event = advance & r3_valid & (saturated[0] | saturated[1])
        with m.If(overflow_event):
            m.d.sync += self.overflow.eq(1)
        with m.Elif(self.clear_overflow):
            m.d.sync += self.overflow.eq(0)
        return m

    def _round(self, value):
        """``rnd(value, spectrum_shift)``: add half, shift right (arithmetic)."""
        shift = self._spectrum_shift
        return (value + (1 << (shift - 1))) >> shift if shift else value

    def _saturate(self, m, value, part):
        """``value`` clamped to ``signed(width)``, and whether that changed it."""
        hi, lo = (1 << (self._width - 1)) - 1, -(1 << (self._width - 1))
        out = Signal(signed(self._width), name=f"scaled_{part}")
        changed = Signal(name=f"scaled_{part}_sat")
        m.d.comb += [changed.eq((value > hi) | (value < lo)),
                     out.eq(Mux(value > hi, hi, Mux(value < lo, lo, value)))]
        return out, changed
