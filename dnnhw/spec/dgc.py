"""Deep Gradient Compression (``dgc-sparsify``, ``dgc-aggregate``): the fixed-point rules'
constants and the legal parameter ranges, written once for the RTL, the fixed-point golden
and the catalog. ``docs/dgc.md`` says what each one means.
"""

import numbers

#: Bits of a gradient element (signed) on the sparsifier's input stream.
GRAD_WIDTHS = range(8, 17)
#: Bits of the sparsifier's u and v state and of a sparse value (signed, saturating).
STATE_WIDTHS = range(12, 33)
#: Elements a build holds: a power of two.
CAPACITY_BITS = range(4, 21)
#: Bits of the momentum and learning-rate registers (unsigned).
REGISTER_BITS = 16
#: Fraction bits of the momentum register: m = momentum / 2 ** MOMENTUM_FRAC.
MOMENTUM_FRAC = 16
#: The largest clipping shift: a clipped gradient element is g >> s, s in 0..MAX_CLIP_SHIFT.
MAX_CLIP_SHIFT = 15
#: Bits of the sampling stride register (sample every stride-th element).
STRIDE_BITS = 16

#: Mantissa bits of a magnitude's histogram key below its leading one: the bins of an
#: octave. Four bins an octave step by 2 ** 0.25 = 1.19, close to the authors' 0.8 / 1.25.
KEY_MANTISSA_BITS = 2
#: Rounds of the threshold's count feedback (the authors' rule: up to 10).
ADAPT_ROUNDS = 10
#: Count feedback bounds, as fractions: move up while selected > 13/10 k, down while
#: selected < 8/10 k.
UPPER_BOUND = (13, 10)
LOWER_BOUND = (8, 10)

#: Workers whose sparse streams one aggregator merges.
WORKERS = range(1, 17)
#: Bits of a weight (signed, saturating) on the aggregator's weight streams.
WEIGHT_WIDTHS = range(8, 33)
#: Fraction bits of the learning-rate register: lr = lr_q / 2 ** LR_FRAC.
LR_FRAC = 16


def capacity_bits(capacity):
    """``log2(capacity)`` of a legal capacity (a power of two, 2 ** CAPACITY_BITS), or
    TypeError / ValueError naming ``capacity`` and its range."""
    if isinstance(capacity, bool) or not isinstance(capacity, numbers.Integral):
        raise TypeError(f"capacity must be an integer, got {capacity!r}")
    capacity = int(capacity)
    bits = capacity.bit_length() - 1
    if capacity <= 0 or capacity != 1 << bits or bits not in CAPACITY_BITS:
        raise ValueError(f"capacity must be a power of two in 2**{CAPACITY_BITS.start}.."
                         f"2**{CAPACITY_BITS.stop - 1}, got {capacity}")
    return bits


def key_count(state_width):
    """Histogram keys of a ``state_width``-bit state: key 0 (zero) and the bins of the
    magnitudes 1 .. 2 ** (state_width - 1) - 1."""
    return 1 + (state_width - 1) * (1 << KEY_MANTISSA_BITS)
