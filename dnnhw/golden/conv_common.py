"""Shared pieces of the convolution golden models: argument checks, geometry, padding,
statistics and fixed-point requantization.

Everything here works for any number of spatial axes (1D, 2D, 3D); the public
per-dimension functions live in :mod:`dnnhw.golden.conv`.
"""

import math
import numbers
from dataclasses import dataclass
from functools import cached_property

import numpy as np


__all__ = [
    "ConvGeometry", "ConvStats", "LoweringSizes",
    "conv_geometry", "lowering_sizes_for", "requantize",
]


_AXIS_NAMES = {1: ("W",), 2: ("H", "W"), 3: ("D", "H", "W")}
_X_LAYOUTS = {1: "(N, C, W) or (C, W)", 2: "(N, C, H, W) or (C, H, W)",
              3: "(N, C, D, H, W) or (C, D, H, W)"}
_W_LAYOUTS = {1: "(K, C/groups, S)", 2: "(K, C/groups, R, S)", 3: "(K, C/groups, T, R, S)"}


@dataclass(frozen=True)
class ConvGeometry:
    """Validated shapes and hyper-parameters of one convolution.

    Spatial tuples are ordered like the array axes: ``(W,)``, ``(H, W)`` or ``(D, H, W)``.
    The derived sizes (``out_shape``, ``taps``, ...) are computed once per geometry.
    """

    batch: int              #: N (1 when the input had no batch axis)
    channels: int           #: C, input channels
    filters: int            #: K, output channels
    groups: int
    in_shape: tuple         #: spatial input size before padding
    kernel_shape: tuple     #: spatial kernel size (taps, before dilation)
    stride: tuple
    padding: tuple          #: zeros added on *each* side of every spatial axis
    dilation: tuple
    batched: bool           #: whether the caller passed a batch axis

    @cached_property
    def spatial_ndim(self):
        return len(self.in_shape)

    @cached_property
    def channels_per_group(self):
        return self.channels // self.groups

    @cached_property
    def filters_per_group(self):
        return self.filters // self.groups

    @cached_property
    def padded_shape(self):
        return tuple(i + 2 * p for i, p in zip(self.in_shape, self.padding))

    @cached_property
    def kernel_extent(self):
        """Span of the dilated kernel along each axis: ``(R - 1) * dilation + 1``."""
        return tuple((r - 1) * d + 1 for r, d in zip(self.kernel_shape, self.dilation))

    @cached_property
    def out_shape(self):
        return tuple((p - e) // s + 1
                     for p, e, s in zip(self.padded_shape, self.kernel_extent, self.stride))

    @cached_property
    def taps(self):
        return math.prod(self.kernel_shape)

    @cached_property
    def output_positions(self):
        return math.prod(self.out_shape)

    @cached_property
    def macs(self):
        """Multiply-accumulates of the dense convolution (all images)."""
        return (self.batch * self.filters * self.output_positions
                * self.channels_per_group * self.taps)

    def output_array_shape(self):
        """Shape of the result, without the batch axis when the input had none."""
        shape = (self.filters,) + self.out_shape
        return (self.batch,) + shape if self.batched else shape


@dataclass(frozen=True)
class ConvStats:
    """What one convolution call cost, returned beside the output with ``return_stats=True``.

    ``workspace_bytes`` is the total size of the intermediate arrays the method allocates
    explicitly: padded or type-converted input copies, lowered matrices, spectra, product
    buffers. A buffer reused across images or chunks counts once. Inputs, weights and
    the returned output are not counted, nor NumPy's own hidden temporaries.
    """

    method: str
    workspace_bytes: int
    #: Real multiply-accumulates performed (None for the FFT methods, whose work is FFTs
    #: plus complex products).
    macs: int | None = None
    #: Elements of the lowered input matrix for one image (im2col and MEC only).
    lowered_elements: int | None = None
    #: What im2col would lower for the same image, to compare MEC against.
    im2col_lowered_elements: int | None = None
    #: FFT size per spatial axis (FFT methods only).
    fft_shape: tuple | None = None
    #: One-sided spectrum coefficients kept per (image or filter) channel, and in total.
    kept_coefficients: int | None = None
    spectrum_coefficients: int | None = None
    #: Fraction of the spectral energy of the input / the filters that was kept (Parseval
    #: weighted, so it is also the fraction of the signal energy the kept band carries).
    kept_energy_input: float | None = None
    kept_energy_filter: float | None = None

    @property
    def lowered_ratio_to_im2col(self):
        """``lowered_elements / im2col_lowered_elements`` (MEC's memory saving), or None."""
        if self.lowered_elements is None or not self.im2col_lowered_elements:
            return None
        return self.lowered_elements / self.im2col_lowered_elements


@dataclass(frozen=True)
class LoweringSizes:
    """Lowered-matrix sizes (elements, for one image) of im2col and MEC for a geometry."""

    im2col: int
    mec: int

    @property
    def mec_to_im2col(self):
        return self.mec / self.im2col


