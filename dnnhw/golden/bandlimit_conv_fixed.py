"""Golden model of the band-limited convolution engine that ``dnnhw.rtl.bandlimit_conv``
(``BandLimitedConv``) computes, bit for bit, and of the host's filter quantizer.

The contract is ``docs/bandlimit-conv.md``: section 2 (the kept frequencies) is
:func:`band`, section 3 (the arithmetic) :func:`conv`, section 4 (the filters)
:func:`filter_spectra` and :func:`filter_memory_bits`. Every FFT pass is
:func:`dnnhw.golden.fft_fixed.fft`; the ranges are in :mod:`dnnhw.spec.bandlimit` and
:mod:`dnnhw.spec.fft`. :func:`float_reference` (the ideal band-limited correlation, by
``numpy.fft``) and :func:`direct_reference` (the valid correlation, tap by tap) are the
references the fixed-point path is measured against.

Readings of the contract
------------------------
Where ``docs/bandlimit-conv.md`` leaves a choice, this module takes these readings:

1. *Self-conjugate columns.* Only bins with ``k2 > n / 2`` (1D: ``k > n / 2``) are
   mirrored. The columns ``k2 = 0`` and ``k2 = n / 2`` are stored for every kept row,
   ``k1`` and ``-k1`` alike, although for a real filter the two words are conjugates:
   each is quantized from the DFT at its own bin.
2. *Filter quantizer.* The DFT is ``numpy.fft`` in float64, every part is rounded with
   ``floor(v * 2 ** coefficient_shift + 0.5)`` and then **clamped** to the signed
   ``coefficient_width``-bit range, silently (the host has no overflow flag).
   ``coefficient_shift`` is in ``0 ..`` :data:`COEFFICIENT_SHIFT_MAX`, the largest
   ``spectrum_shift`` of any legal configuration, so ``coefficient_shift =
   spectrum_shift`` (section 3's unit gain) is always possible. ``w`` may be any finite
   real numbers (an integer or floating dtype); its channel counts must be in
   ``CHANNELS``.
3. *Shifts.* ``forward_shifts`` and ``inverse_shifts`` take the FFT's forms (None, an int
   mask, a sequence) and apply to every pass of their direction (rows and columns
   alike); None means all 1 for the forward and all 0 for the inverse.
4. *Overflow* is one flag for the whole call: any saturation that changed a value in any
   FFT pass of any tile or channel (the imaginary parts too, even the inverse's, which
   are dropped afterwards) or in step 5.
5. *Accumulator order.* The kept bins are numbered in the forward transform's output
   order (1D natural ``k``; 2D column-major, stream position ``k2 * n + k1``), so the
   accumulator index of ``(k1, k2)`` is ``idx(k2) * T + idx(k1)``.
6. *Data.* ``conv`` takes integer arrays only (a float array of whole numbers is a
   TypeError), with or without the leading tiles axis; zero tiles give an empty result.
   The reference functions take any real arrays; :func:`direct_reference` any spatial
   size of at least ``taps`` per axis.

Integer ranges
--------------
Everything is int64. The widest value is the channel sum of step 4: at most
``in_channels * 2 * 2 ** (width - 1) * 2 ** (coefficient_width - 1) <= 2 ** 49`` in
magnitude for every legal configuration (checked at import below), which is what
:func:`accumulator_width` bits hold.
"""

from dataclasses import dataclass

import numpy as np

from dnnhw.spec.bandlimit import (
    CHANNELS, COEFFICIENT_WIDTHS, DIMS, check_compression_rate, kept_count,
    kept_half_width, points_for,
)
from dnnhw.spec.fft import TWIDDLE_WIDTHS, WIDTHS, check_shifts

from ._checks import check_int
from .fft_fixed import fft


__all__ = ["COEFFICIENT_SHIFT_MAX", "Band", "band", "filter_spectra", "conv",
           "float_reference", "direct_reference", "filter_memory_bits",
           "accumulator_width"]

#: The largest ``coefficient_shift``: the largest legal ``spectrum_shift``
#: (``width + coefficient_width``), so the two can always be equal.
COEFFICIENT_SHIFT_MAX = WIDTHS[-1] + COEFFICIENT_WIDTHS[-1]

