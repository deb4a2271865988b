"""The band-limited convolution engine (``bandlimit-conv``): legal parameter ranges and
the kept-frequency rule, written once for the RTL, the fixed-point golden, the float
golden (:func:`dnnhw.golden.conv_fft.band_limit_keep`) and the catalog.
``docs/bandlimit-conv.md`` says what each one means.
"""

import math
import numbers

from dnnhw.spec.fft import POINTS

#: Dimensions of a tile: 1 (a row) or 2 (a square, by row and column passes).
DIMS = (1, 2)
#: FFT points per axis. A 2D tile is ``n x n`` samples and each of its two transpose
#: buffers holds two tiles, so 2D stops at 64.
POINTS_1D = POINTS
POINTS_2D = tuple(n for n in POINTS if n <= 64)
#: Input and output channels of the engine.
CHANNELS = range(1, 257)
#: Bits of a filter coefficient's real and imaginary parts (signed), the DSP's operand.
COEFFICIENT_WIDTHS = range(8, 19)


def points_for(dims):
    """The legal ``n`` for ``dims``."""
    return POINTS_1D if dims == 1 else POINTS_2D


def check_compression_rate(compression_rate):
    """``compression_rate`` (c, percent) as a float after checking it is in [0, 100)."""
    if not isinstance(compression_rate, numbers.Real) or isinstance(compression_rate, bool):
        raise TypeError(f"compression_rate must be a number in [0, 100), got "
                        f"{compression_rate!r}")
    if not 0 <= compression_rate < 100:
        raise ValueError(f"compression_rate must be in [0, 100), got {compression_rate!r}")
    return float(compression_rate)


def kept_half_width(length, dims, compression_rate):
    """``m``: along an axis of FFT length ``length``, the kept frequencies are ``0 .. m``
    of the one-sided spectrum (and ``-m .. -1`` on a two-sided axis).

    ``dims == 1`` (the authors' ``conv1D_fft``): of the ``half = length // 2 + 1``
    one-sided frequencies, drop the ``int(half * c / 100) + 1`` highest (none at c = 0),
    keeping at least one. ``dims >= 2``: ``m + 1 = max(1, int(half * sqrt((100 - c) /
    100)))`` along every axis, so a square spectrum keeps the published ``(2m + 1) x
    (m + 1)`` block.
    """
    c = check_compression_rate(compression_rate)
    half = int(length) // 2 + 1
    if dims == 1:
        dropped = 0 if c == 0 else min(int(half * c / 100) + 1, half - 1)
        return half - dropped - 1
    return max(1, int(half * math.sqrt((100 - c) / 100))) - 1


def kept_count(length, half_width):
    """How many of an axis's ``length`` two-sided frequencies ``0 .. m`` and
    ``-m .. -1`` are: ``min(length, 2 m + 1)``."""
    return min(int(length), 2 * int(half_width) + 1)