def check_int_tuple(value, name, spatial_ndim, minimum):
    """Expand an int or a per-axis sequence of ints into a tuple, checking its range."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        values = (int(value),) * spatial_ndim
    elif isinstance(value, (tuple, list)):
        if len(value) != spatial_ndim:
            raise ValueError(f"{name} must be an int or have {spatial_ndim} entries "
                             f"(one per spatial axis {_AXIS_NAMES[spatial_ndim]}), got {value!r}")
        if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value):
            raise TypeError(f"{name} entries must be ints, got {value!r}")
        values = tuple(int(v) for v in value)
    else:
        raise TypeError(f"{name} must be an int or a tuple of {spatial_ndim} ints, "
                        f"got {value!r}")
    if min(values) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return values


def conv_geometry(x_shape, w_shape, *, spatial_ndim, stride=1, padding=0, dilation=1,
                  groups=1):
    """Check a convolution's shapes and hyper-parameters and derive its geometry.

    Parameters
    ----------
    x_shape : tuple
        Input shape, ``(N, C, *spatial)`` or ``(C, *spatial)``.
    w_shape : tuple
        Filter shape, ``(K, C / groups, *kernel)``.
    spatial_ndim : int
        1, 2 or 3.
    stride, padding, dilation : int or tuple
        Per spatial axis; ``padding`` is the number of zeros on each side.
    groups : int
        Channel groups; must divide both C and K.

    Returns
    -------
    ConvGeometry

    Raises
    ------
    ValueError, TypeError
        With a message naming the offending argument and its legal range.
    """
    x_shape, w_shape = tuple(x_shape), tuple(w_shape)
    if len(x_shape) not in (spatial_ndim + 1, spatial_ndim + 2):
        raise ValueError(f"x must have shape {_X_LAYOUTS[spatial_ndim]}, got shape {x_shape}")
    if len(w_shape) != spatial_ndim + 2:
        raise ValueError(f"w must have shape {_W_LAYOUTS[spatial_ndim]}, got shape {w_shape}")
    batched = len(x_shape) == spatial_ndim + 2
    if not batched:
        x_shape = (1,) + x_shape
    if min(x_shape) < 1:
        raise ValueError(f"x dimensions must all be >= 1, got shape {x_shape}")
    if min(w_shape) < 1:
        raise ValueError(f"w dimensions must all be >= 1, got shape {w_shape}")
    stride = check_int_tuple(stride, "stride", spatial_ndim, 1)
    padding = check_int_tuple(padding, "padding", spatial_ndim, 0)
    dilation = check_int_tuple(dilation, "dilation", spatial_ndim, 1)
    if not isinstance(groups, numbers.Integral) or isinstance(groups, bool):
        raise TypeError(f"groups must be an int, got {groups!r}")
    if groups < 1:
        raise ValueError(f"groups must be >= 1, got {groups}")

    batch, channels = x_shape[:2]
    filters = w_shape[0]
    if channels % groups:
        raise ValueError(f"groups must divide the input channels C={channels}, got groups={groups}")
    if filters % groups:
        raise ValueError(f"groups must divide the number of filters K={filters}, "
                         f"got groups={groups}")
    if w_shape[1] != channels // groups:
        raise ValueError(f"w.shape[1] must equal x channels / groups = {channels}/{groups} = "
                         f"{channels // groups}, got w.shape[1]={w_shape[1]}")

    geometry = ConvGeometry(batch=batch, channels=channels, filters=filters, groups=int(groups),
                            in_shape=x_shape[2:], kernel_shape=w_shape[2:], stride=stride,
                            padding=padding, dilation=dilation, batched=batched)
    for axis, size, pad, extent, taps, dil in zip(
            _AXIS_NAMES[spatial_ndim], geometry.in_shape, padding, geometry.kernel_extent,
            geometry.kernel_shape, dilation):
        if extent > size + 2 * pad:
            raise ValueError(
                f"kernel must fit the padded input along {axis}: need (kernel-1)*dilation+1 "
                f"<= {axis} + 2*padding, got kernel {taps} with dilation {dil} (span {extent}) "
                f"> {size} + 2*{pad} = {size + 2 * pad}")
    return geometry


def check_real_array(a, name):
    """Return ``a`` as an ndarray of a real (integer or floating) dtype, else raise TypeError."""
    a = np.asarray(a)
    if a.dtype == np.bool_ or not (np.issubdtype(a.dtype, np.integer)
                                   or np.issubdtype(a.dtype, np.floating)):
        raise TypeError(f"{name} must be a real numeric array (integer or float dtype), "
                        f"got dtype {a.dtype}")
    return a


def check_integer_array(a, name):
    """Return ``a`` as an ndarray of an integer dtype, else raise TypeError."""
    a = np.asarray(a)
    if a.dtype == np.bool_ or not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"{name} must have an integer dtype (int8, int16, ...), "
                        f"got dtype {a.dtype}")
    return a


def float_compute_dtype(x, w):
    """Floating dtype the float methods compute in: float32 unless an operand needs float64."""
    return np.result_type(x.dtype, w.dtype, np.float32)


def check_accumulator_bound(x, w, geometry):
    """Bound on ``|output|`` of an integer convolution; raise OverflowError past int64."""
    # Through Python ints, so every integer dtype (uint64 too) is measured exactly.
    x_max = max(abs(int(x.max())), abs(int(x.min()))) if x.size else 0
    w_max = max(abs(int(w.max())), abs(int(w.min()))) if w.size else 0
    bound = x_max * w_max * geometry.channels_per_group * geometry.taps
    if bound > np.iinfo(np.int64).max:
        raise OverflowError(f"this integer convolution can reach |{bound}|, beyond the int64 "
                            f"accumulator (max|x|={x_max}, max|w|={w_max}, "
                            f"{geometry.channels_per_group * geometry.taps} terms)")
    return bound


def with_batch_axis(x, geometry):
    """View ``x`` with a batch axis."""
    return x if geometry.batched else x[np.newaxis]


def strip_batch_axis(out, geometry):
    """Drop the batch axis again if the caller's input had none."""
    return out if geometry.batched else out[0]


