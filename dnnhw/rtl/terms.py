"""Term encoding: a fixed-point value as signed powers of two, lowest first.

The encodings (the same as ``dnnhw.golden.diffy_published``; the golden model is the reference):

``plain``
    the set bits of the magnitude, every term with the value's sign.
``csd``
    the canonical signed digit (non-adjacent) form of the magnitude, each digit's sign
    times the value's sign. NAF is the signed-binary form with the fewest non-zero digits.
``best``
    per value, CSD when it has strictly fewer terms than plain, else plain (the paper's
    "Booth-like recoding kept only where it yields fewer terms").

A value's terms are held as two bit masks over the term offsets: ``mask`` (a term at that
offset) and ``negative`` (that term is subtracted). :func:`term_masks` builds them in
combinational logic; :class:`TermEncoder` turns them into a stream of terms, and the Diffy
tile (:mod:`dnnhw.rtl.diffy_tile`) retires them a step at a time.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from dnnhw.spec.diffy_tile import ENCODINGS

from ._checks import check_int
from .prefix_sum import popcount_tree


__all__ = ["ENCODINGS", "term_bits", "term_masks", "sign_magnitude", "magnitude_terms", "lowest_set_bit", "any_set", "TermEncoder"]


def check_encoding(encoding):
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}")


def term_bits(width, delta=False):
    """Term offsets a ``width``-bit value needs: ``width`` (offsets 0..width-1); a delta of
    two such values (``width + 1`` bits) needs one more, for the NAF digit above its top
    magnitude bit."""
    return width + 1 if delta else width


def term_masks(m, value, *, bits, encoding, name="terms"):
    """``(mask, negative)``: ``bits``-bit signals with the terms of the signed ``value``.

    Combinational logic added to ``m.d.comb``: :func:`sign_magnitude`, then
    :func:`magnitude_terms`. The magnitude of ``value`` must fit in ``bits`` bits and its NAF
    too (true for a ``bits``-bit raw value and for a delta of two ``bits - 1``-bit values).
    """
    check_encoding(encoding)
    sign, magnitude = sign_magnitude(m, value, bits=bits, name=name)
    return magnitude_terms(m, sign, magnitude, encoding=encoding, name=name)


def sign_magnitude(m, value, *, bits, name="terms"):
    """``(sign, magnitude)`` of the signed ``value``: its sign bit and a ``bits``-bit
    ``|value|``, in combinational logic added to ``m.d.comb``. The first half of
    :func:`term_masks`; a pipeline may register between the halves."""
    sign = Signal(name=f"{name}_sign")
    magnitude = Signal(bits, name=f"{name}_mag")
    m.d.comb += [sign.eq(value < 0), magnitude.eq(Mux(value < 0, -value, value))]
    return sign, magnitude


def magnitude_terms(m, sign, magnitude, *, encoding, name="terms"):
    """``(mask, negative)`` of the value with ``sign`` and ``magnitude`` (see
    :func:`sign_magnitude`): the second half of :func:`term_masks`."""
    check_encoding(encoding)
    bits = len(magnitude)
    # Non-adjacent form: with h = x >> 1 and t = x + h, the digits where h and t differ
    # are the non-zero ones; t says +1 and h says -1 there.
    half = magnitude >> 1
    three_halves = Signal(bits + 1, name=f"{name}_x3")
    m.d.comb += three_halves.eq(magnitude + half)
    differ = three_halves ^ half
    naf_pos = (three_halves & differ)[:bits]
    naf_neg = (half & differ)[:bits]
    mask = Signal(bits, name=f"{name}_mask")
    neg = Signal(bits, name=f"{name}_neg")     # before the value's sign is applied
    if encoding == "plain":
        m.d.comb += [mask.eq(magnitude), neg.eq(0)]
    elif encoding == "csd":
        m.d.comb += [mask.eq(naf_pos | naf_neg), neg.eq(naf_neg)]
    else:
        naf_mask = naf_pos | naf_neg
        use_csd = Signal(name=f"{name}_use_csd")
        m.d.comb += [
            use_csd.eq(popcount_tree(naf_mask) < popcount_tree(magnitude)),
            mask.eq(Mux(use_csd, naf_mask, magnitude)),
            neg.eq(Mux(use_csd, naf_neg, 0)),
        ]
    negative = Signal(bits, name=f"{name}_negative")
    m.d.comb += negative.eq(Mux(sign, mask & ~neg, neg))
    return mask, negative


def lowest_set_bit(value):
    """The index of the lowest set bit of ``value`` (0 when ``value`` is 0): isolate it
    (``v & -v``, a carry chain) and encode the one-hot result, one OR per index bit."""
    bits = len(value)
    onehot = value & (-value.as_signed() if bits > 1 else value)
    index_bits = max(1, (bits - 1).bit_length())
    return Cat(*(any_set(onehot[k] for k in range(bits) if (k >> b) & 1)
                 for b in range(index_bits)))


def any_set(values):
    """1 when any of ``values`` (Amaranth values) has a set bit: an OR tree."""
    result = Const(0, 1)
    for value in values:
        result = result | value.any()
    return result


class TermEncoder(wiring.Component):
    """Value stream in, term stream out: one term per cycle, lowest offset first.

    Every value becomes one output beat per term, the last with ``last``; a zero value
    becomes a single beat with ``zero`` and ``last`` (offset 0). A new value is accepted in
    the cycle its predecessor's last term leaves, so the encoder sustains one term per
    cycle.

    Parameters
    ----------
    width : int
        Bits per (signed, two's complement) value, 2..32.
    encoding : str
        ``"best"`` (default), ``"csd"`` or ``"plain"``.
    delta : bool
        Values are deltas of two ``width``-bit values (``width + 1`` bits, offsets up to
        ``width``).

    Members
    -------
    i : In(stream.Signature(signed(value_bits)))
        Values.
    o : Out(stream.Signature(term_layout))
        ``offset``, ``negative`` (the term is ``-2**offset``), ``last``, ``zero``.
    """

    def __init__(self, *, width=16, encoding="best", delta=False):
        check_int("width", width, 2, 32)
        check_encoding(encoding)
        if not isinstance(delta, bool):
            raise TypeError(f"delta must be a bool, got {delta!r}")
        self._width = width
        self._encoding = encoding
        self._delta = delta
        super().__init__({
            "i": In(stream.Signature(signed(self.value_bits))),
            "o": Out(stream.Signature(self.term_layout)),
        })

    @property
    def value_bits(self):
        return self._width + 1 if self._delta else self._width

    @property
    def term_bits(self):
        return term_bits(self._width, self._delta)

    @property
    def term_layout(self):
        return data.StructLayout({"offset": range(self.term_bits), "negative": 1,
                                  "last": 1, "zero": 1})

    def elaborate(self, platform):
        m = Module()
        bits = self.term_bits
        mask_in, negative_in = term_masks(m, self.i.payload, bits=bits,
                                          encoding=self._encoding)
        busy = Signal()
        mask = Signal(bits)
        negative = Signal(bits)
        remaining = mask & (mask - 1)            # the mask without its lowest term
        lowest = mask & ~(mask - 1)              # the lowest term, one-hot
        last = remaining == 0
        m.d.comb += [
            self.o.valid.eq(busy),
            self.o.payload.offset.eq(lowest_set_bit(mask)),
            self.o.payload.negative.eq((negative & lowest).any()),
            self.o.payload.last.eq(last),
            self.o.payload.zero.eq(mask == 0),
            self.i.ready.eq(~busy | (self.o.ready & last)),
        ]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [busy.eq(1), mask.eq(mask_in), negative.eq(negative_in)]
        with m.Elif(self.o.ready & busy):
            m.d.sync += mask.eq(remaining)
            with m.If(last):
                m.d.sync += busy.eq(0)
        return m
