"""Golden model of the streaming fixed-point FFT that ``dnnhw.rtl.fft`` (``StreamingFFT``)
computes, bit for bit: a radix-2 decimation-in-frequency transform of ``n``-point complex
frames of signed ``width``-bit parts, with ``twiddle_width``-bit twiddles, a per-stage
choice of halving (``shifts``), saturation with a sticky ``overflow`` flag and the result
in natural order.

The contract is section 2 of ``docs/fft.md``; the legal ranges are in
:mod:`dnnhw.spec.fft`. :func:`fft` is the core, :func:`stage` one of its stages (for
debugging a pipeline stage by stage), :func:`twiddles` the twiddle ROM and
:func:`bit_reversed_order` / :func:`bit_reverse` the reorder buffer's permutation.

Readings of the contract
------------------------
Where ``docs/fft.md`` leaves a choice, this module takes the literal reading:

1. *Sum and difference.* ``u`` and ``v`` are saturated after the shift whatever it is:
   with a shift of 1 only ``a - b = (M - 1) - (-M)`` needs it (its halving rounds up to
   ``M``), so the multiplier's operands are ``width`` bits.
2. *Overflow* is one flag for the whole call: any saturation that changed a value, in
   any part, stage or frame.
3. *Twiddles* are computed in float64 (``numpy.cos`` / ``numpy.sin`` of
   ``2 * pi * k / n``) and rounded with ``floor(x * 2 ** F + 0.5)``. For every legal
   ``n`` and ``twiddle_width`` no value is within ``1e-4`` of a rounding boundary (the
   exact zeros land at distance 0.5), so any float evaluation of the formula (``math``,
   ``numpy``, either order of the products) gives the same ROM.
4. *Stage output order.* :func:`stage` returns the frame in the pipeline's (in place)
   order; only :func:`fft` reorders, after the last stage.

Integer ranges
--------------
Everything is int64. The widest intermediates are the products: ``|v| <= M <= 2 ** 23``
and ``|c|, |s| <= 2 ** F <= 2 ** 16``, so ``|v.re * c - v.im * s| <= 2 ** 40`` (plus
the rounding constant ``2 ** (F - 1)``), far inside int64 (checked at import below).
"""

import numbers

import numpy as np

from dnnhw.spec.fft import POINTS, TWIDDLE_WIDTHS, WIDTHS, check_shifts, twiddle_fraction_bits

from ._checks import check_int


__all__ = ["twiddles", "fft", "stage", "bit_reverse", "bit_reversed_order"]

# The widest intermediate of a legal configuration (see "Integer ranges" above).
_MAX_V = 1 << (WIDTHS[-1] - 1)
_MAX_W = 1 << twiddle_fraction_bits(TWIDDLE_WIDTHS[-1])
assert 2 * _MAX_V * _MAX_W + (_MAX_W >> 1) < 2 ** 44 < 2 ** 63


# --- argument checks ---------------------------------------------------------------------

def _check_n(n):
    n = check_int("n", n)
    if n not in POINTS:
        raise ValueError(f"n must be a power of two in {POINTS[0]}..{POINTS[-1]}, got {n}")
    return n


def _check_range(name, value, legal):
    return check_int(name, value, legal.start, legal.stop - 1)


def _check_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def _stages(n):
    return n.bit_length() - 1


def _frames(x, n, width):
    """``x`` (integer ``(..., n, 2)`` or complex ``(..., n)`` with integer parts) as int64
    ``(..., n, 2)`` after checking every part is in the signed ``width``-bit range."""
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    array = np.asarray(x)
    if np.iscomplexobj(array):
        if array.ndim < 1 or array.shape[-1] != n:
            raise ValueError(f"x (complex) must have shape (..., n) = (..., {n}), "
                             f"got {array.shape}")
        parts = np.stack([array.real, array.imag], axis=-1)
        if not np.all(np.isfinite(parts)) or np.any(parts != np.floor(parts)):
            raise ValueError("x (complex) must have integer real and imaginary parts")
    elif np.issubdtype(array.dtype, np.integer):
        if array.ndim < 2 or array.shape[-2:] != (n, 2):
            raise ValueError(f"x must have shape (..., n, 2) = (..., {n}, 2) "
                             f"(real, imaginary parts), got {array.shape}")
        parts = array
    else:
        raise TypeError(f"x must be an integer array of shape (..., n, 2) or a complex "
                        f"array of shape (..., n), got dtype {array.dtype}")
    if parts.size and (parts.min() < lo or parts.max() > hi):
        raise ValueError(f"x must hold values in {lo}..{hi} (signed {width} bits), got "
                         f"{parts.min():.0f}..{parts.max():.0f}")
    return parts.astype(np.int64)


