"""The cDMA zero-value (ZV) compression engine (Rhu et al., HPCA 2018).

Word format (bit for bit the same as ``dnnhw.golden.zvc``):

- A *window* is ``lanes`` (N) elements of ``width`` (W) bits; one window is one beat of the
  uncompressed stream, whose ``last`` ends a frame.
- A *slot* is W bits. The mask takes ``M = ceil(N / W)`` slots: bit ``j`` is 1 when
  element ``j`` is non-zero, LSB first across the slots; bits at or past N are zero.
- A compressed window is its M mask slots followed by its non-zero elements in element
  order (``M`` to ``M + N`` slots).
- The compressed stream carries *words* of N slots, slot ``s`` at bits ``[s*W, (s+1)*W)``
  of ``data``. A frame's windows follow each other with no gaps; its last word carries
  ``last`` and is zero-padded past ``length`` valid slots (``length`` is N on every other
  word). ``length`` is what tells a trailing all-zero window (a zero mask) from padding.
  Every frame starts on a new word.
"""

from amaranth.hdl import Array, Cat, Const, EnableInserter, Module, Mux, Signal, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2, exact_log2

from .prefix_sum import PrefixCount, popcount_tree
from .compactor import BubbleCollapser
from .expander import BubbleExpander
from ._pipeline import delay_line
from dnnhw.spec.zvc import LANES, WIDTHS


__all__ = ["LANES", "WIDTHS", "window_layout", "word_layout", "ZVCCompressor",
           "ZVCDecompressor", "ZVCLoopback"]