# The channel sum of the widest legal configuration (see "Integer ranges" above).
_MAX_SUM = (CHANNELS[-1] * 2 << (WIDTHS[-1] - 1)) << (COEFFICIENT_WIDTHS[-1] - 1)
assert _MAX_SUM <= 2 ** 49 < 2 ** 62


# --- argument checks ---------------------------------------------------------------------

def _in_range(name, value, legal):
    return check_int(name, value, legal.start, legal.stop - 1)


def _check_dims(dims):
    dims = check_int("dims", dims)
    if dims not in DIMS:
        raise ValueError(f"dims must be 1 or 2, got {dims}")
    return dims


def _check_n(n, dims):
    n = check_int("n", n)
    legal = points_for(dims)
    if n not in legal:
        raise ValueError(f"n must be a power of two in {legal[0]}..{legal[-1]} for dims = "
                         f"{dims}, got {n}")
    return n


def _check_taps(taps, n, source=""):
    taps = check_int("taps", taps)
    if not 1 <= taps <= n:
        raise ValueError(f"taps must be in 1..n (1..{n}), got {taps}{source}")
    return taps


def _check_pass_shifts(name, shifts, stages, default):
    """:func:`check_shifts` for one direction, its messages naming ``name``; None means
    every stage ``default``."""
    if shifts is None:
        return (default,) * stages
    return check_shifts(shifts, stages, name)


def _check_real(name, values):
    """``values`` as a float64 array after checking it holds finite real numbers."""
    array = np.asarray(values)
    if not any(np.issubdtype(array.dtype, kind) for kind in (np.integer, np.floating)):
        raise TypeError(f"{name} must hold real numbers (an integer or floating dtype), "
                        f"got dtype {array.dtype}")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must hold finite values")
    return array


def _check_in_bits(name, array, bits):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if array.size and (array.min() < lo or array.max() > hi):
        raise ValueError(f"{name} must hold values in {lo}..{hi} (signed {bits} bits), got "
                         f"{array.min()}..{array.max()}")


def _check_channels(name, count):
    if count not in CHANNELS:
        raise ValueError(f"{name} must be in {CHANNELS.start}..{CHANNELS.stop - 1}, got "
                         f"{count}")


def _check_filters_real(w, dims, n):
    """Real filters ``(out_channels, in_channels, taps[, taps])`` as float64 after the
    shape, taps and channel checks; returns ``(w, taps)``."""
    array = np.asarray(w)
    if array.ndim != dims + 2:
        raise ValueError(f"w must have shape (out_channels, in_channels"
                         f"{', taps' * dims}) for dims = {dims}, got {array.shape}")
    taps = array.shape[-1]
    if dims == 2 and array.shape[-2] != taps:
        raise ValueError(f"w must be square (taps x taps) in 2D, got shape {array.shape}")
    _check_taps(taps, n, f" (w's last axis, shape {array.shape})")
    _check_channels("out_channels (w's axis 0)", array.shape[0])
    _check_channels("in_channels (w's axis 1)", array.shape[1])
    return _check_real("w", array), taps


def _check_tiles(name, array, dims, n):
    """``array`` as ``(tiles, in_channels, n[, n])`` plus whether it had the tiles axis."""
    spatial = "n" if dims == 1 else "n, n"
    if array.ndim not in (dims + 1, dims + 2) or array.shape[-dims:] != (n,) * dims:
        raise ValueError(f"{name} must have shape (tiles, in_channels, {spatial}) or "
                         f"(in_channels, {spatial}) with n = {n}, got {array.shape}")
    has_tiles = array.ndim == dims + 2
    array = array if has_tiles else array[np.newaxis]
    _check_channels(f"in_channels ({name}'s axis {-dims - 1})", array.shape[1])
    return array, has_tiles


# --- section 2: the kept frequencies -----------------------------------------------------

