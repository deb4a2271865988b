"""Golden models of convolution: direct, im2col, MEC, FFT, band-limited FFT and direct sparse.

All methods compute the same thing as ``torch.nn.functional.conv2d`` / ``conv3d`` (a
cross-correlation, no bias), so they can be checked against each other, and the hardware
cores are checked against the integer ones.

Formats
-------
- Input ``x``: ``(N, C, H, W)`` for 2D, ``(N, C, D, H, W)`` for 3D, ``(N, C, W)`` for
  1D; the batch axis may be left out, and then the output has none either.
- Filters ``w``: ``(K, C / groups, R, S)`` (2D), ``(K, C / groups, T, R, S)`` (3D),
  ``(K, C / groups, S)`` (1D).
- ``stride``, ``padding`` (zeros on each side), ``dilation``: an int, or one int per
  spatial axis. ``groups`` splits the channels as in PyTorch.
- Output: ``(N, K, *out)`` with ``out = (in + 2 * padding - (kernel - 1) * dilation - 1)
  // stride + 1`` per axis.

Float methods compute in ``numpy.result_type(x, w, float32)``: float32 for float32 (or
small integer) operands, float64 when either operand is float64. Pass float64 for
reference-grade accuracy.

Integer methods (``*_int``) take integer arrays, accumulate exactly in int64 (they raise
``OverflowError`` if the accumulation could leave int64) and return the raw int64
accumulator, which :func:`requantize` turns into what the hardware writes back.

Statistics
----------
Every method returns just the output by default. With ``return_stats=True`` it returns
``(output, ConvStats)``: the workspace (bytes of the intermediate arrays the method
allocates, see :class:`ConvStats`), the multiply-accumulates performed, and per method
the lowered-matrix size (im2col, MEC, with MEC's ratio to im2col), the FFT size, and
the kept coefficients and kept spectral energy (band-limited). :func:`lowering_sizes`
gives the lowered sizes from shapes alone.

Methods
-------
direct          loop nest over channels and kernel taps, vectorized over filters and
                output positions; no lowering (the reference).
im2col          lower to a ``(C * taps) x positions`` matrix, one GEMM per group; large
                layers in cache-sized column tiles (one GEMM per tile).
mec             Cho & Brand's memory-efficient lowering along W (``out_W * H * S * C``
                elements), then out_H small GEMMs on strided views of it.
fft             correlation by FFT (see :mod:`dnnhw.golden.conv_fft`).
fft_bandlimited FFT convolution keeping only a low-frequency block of the input and
                filter spectra (Dziedzic et al.), rate ``compression_rate`` in percent.
direct_sparse   Park et al.'s CSR filters with pre-encoded input offsets
                (see :mod:`dnnhw.golden.conv_sparse`).
"""

import numpy as np

from .conv_common import (
    ConvGeometry, ConvStats, LoweringSizes, check_accumulator_bound, check_integer_array,
    check_real_array, conv_geometry, float_compute_dtype, lowering_sizes_for, pad_input,
    requantize, strip_batch_axis, with_batch_axis,
)
from .conv_dense import direct_conv, exact_integer_matmul, im2col_conv, mec_conv
from .conv_fft import (
    band_limit_keep, band_limit_mask, check_compression_rate, fft_shape_for, full_band,
    spectral_conv,
)
from .conv_sparse import (
    SparseFilters, direct_sparse_conv, encode_sparse_filters, prune_by_magnitude,
)


__all__ = [
    "ConvGeometry", "ConvStats", "LoweringSizes", "SparseFilters",
    "conv_geometry", "lowering_sizes", "requantize",
    "band_limit_keep", "band_limit_mask", "encode_sparse_filters", "prune_by_magnitude",
    "conv1d_direct", "conv1d_fft", "conv1d_fft_bandlimited",
    "conv2d_direct", "conv2d_im2col", "conv2d_mec", "conv2d_fft", "conv2d_fft_bandlimited",
    "conv2d_direct_sparse", "conv2d_direct_int", "conv2d_im2col_int",
    "conv3d_direct", "conv3d_im2col", "conv3d_mec", "conv3d_fft", "conv3d_fft_bandlimited",
    "conv3d_direct_sparse", "conv3d_direct_int", "conv3d_im2col_int",
]