def _check(lanes, width):
    for name, value, legal in (("lanes", lanes, LANES), ("width", width, WIDTHS)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be an integer, got {value!r}")
        if value not in legal:
            raise ValueError(f"{name} must be one of {', '.join(map(str, legal))}, got {value}")


def window_layout(lanes, width):
    """Uncompressed beat: ``data`` (N elements of W bits) and ``last``."""
    return data.StructLayout({"data": data.ArrayLayout(unsigned(width), lanes), "last": 1})


def word_layout(lanes, width):
    """Compressed beat: ``data`` (N slots of W bits), ``length`` (valid slots) and ``last``."""
    return data.StructLayout({"data": data.ArrayLayout(unsigned(width), lanes),
                              "length": range(lanes + 1), "last": 1})


def _compressor_in_flight(lanes):
    # Input register, prefix levels, collapser stages, the placer's two shifter stages.
    return 3 + 2 * ceil_log2(lanes)


def _compressor_latency(lanes):
    return _compressor_in_flight(lanes) + 3


def _decompressor_latency(lanes):
    # Word register, head extraction, expander (prefix, collapse, expand), queue.
    return 3 + 3 * ceil_log2(lanes)


def _select(values, index):
    """``values[index]`` as a tree of two-way ``Mux``es (``len(values)`` a power of two):
    continuous assignments in Verilog, and plain muxes to Yosys (``word_select`` is a
    shift by a multiple of the word width, which Yosys does not reduce to one)."""
    level = list(values)
    for bit in range(len(index)):
        level = [Mux(index[bit], level[k + 1], level[k]) for k in range(0, len(level), 2)]
    assert len(level) == 1
    return level[0]


def _word_queues(m, o, *, depth, shape, writes, write_data):
    """Interleaved word queues behind the output stream ``o``: queue ``b`` takes
    ``write_data[b]`` when ``writes[b]``, and word ``k`` of the stream must be written to
    queue ``k mod len(writes)``. Drives ``o.valid`` and ``o.payload``. Returns the
    per-queue read pulses (a word left the memory for its read register: one more free
    entry).

    Each queue is a memory with a read register that is also the queue's output register.
    A read is issued only into an empty read register (`held` clear) and the register
    holds the word until the output takes it. The output visits the queues in turn, so
    each has ``len(writes)`` cycles to refill its read register: one word per cycle.
    `read` is itself a register, so `o.ready` reaches no memory, pointer or data enable:
    it only moves `read_bank` and clears one `held` bit (and decides the next `read`).
    The caller keeps writes out of a full memory (by credit). (The output selects are
    `Mux` trees, not `Array`s: Icarus does not evaluate an `always @*` block at time 0,
    and `o.valid` must not start as x.)
    """
    banks = len(writes)
    read_bank = Signal(range(banks))     # the queue of the output word
    reads, held, read_data = [], [], []
    for index in range(banks):
        # A read never meets a write to its word: a read needs a word in the memory, and
        # the credit keeps writes out of a full one. `no_rw_check` tells Yosys so, and it
        # then maps the read register into the block RAM's output with no collision
        # logic. (Yosys honours the attribute when it merges a register behind an
        # asynchronous read port; Amaranth's synchronous read port promises old data on a
        # collision, and the iCE40 RAM's undefined read then costs two word-wide
        # registers and a select per queue.)
        queue = Memory(shape=shape, depth=depth, init=[], attrs={"no_rw_check": 1})
        m.submodules[f"queue{index}"] = queue
        w_port = queue.write_port()
        r_port = queue.read_port(domain="comb")
        r_data = Signal(shape, name=f"read_data{index}", reset_less=True)
        produce = Signal(range(depth), name=f"produce{index}")
        consume = Signal(range(depth), name=f"consume{index}")
        level = Signal(range(depth + 1), name=f"level{index}")  # words in the memory
        write = writes[index]
        read = Signal(name=f"read{index}")  # the read register loads this cycle
        has_word = Signal(name=f"held{index}")  # the read register holds an unsent word
        pop = Signal(name=f"pop{index}")    # the output takes it this cycle
        m.d.comb += [
            w_port.addr.eq(produce),
            w_port.data.eq(write_data[index]),
            w_port.en.eq(write),
            r_port.addr.eq(consume),
            pop.eq(has_word & o.ready & (read_bank == index)),
        ]
        with m.If(read):
            m.d.sync += [r_data.eq(r_port.data), consume.eq(consume + 1)]
        with m.If(write):
            m.d.sync += produce.eq(produce + 1)
        m.d.sync += [
            level.eq(level + write - read),
            has_word.eq(read | (has_word & ~pop)),
            # Next cycle reads when the memory will hold a word and the read register
            # will be empty (a read now fills it).
            read.eq(~read & (~has_word | pop) & (level != 0)),
        ]
        reads.append(read)
        held.append(has_word)
        read_data.append(r_data)

    m.d.comb += [
        o.valid.eq(_select(held, read_bank)),
        o.payload.eq(_select(read_data, read_bank)),
    ]
    with m.If(o.valid & o.ready):
        m.d.sync += read_bank.eq(read_bank + 1)
    return reads


class _ZVCComponent(wiring.Component):
    """What the ZV cores share: the window geometry, validated before the signature."""

    def __init__(self, lanes, width, members):
        _check(lanes, width)
        self._lanes = lanes
        self._width = width
        super().__init__(members(lanes, width))

    @property
    def lanes(self):
        return self._lanes

    @property
    def width(self):
        return self._width

    @property
    def mask_slots(self):
        """Slots the mask of one window takes: ``ceil(lanes / width)``."""
        return -(-self._lanes // self._width)


class ZVCCompressor(_ZVCComponent):
    """Zero-value compressor: window stream in, dense compressed words out.

    Datapath, every step registered:

    1. ``!= 0`` comparators make the mask.
    2. A Sklansky prefix count of the zero lanes gives each non-zero its downward shift
       (``log2 N`` levels).
    3. A bubble collapser packs the non-zeros (``log2 N`` stages); the compressed window is
       the mask slots followed by the packed lanes, ``M + nonzeros`` slots long.
    4. The placer keeps the running slot offset of the frame (a ``log2 N``-bit loop that
       restarts at 0 after ``last``; it runs on the window's length a cycle after the
       prefix count, beside the collapser, so the loop is one adder and a mux) and shifts
       the window to it in two registered stages of ``log2 N / 2`` mux levels each, each
       with its own copies of the offset, splitting it into the words it touches and
       counting the words it completes.
    5. The shift-and-append buffer ORs the first of them into the partial word it holds
       and writes the completed words, up to ``banks`` a cycle, into that many
       interleaved word queues (memories) that the output reads in turn.
    6. Each queue's read register is its output register: it is refilled only while
       empty, and word ``k`` of the stream sits in queue ``k mod banks``, so each queue
       has ``banks`` cycles to refill while the others are read. The output port is a
       select of the read registers.

    The pipeline never stalls: no enable fans out over the wide datapath. Flow control is
    by credit instead: ``i.ready`` holds while every queue has room for one word from each
    window in flight (a window writes at most one word to each queue). ``i.ready`` is a
    register, and ``o.ready`` reaches no memory, pointer or data enable: it only moves
    the queue select, clears one read register's valid bit and decides the next read.

    Throughput: one window per cycle while the output keeps up. The output port carries N
    slots per cycle and a window takes ``M + nonzeros`` slots, so the input rate is
    ``min(1, N / mean slots per window)``: 1.00 at every density whose mean compressed
    window fits a word, and the port bound above that (a dense window is ``N + M`` slots).
    The queues absorb bursts of dense windows.

    Parameters
    ----------
    lanes : int
        Elements per window, one of 4, 8, 16, 32.
    width : int
        Bits per element, one of 8, 16, 32.

    Members
    -------
    i : In(stream.Signature(window_layout(lanes, width)))
        Windows; ``last`` ends a frame.
    o : Out(stream.Signature(word_layout(lanes, width)))
        Compressed words; ``last`` and a short ``length`` on a frame's final word.
    """

    #: Words each queue holds beyond one per window in flight (absorbs dense bursts).
    QUEUE_SLACK = 4
    #: Slots of the placer's shifter per copy of the offset register (the shift select).
    OFFSET_GROUP = 4

    def __init__(self, *, lanes=8, width=16):
        super().__init__(lanes, width, lambda lanes, width: {
            "i": In(stream.Signature(window_layout(lanes, width))),
            "o": Out(stream.Signature(word_layout(lanes, width))),
        })

    @property
    def banks(self):
        """Interleaved output queues: the most words one window can complete (2, or 3
        when the mask takes more than one slot and the frame ends), to a power of two."""
        return 2 if self.mask_slots == 1 else 4

    @property
    def in_flight(self):
        """Windows between the input and the queues: input register, prefix levels,
        collapser stages, the placer's two shifter stages."""
        return _compressor_in_flight(self._lanes)

    @property
    def queue_depth(self):
        """Words each queue's memory holds: one per window in flight plus the slack, to a
        power of two (the pointers wrap by themselves)."""
        return 1 << ceil_log2(self.in_flight + self.QUEUE_SLACK)

    @property
    def latency(self):
        """Cycles from an input transfer to the output word it completes (stall-free):
        the pipeline, a queue's memory write, the read decision (a register), the read
        register (the output)."""
        return _compressor_latency(self._lanes)

    @property
    def throughput(self):
        return (f"1 window/cycle while the mean compressed window (M + nonzeros slots, "
                f"M = {self.mask_slots}) fits {self._lanes} slots; else the output port "
                f"bound of {self._lanes} slots/cycle")

    def elaborate(self, platform):
        m = Module()
        n, w, ms = self._lanes, self._width, self.mask_slots
        log_n, log_w = exact_log2(n), exact_log2(w)
        word_bits = n * w
        n_banks = self.banks

        # --- pipeline: mask, prefix count, collapse, place --------------------------------
        accepted = Signal()
        m.d.comb += accepted.eq(self.i.valid & self.i.ready)
        valid0 = Signal()
        data0 = Signal(data.ArrayLayout(unsigned(w), n), reset_less=True)
        mask0 = Signal(n, reset_less=True)
        last0 = Signal(reset_less=True)
        m.d.sync += [
            valid0.eq(accepted),
            data0.eq(self.i.payload.data),
            last0.eq(self.i.payload.last),
            # An idle cycle carries an all-zero window (no mask bit, so nothing is kept):
            # it places nothing, so the shift-and-append buffer needs no enable.
            mask0.eq(Cat(self.i.payload.data[j] != 0 for j in range(n))
                     & accepted.replicate(n)),
        ]
        m.submodules.prefix = prefix = PrefixCount(count=n, registered=True)
        m.submodules.collapser = collapser = BubbleCollapser(lanes=n, width=w, registered=True)
        m.d.comb += prefix.bits.eq(~mask0)
        delay_p = prefix.latency
        data_p = delay_line(m, data0, delay_p, "data")
        mask_p = delay_line(m, mask0, delay_p, "mask")
        m.d.comb += [collapser.elements.eq(data_p), collapser.keep.eq(mask_p)]
        for j in range(n):
            m.d.comb += collapser.shift[j].eq(prefix.counts[j])
        # The window's length is known once the prefix count is: the offset loop runs on
        # it a cycle later (a register, so the loop is one adder and the restart mux),
        # while the collapser still works, and the offset travels down to the shifter.
        length_l = Signal(range(n + ms + 1), reset_less=True)
        m.d.sync += length_l.eq(ms + n - prefix.total)
        last_l = delay_line(m, delay_line(m, last0, delay_p, "last"), 1, "last_l")
        valid_l = delay_line(m, delay_line(m, valid0, delay_p, "valid", reset=True), 1,
                             "valid_l", reset=True)
        delay_c = collapser.latency - 1     # from the loop to the collapser's output
        length = delay_line(m, length_l, delay_c, "length")
        mask = delay_line(m, mask_p, collapser.latency, "mask_c")
        last = delay_line(m, last_l, delay_c, "last_c")
        valid = delay_line(m, valid_l, delay_c, "valid_c", reset=True)
        compressed = Signal((n + ms) * w)   # mask slots, then the packed non-zeros
        m.d.comb += compressed.eq(Cat(mask, Const(0, ms * w - n), collapser.packed))

        # Placer: the frame's running offset within the current word. The offset selects
        # in every bit of the shifter, so it is kept in several copies, each the select of
        # `OFFSET_GROUP` slots only (one register would drive a net of thousands of loads
        # across the die at 32 x 32 bit). Each copy runs the recurrence itself, from its
        # own value, so no tool merges them back into one register, and has its own delay
        # line to the shifter; the loop registers drive only those lines.
        used_slots = 2 * n + ms - 1         # the highest offset plus the longest window
        groups = -(-used_slots // self.OFFSET_GROUP)
        loops = [Signal(log_n, name="offset" if k == 0 else f"offset_copy{k}")
                 for k in range(groups)]
        with m.If(valid_l):
            m.d.sync += [copy.eq(Mux(last_l, 0, (copy + length_l)[:log_n])) for copy in loops]
        offsets = [delay_line(m, copy, delay_c, copy.name) for copy in loops]

        # A logarithmic shifter by whole slots, written out so that each slot's select
        # comes from its group's copy; level k moves the window up by 2**k slots. Its
        # log2 N levels are split over two registered stages (low levels first), each with
        # its own copies of the offset: one stage's selects and muxes fit the clock.
        def shift_levels(slots, selects, levels):
            for k in levels:
                step = 1 << k
                slots = [Mux(selects[s // self.OFFSET_GROUP][k],
                             slots[s - step] if s >= step else Const(0, w), slots[s])
                         for s in range(len(slots))]
            return slots

        split = (log_n + 1) // 2            # levels in the first stage
        first_slots = n + ms + (1 << split) - 1
        first = shift_levels(
            [compressed[s * w:(s + 1) * w] if s < n + ms else Const(0, w)
             for s in range(first_slots)], offsets, range(split))
        stage_a = [Signal(w, name=f"shift_a{s}", reset_less=True) for s in range(first_slots)]
        offsets_a = [Signal(log_n, name=f"{copy.name}_a", reset_less=True) for copy in loops]
        m.d.sync += [reg.eq(value) for reg, value in zip(stage_a, first)]
        m.d.sync += [reg.eq(value) for reg, value in zip(offsets_a, offsets)]
        second = shift_levels(stage_a + [Const(0, w)] * (used_slots - first_slots),
                              offsets_a, range(split, log_n))

        # A frame's last word is complete whatever its fill: round the count up, and its
        # valid slots are the fill (N when it is full). No carry chain beyond `total`.
        total = Signal(range(2 * n + ms))
        m.d.comb += total.eq(offsets[0] + length)
        fill = total[:log_n]
        words_a = Signal(range(4), reset_less=True)
        length_a = Signal(range(n + 1), reset_less=True)
        m.d.sync += [
            words_a.eq(Mux(valid, (total >> log_n) + (last & (fill != 0)), 0)),
            length_a.eq(Mux(last & (fill != 0), fill, n)),
        ]
        last_a = delay_line(m, last, 1, "last_a")
        valid_a = delay_line(m, valid, 1, "valid_a", reset=True)

        # The queue of the window's first completed word (words so far mod banks), and from
        # it each queue's write and which of the window's words it takes, all registered
        # beside `placed`: the write stage's enables and selects are then flip-flops, not
        # logic spread over the die to the queues.
        first_bank = Signal(range(n_banks))
        m.d.sync += first_bank.eq(first_bank + words_a)
        placed_write = Signal(n_banks)
        placed_order = [Signal(range(n_banks), name=f"order{b}", reset_less=True)
                        for b in range(n_banks)]
        for b in range(n_banks):
            order = (b - first_bank)[:exact_log2(n_banks)]
            m.d.sync += [placed_order[b].eq(order), placed_write[b].eq(order < words_a)]

        placed = Signal(3 * word_bits, reset_less=True)  # the window at its offset
        placed_words = Signal(range(4), reset_less=True)  # words it completes
        placed_last = Signal(reset_less=True)
        placed_length = Signal(range(n + 1), reset_less=True)  # final word's valid slots
        placed_valid = Signal()
        m.d.sync += [
            placed_valid.eq(valid_a),
            placed_last.eq(last_a),
            placed.eq(Cat(second)),
            placed_words.eq(words_a),
            placed_length.eq(length_a),
        ]

        # --- shift-and-append buffer and the interleaved word queues --------------------
        word_bits_all = word_layout(n, w).size
        partial = Signal(word_bits)         # the word being filled, zero above the data
        merged = [partial | placed[:word_bits], placed[word_bits:2 * word_bits],
                  placed[2 * word_bits:]]
        with m.Switch(placed_words):        # 0 and an all-zero window when idle
            for count in range(3):
                with m.Case(count):
                    m.d.sync += partial.eq(merged[count])
            with m.Default():
                m.d.sync += partial.eq(0)

        # Words one window completes: two, or three when a multi-slot mask ends a frame.
        most_words = 2 if ms == 1 else 3
        emitted = [Signal(word_layout(n, w), name=f"emit{k}") for k in range(most_words)]
        for k, word in enumerate(emitted):
            final = placed_last & (placed_words == k + 1)
            m.d.comb += [
                word.data.eq(merged[k]),
                word.last.eq(final),
                word.length.eq(Mux(final, placed_length, n)),
            ]

        bank_data = emitted + [emitted[0]] * (n_banks - len(emitted))
        depth = self.queue_depth
        reads = _word_queues(
            m, self.o, depth=depth, shape=word_bits_all, writes=placed_write,
            write_data=[Array(bank_data)[order] for order in placed_order])

        # --- credit: every memory keeps room for one word per window in flight ----------
        # `free[b]` = depth - words in memory b - windows in flight (each may write one
        # word to b). A window reserves a word in every memory when it enters; the placer
        # hands back the reservations it does not use (a cycle later, through a register);
        # a read into the read register frees a word. No term depends on `o.ready`, and
        # every term is a register: the update is one small function and one carry chain.
        # `i.ready` is a register too, set from the counts a cycle old: two free words
        # leave one for the window that may enter meanwhile, so no count goes below zero.
        free = [Signal(range(depth + 1), init=depth, name=f"free{b}") for b in range(n_banks)]
        m.d.sync += self.i.ready.eq(Cat(f >= 2 for f in free).all())
        for f, write, read in zip(free, placed_write, reads):
            unused = Signal(name=f"{f.name}_unused")  # the placer's window left b alone
            m.d.sync += unused.eq(placed_valid & ~write)
            # unused + read - accepted, in {-1, 0, 1, 2}: three bits of two's complement,
            # sign-extended to the width of the count.
            minus = ~unused & ~read & accepted
            delta = Cat(unused ^ read ^ accepted, minus | (unused & read & ~accepted),
                        minus.replicate(len(f) - 2))
            m.d.sync += f.eq(f + delta)
        return m


class ZVCDecompressor(_ZVCComponent):
    """Zero-value decompressor, the exact inverse of :class:`ZVCCompressor`.

    Compressed words are written whole into four word registers (a circular buffer of
    ``4N`` slots; the write pointer stays word-aligned because every frame starts on a new
    word). Each cycle the head window's length ``M + popcount(mask)`` advances the head
    pointer; the popcount of every slot is taken as its word is written, and the frame ends
    wait in a small queue of their own, so the head loop is a select of stored counts, an
    adder and a compare with the oldest frame end (no popcount and no scan of the words for
    ``last``). The mask and the following N slots
    enter a pipeline that expands the packed non-zeros back to their lanes (prefix count,
    collapse of the shift amounts, MSB-first expansion network). A window leaves every
    cycle whenever the buffer holds it and the output keeps up, so the output rate is
    ``min(1 window, N slots) per cycle``, the input-bandwidth bound.

    Malformed input follows one contract, the one ``dnnhw.golden.zvc`` implements as
    ``decompress_stream(..., malformed="hardware")`` (and the README's "The ZV format"):

    1. A word without ``last`` gives N slots whatever its ``length`` (malformed unless N:
       a short non-last word, or length > N). A frame's last word gives its first
       ``length`` slots: all N when ``length`` > N, one zero slot when ``length`` is 0
       (length 0; an empty frame when it is the frame's only word); non-zero slots past
       them are ignored (non-zero padding). Every frame has at least one valid slot.
    2. Windows follow one another from the frame's first slot. Fewer than M slots left
       make one all-zero window (truncated mask); mask bits at or past N are ignored
       (mask bits past N); elements missing past the frame's last slot are zero (truncated
       window).
    3. The window in which the frame's valid slots end carries ``last``; the next frame
       starts on the next word. A window ending exactly at the end of a word without
       ``last`` never carries ``last``, so no decision waits for, or depends on, a later
       word: the output sequence is a function of the input sequence alone.
    4. ``error`` rises in the first cycle in which ``o`` offers the window carrying the
       ``last`` of a malformed frame, and stays 1 until reset. At every output transfer it
       is 1 exactly when a malformed frame has ended at or before that window.

    Word-level defects are found as a word is taken (``length`` checks, an OR of the
    padding slots) and kept per frame with its last word; window-level ones (truncated
    mask or window, high mask bits) when a window leaves the buffer. The frame's verdict
    travels with its last window through the pipeline and the output queue (one bit).

    Parameters
    ----------
    lanes : int
        Elements per window, one of 4, 8, 16, 32.
    width : int
        Bits per element, one of 8, 16, 32.

    Members
    -------
    i : In(stream.Signature(word_layout(lanes, width)))
    o : Out(stream.Signature(window_layout(lanes, width)))
    error : Out(1)
        Sticky: a malformed frame has ended (its last window is or was on ``o``).
    """

    def __init__(self, *, lanes=8, width=16):
        super().__init__(lanes, width, lambda lanes, width: {
            "i": In(stream.Signature(word_layout(lanes, width))),
            "o": Out(stream.Signature(window_layout(lanes, width))),
            "error": Out(1),
        })

    @property
    def latency(self):
        """Cycles from the input transfer that completes a window to that window's output."""
        return _decompressor_latency(self._lanes)

    @property
    def throughput(self):
        return (f"min(1 window, {self._lanes} input slots) per cycle: a window takes "
                f"M + nonzeros slots (M = {self.mask_slots})")

    def elaborate(self, platform):
        m = Module()
        n, w, ms = self._lanes, self._width, self.mask_slots
        log_n = exact_log2(n)
        words = 4
        slots = words * n

        # --- word buffer --------------------------------------------------------------
        buffer = [Signal(n * w, name=f"word{k}", reset_less=True) for k in range(words)]
        # Pointers count one lap further than the ring (words mod 8, slots mod 8N), so a
        # full ring (4 words held) is told from an empty one.
        tail = Signal(3)                    # next word to write; register tail[:2]
        head = Signal(log_n + 3)            # slot of the head window's mask
        head_word = head[log_n:]
        words_held = Signal(range(words + 1))
        m.d.comb += [
            words_held.eq((tail - head_word)[:3]),
            # A word register is free once the head has left it.
            self.i.ready.eq(words_held != words),
        ]

        # A word's valid slots (contract step 1): all N without `last`; else the first
        # `length`, all N past N, one zero slot for 0. Only a last word's length is kept.
        accepted = Signal()
        length_in, last_in = self.i.payload.length, self.i.payload.last
        in_use = Signal(n)
        cleaned = Signal(n * w)
        valid_length = Signal(range(n + 1))
        nonzero_in = Signal(n)
        word_bad = Signal()                 # this word is malformed by itself
        frame_bad = Signal()                # ... or an earlier word of its frame was
        in_frame_bad = Signal()             # a malformed word in the input frame so far
        # Each slot's mask count, found as its word is taken: the popcount of the slot's
        # first min(N, W) bits (the bits a mask slot may hold).
        count_bits = min(n, w)
        slot_count = [[Signal(range(count_bits + 1), name=f"word{k}_count{s}")
                       for s in range(n)] for k in range(words)]
        m.d.comb += [
            accepted.eq(self.i.valid & self.i.ready),
            in_use.eq(Cat(~last_in | (length_in > s) for s in range(n))),
            cleaned.eq(self.i.payload.data.as_value()
                       & Cat(in_use[s].replicate(w) for s in range(n))),
            valid_length.eq(Mux(length_in == 0, 1, Mux(length_in > n, n, length_in))),
            nonzero_in.eq(Cat(self.i.payload.data[s] != 0 for s in range(n))),
            word_bad.eq(Mux(last_in,
                            (length_in == 0) | (length_in > n) | (nonzero_in & ~in_use).any(),
                            length_in != n)),
            frame_bad.eq(in_frame_bad | word_bad),
        ]
        # Counted on the raw slots and zeroed past the valid ones, so that the popcounts
        # do not wait for the length compare.
        counts_in = [Signal(range(count_bits + 1), name=f"count_in{s}") for s in range(n)]
        for s in range(n):
            m.d.comb += counts_in[s].eq(
                Mux(in_use[s], popcount_tree(self.i.payload.data[s][:count_bits]), 0))
        # Where the next window would start if one started at ring slot j: j + M plus the
        # counts of its M mask slots (below 8N, so no wrap). The head loop selects its next
        # head from this table instead of adding a selected count, so that the loop is one
        # select. An entry changes with the counts it sums: those of its own word and, for
        # the last M - 1 slots of a word, the first of the next word's; both are rewritten
        # when either word is taken, so every entry always sums the counts held.
        next_start = [[Signal(log_n + 3, name=f"word{k}_next{s}", init=k * n + s + ms)
                       for s in range(n)] for k in range(words)]

        def start_after(k, s, counts, next_counts):
            # Slot s of word k with `counts` its word's and `next_counts` the next word's.
            mask_counts = (counts[s + i] if s + i < n else next_counts[s + i - n]
                           for i in range(ms))
            return (k * n + s + ms + sum(mask_counts))[:log_n + 3]

        with m.If(accepted):
            with m.Switch(tail[:2]):
                for k in range(words):
                    following, previous = (k + 1) % words, (k - 1) % words
                    with m.Case(k):
                        m.d.sync += buffer[k].eq(cleaned)
                        if ms > 1:      # kept for the entries that cross into a word
                            m.d.sync += (slot_count[k][s].eq(counts_in[s]) for s in range(n))
                        m.d.sync += (next_start[k][s].eq(
                            start_after(k, s, counts_in, slot_count[following]))
                            for s in range(n))
                        m.d.sync += (next_start[previous][s].eq(
                            start_after(previous, s, slot_count[previous], counts_in))
                            for s in range(n - ms + 1, n))
            m.d.sync += [tail.eq(tail + 1), in_frame_bad.eq(~last_in & frame_bad)]

        # Frame ends, oldest first: a last word's pointer, its end (the slot pointer past
        # its valid slots) and whether its frame had a bad word. The head's frame ends at the oldest
        # entry, so the head loop reads a register instead of scanning the words for
        # `last`. Each entry belongs to a last word in the buffer: at most `words`.
        end_layout = data.StructLayout({"word": 3, "slot": log_n + 3, "bad": 1})
        ends = Array(Signal(end_layout, name=f"end{k}") for k in range(words))
        ends_tail = Signal(3)
        ends_head = Signal(3)
        with m.If(accepted & last_in):
            m.d.sync += [ends[ends_tail[:2]].slot.eq(Cat(Const(0, log_n), tail) + valid_length),
                         ends[ends_tail[:2]].word.eq(tail),
                         ends[ends_tail[:2]].bad.eq(frame_bad),
                         ends_tail.eq(ends_tail + 1)]

        # --- head window --------------------------------------------------------------
        ring = Cat(*buffer)
        window = Signal((ms + n) * w)
        m.d.comb += window.eq(Cat(ring, ring).bit_select(head[:log_n + 2] * w, (ms + n) * w))
        mask = Signal(n)
        m.d.comb += mask.eq(window[:n])
        # The next window starts where the table says, a lap further if the table's entry
        # passed the ring's end (its bit 4N).
        start = _select([entry for word in next_start for entry in word], head[:log_n + 2])
        head_next = Signal(log_n + 3)
        m.d.comb += head_next.eq(Cat(start[:log_n + 2], start[log_n + 2] ^ head[log_n + 2]))

        # The current frame ends at the oldest frame end in the buffer, if there is one.
        end_known = Signal()
        frame_end = Signal(end_layout)
        to_end = Signal(range(slots + 1))   # slots from head to the frame's end
        m.d.comb += [
            end_known.eq(ends_head != ends_tail),
            frame_end.eq(_select([ends[k] for k in range(words)], ends_head[:2])),
            to_end.eq((frame_end.slot - head)[:log_n + 3]),
        ]
        # The window carries `last` when the frame's valid slots end in it (step 3): the
        # end is then in a word the window occupies, which is in the buffer. The frame's
        # end is 1 to 4N slots ahead of the head and the window M to M + N long, so
        # head_next - end (mod 8N) is below 4N exactly when the end is within the window.
        is_last = Signal()
        malformed = Signal()                # truncated mask or window, or high mask bits
        mask_high = (window[n:ms * w] != 0) if ms * w > n else Const(0)
        m.d.comb += [
            is_last.eq(end_known & ~(head_next - frame_end.slot)[log_n + 2]),
            malformed.eq((is_last & (head_next != frame_end.slot)) | mask_high),
        ]
        # Without a known end the whole window must be held: its next start no further
        # than the tail. The tail is word-aligned, so that is a compare of words: the
        # start's word at most 4 words behind the tail's, and not level with it unless
        # the start is the word's slot 0.
        words_behind = Signal(3)
        ready_window = Signal()
        m.d.comb += [
            words_behind.eq(tail - head_next[log_n:]),
            ready_window.eq(end_known | ((words_behind <= words)
                                         & ((words_behind != 0) | (head_next[:log_n] == 0)))),
        ]

        # --- expansion pipeline, stalls as one on `advance` -----------------------------
        advance = Signal()
        pop = Signal()
        m.d.comb += pop.eq(ready_window & advance)
        with m.If(pop):
            with m.If(is_last):
                m.d.sync += [head.eq(Cat(Const(0, log_n), frame_end.word + 1)),
                             ends_head.eq(ends_head + 1)]
            with m.Else():
                m.d.sync += head.eq(head_next)
        # The frame's verdict, on its last window: a bad window so far, this one, or a bad
        # word (kept with the frame's last word).
        out_frame_bad = Signal()
        window_bad = Signal()
        m.d.comb += window_bad.eq(is_last & (out_frame_bad | malformed
                                             | frame_end.bad))
        with m.If(pop):
            m.d.sync += out_frame_bad.eq(~is_last & (out_frame_bad | malformed))

        pipe = Module()
        valid0 = Signal()
        mask0 = Signal(n, reset_less=True)
        packed0 = Signal(n * w, reset_less=True)
        last0 = Signal(reset_less=True)
        bad0 = Signal(reset_less=True)
        # A truncated final window keeps only the slots before the frame's end. The slots
        # are cleared a stage later, so that the frame-end compare ends in n registers
        # instead of fanning out to every bit of the window.
        present = Signal(n)
        present0 = Signal(n, reset_less=True)
        m.d.comb += present.eq(Cat(~end_known | (ms + s < to_end) for s in range(n)))
        pipe.d.sync += [
            valid0.eq(pop),
            mask0.eq(mask),
            packed0.eq(window[ms * w:]),
            present0.eq(present),
            last0.eq(is_last),
            bad0.eq(window_bad),
        ]
        pipe.submodules.expander = expander = BubbleExpander(lanes=n, width=w, registered=True)
        pipe.d.comb += [
            expander.packed.eq(packed0 & Cat(present0[s].replicate(w) for s in range(n))),
            expander.mask.eq(mask0),
        ]
        delay = expander.latency
        valid = delay_line(pipe, valid0, delay, "valid", reset=True)
        last = delay_line(pipe, last0, delay, "last")
        bad = delay_line(pipe, bad0, delay, "bad")
        m.submodules.pipe = EnableInserter(advance)(pipe)

        # The output queue carries the frame verdict beside each window; `error` follows
        # the window the output offers, so it is a function of the output sequence.
        size = window_layout(n, w).size
        m.submodules.queue = queue = fifo.SyncFIFO(width=size + 1, depth=2)
        out_window = Signal(window_layout(n, w))
        offered_bad = Signal()
        error_seen = Signal()
        m.d.comb += [
            advance.eq(~valid | queue.w_rdy),
            out_window.data.eq(expander.elements),
            out_window.last.eq(last),
            queue.w_data.eq(Cat(out_window, bad)),
            queue.w_en.eq(valid),
            self.o.valid.eq(queue.r_rdy),
            self.o.payload.eq(queue.r_data[:size]),
            queue.r_en.eq(self.o.ready),
            offered_bad.eq(queue.r_rdy & queue.r_data[size]),
            self.error.eq(error_seen | offered_bad),
        ]
        with m.If(offered_bad):
            m.d.sync += error_seen.eq(1)
        return m


class ZVCLoopback(_ZVCComponent):
    """Compressor feeding decompressor: windows in, the same windows out.

    The round trip of the whole engine in one design, for simulation.

    Parameters
    ----------
    lanes : int
        One of 4, 8, 16, 32.
    width : int
        One of 8, 16, 32.

    Members
    -------
    i : In(stream.Signature(window_layout(lanes, width)))
    o : Out(stream.Signature(window_layout(lanes, width)))
    error : Out(1)
        The decompressor's sticky malformed-frame flag (never set on a round trip).
    """

    def __init__(self, *, lanes=8, width=16):
        super().__init__(lanes, width, lambda lanes, width: {
            "i": In(stream.Signature(window_layout(lanes, width))),
            "o": Out(stream.Signature(window_layout(lanes, width))),
            "error": Out(1),
        })

    @property
    def latency(self):
        """Compressor latency plus decompressor latency (stall-free, one-window frames)."""
        return _compressor_latency(self._lanes) + _decompressor_latency(self._lanes)

    @property
    def throughput(self):
        return "the slower of the compressor's and the decompressor's bounds"

    def elaborate(self, platform):
        m = Module()
        m.submodules.compressor = compressor = ZVCCompressor(lanes=self._lanes, width=self._width)
        m.submodules.decompressor = decompressor = ZVCDecompressor(lanes=self._lanes, width=self._width)
        wiring.connect(m, compressor.o, decompressor.i)
        wiring.connect(m, wiring.flipped(self.i), compressor.i)
        wiring.connect(m, decompressor.o, wiring.flipped(self.o))
        m.d.comb += self.error.eq(decompressor.error)
        return m