def pad_input(x, geometry, dtype):
    """Zero-pad the spatial axes of a batched ``x`` and convert it to ``dtype``.

    Returns ``(padded, bytes allocated)``. The result is C-contiguous (the lowering and
    sparse methods take strided views of it); it is ``x`` itself, with nothing allocated,
    when there is no padding and ``x`` already has the dtype and layout.
    """
    if not any(geometry.padding) and x.dtype == dtype and x.flags.c_contiguous:
        return x, 0
    padded = np.zeros((geometry.batch, geometry.channels) + geometry.padded_shape, dtype=dtype)
    interior = (slice(None), slice(None)) + tuple(
        slice(p, p + n) for p, n in zip(geometry.padding, geometry.in_shape))
    padded[interior] = x
    return padded, padded.nbytes


def lowering_sizes_for(geometry):
    """im2col's and MEC's lowered-matrix sizes (elements, one image) for a geometry.

    im2col lowers to ``prod(out) x (C * prod(kernel))``; MEC lowers only along the last
    axis (W) into ``out_W x (prod(padded leading axes) * S * C)``, i.e. ``out_W * H * S * C``
    in 2D with the padded H.
    """
    im2col = geometry.output_positions * geometry.channels * geometry.taps
    mec = (geometry.out_shape[-1] * math.prod(geometry.padded_shape[:-1])
           * geometry.kernel_shape[-1] * geometry.channels)
    return LoweringSizes(im2col=im2col, mec=mec)


_ROUNDINGS = ("half_up", "floor")


def requantize(acc, *, shift, out_bits, rounding="half_up"):
    """Scale a wide integer accumulator down to a signed ``out_bits`` value, as the hardware does.

    ``result = saturate((acc + (1 << (shift - 1))) >> shift)`` for ``rounding="half_up"``:
    an arithmetic right shift that rounds halves toward +infinity (so 2.5 -> 3 and
    -2.5 -> -2; not away from zero), then clamps to
    ``[-2**(out_bits-1), 2**(out_bits-1) - 1]``. ``rounding="floor"`` is the bare
    arithmetic shift (round toward -infinity). ``shift=0`` only saturates.

    Parameters
    ----------
    acc : int array_like
        Accumulator values (any integer dtype; int64 range).
    shift : int
        Right shift, 0..62.
    out_bits : int
        Width of the signed result, 2..64.
    rounding : {"half_up", "floor"}

    Returns
    -------
    np.ndarray of int64
        Values within the signed ``out_bits`` range; cast with ``.astype(np.int8)`` (etc.)
        when the storage type is wanted.
    """
    acc = check_integer_array(acc, "acc").astype(np.int64)
    if not isinstance(shift, numbers.Integral) or isinstance(shift, bool):
        raise TypeError(f"shift must be an int, got {shift!r}")
    if not 0 <= shift <= 62:
        raise ValueError(f"shift must be in [0, 62], got {shift}")
    if not isinstance(out_bits, numbers.Integral) or isinstance(out_bits, bool):
        raise TypeError(f"out_bits must be an int, got {out_bits!r}")
    if not 2 <= out_bits <= 64:
        raise ValueError(f"out_bits must be in [2, 64], got {out_bits}")
    if rounding not in _ROUNDINGS:
        raise ValueError(f"rounding must be one of {_ROUNDINGS}, got {rounding!r}")
    if rounding == "half_up" and shift > 0:
        half = np.int64(1 << (shift - 1))
        if acc.size and int(acc.max()) > np.iinfo(np.int64).max - int(half):
            raise OverflowError(f"acc + 2**(shift-1) overflows int64 (max acc {int(acc.max())})")
        acc = acc + half
    shifted = acc >> np.int64(shift)
    low, high = -(1 << (out_bits - 1)), (1 << (out_bits - 1)) - 1
    return np.clip(shifted, low, high).astype(np.int64)
