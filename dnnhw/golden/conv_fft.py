"""FFT convolution and band-limited FFT convolution (Dziedzic et al., ICML 2019).

Correlation by FFT: ``x *c w = IFFT(FFT(x) . conj(FFT(w)))``, summed over input channels,
cropped to the valid outputs and subsampled by the stride. The FFT size per axis is
``padded + max(out, kernel span) - 1`` (REFERENCE.md; ``out`` is the stride-1 output
length, since all stride-1 outputs are computed), optionally rounded up to a power of two.

Band-limiting keeps a low-frequency block of the one-sided (real-FFT) spectrum of both
the input and the filters and zeroes the rest; only the kept block is multiplied.

2D and 3D rule, compression rate ``c`` in percent: ``retain = sqrt((100 - c) / 100)``;
along every axis of FFT length ``L`` with ``half = L // 2 + 1``,
``n + 1 = max(1, int(half * retain))``. The last (one-sided) axis keeps columns
``0..n``; the other axes keep rows ``0..n`` and ``-n..-1``. For a square spectrum this is
exactly the published ``(2n + 1) x (n + 1)`` block (rows and columns use the same ``n``);
for a non-square one each axis is cut in proportion to its own length, so that ``c = 0``
keeps everything. The kept set is closed under ``k -> -k``, so the masked spectrum stays
conjugate-symmetric (it is the spectrum of a real signal). ``max(1, .)`` keeps at least
the DC coefficient, as the authors' code does.

1D rule (the authors' ``conv1D_fft``): drop the ``int(half * c / 100) + 1`` highest
frequencies of the one-sided spectrum (none when ``c = 0``), keeping at least one.

The filter spectrum is evaluated only where it is needed, with small DFT matrices over
the filter's support (``kept frequencies x taps`` per axis). This equals the zero-padded
FFT of the filter but costs ``O(taps)`` per coefficient instead of ``O(L log L)`` per
filter, which is what makes FFT convolution with 3x3 kernels affordable in NumPy.
"""

import math

import numpy as np

from dnnhw.spec.bandlimit import check_compression_rate, kept_half_width


__all__ = ["fft_shape_for", "full_band", "band_limit_keep", "band_limit_mask",
           "check_compression_rate", "spectral_conv"]


#: Upper bound on the filter-spectrum buffers of one chunk of output channels.
FILTER_CHUNK_BYTES = 8 << 20


def _next_pow2(n):
    return 1 << (n - 1).bit_length()


def fft_shape_for(geometry, pow2=False):
    """FFT length per spatial axis: ``padded + max(stride-1 out, kernel span) - 1``."""
    shape = []
    for padded, extent in zip(geometry.padded_shape, geometry.kernel_extent):
        length = padded + max(padded - extent + 1, extent) - 1
        shape.append(_next_pow2(length) if pow2 else length)
    return tuple(shape)


