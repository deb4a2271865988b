"""A bit-reversal reorder buffer: frames in, each written at the bit-reversed address of
its position, read in natural order.

Two frames of block RAM (a ping-pong pair of banks, one memory of ``2 n`` words): the
writer fills one bank while the reader empties the other. The reader need not wait for
a whole frame: word ``k`` of the output is word ``bitrev(k)`` of the input, so it may be
read once that many words are in. It starts a frame once :attr:`start` words are in,
the fewest from which, with one word written a cycle, it never catches up with the
writer; after that it still checks each word (the writer may stall), so the output only
has gaps the input forced.
"""

from amaranth.hdl import Cat, Module, Shape, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from ._checks import check_int
from .ram import BlockRam


__all__ = ["BitReverseBuffer", "bit_reverse", "reorder_start"]


def bit_reverse(value, bits):
    """``value``'s low ``bits`` bits in reverse order (an int)."""
    return int(format(value, f"0{bits}b")[::-1], 2) if bits else 0


def reorder_start(n):
    """Words of an ``n``-word frame written before the reader may start it and never
    wait for the writer while one word is written a cycle: ``max(bitrev(k) - k) + 1``."""
    bits = exact_log2(n)
    return max(bit_reverse(k, bits) - k for k in range(n)) + 1


class BitReverseBuffer(wiring.Component):
    """Reorders frames of ``n`` words: input position ``p`` comes out at position
    ``bitrev(p)`` (``log2(n)`` bits), frames in order.

    Frames are consecutive groups of ``n`` beats (no framing signal). With a beat a cycle
    in and ``o.ready`` high, a beat a cycle comes out, a frame's first :attr:`latency`
    cycles after its first beat went in.

    Parameters
    ----------
    n : int
        Words of a frame, a power of two, 2 .. 2 ** 16.
    shape : shape-castable
        A word (a ``data`` layout, ``signed(n)``, ...).

    Members
    -------
    i : In(stream.Signature(shape))
        Words in. ``ready`` is low while the bank being written still holds a frame not
        yet read out; it is a function of registers only.
    o : Out(stream.Signature(shape))
        Words out. ``valid`` is a register; ``payload`` is the block RAM's read register.
    """

    def __init__(self, *, n, shape):
        check_int("n", n, 2, 1 << 16)
        if n & (n - 1):
            raise ValueError(f"n must be a power of two in 2..65536, got {n}")
        Shape.cast(shape)
        self._n, self._shape = n, shape
        super().__init__({
            "i": In(stream.Signature(shape)),
            "o": Out(stream.Signature(shape)),
        })

    n = property(lambda self: self._n)
    shape = property(lambda self: self._shape)

    @property
    def bits(self):
        return exact_log2(self._n)

    @property
    def start(self):
        """Words of a frame written before its first read (:func:`reorder_start`)."""
        return reorder_start(self._n)

    @property
    def latency(self):
        """Cycles from a frame's first beat on ``i`` to its first ``o.valid`` when the
        input brings a beat a cycle: ``start + 1``."""
        return self.start + 1

    def elaborate(self, platform):
        m = Module()
        n, bits = self._n, self.bits
        width = Shape.cast(self._shape).width
        m.submodules.ram = ram = BlockRam(shape=width, depth=2 * n)

        wbank = Signal()                 # bank being written
        wpos = Signal(bits)              # words of its frame written
        rbank = Signal()                 # bank being read
        rpos = Signal(bits)              # the next word to read
        full = Signal(2)                 # a bank holds a whole frame not yet read out
        out_valid = Signal()

        wrev = Cat(*reversed(list(wpos))) if bits else wpos
        rrev = Cat(*reversed(list(rpos))) if bits else rpos

        push = self.i.valid & self.i.ready
        m.d.comb += [
            self.i.ready.eq(~full.bit_select(wbank, 1)),
            ram.write_en.eq(push),
            ram.write_addr.eq(Cat(wrev, wbank)),
            ram.write_data.eq(self.i.payload),
        ]
        with m.If(push):
            m.d.sync += wpos.eq(wpos + 1)
            with m.If(wpos == n - 1):
                m.d.sync += wbank.eq(~wbank)
                m.d.sync += full.bit_select(wbank, 1).eq(1)

        # Word rpos of the bank is in: the whole frame is, or the writer is on this bank
        # (then it writes the frame being read) and has passed address rpos; a frame's
        # first read waits for `start` words.
        available = Signal()
        m.d.comb += available.eq(
            full.bit_select(rbank, 1)
            | ((wbank == rbank) & (wpos > rrev) & ((rpos != 0) | (wpos >= self.start))))
        read = Signal()
        m.d.comb += [
            read.eq(available & (~out_valid | self.o.ready)),
            ram.read_en.eq(read),
            ram.read_addr.eq(Cat(rpos, rbank)),
            self.o.valid.eq(out_valid),
            self.o.payload.eq(ram.read_data),
        ]
        with m.If(read):
            m.d.sync += [rpos.eq(rpos + 1), out_valid.eq(1)]
            with m.If(rpos == n - 1):
                # the last word needs the whole frame: this bank is full, so the writer
                # is not on it and sets no flag of it this cycle
                m.d.sync += rbank.eq(~rbank)
                m.d.sync += full.bit_select(rbank, 1).eq(0)
        with m.Elif(self.o.ready):
            m.d.sync += out_valid.eq(0)
        return m