_SHARED_DOC = """
    Parameters
    ----------
    x : array_like, {x_layout}
    w : array_like, {w_layout}{w_extra}
    stride, padding, dilation : int or tuple of {ndim} ints
        ``padding`` zeros are added on each side of every spatial axis.
    groups : int
        Must divide C and K.{extra}
    return_stats : bool
        Also return a :class:`ConvStats`.

    Returns
    -------
    np.ndarray, {out_layout}{out_dtype}
        Or ``(output, ConvStats)`` with ``return_stats=True``.
"""

_LAYOUTS = {
    1: dict(x_layout="(N, C, W) or (C, W)", w_layout="(K, C/groups, S)",
            out_layout="(N, K, out_W)"),
    2: dict(x_layout="(N, C, H, W) or (C, H, W)", w_layout="(K, C/groups, R, S)",
            out_layout="(N, K, out_H, out_W)"),
    3: dict(x_layout="(N, C, D, H, W) or (C, D, H, W)", w_layout="(K, C/groups, T, R, S)",
            out_layout="(N, K, out_D, out_H, out_W)"),
}

_COMPRESSION_DOC = """
    compression_rate : float
        ``c`` in percent, 0 <= c < 100; 0 keeps the whole spectrum.
    pow2 : bool
        Round the FFT size up to a power of two."""

_POW2_DOC = """
    pow2 : bool
        Round the FFT size up to a power of two."""


def _document(ndim, *, integer=False, extra="", w_extra=""):
    """Append the shared Parameters / Returns section to a public function's docstring."""
    out_dtype = ", int64 (exact accumulator)" if integer else ", floating"
    section = _SHARED_DOC.format(ndim=ndim, extra=extra, w_extra=w_extra, out_dtype=out_dtype,
                                 **_LAYOUTS[ndim])

    def decorate(function):
        function.__doc__ = function.__doc__.rstrip() + "\n" + section
        return function
    return decorate


def lowering_sizes(x_shape, w_shape, *, stride=1, padding=0, dilation=1, groups=1):
    """Lowered-matrix sizes of im2col and MEC for one image, from shapes alone.

    Parameters
    ----------
    x_shape, w_shape : tuple
        As for the 2D or 3D methods (the dimension is taken from ``w_shape``).
    stride, padding, dilation, groups
        As for the methods.

    Returns
    -------
    LoweringSizes
        ``.im2col = out positions * C * taps``, ``.mec = out_W * (padded D) * padded H * S
        * C``, and ``.mec_to_im2col``.
    """
    geometry = conv_geometry(x_shape, w_shape, spatial_ndim=len(w_shape) - 2, stride=stride,
                             padding=padding, dilation=dilation, groups=groups)
    return lowering_sizes_for(geometry)


# -- shared drivers: check, pad, run a core, package the result ----------------------------

def _prepare_float(x, w, spatial_ndim, stride, padding, dilation, groups):
    x, w = check_real_array(x, "x"), check_real_array(w, "w")
    geometry = conv_geometry(x.shape, w.shape, spatial_ndim=spatial_ndim, stride=stride,
                             padding=padding, dilation=dilation, groups=groups)
    dtype = float_compute_dtype(x, w)
    xpad, input_bytes = pad_input(with_batch_axis(x, geometry), geometry, dtype)
    return geometry, xpad, w.astype(dtype, copy=False), input_bytes


def _prepare_int(x, w, spatial_ndim, stride, padding, dilation, groups):
    x, w = check_integer_array(x, "x"), check_integer_array(w, "w")
    geometry = conv_geometry(x.shape, w.shape, spatial_ndim=spatial_ndim, stride=stride,
                             padding=padding, dilation=dilation, groups=groups)
    bound = check_accumulator_bound(x, w, geometry)
    xpad, input_bytes = pad_input(with_batch_axis(x, geometry), geometry, x.dtype)
    return geometry, xpad, w, input_bytes, bound


def _result(out, geometry, stats, return_stats):
    out = strip_batch_axis(out, geometry)
    return (out, stats) if return_stats else out


def _direct(x, w, spatial_ndim, stride, padding, dilation, groups, return_stats):
    geometry, xpad, w, input_bytes = _prepare_float(x, w, spatial_ndim, stride, padding,
                                                    dilation, groups)
    out, workspace = direct_conv(xpad, w, geometry, xpad.dtype)
    stats = ConvStats("direct", input_bytes + workspace, macs=geometry.macs)
    return _result(out, geometry, stats, return_stats)