@dataclass(frozen=True, eq=False)
class Band:
    """The kept set of ``docs/bandlimit-conv.md`` section 2 for one ``(n, dims, c)``.

    The per-bin arrays have ``n ** dims`` entries, indexed by the forward transform's
    output (stream) position: 1D the frequency ``k``, 2D ``k2 * n + k1``.

    Attributes
    ----------
    n, dims : int
    m : int
        ``kept_half_width(n, dims, c)``: frequencies ``0 .. m`` and ``n - m .. n - 1``
        are kept along an axis.
    kept_per_axis : int
        ``T = min(n, 2 m + 1)``.
    columns : int
        ``Q = min(m, n / 2) + 1``, the stored columns (1D: stored frequencies).
    words_per_filter : int
        ``Q`` (1D) or ``Q * T`` (2D).
    kept_bins : int
        ``T ** dims``, the accumulators per output channel.
    kept_frequencies : ndarray of int64, (T,)
        The kept frequencies of an axis in increasing order (position = axis index).
    kept : ndarray of bool, (n ** dims,)
        Whether the bin at each stream position is kept.
    accumulator_index : ndarray of int64, (n ** dims,)
        The bin's rank among the kept bins in stream order, -1 where not kept.
    storage_index : ndarray of int64, (n ** dims,)
        The stored word ``j`` a kept bin uses, -1 where not kept.
    mirrored : ndarray of bool, (n ** dims,)
        Whether a kept bin uses its stored word conjugated (``k2 > n / 2``).
    kept_positions : ndarray of int64, (kept_bins,)
        The stream positions of the kept bins, in accumulator order.
    stored_positions : ndarray of int64, (words_per_filter,)
        The stream position of the bin each stored word ``j`` is the coefficient of.
    """

    n: int
    dims: int
    m: int
    kept_per_axis: int
    columns: int
    words_per_filter: int
    kept_bins: int
    kept_frequencies: np.ndarray
    kept: np.ndarray
    accumulator_index: np.ndarray
    storage_index: np.ndarray
    mirrored: np.ndarray
    kept_positions: np.ndarray
    stored_positions: np.ndarray