# --- the arithmetic (docs/fft.md section 2) ----------------------------------------------

def _rnd(x, k):
    """``rnd(x, k) = (x + 2 ** (k - 1)) >> k`` (round half up), ``x`` for ``k = 0``."""
    return (x + (1 << (k - 1))) >> k if k > 0 else x


def _sat(x, m):
    """``x`` clamped to ``-m .. m - 1`` and whether that changed any value."""
    return np.clip(x, -m, m - 1), bool(np.any(x < -m) or np.any(x > m - 1))


def _twiddles(n, twiddle_width, inverse):
    f = twiddle_fraction_bits(twiddle_width)
    angle = 2 * np.pi * np.arange(n // 2) / n
    sine = np.sin(angle) if inverse else -np.sin(angle)
    rom = np.floor(np.stack([np.cos(angle), sine], axis=-1) * 2.0 ** f + 0.5)
    return rom.astype(np.int64)


def _stage(x, s, n, m, f, rom, shift):
    """Stage ``s`` on checked int64 ``(..., n, 2)`` frames; returns ``(out, overflow)``."""
    d = n >> (s + 1)
    lead = x.shape[:-2]
    blocks = x.reshape(lead + (n // (2 * d), 2, d, 2))
    a, b = blocks[..., 0, :, :], blocks[..., 1, :, :]
    u, over_u = _sat(_rnd(a + b, shift), m)
    v, over_v = _sat(_rnd(a - b, shift), m)
    overflow = over_u or over_v
    w = rom[np.arange(d) << s]                      # W(j << s), j = 0 .. D - 1
    c, sn = w[:, 0], w[:, 1]
    vr, vi = v[..., 0], v[..., 1]
    re, over_re = _sat(_rnd(vr * c - vi * sn, f), m)
    im, over_im = _sat(_rnd(vr * sn + vi * c, f), m)
    out = np.empty_like(blocks)
    out[..., 0, :, :] = u
    out[..., 1, :, 0] = re
    out[..., 1, :, 1] = im
    return out.reshape(x.shape), overflow or over_re or over_im


# --- public API --------------------------------------------------------------------------

def twiddles(n, twiddle_width, inverse=False):
    """The twiddle ROM: an int64 array of shape ``(n // 2, 2)``, row ``k`` holding
    ``W(k) = (c, s)``, ``c = floor(cos(2 pi k / n) * 2 ** F + 0.5)`` and
    ``s = floor(-+sin(2 pi k / n) * 2 ** F + 0.5)`` (``-`` forward, ``+`` inverse) with
    ``F = twiddle_width - 2``. ``W(0) = (2 ** F, 0)``."""
    n = _check_n(n)
    twiddle_width = _check_range("twiddle_width", twiddle_width, TWIDDLE_WIDTHS)
    inverse = _check_bool("inverse", inverse)
    return _twiddles(n, twiddle_width, inverse)


def bit_reversed_order(n):
    """The int64 permutation ``p -> bitrev_log2(n)(p)`` for ``p = 0 .. n - 1`` (``n`` a
    power of two). It is its own inverse."""
    n = check_int("n", n, 1)
    if n & (n - 1):
        raise ValueError(f"n must be a power of two >= 1, got {n}")
    bits = _stages(n)
    order = np.zeros(n, dtype=np.int64)
    p = np.arange(n, dtype=np.int64)
    for b in range(bits):
        order |= ((p >> b) & 1) << (bits - 1 - b)
    return order


def bit_reverse(values, n, axis=None):
    """``values`` permuted by :func:`bit_reversed_order` along ``axis``: element ``p``
    of the result is element ``bitrev(p)`` of ``values``. The default axis is -2 when the
    last axis has length 2 (``(..., n, 2)`` frames of (re, im) pairs; ``n >= 8`` makes
    this unambiguous for legal frames), else -1. Bit reversal is an involution, so this
    turns the last stage's order into natural order and back."""
    array = np.asarray(values)
    if axis is None:
        axis = -2 if array.ndim >= 2 and array.shape[-1] == 2 and n != 2 else -1
    if array.ndim == 0 or array.shape[axis] != n:
        raise ValueError(f"values must have {n} elements along axis {axis}, "
                         f"got shape {array.shape}")
    return np.take(array, bit_reversed_order(n), axis=axis)


def stage(x, s, *, n, width, twiddle_width, inverse, shift):
    """One decimation-in-frequency stage (``docs/fft.md`` section 2) on frames ``x``
    (integer ``(..., n, 2)`` or complex ``(..., n)``, parts in the signed ``width``-bit
    range): stage ``s`` (``0 .. log2(n) - 1``, span ``D = n >> (s + 1)``) with ``shift``
    0 or 1. Returns ``(out, overflow)``: int64 ``(..., n, 2)`` in the pipeline's order
    (``out[j]`` the sum ``u``, ``out[j + D]`` the twiddled difference, per block of
    ``2 D``) and whether a saturation changed a value. Feeding stage ``s``'s output to
    stage ``s + 1``, from ``s = 0`` to ``log2(n) - 1``, then :func:`bit_reverse`, is
    :func:`fft`."""
    n = _check_n(n)
    width = _check_range("width", width, WIDTHS)
    twiddle_width = _check_range("twiddle_width", twiddle_width, TWIDDLE_WIDTHS)
    inverse = _check_bool("inverse", inverse)
    s = check_int("s", s, 0, _stages(n) - 1)
    shift = check_int("shift", shift, 0, 1)
    frames = _frames(x, n, width)
    return _stage(frames, s, n, 1 << (width - 1), twiddle_fraction_bits(twiddle_width),
                  _twiddles(n, twiddle_width, inverse), shift)


def fft(x, *, n, width, twiddle_width, inverse=False, shifts=None):
    """The fixed-point FFT of ``docs/fft.md`` section 2 on frames ``x``: an integer array
    of shape ``(..., n, 2)`` (real, imaginary parts) or a complex array of shape
    ``(..., n)`` with integer parts, every part in ``-2 ** (width - 1) .. 2 ** (width - 1)
    - 1``. ``shifts``: None (every stage halves), an int mask (bit ``s`` is stage
    ``s``'s shift) or a sequence of ``log2(n)`` values 0 / 1. ``inverse`` uses the
    conjugate twiddles (``e^{+2 pi i jk/n}``).

    Returns ``(y, overflow)``: ``y`` int64 of shape ``(..., n, 2)`` in natural order (bin
    0 first), ``overflow`` True if any saturation changed a value in any frame. With
    every shift 1 the forward result is ``DFT(x) / n`` up to the rounding of the stages;
    with every shift 0 it is the unscaled transform, saturated."""
    n = _check_n(n)
    width = _check_range("width", width, WIDTHS)
    twiddle_width = _check_range("twiddle_width", twiddle_width, TWIDDLE_WIDTHS)
    inverse = _check_bool("inverse", inverse)
    shifts = check_shifts(shifts, _stages(n))
    frames = _frames(x, n, width)
    m, f = 1 << (width - 1), twiddle_fraction_bits(twiddle_width)
    rom = _twiddles(n, twiddle_width, inverse)
    overflow = False
    for s, shift in enumerate(shifts):
        frames, over = _stage(frames, s, n, m, f, rom, shift)
        overflow = overflow or over
    return frames[..., bit_reversed_order(n), :], overflow