def _float_matmul(a, b, out):
    return np.matmul(a, b, out=out), 0


def _im2col(x, w, spatial_ndim, stride, padding, dilation, groups, return_stats):
    geometry, xpad, w, input_bytes = _prepare_float(x, w, spatial_ndim, stride, padding,
                                                    dilation, groups)
    out, workspace = im2col_conv(xpad, w, geometry, _float_matmul)
    sizes = lowering_sizes_for(geometry)
    stats = ConvStats("im2col", input_bytes + workspace, macs=geometry.macs,
                      lowered_elements=sizes.im2col, im2col_lowered_elements=sizes.im2col)
    return _result(out, geometry, stats, return_stats)


def _mec(x, w, spatial_ndim, stride, padding, dilation, groups, return_stats):
    geometry, xpad, w, input_bytes = _prepare_float(x, w, spatial_ndim, stride, padding,
                                                    dilation, groups)
    out, workspace = mec_conv(xpad, w, geometry)
    sizes = lowering_sizes_for(geometry)
    stats = ConvStats("mec", input_bytes + workspace, macs=geometry.macs,
                      lowered_elements=sizes.mec, im2col_lowered_elements=sizes.im2col)
    return _result(out, geometry, stats, return_stats)


def _spectral(x, w, spatial_ndim, stride, padding, dilation, groups, return_stats, *,
              compression_rate, pow2):
    if compression_rate is not None:
        compression_rate = check_compression_rate(compression_rate)
    geometry, xpad, w, input_bytes = _prepare_float(x, w, spatial_ndim, stride, padding,
                                                    dilation, groups)
    fft_shape = fft_shape_for(geometry, pow2=pow2)
    if compression_rate is None:
        method, keep = "fft", full_band(fft_shape)
    else:
        method, keep = "fft_bandlimited", band_limit_keep(fft_shape, compression_rate)
    out, info = spectral_conv(xpad, w, geometry, fft_shape, keep)
    info["workspace_bytes"] += input_bytes
    stats = ConvStats(method, fft_shape=fft_shape, **info)
    return _result(out, geometry, stats, return_stats)


def _direct_sparse(x, w, spatial_ndim, stride, padding, dilation, groups, return_stats):
    x = check_real_array(x, "x")
    if isinstance(w, SparseFilters):
        sparse = w
        wanted_dilation = ((dilation,) * spatial_ndim if isinstance(dilation, int)
                           else tuple(dilation))
        if wanted_dilation not in ((1,) * spatial_ndim, sparse.dilation) or \
                groups not in (1, sparse.groups):
            raise ValueError(f"dilation and groups come from the encoded filters "
                             f"(dilation={sparse.dilation}, groups={sparse.groups}); "
                             f"got dilation={dilation!r}, groups={groups!r}")
        dilation, groups, filter_shape = sparse.dilation, sparse.groups, sparse.filter_shape
        dtype = np.result_type(x.dtype, sparse.values.dtype, np.float32)
    else:
        w = check_real_array(w, "w")
        filter_shape, sparse = w.shape, None
        dtype = float_compute_dtype(x, w)
    geometry = conv_geometry(x.shape, filter_shape, spatial_ndim=spatial_ndim, stride=stride,
                             padding=padding, dilation=dilation, groups=groups)
    padded_image = (geometry.channels,) + geometry.padded_shape
    if sparse is None:
        sparse = encode_sparse_filters(w, padded_image, dilation=geometry.dilation,
                                       groups=geometry.groups)
    elif sparse.padded_shape != padded_image:
        raise ValueError(f"w was encoded for padded input images of shape {sparse.padded_shape}, "
                         f"but x with padding={padding!r} gives {padded_image}; re-encode with "
                         f"encode_sparse_filters(w, {padded_image}, ...)")
    xpad, input_bytes = pad_input(with_batch_axis(x, geometry), geometry, dtype)
    out, workspace, macs = direct_sparse_conv(xpad, sparse, geometry, dtype)
    stats = ConvStats("direct_sparse", input_bytes + workspace, macs=macs)
    return _result(out, geometry, stats, return_stats)


def _direct_int(x, w, spatial_ndim, stride, padding, dilation, groups, return_stats):
    geometry, xpad, w, input_bytes, _ = _prepare_int(x, w, spatial_ndim, stride, padding,
                                                     dilation, groups)
    out, workspace = direct_conv(xpad, w, geometry, np.int64)
    stats = ConvStats("direct_int", input_bytes + workspace, macs=geometry.macs)
    return _result(out, geometry, stats, return_stats)