def band(n, dims, compression_rate):
    """The kept frequencies, stored words and mirroring of section 2.

    Parameters
    ----------
    n : int
        FFT points per axis, in ``POINTS_1D`` (``dims = 1``) or ``POINTS_2D`` (2).
    dims : int
        1 or 2.
    compression_rate : float
        ``c`` in percent, ``0 <= c < 100``.

    Returns
    -------
    Band
        Every array read-only.
    """
    dims = _check_dims(dims)
    n = _check_n(n, dims)
    compression_rate = check_compression_rate(compression_rate)
    m = kept_half_width(n, dims, compression_rate)
    t = kept_count(n, m)
    q = min(m, n // 2) + 1
    k = np.arange(n, dtype=np.int64)
    kept_axis = (k <= m) | (k >= n - m)
    axis_index = np.where(k <= m, k, k - (n - t))      # meaningful where kept_axis

    position = np.arange(n ** dims, dtype=np.int64)
    k1, k2 = (position, position) if dims == 1 else (position % n, position // n)
    kept = kept_axis[k2] & kept_axis[k1]
    mirrored = kept & (k2 > n // 2)
    column = np.where(mirrored, n - k2, k2)
    if dims == 1:
        storage = column
        stored_positions = np.arange(q, dtype=np.int64)
    else:
        row = np.where(mirrored, (-k1) % n, k1)
        storage = column * t + axis_index[row]
        stored_positions = (np.arange(q)[:, None] * n + k[kept_axis][None, :]).ravel()
    arrays = dict(
        kept_frequencies=k[kept_axis],
        kept=kept,
        accumulator_index=np.where(kept, np.cumsum(kept) - 1, -1),
        storage_index=np.where(kept, storage, -1),
        mirrored=mirrored,
        kept_positions=np.flatnonzero(kept).astype(np.int64),
        stored_positions=stored_positions.astype(np.int64),
    )
    for array in arrays.values():
        array.flags.writeable = False
    return Band(n=n, dims=dims, m=m, kept_per_axis=t, columns=q,
                words_per_filter=q if dims == 1 else q * t, kept_bins=t ** dims, **arrays)


def _stream_order(spectrum, dims, n):
    """A ``(..., n)`` or ``(..., n, n)`` (``[k1, k2]``) spectrum as ``(..., n ** dims)`` in
    stream order (2D column-major: position ``k2 * n + k1``)."""
    if dims == 1:
        return spectrum
    return np.swapaxes(spectrum, -1, -2).reshape(spectrum.shape[:-2] + (n * n,))


def _two_sided_mask(n, dims, compression_rate):
    """Section 2's kept set as a boolean ``(n,)`` / ``(n, n)`` mask, from the rule
    itself (``k <= m or k >= n - m`` on every axis)."""
    m = kept_half_width(n, dims, compression_rate)
    k = np.arange(n)
    axis = (k <= m) | (k >= n - m)
    return axis if dims == 1 else axis[:, None] & axis[None, :]


# --- section 4: the filters --------------------------------------------------------------

def filter_spectra(w, *, n, compression_rate, coefficient_width, coefficient_shift):
    """The words the engine stores for real filters ``w`` (section 4).

    ``F[o][c][j] = clamp(floor(conj(DFT_n(w[o][c]))[bin j] * 2 ** coefficient_shift +
    0.5))`` per part, ``DFT_n`` the unscaled DFT of ``w`` zero-padded to ``n`` (2D: both
    axes), clamped to the signed ``coefficient_width``-bit range.

    Parameters
    ----------
    w : array_like of real, (out_channels, in_channels, taps) or (..., taps, taps)
        The filters; ``w.ndim`` sets dims (3: 1D, 4: 2D). ``taps`` in ``1 .. n``.
    n : int
        FFT points per axis (``POINTS_1D`` / ``POINTS_2D``).
    compression_rate : float
        ``c`` in percent, ``0 <= c < 100``.
    coefficient_width : int
        Bits of a word's parts, in ``COEFFICIENT_WIDTHS``.
    coefficient_shift : int
        The scale ``2 ** coefficient_shift``, in ``0 ..`` :data:`COEFFICIENT_SHIFT_MAX`.

    Returns
    -------
    ndarray of int64, (out_channels, in_channels, words_per_filter, 2)
        (real, imaginary) parts, ``j`` in storage order (1D: ``j = q``; 2D: ``j = q * T +
        r``).
    """
    array = np.asarray(w)
    if array.ndim not in (3, 4):
        raise ValueError(f"w must have shape (out_channels, in_channels, taps) or "
                         f"(out_channels, in_channels, taps, taps), got {array.shape}")
    dims = array.ndim - 2
    n = _check_n(n, dims)
    kept = band(n, dims, compression_rate)
    coefficient_width = _in_range("coefficient_width", coefficient_width,
                                  COEFFICIENT_WIDTHS)
    coefficient_shift = check_int("coefficient_shift", coefficient_shift, 0,
                                  COEFFICIENT_SHIFT_MAX)
    filters, _ = _check_filters_real(array, dims, n)

    spectrum = np.fft.fftn(filters, s=(n,) * dims, axes=tuple(range(-dims, 0)))
    words = np.conj(_stream_order(spectrum, dims, n)[..., kept.stored_positions])
    parts = np.floor(np.stack([words.real, words.imag], axis=-1) * 2.0 ** coefficient_shift
                     + 0.5)
    limit = 1 << (coefficient_width - 1)
    return np.clip(parts, -limit, limit - 1).astype(np.int64)


def filter_memory_bits(*, dims, n, in_channels, out_channels, compression_rate,
                       coefficient_width):
    """Bits of the filter memory (section 4): ``out_channels * in_channels *
    words_per_filter`` words of ``2 * coefficient_width`` bits.

    Parameters
    ----------
    dims, n, compression_rate : as :func:`band`
    in_channels, out_channels : int
        In ``CHANNELS``.
    coefficient_width : int
        In ``COEFFICIENT_WIDTHS``.

    Returns
    -------
    int
    """
    words = band(n, dims, compression_rate).words_per_filter
    in_channels = _in_range("in_channels", in_channels, CHANNELS)
    out_channels = _in_range("out_channels", out_channels, CHANNELS)
    coefficient_width = _in_range("coefficient_width", coefficient_width,
                                  COEFFICIENT_WIDTHS)
    return out_channels * in_channels * words * 2 * coefficient_width


def accumulator_width(width, coefficient_width, in_channels):
    """Bits of an accumulator part (section 3, step 4): ``width + coefficient_width + 1 +
    ceil(log2(in_channels))``, enough for any channel sum of exact products.

    Parameters
    ----------
    width : int
        In ``WIDTHS``.
    coefficient_width : int
        In ``COEFFICIENT_WIDTHS``.
    in_channels : int
        In ``CHANNELS``.

    Returns
    -------
    int
    """
    width = _in_range("width", width, WIDTHS)
    coefficient_width = _in_range("coefficient_width", coefficient_width,
                                  COEFFICIENT_WIDTHS)
    in_channels = _in_range("in_channels", in_channels, CHANNELS)
    return width + coefficient_width + 1 + (in_channels - 1).bit_length()


# --- section 3: the arithmetic -----------------------------------------------------------

def _rnd(x, k):
    """``rnd(x, k) = (x + 2 ** (k - 1)) >> k`` (round half up), ``x`` for ``k = 0``."""
    return (x + (1 << (k - 1))) >> k if k > 0 else x


def _sat(x, limit):
    """``x`` clamped to ``-limit .. limit - 1`` and whether that changed any value."""
    return np.clip(x, -limit, limit - 1), bool(np.any(x < -limit) or np.any(x > limit - 1))


def _forward(samples, dims, n, fft_args, shifts):
    """Step 1: real tiles ``(tiles, C, n[, n])`` to ``(tiles, C, n ** dims, 2)`` spectra in
    stream order, and the overflow of every pass."""
    frames = np.stack([samples, np.zeros_like(samples)], axis=-1)
    spectrum, overflow = fft(frames, shifts=shifts, **fft_args)       # 1D; 2D: the rows
    if dims == 2:
        # The columns: the row index becomes the points axis, giving [k2, k1].
        spectrum, over = fft(np.swapaxes(spectrum, -3, -2), shifts=shifts, **fft_args)
        overflow = overflow or over
    return spectrum.reshape(samples.shape[:2] + (n ** dims, 2)), overflow


def _inverse(spectrum, dims, n, fft_args, shifts):
    """Step 6: ``(tiles, O, n ** dims, 2)`` stream-order spectra to complex samples
    ``(tiles, O, n[, n], 2)`` (row-major), and the overflow of every pass."""
    if dims == 1:
        return fft(spectrum, inverse=True, shifts=shifts, **fft_args)
    # [k2, k1]: the columns (over k1) first, then the rows (over k2).
    columns = spectrum.reshape(spectrum.shape[:2] + (n, n, 2))
    columns, overflow = fft(columns, inverse=True, shifts=shifts, **fft_args)
    samples, over = fft(np.swapaxes(columns, -3, -2), inverse=True, shifts=shifts,
                        **fft_args)
    return samples, overflow or over


def conv(x, filters, *, dims, n, taps, compression_rate, width, twiddle_width,
         coefficient_width, spectrum_shift, forward_shifts=None, inverse_shifts=None):
    """The engine's arithmetic (section 3), bit for bit, on a batch of tiles.

    Parameters
    ----------
    x : array_like of int, (tiles, in_channels, n) or (tiles, in_channels, n, n)
        The tiles (the tiles axis may be left out); every sample in the signed
        ``width``-bit range.
    filters : array_like of int, (out_channels, in_channels, words_per_filter, 2)
        The stored spectra, as :func:`filter_spectra` returns them; parts in the signed
        ``coefficient_width``-bit range.
    dims : int
        1 or 2.
    n : int
        FFT points per axis (``POINTS_1D`` / ``POINTS_2D``).
    taps : int
        Filter side, ``1 .. n``; sets the crop.
    compression_rate : float
        ``c`` in percent, ``0 <= c < 100``.
    width, twiddle_width : int
        As the FFT's (``WIDTHS``, ``TWIDDLE_WIDTHS``).
    coefficient_width : int
        In ``COEFFICIENT_WIDTHS``.
    spectrum_shift : int
        Right shift of the channel sum, ``0 .. width + coefficient_width``.
    forward_shifts, inverse_shifts : None, int or sequence of int
        The FFT ``shifts`` of every forward / inverse pass; None: all 1 / all 0.

    Returns
    -------
    (y, overflow)
        ``y`` int64 ``(tiles, out_channels, out[, out])`` (no tiles axis if ``x`` had
        none), ``out = n - taps + 1``; ``overflow`` True if any saturation changed a value
        in any FFT pass or in step 5.
    """
    dims = _check_dims(dims)
    n = _check_n(n, dims)
    taps = _check_taps(taps, n)
    kept = band(n, dims, compression_rate)
    width = _in_range("width", width, WIDTHS)
    twiddle_width = _in_range("twiddle_width", twiddle_width, TWIDDLE_WIDTHS)
    coefficient_width = _in_range("coefficient_width", coefficient_width,
                                  COEFFICIENT_WIDTHS)
    spectrum_shift = check_int("spectrum_shift", spectrum_shift, 0,
                               width + coefficient_width)
    stages = n.bit_length() - 1
    forward_shifts = _check_pass_shifts("forward_shifts", forward_shifts, stages, 1)
    inverse_shifts = _check_pass_shifts("inverse_shifts", inverse_shifts, stages, 0)

    samples = np.asarray(x)
    if not np.issubdtype(samples.dtype, np.integer):
        raise TypeError(f"x must be an integer array, got dtype {samples.dtype}")
    samples, has_tiles = _check_tiles("x", samples, dims, n)
    _check_in_bits("x", samples, width)
    samples = samples.astype(np.int64)
    in_channels = samples.shape[1]

    words = np.asarray(filters)
    if not np.issubdtype(words.dtype, np.integer):
        raise TypeError(f"filters must be an integer array, got dtype {words.dtype}")
    expected = (in_channels, kept.words_per_filter, 2)
    if words.ndim != 4 or words.shape[1:] != expected:
        raise ValueError(f"filters must have shape (out_channels, in_channels, "
                         f"words_per_filter, 2) = (out_channels, {in_channels}, "
                         f"{kept.words_per_filter}, 2), got {words.shape}")
    _check_channels("out_channels (filters' axis 0)", words.shape[0])
    _check_in_bits("filters", words, coefficient_width)
    words = words.astype(np.int64)

    fft_args = dict(n=n, width=width, twiddle_width=twiddle_width)
    spectrum, overflow = _forward(samples, dims, n, fft_args, forward_shifts)   # step 1
    x_kept = spectrum[:, :, kept.kept_positions, :]                             # step 2

    # Step 3: each kept bin's coefficient, conjugated where mirrored.
    coefficient = words[:, :, kept.storage_index[kept.kept_positions], :]
    w_re = coefficient[..., 0]
    w_im = np.where(kept.mirrored[kept.kept_positions], -coefficient[..., 1],
                    coefficient[..., 1])
    x_re, x_im = x_kept[..., 0], x_kept[..., 1]

    # Step 4: the exact complex products summed over input channels (int64 einsum).
    def channel_sum(a, b):
        return np.einsum("tck,ock->tok", a, b)
    accumulator = np.stack([channel_sum(x_re, w_re) - channel_sum(x_im, w_im),
                            channel_sum(x_re, w_im) + channel_sum(x_im, w_re)], axis=-1)

    # Step 5: scale and saturate; zero-fill the bins that are not kept.
    scaled, over = _sat(_rnd(accumulator, spectrum_shift), 1 << (width - 1))
    overflow = overflow or over
    out_spectrum = np.zeros(accumulator.shape[:2] + (n ** dims, 2), dtype=np.int64)
    out_spectrum[:, :, kept.kept_positions, :] = scaled

    result, over = _inverse(out_spectrum, dims, n, fft_args, inverse_shifts)   # step 6
    overflow = overflow or over
    out = n - taps + 1                                                          # step 7
    y = result[..., :out, 0] if dims == 1 else result[..., :out, :out, 0]
    return (y if has_tiles else y[0]), overflow


# --- references --------------------------------------------------------------------------

def float_reference(x, w, *, dims, n, compression_rate):
    """The ideal band-limited correlation at FFT size ``n``, in float64, computed with
    ``numpy.fft`` apart from the fixed-point path: ``crop(real(ifft(mask * sum_c fft(x_c)
    * conj(fft(w_oc zero-padded)))))`` with section 2's two-sided kept set as ``mask``.
    At ``c = 0`` it is the valid correlation ``y[i] = sum_j x[i + j] w[j]``.

    Parameters
    ----------
    x : array_like of real, (tiles, in_channels, n[, n]) or (in_channels, n[, n])
    w : array_like of real, (out_channels, in_channels, taps[, taps])
        ``taps`` in ``1 .. n``.
    dims, n, compression_rate : as :func:`band`

    Returns
    -------
    ndarray of float64, (tiles, out_channels, out[, out])
        ``out = n - taps + 1``; no tiles axis if ``x`` had none.
    """
    dims = _check_dims(dims)
    n = _check_n(n, dims)
    compression_rate = check_compression_rate(compression_rate)
    filters, taps = _check_filters_real(w, dims, n)
    samples, has_tiles = _check_tiles("x", np.asarray(x), dims, n)
    samples = _check_real("x", samples)
    if samples.shape[1] != filters.shape[1]:
        raise ValueError(f"x and w must have the same in_channels, got {samples.shape[1]} "
                         f"and {filters.shape[1]}")

    axes = tuple(range(-dims, 0))
    x_spectrum = np.fft.fftn(samples, axes=axes)
    w_spectrum = np.conj(np.fft.fftn(filters, s=(n,) * dims, axes=axes))
    channel_sum = np.einsum("tc...,oc...->to...", x_spectrum, w_spectrum)
    full = np.fft.ifftn(channel_sum * _two_sided_mask(n, dims, compression_rate), axes=axes)
    out = n - taps + 1
    y = full.real[..., :out] if dims == 1 else full.real[..., :out, :out]
    return y if has_tiles else y[0]


def direct_reference(x, w, *, dims, taps):
    """The valid correlation ``y[o][i] = sum_c sum_j x[c][i + j] w[o][c][j]`` (2D: over
    ``(a, b)``), computed directly over sliding windows, in float64.

    Parameters
    ----------
    x : array_like of real, (tiles, in_channels, *spatial) or (in_channels, *spatial)
        ``spatial`` is ``dims`` sizes of at least ``taps``.
    w : array_like of real, (out_channels, in_channels, taps[, taps])
    dims : int
        1 or 2.
    taps : int
        The filter side, at least 1; ``w``'s last axes must be ``taps``.

    Returns
    -------
    ndarray of float64, (tiles, out_channels, *(spatial - taps + 1))
        No tiles axis if ``x`` had none.
    """
    dims = _check_dims(dims)
    taps = check_int("taps", taps, 1)
    filters = _check_real("w", w)
    if filters.ndim != dims + 2 or filters.shape[2:] != (taps,) * dims:
        raise ValueError(f"w must have shape (out_channels, in_channels"
                         f"{', taps' * dims}) with taps = {taps}, got {filters.shape}")
    samples = _check_real("x", x)
    if samples.ndim not in (dims + 1, dims + 2):
        raise ValueError(f"x must have {dims + 2} axes (tiles, in_channels, spatial) or "
                         f"{dims + 1}, got shape {samples.shape}")
    has_tiles = samples.ndim == dims + 2
    samples = samples if has_tiles else samples[np.newaxis]
    if samples.shape[1] != filters.shape[1]:
        raise ValueError(f"x and w must have the same in_channels, got {samples.shape[1]} "
                         f"and {filters.shape[1]}")
    if min(samples.shape[2:]) < taps:
        raise ValueError(f"x's spatial sizes must be at least taps = {taps}, got "
                         f"{samples.shape[2:]}")
    windows = np.lib.stride_tricks.sliding_window_view(samples, (taps,) * dims,
                                                       axis=tuple(range(2, 2 + dims)))
    if dims == 1:
        y = np.einsum("tcij,ocj->toi", windows, filters)
    else:
        y = np.einsum("tcijab,ocab->toij", windows, filters)
    return y if has_tiles else y[0]
