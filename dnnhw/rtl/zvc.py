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
    """Registers a value for a number of cycles in ``m.d.sync`` (under the caller's enable)."""

    @staticmethod
    def line(m, value, cycles, name):
        for k in range(cycles):
            reg = Signal.like(value, name=f"{name}_d{k}")
            m.d.sync += reg.eq(value)
            value = reg
        return value


class ZVCCompressor(wiring.Component):
    """Zero-value compressor: window stream in, dense compressed words out.

    Datapath: ``!= 0`` comparators make the mask; a Sklansky prefix count of the zero
    lanes gives each non-zero its downward shift; a log-stage bubble collapser packs the
    non-zeros; a shift-and-append buffer places each compressed window (mask slots, then
    non-zeros) right after the previous one and emits full words into a two-entry output
    queue. Every prefix level and collapser stage is registered; the pipeline stalls as one
    under an enable computed from registers only, so ``i.ready`` never depends
    combinationally on ``o.ready``.

    Throughput: one window per cycle while the output keeps up. The output port carries N
    slots per cycle and a window takes ``M + nonzeros`` slots, so the input rate is
    ``min(1, N / mean slots per window)``: 1.00 at every density whose mean compressed
    window fits a word, and the port bound above that (a dense window is ``N + M`` slots).

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
        """Cycles from an input transfer to the output word it completes (stall-free)."""
        return 2 + 2 * ceil_log2(self._lanes)

    @property
    def throughput(self):
        return (f"1 window/cycle while N/(M + nonzeros) >= 1 on average; "
                f"else the output port bound of {self._lanes} slots/cycle "
                f"(M = {self.mask_slots})")

    def elaborate(self, platform):
        m = Module()
        n, w, ms = self._lanes, self._width, self.mask_slots
        log_n, log_w = exact_log2(n), exact_log2(w)

        # --- pipeline: mask, prefix count, collapse; stalls as one on `advance` --------
        advance = Signal()
        pipe = Module()
        valid0 = Signal()
        data0 = Signal(data.ArrayLayout(unsigned(w), n))
        mask0 = Signal(n)
        last0 = Signal()
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
        nonzeros_p = Signal(range(n + 1))
        pipe.d.comb += nonzeros_p.eq(n - prefix.total)
        delay_c = collapser.latency
        nonzeros = _Delay.line(pipe, nonzeros_p, delay_c, "nonzeros")
        mask = _Delay.line(pipe, mask_p, delay_c, "mask_c")
        last = _Delay.line(pipe, _Delay.line(pipe, last0, delay_p, "last"), delay_c, "last_c")
        valid = _Delay.line(pipe, _Delay.line(pipe, valid0, delay_p, "valid"), delay_c, "valid_c")
        m.submodules.pipe = EnableInserter(advance)(pipe)

        # --- shift-and-append buffer ----------------------------------------------------
        # `held` keeps fewer than N slots between windows (a window is accepted only then),
        # so appending at `fill` < N spans at most 2N + M - 1 slots.
        span = 2 * n + ms - 1
        held = Signal(span * w)
        fill = Signal(range(3 * n + 1))
        end_pending = Signal()          # a frame's last window is in `held`
        end_word = Signal(range(3))     # word of `held` carrying that frame's last slot
        end_length = Signal(range(n + 1))

        m.submodules.queue = queue = fifo.SyncFIFO(width=word_layout(n, w).size, depth=2)

        accept = Signal()
        m.d.comb += [
            accept.eq(valid & (fill < n)),
            advance.eq(~valid | (fill < n)),
            self.i.ready.eq(advance),
        ]
        compressed = Signal((n + ms) * w)   # mask slots, then the packed non-zeros
        m.d.comb += compressed.eq(Cat(mask, Const(0, ms * w - n), collapser.packed))
        length = Signal(range(n + ms + 1))
        m.d.comb += length.eq(ms + nonzeros)

        combined = Signal(span * w)
        combined_fill = Signal.like(fill)
        combined_end = Signal()
        combined_end_word = Signal.like(end_word)
        combined_end_length = Signal.like(end_length)
        appended_fill = Signal(range(2 * n + ms))
        m.d.comb += [
            appended_fill.eq(fill + length),
            combined.eq(held),
            combined_fill.eq(fill),
            combined_end.eq(end_pending),
            combined_end_word.eq(end_word),
            combined_end_length.eq(end_length),
        ]
        with m.If(accept):
            m.d.comb += combined.eq(held | (compressed << Cat(Const(0, log_w), fill[:log_n])))
            with m.If(last):
                # The frame ends here: round the fill up to a word boundary (padding is
                # the zeros already above the data) and remember where `last` goes.
                end_at = appended_fill - 1
                m.d.comb += [
                    combined_fill.eq((end_at >> log_n) + 1 << log_n),
                    combined_end.eq(1),
                    combined_end_word.eq(end_at >> log_n),
                    combined_end_length.eq(appended_fill - (end_at >> log_n << log_n)),
                ]
            with m.Else():
                m.d.comb += combined_fill.eq(appended_fill)

        out_word = Signal(word_layout(n, w))
        final = Signal()
        m.d.comb += [
            final.eq(combined_end & (combined_end_word == 0)),
            out_word.data.eq(combined[:n * w]),
            out_word.last.eq(final),
            out_word.length.eq(Mux(final, combined_end_length, n)),
            queue.w_data.eq(out_word),
            queue.w_en.eq(combined_fill >= n),
        ]
        with m.If(queue.w_en & queue.w_rdy):
            m.d.sync += [
                held.eq(combined >> (n * w)),
                fill.eq(combined_fill - n),
                end_pending.eq(combined_end & ~final),
                end_word.eq(combined_end_word - 1),
                end_length.eq(combined_end_length),
            ]
        with m.Else():
            m.d.sync += [
                held.eq(combined),
                fill.eq(combined_fill),
                end_pending.eq(combined_end),
                end_word.eq(combined_end_word),
                end_length.eq(combined_end_length),
            ]

        m.d.comb += [
            self.o.valid.eq(queue.r_rdy),
            self.o.payload.eq(queue.r_data),
            queue.r_en.eq(self.o.ready),
        ]
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
        buffer = [Signal(n * w, name=f"word{k}") for k in range(words)]
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
        mask0 = Signal(n)
        packed0 = Signal(n * w)
        last0 = Signal()
        malformed0 = Signal()
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
        valid = _Delay.line(pipe, valid0, delay, "valid")
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
        return (2 + 2 * ceil_log2(self._lanes)) + (3 + 3 * ceil_log2(self._lanes))

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
