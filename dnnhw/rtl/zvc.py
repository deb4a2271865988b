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
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2, exact_log2

from .prefix_sum import PrefixCount, popcount_tree
from .compactor import BubbleCollapser
from .expander import BubbleExpander


__all__ = ["LANES", "WIDTHS", "window_layout", "word_layout", "ZVCCompressor",
           "ZVCDecompressor", "ZVCLoopback"]

LANES = (4, 8, 16, 32)
WIDTHS = (8, 16, 32)


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


class _Delay:
    """Registers a value for a number of cycles in ``m.d.sync`` (under the caller's enable).

    Data is delayed without reset (keeping reset out of wide enables and selects); pass
    ``reset=True`` for the valid bits that must be clear after reset.
    """

    @staticmethod
    def line(m, value, cycles, name, *, reset=False):
        for k in range(cycles):
            reg = Signal.like(value, name=f"{name}_d{k}", reset_less=not reset)
            m.d.sync += reg.eq(value)
            value = reg
        return value


class ZVCCompressor(wiring.Component):
    """Zero-value compressor: window stream in, dense compressed words out.

    Datapath, every step registered:

    1. ``!= 0`` comparators make the mask.
    2. A Sklansky prefix count of the zero lanes gives each non-zero its downward shift
       (``log2 N`` levels).
    3. A bubble collapser packs the non-zeros (``log2 N`` stages); the compressed window is
       the mask slots followed by the packed lanes, ``M + nonzeros`` slots long.
    4. The placer keeps the running slot offset of the frame (a ``log2 N``-bit loop that
       restarts at 0 after ``last``) and shifts the window to it, splitting it into the up
       to three words it touches and counting the words it completes.
    5. The shift-and-append buffer ORs the first of them into the partial word it holds
       and writes the completed words, up to two a cycle, into a four-word ring that
       the output reads in order.

    The pipeline stalls as one under an enable computed from registers only, so
    ``i.ready`` never depends combinationally on ``o.ready``, and no wide select depends
    on anything but registers.

    Throughput: one window per cycle while the output keeps up. The output port carries N
    slots per cycle and a window takes ``M + nonzeros`` slots, so the input rate is
    ``min(1, N / mean slots per window)``: 1.00 at every density whose mean compressed
    window fits a word, and the port bound above that (a dense window is ``N + M`` slots).
    The ring absorbs bursts of dense windows. A frame whose last window completes three
    words at once (only when ``M > 1``) costs one extra cycle.

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

    #: Words the output ring holds (bursts of dense windows wait there).
    QUEUE_WORDS = 4

    def __init__(self, *, lanes=8, width=16):
        _check(lanes, width)
        self._lanes = lanes
        self._width = width
        super().__init__({
            "i": In(stream.Signature(window_layout(lanes, width))),
            "o": Out(stream.Signature(word_layout(lanes, width))),
        })

    @property
    def lanes(self):
        return self._lanes

    @property
    def width(self):
        return self._width

    @property
    def mask_slots(self):
        return -(-self._lanes // self._width)

    @property
    def latency(self):
        """Cycles from an input transfer to the output word it completes (stall-free):
        input register, prefix levels, collapser stages, placer, ring."""
        return 3 + 2 * ceil_log2(self._lanes)

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

        # --- pipeline: mask, prefix count, collapse, place; stalls as one --------------
        advance = Signal()
        pipe = Module()
        valid0 = Signal()
        data0 = Signal(data.ArrayLayout(unsigned(w), n), reset_less=True)
        mask0 = Signal(n, reset_less=True)
        last0 = Signal(reset_less=True)
        pipe.d.sync += [
            valid0.eq(self.i.valid),
            data0.eq(self.i.payload.data),
            last0.eq(self.i.payload.last),
            mask0.eq(Cat(self.i.payload.data[j] != 0 for j in range(n))),
        ]
        pipe.submodules.prefix = prefix = PrefixCount(count=n, registered=True)
        pipe.submodules.collapser = collapser = BubbleCollapser(lanes=n, width=w, registered=True)
        pipe.d.comb += prefix.bits.eq(~mask0)
        delay_p = prefix.latency
        data_p = _Delay.line(pipe, data0, delay_p, "data")
        mask_p = _Delay.line(pipe, mask0, delay_p, "mask")
        pipe.d.comb += [collapser.elements.eq(data_p), collapser.keep.eq(mask_p)]
        for j in range(n):
            pipe.d.comb += collapser.shift[j].eq(prefix.counts[j])
        length_p = Signal(range(n + ms + 1))
        pipe.d.comb += length_p.eq(ms + n - prefix.total)
        delay_c = collapser.latency
        length = _Delay.line(pipe, length_p, delay_c, "length")
        mask = _Delay.line(pipe, mask_p, delay_c, "mask_c")
        last = _Delay.line(pipe, _Delay.line(pipe, last0, delay_p, "last"), delay_c, "last_c")
        valid = _Delay.line(pipe, _Delay.line(pipe, valid0, delay_p, "valid", reset=True),
                            delay_c, "valid_c", reset=True)
        compressed = Signal((n + ms) * w)   # mask slots, then the packed non-zeros
        pipe.d.comb += compressed.eq(Cat(mask, Const(0, ms * w - n), collapser.packed))

        # Placer: the frame's running offset within the current word.
        offset = Signal(log_n)
        placed = Signal(3 * word_bits, reset_less=True)  # the window at its offset: up to 3 words
        placed_words = Signal(range(4))     # words it completes (the frame's last rounds up)
        placed_any = Signal()               # placed_words != 0, and
        placed_two = Signal()               # placed_words >= 2, as flags of their own so
                                            # the ring's write enables are one LUT deep
        placed_last = Signal()
        placed_length = Signal(range(n + 1))  # valid slots of the final word, if last
        placed_valid = Signal()
        total = Signal(range(2 * n + ms))
        pipe.d.comb += total.eq(offset + length)
        pipe.d.sync += [
            placed_valid.eq(valid),
            placed_last.eq(last),
            placed.eq(compressed << Cat(Const(0, log_w), offset)),
        ]
        with pipe.If(valid):
            with pipe.If(last):
                end = total - 1
                words = (end >> log_n) + 1
                pipe.d.sync += [
                    placed_words.eq(words),
                    placed_any.eq(1),
                    placed_two.eq(words >= 2),
                    placed_length.eq(end[:log_n] + 1),
                    offset.eq(0),
                ]
            with pipe.Else():
                words = total >> log_n
                pipe.d.sync += [
                    placed_words.eq(words),
                    placed_any.eq(words != 0),
                    placed_two.eq(words >= 2),
                    placed_length.eq(n),
                    offset.eq(total[:log_n]),
                ]
        m.submodules.pipe = EnableInserter(advance)(pipe)

        # --- shift-and-append buffer and the output word ring -------------------------
        # Completed words go, up to two a cycle, into a ring of QUEUE_WORDS registers
        # that the output reads in order. Every select and enable of the wide datapath
        # is at most two LUTs from flip-flops: the write pointer is one-hot, `room` is
        # registered, and the placer hands over its word count as flags.
        depth = self.QUEUE_WORDS
        ring = [Signal(word_layout(n, w), name=f"ring{k}", reset_less=True) for k in range(depth)]
        write_at = Signal(depth, init=1)    # one-hot: the entry the next word goes to
        read_at = Signal(range(depth))
        level = Signal(range(depth + 1))
        partial = Signal(word_bits)         # the word being filled, zero above the data
        flush = Signal()                    # `partial` is a complete final word to write alone
        flush_length = Signal(range(n + 1))

        room = Signal(init=1)               # the ring can take two words this cycle
        take = Signal()
        m.d.comb += [
            advance.eq(~placed_valid | (room & ~flush)),
            take.eq(placed_valid & room & ~flush),
            self.i.ready.eq(advance),
        ]

        # The words written this cycle; their data depends on registers only.
        merged = [partial | placed[:word_bits], placed[word_bits:2 * word_bits],
                  placed[2 * word_bits:]]
        emitted = [Signal(word_layout(n, w), name=f"emit{k}") for k in range(2)]
        for k in range(2):
            final = placed_last & (placed_words == k + 1)
            m.d.comb += [
                emitted[k].data.eq(merged[k]),
                emitted[k].last.eq(final),
                emitted[k].length.eq(Mux(final, placed_length, n)),
            ]
        with m.If(flush):
            m.d.comb += [
                emitted[0].data.eq(partial),
                emitted[0].last.eq(1),
                emitted[0].length.eq(flush_length),
            ]
        write_first = Signal()              # a word goes to entry `write_at`
        write_second = Signal()             # and another to the entry after it
        m.d.comb += [
            write_first.eq(take & placed_any | flush & room),
            write_second.eq(take & placed_two),
        ]
        with m.If(take):
            with m.Switch(placed_words):
                for count in range(3):
                    with m.Case(count):
                        m.d.sync += partial.eq(merged[count])
                with m.Case(3):
                    # Only when M > 1: the third word is the frame's last; write it
                    # on its own next cycle.
                    m.d.sync += [partial.eq(merged[2]), flush.eq(1),
                                 flush_length.eq(placed_length)]
        with m.Elif(flush & room):
            m.d.sync += [partial.eq(0), flush.eq(0)]

        for k in range(depth):
            before = (k - 1) % depth
            with m.If(write_first & write_at[k] | write_second & write_at[before]):
                m.d.sync += ring[k].eq(Mux(write_at[k], emitted[0], emitted[1]))
        with m.If(write_second):
            m.d.sync += write_at.eq(write_at.rotate_left(2))
        with m.Elif(write_first):
            m.d.sync += write_at.eq(write_at.rotate_left(1))

        popped = Signal()
        m.d.comb += [
            self.o.valid.eq(level != 0),
            self.o.payload.eq(Array(ring)[read_at]),
            popped.eq(self.o.valid & self.o.ready),
        ]
        with m.If(popped):
            m.d.sync += read_at.eq(read_at + 1)
        level_next = Signal(range(depth + 3))
        m.d.comb += level_next.eq(level + write_first + write_second - popped)
        m.d.sync += [level.eq(level_next), room.eq(level_next <= depth - 2)]
        return m


class ZVCDecompressor(wiring.Component):
    """Zero-value decompressor, the exact inverse of :class:`ZVCCompressor`.

    Compressed words are written whole into four word registers (a circular buffer of
    ``4N`` slots; the write pointer stays word-aligned because every frame starts on a new
    word). Each cycle the head window's mask is read at the head pointer, its length
    ``M + popcount(mask)`` advances the pointer, and the mask and the following N slots
    enter a pipeline that expands the packed non-zeros back to their lanes (prefix count,
    collapse of the shift amounts, MSB-first expansion network). A window leaves every
    cycle whenever the buffer holds it and the output keeps up, so the output rate is
    ``min(1 window, N slots) per cycle``, the input-bandwidth bound.

    Malformed input (a frame's last word ends inside a window, or leaves slots that cannot
    hold another mask) still ends the output frame with ``last``, fills missing elements
    with zero, and sets the sticky ``error`` output until reset.

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
        Sticky: a malformed frame was seen.
    """

    def __init__(self, *, lanes=8, width=16):
        _check(lanes, width)
        self._lanes = lanes
        self._width = width
        super().__init__({
            "i": In(stream.Signature(word_layout(lanes, width))),
            "o": Out(stream.Signature(window_layout(lanes, width))),
            "error": Out(1),
        })

    @property
    def lanes(self):
        return self._lanes

    @property
    def width(self):
        return self._width

    @property
    def mask_slots(self):
        return -(-self._lanes // self._width)

    @property
    def latency(self):
        """Cycles from the input transfer that completes a window to that window's output."""
        return 3 + 3 * ceil_log2(self._lanes)

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
        word_last = Signal(words)
        word_length = [Signal(range(n + 1), name=f"word{k}_length") for k in range(words)]
        tail = Signal(2)                    # next word register to write
        head = Signal(range(slots))         # slot of the head window's mask
        head_word = head[log_n:]
        head_offset = head[:log_n]
        held = Signal(range(slots))         # slots from head to tail (at most 3N)
        m.d.comb += held.eq((Cat(Const(0, log_n), tail) - head)[:log_n + 2])

        m.d.comb += self.i.ready.eq(held <= 2 * n)
        with m.If(self.i.valid & self.i.ready):
            in_use = Cat(s < self.i.payload.length for s in range(n))
            cleaned = self.i.payload.data.as_value() & Cat(b.replicate(w) for b in in_use)
            with m.Switch(tail):
                for k in range(words):
                    with m.Case(k):
                        m.d.sync += [buffer[k].eq(cleaned),
                                     word_length[k].eq(self.i.payload.length),
                                     word_last[k].eq(self.i.payload.last)]
            m.d.sync += tail.eq(tail + 1)

        # --- head window --------------------------------------------------------------
        ring = Cat(*buffer)
        window = Signal((ms + n) * w)
        m.d.comb += window.eq(Cat(ring, ring).bit_select(head * w, (ms + n) * w))
        mask = Signal(n)
        m.d.comb += mask.eq(window[:n])
        nonzeros = Signal(range(n + 1))
        m.d.comb += nonzeros.eq(popcount_tree(mask))
        length = Signal(range(n + ms + 1))
        m.d.comb += length.eq(ms + nonzeros)

        # The current frame ends in the first word at or after the head word that has
        # `last` set; only words between head and tail count.
        words_held = Signal(range(words))
        m.d.comb += words_held.eq(tail - head_word)
        end_known = Signal()
        end_word = Signal(2)                # word register holding the frame's end
        to_end = Signal(range(slots + 1))   # slots from head to the frame's end
        for k in reversed(range(words)):    # reversed: the nearest word wins
            index = (head_word + k)[:2]
            with m.If((k < words_held) & word_last.bit_select(index, 1)):
                m.d.comb += [
                    end_known.eq(1),
                    end_word.eq(index),
                    to_end.eq(k * n + Array(word_length)[index] - head_offset),
                ]
        is_last = Signal()
        malformed = Signal()
        m.d.comb += [
            is_last.eq(end_known & (to_end < length + ms)),
            malformed.eq(is_last & (to_end != length)),
        ]
        ready_window = Signal()
        m.d.comb += ready_window.eq(end_known | ((held >= ms) & (held >= length)))

        # --- expansion pipeline, stalls as one on `advance` -----------------------------
        advance = Signal()
        pop = Signal()
        m.d.comb += pop.eq(ready_window & advance)
        with m.If(pop):
            with m.If(is_last):
                m.d.sync += head.eq(Cat(Const(0, log_n), end_word + 1))
            with m.Else():
                m.d.sync += head.eq(head + length)

        pipe = Module()
        valid0 = Signal()
        mask0 = Signal(n, reset_less=True)
        packed0 = Signal(n * w, reset_less=True)
        last0 = Signal(reset_less=True)
        malformed0 = Signal(reset_less=True)
        # A truncated final window keeps only the slots before the frame's end.
        present = Cat(~end_known | (ms + s < to_end) for s in range(n))
        pipe.d.sync += [
            valid0.eq(pop),
            mask0.eq(mask),
            packed0.eq(window[ms * w:] & Cat(b.replicate(w) for b in present)),
            last0.eq(is_last),
            malformed0.eq(malformed),
        ]
        pipe.submodules.expander = expander = BubbleExpander(lanes=n, width=w, registered=True)
        pipe.d.comb += [expander.packed.eq(packed0), expander.mask.eq(mask0)]
        delay = expander.latency
        valid = _Delay.line(pipe, valid0, delay, "valid", reset=True)
        last = _Delay.line(pipe, last0, delay, "last")
        bad = _Delay.line(pipe, malformed0, delay, "malformed")
        m.submodules.pipe = EnableInserter(advance)(pipe)

        m.submodules.queue = queue = fifo.SyncFIFO(width=window_layout(n, w).size, depth=2)
        out_window = Signal(window_layout(n, w))
        m.d.comb += [
            advance.eq(~valid | queue.w_rdy),
            out_window.data.eq(expander.elements),
            out_window.last.eq(last),
            queue.w_data.eq(out_window),
            queue.w_en.eq(valid),
            self.o.valid.eq(queue.r_rdy),
            self.o.payload.eq(queue.r_data),
            queue.r_en.eq(self.o.ready),
        ]
        with m.If(valid & bad & advance):
            m.d.sync += self.error.eq(1)
        return m


class ZVCLoopback(wiring.Component):
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
        _check(lanes, width)
        self._lanes = lanes
        self._width = width
        super().__init__({
            "i": In(stream.Signature(window_layout(lanes, width))),
            "o": Out(stream.Signature(window_layout(lanes, width))),
            "error": Out(1),
        })

    @property
    def latency(self):
        """Compressor latency plus decompressor latency (stall-free, one-window frames)."""
        return (3 + 2 * ceil_log2(self._lanes)) + (3 + 3 * ceil_log2(self._lanes))

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