def one_sided_shape(fft_shape):
    """Shape of the real-FFT spectrum of a signal of shape ``fft_shape``."""
    return tuple(fft_shape[:-1]) + (fft_shape[-1] // 2 + 1,)


def full_band(fft_shape):
    """Index arrays selecting the whole one-sided spectrum (plain FFT convolution)."""
    return [np.arange(n) for n in one_sided_shape(fft_shape)]


def band_limit_keep(fft_shape, compression_rate):
    """Index arrays, one per spatial axis, of the one-sided spectrum coefficients kept.

    The kept set is their Cartesian product (see the module docstring for the rule).
    """
    fft_shape = tuple(int(n) for n in fft_shape)
    dims = len(fft_shape)
    keep = []
    for length in fft_shape[:-1]:
        n = kept_half_width(length, dims, compression_rate)
        keep.append(np.unique(np.concatenate([np.arange(n + 1), np.arange(length - n, length)])))
    keep.append(np.arange(kept_half_width(fft_shape[-1], dims, compression_rate) + 1))
    return keep


def band_limit_mask(fft_shape, compression_rate):
    """Boolean mask over the one-sided spectrum: True where a coefficient is kept.

    Parameters
    ----------
    fft_shape : tuple of int
        Real-domain FFT size per axis, e.g. ``(H_fft, W_fft)``.
    compression_rate : float
        ``c`` in percent, 0 <= c < 100.

    Returns
    -------
    np.ndarray of bool, shape ``(*fft_shape[:-1], fft_shape[-1] // 2 + 1)``
    """
    mask = np.zeros(one_sided_shape(fft_shape), dtype=bool)
    mask[np.ix_(*band_limit_keep(fft_shape, compression_rate))] = True
    return mask


def _hermitian_weights(last_length, kept_columns):
    """Parseval weights of one-sided columns: 2 where the conjugate twin is not stored."""
    columns = np.asarray(kept_columns)
    has_twin = (columns > 0) & (2 * columns != last_length)
    return np.where(has_twin, 2.0, 1.0)


def _spectral_energy(spectrum, last_length, kept_columns, column_axis):
    """Two-sided energy of a one-sided spectrum (C-contiguous), Parseval-weighted.

    ``column_axis`` is the axis holding the one-sided columns ``kept_columns`` of an FFT
    of length ``last_length``; columns without a stored conjugate twin count once, the
    others twice.
    """
    single = np.flatnonzero(_hermitian_weights(last_length, kept_columns) == 1.0)
    edge = np.take(spectrum, single, axis=column_axis)
    return float(2 * np.vdot(spectrum, spectrum).real - np.vdot(edge, edge).real)


def _tapwise_product(dft, taps_first):
    """``dft @ taps_first`` for a handful of taps, as a sum of one broadcast product per tap.

    With an inner dimension of 3 or so a GEMM is memory-bound anyway, and every BLAS call
    can stall for milliseconds when its threads compete with other processes; this stays
    in plain NumPy loops.
    """
    product = dft[:, :1] * taps_first[:1]
    for tap in range(1, taps_first.shape[0]):
        product += dft[:, tap:tap + 1] * taps_first[tap:tap + 1]
    return product


def _conj_filter_spectrum(w_block, fft_shape, keep, dilation, complex_dtype):
    """``conj(FFT(w zero-padded to fft_shape))`` at the kept coefficients only.

    ``w_block`` has shape ``(*lead, *kernel)``. Axis by axis, last to first, the taps are
    contracted with a DFT matrix ``exp(+2 pi i f t d / L)`` (the + sign gives the
    conjugate directly, since ``w`` is real): the taps axis is moved to the front and
    ``(frequencies x taps) @ (taps x everything else)`` puts the frequencies in front, so
    the result comes out frequency-major: shape ``(*kept sizes, *lead)``, C-contiguous.
    """
    ndim = len(fft_shape)
    lead_shape, kernel = w_block.shape[:-ndim], w_block.shape[-ndim:]
    # (*kernel, M): taps first, every filter/channel pair a column.
    state = np.moveaxis(w_block, tuple(range(len(lead_shape), w_block.ndim)), tuple(range(ndim)))
    state = state.reshape(kernel + (-1,))
    for axis in reversed(range(ndim)):
        # state is (*transformed frequencies, *kernel[:axis + 1], M) rotated so that the
        # axis to contract always sits at position ndim - 1.
        freqs, length, dil, taps = keep[axis], fft_shape[axis], dilation[axis], kernel[axis]
        # Reduce f * t * d modulo L in integers so the angle stays accurate.
        phase = (np.asarray(freqs)[:, None] * (np.arange(taps) * dil)[None, :]) % length
        dft = np.exp(2j * np.pi * phase / length).astype(complex_dtype)     # (F, taps)
        front = np.moveaxis(state, ndim - 1, 0)
        state = _tapwise_product(dft, front.reshape(taps, -1)).reshape(
            (len(freqs),) + front.shape[1:])
    return state.reshape(tuple(len(k) for k in keep) + lead_shape)


def spectral_conv(xpad, w, geometry, fft_shape, keep, chunk_bytes=FILTER_CHUNK_BYTES):
    """Correlate by FFT, multiplying only the spectrum coefficients selected by ``keep``.

    Parameters
    ----------
    xpad : np.ndarray, (N, C, *padded), float32 or float64
    w : np.ndarray, (K, C/groups, *kernel), same dtype
    geometry : ConvGeometry
    fft_shape : tuple of int
    keep : list of index arrays, one per spatial axis (see :func:`band_limit_keep`)
    chunk_bytes : int
        Bound on the filter-spectrum buffer of one chunk of output channels.

    Returns
    -------
    (out, info) with ``out`` of shape (N, K, *out) and ``info`` a dict with
    ``workspace_bytes``, ``kept_coefficients``, ``spectrum_coefficients``,
    ``kept_energy_input`` and ``kept_energy_filter``.
    """
    n, g = geometry.batch, geometry.groups
    kg, cg = geometry.filters_per_group, geometry.channels_per_group
    ndim = geometry.spatial_ndim
    spatial_axes = tuple(range(2, 2 + ndim))
    complex_dtype = np.result_type(xpad.dtype, np.complex64)
    full_shape = one_sided_shape(fft_shape)
    kept_shape = tuple(len(k) for k in keep)
    kept_total = math.prod(kept_shape)
    gathers = kept_shape != full_shape
    block = (slice(None), slice(None)) + np.ix_(*keep)

    spectrum = np.fft.rfftn(xpad, s=fft_shape, axes=spatial_axes)      # (N, C, *full)
    kept = np.ascontiguousarray(spectrum[block]) if gathers else spectrum
    energy_input = _spectral_energy(spectrum, fft_shape[-1], np.arange(full_shape[-1]), -1)
    energy_input_kept = (_spectral_energy(kept, fft_shape[-1], keep[-1], -1) if gathers
                         else energy_input)
    # Frequency-major layout: one small (N x C/g) @ (C/g x K/g) product per coefficient.
    x_freq = np.ascontiguousarray(
        kept.reshape(n, g, cg, kept_total).transpose(3, 1, 0, 2))      # (F, g, N, C/g)
    workspace = spectrum.nbytes + (kept.nbytes if gathers else 0) + x_freq.nbytes

    products = np.empty((kept_total, g, n, kg), dtype=complex_dtype)
    per_filter_bytes = g * cg * kept_total * np.dtype(complex_dtype).itemsize
    chunk = max(1, min(kg, chunk_bytes // per_filter_bytes))
    # Filter spectra come out as (F, g, K/g, C/g): the channel sum runs over contiguous memory.
    w_grouped = w.reshape((g, kg, cg) + geometry.kernel_shape)
    energy_filter_kept = 0.0
    chunk_buffer_bytes = 0
    for first in range(0, kg, chunk):
        w_spectrum = _conj_filter_spectrum(w_grouped[:, first:first + chunk], fft_shape, keep,
                                           geometry.dilation, complex_dtype)
        energy_filter_kept += _spectral_energy(w_spectrum, fft_shape[-1], keep[-1], ndim - 1)
        w_freq = w_spectrum.reshape((kept_total, g, -1, cg))
        # einsum rather than a batched matmul: these are thousands of tiny products (GEMVs
        # for N = 1), where a BLAS call per coefficient costs more than the arithmetic.
        np.einsum("fgnc,fgkc->fgnk", x_freq, w_freq,
                  out=products[..., first:first + w_freq.shape[2]])
        chunk_buffer_bytes = max(chunk_buffer_bytes, w_spectrum.nbytes)
    workspace += products.nbytes + chunk_buffer_bytes

    out_kept = products.transpose(2, 1, 3, 0).reshape((n, geometry.filters) + kept_shape)
    if gathers:
        out_spectrum = np.zeros((n, geometry.filters) + full_shape, dtype=complex_dtype)
        out_spectrum[block] = out_kept
    else:
        out_spectrum = np.ascontiguousarray(out_kept)
    full_output = np.fft.irfftn(out_spectrum, s=fft_shape, axes=spatial_axes)
    workspace += out_spectrum.nbytes + full_output.nbytes
    crop = (slice(None), slice(None)) + tuple(
        slice(0, (o - 1) * s + 1, s) for o, s in zip(geometry.out_shape, geometry.stride))
    out = np.ascontiguousarray(full_output[crop]).astype(xpad.dtype, copy=False)

    energy_filter = math.prod(fft_shape) * float(np.sum(w.astype(np.float64) ** 2))
    info = dict(
        workspace_bytes=workspace,
        kept_coefficients=kept_total,
        spectrum_coefficients=math.prod(full_shape),
        kept_energy_input=_ratio(energy_input_kept, energy_input),
        kept_energy_filter=_ratio(energy_filter_kept, energy_filter),
    )
    return out, info


def _ratio(part, whole):
    """``part / whole`` with an all-zero signal counting as fully kept."""
    return 1.0 if whole == 0 else min(1.0, part / whole)