def _im2col_int(x, w, spatial_ndim, stride, padding, dilation, groups, return_stats):
    geometry, xpad, w, input_bytes, bound = _prepare_int(x, w, spatial_ndim, stride, padding,
                                                         dilation, groups)
    out, workspace = im2col_conv(xpad, w, geometry,
                                 lambda a, b, out: exact_integer_matmul(a, b, bound, out),
                                 out_dtype=np.int64)
    sizes = lowering_sizes_for(geometry)
    stats = ConvStats("im2col_int", input_bytes + workspace, macs=geometry.macs,
                      lowered_elements=sizes.im2col, im2col_lowered_elements=sizes.im2col)
    return _result(out, geometry, stats, return_stats)


# -- 1D ------------------------------------------------------------------------------------

@_document(1)
def conv1d_direct(x, w, *, stride=1, padding=0, dilation=1, groups=1, return_stats=False):
    """1D direct convolution (reference for the 1D FFT variants)."""
    return _direct(x, w, 1, stride, padding, dilation, groups, return_stats)


@_document(1, extra=_POW2_DOC)
def conv1d_fft(x, w, *, stride=1, padding=0, dilation=1, groups=1, pow2=False,
               return_stats=False):
    """1D convolution by FFT (correlation semantics)."""
    return _spectral(x, w, 1, stride, padding, dilation, groups, return_stats,
                     compression_rate=None, pow2=pow2)


@_document(1, extra=_COMPRESSION_DOC)
def conv1d_fft_bandlimited(x, w, *, compression_rate, stride=1, padding=0, dilation=1, groups=1,
                           pow2=False, return_stats=False):
    """1D band-limited FFT convolution: the ``int(half * c / 100) + 1`` highest frequencies
    of the input and filter spectra are dropped (none at ``c = 0``)."""
    return _spectral(x, w, 1, stride, padding, dilation, groups, return_stats,
                     compression_rate=compression_rate, pow2=pow2)


# -- 2D ------------------------------------------------------------------------------------

@_document(2)
def conv2d_direct(x, w, *, stride=1, padding=0, dilation=1, groups=1, return_stats=False):
    """2D direct loop-nest convolution: the float reference every other method is checked
    against."""
    return _direct(x, w, 2, stride, padding, dilation, groups, return_stats)


@_document(2)
def conv2d_im2col(x, w, *, stride=1, padding=0, dilation=1, groups=1, return_stats=False):
    """2D convolution by im2col lowering and one GEMM per group."""
    return _im2col(x, w, 2, stride, padding, dilation, groups, return_stats)


@_document(2)
def conv2d_mec(x, w, *, stride=1, padding=0, dilation=1, groups=1, return_stats=False):
    """2D convolution by MEC: lowered matrix of ``out_W * H_padded * S * C`` elements, then
    out_H GEMMs on strided views of it (R GEMMs per row with dilation along H)."""
    return _mec(x, w, 2, stride, padding, dilation, groups, return_stats)


@_document(2, extra=_POW2_DOC)
def conv2d_fft(x, w, *, stride=1, padding=0, dilation=1, groups=1, pow2=False,
               return_stats=False):
    """2D convolution by FFT (correlation semantics, equal to :func:`conv2d_direct`)."""
    return _spectral(x, w, 2, stride, padding, dilation, groups, return_stats,
                     compression_rate=None, pow2=pow2)


@_document(2, extra=_COMPRESSION_DOC)
def conv2d_fft_bandlimited(x, w, *, compression_rate, stride=1, padding=0, dilation=1, groups=1,
                           pow2=False, return_stats=False):
    """2D band-limited FFT convolution (Dziedzic et al.): keep the ``(2n+1) x (n+1)``
    low-frequency block of the one-sided input and filter spectra,
    ``n + 1 = int(half_W * sqrt((100 - c) / 100))``, and zero the rest."""
    return _spectral(x, w, 2, stride, padding, dilation, groups, return_stats,
                     compression_rate=compression_rate, pow2=pow2)


@_document(2, w_extra=" or SparseFilters\n        Dense filters (zeros are pruned) or "
           "filters from :func:`encode_sparse_filters`.")
def conv2d_direct_sparse(x, w, *, stride=1, padding=0, dilation=1, groups=1, return_stats=False):
    """2D direct sparse convolution (Park et al.): CSR filters per output channel with the
    input offsets ``c*Hp*Wp + r*Wp + s`` pre-encoded; one multiply-accumulate per non-zero
    weight and output position (``ConvStats.macs``)."""
    return _direct_sparse(x, w, 2, stride, padding, dilation, groups, return_stats)


@_document(2, integer=True)
def conv2d_direct_int(x, w, *, stride=1, padding=0, dilation=1, groups=1, return_stats=False):
    """Bit-exact 2D direct convolution of integer (e.g. int8 / int16) operands with exact
    int64 accumulation; :func:`requantize` gives the hardware's narrow result. Raises
    TypeError on non-integer input."""
    return _direct_int(x, w, 2, stride, padding, dilation, groups, return_stats)


@_document(2, integer=True)
def conv2d_im2col_int(x, w, *, stride=1, padding=0, dilation=1, groups=1, return_stats=False):
    """Bit-exact 2D im2col convolution of integer operands (equal to
    :func:`conv2d_direct_int`). The GEMM runs in float64 when every partial sum provably
    fits its 53-bit mantissa (so it is exact), otherwise in int64."""
    return _im2col_int(x, w, 2, stride, padding, dilation, groups, return_stats)


# -- 3D ------------------------------------------------------------------------------------

@_document(3)
def conv3d_direct(x, w, *, stride=1, padding=0, dilation=1, groups=1, return_stats=False):
    """3D direct loop-nest convolution (the 3D float reference)."""
    return _direct(x, w, 3, stride, padding, dilation, groups, return_stats)


@_document(3)
def conv3d_im2col(x, w, *, stride=1, padding=0, dilation=1, groups=1, return_stats=False):
    """3D convolution by im2col (vol2col) lowering and one GEMM per group."""
    return _im2col(x, w, 3, stride, padding, dilation, groups, return_stats)


@_document(3)
def conv3d_mec(x, w, *, stride=1, padding=0, dilation=1, groups=1, return_stats=False):
    """3D MEC: lowered along W to ``out_W * D_padded * H_padded * S * C`` elements; for each
    output frame and temporal tap, out_H GEMMs on strided views."""
    return _mec(x, w, 3, stride, padding, dilation, groups, return_stats)


@_document(3, extra=_POW2_DOC)
def conv3d_fft(x, w, *, stride=1, padding=0, dilation=1, groups=1, pow2=False,
               return_stats=False):
    """3D convolution by FFT (correlation semantics)."""
    return _spectral(x, w, 3, stride, padding, dilation, groups, return_stats,
                     compression_rate=None, pow2=pow2)


@_document(3, extra=_COMPRESSION_DOC)
def conv3d_fft_bandlimited(x, w, *, compression_rate, stride=1, padding=0, dilation=1, groups=1,
                           pow2=False, return_stats=False):
    """3D band-limited FFT convolution: the 2D rule extended to a
    ``(2n_D+1) x (2n_H+1) x (n_W+1)`` block."""
    return _spectral(x, w, 3, stride, padding, dilation, groups, return_stats,
                     compression_rate=compression_rate, pow2=pow2)


@_document(3, w_extra=" or SparseFilters\n        Dense filters (zeros are pruned) or "
           "filters from :func:`encode_sparse_filters`.")
def conv3d_direct_sparse(x, w, *, stride=1, padding=0, dilation=1, groups=1, return_stats=False):
    """3D direct sparse convolution (offsets ``c*Dp*Hp*Wp + t*Hp*Wp + r*Wp + s``)."""
    return _direct_sparse(x, w, 3, stride, padding, dilation, groups, return_stats)


@_document(3, integer=True)
def conv3d_direct_int(x, w, *, stride=1, padding=0, dilation=1, groups=1, return_stats=False):
    """Bit-exact 3D direct convolution of integer operands, int64 accumulation."""
    return _direct_int(x, w, 3, stride, padding, dilation, groups, return_stats)


@_document(3, integer=True)
def conv3d_im2col_int(x, w, *, stride=1, padding=0, dilation=1, groups=1, return_stats=False):
    """Bit-exact 3D im2col convolution of integer operands, int64 result."""
    return _im2col_int(x, w, 3, stride, padding, dilation, groups, return_stats)
