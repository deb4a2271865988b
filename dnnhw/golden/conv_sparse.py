"""Direct sparse convolution (Park et al., "Faster CNNs with direct sparse convolutions and
guided pruning", ICLR 2017).

The pruned filters of each output channel are stored as one CSR row: the non-zero
values, and for each a column index *pre-encoded as an offset into the padded input
image*, ``c * (Hp * Wp) + r * dilation_h * Wp + s * dilation_w`` in 2D (``Hp``, ``Wp``
padded; in 3D ``c * Dp*Hp*Wp + t*d_d*Hp*Wp + r*d_h*Wp + s*d_w``). The output at the
position whose top-left input element is ``base`` then accumulates
``value * in[offset + base]`` over the row: one multiply-accumulate per non-zero weight
and output position, so the work falls in proportion to the density.
"""

import math
import numbers
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .conv_common import check_real_array


__all__ = ["SparseFilters", "encode_sparse_filters", "prune_by_magnitude", "direct_sparse_conv"]


@dataclass(frozen=True, eq=False)
class SparseFilters:
    """Filters in CSR form, one row per output channel, with input offsets pre-encoded.

    Row ``k`` is ``values[row_ptr[k]:row_ptr[k + 1]]`` with the matching ``offsets``
    (element offsets into one padded input image of shape ``padded_shape``).
    """

    values: np.ndarray        #: (nnz,) non-zero weights
    offsets: np.ndarray       #: (nnz,) int64 offsets into the flattened padded image
    row_ptr: np.ndarray       #: (K + 1,) int64
    filter_shape: tuple       #: dense shape (K, C/groups, *kernel)
    padded_shape: tuple       #: (C, *padded spatial) the offsets were encoded for
    dilation: tuple
    groups: int

    @property
    def nnz(self):
        return int(self.values.size)

    @property
    def density(self):
        """Fraction of the dense filter weights that are non-zero."""
        return self.nnz / math.prod(self.filter_shape)


def encode_sparse_filters(w, padded_shape, *, dilation=1, groups=1):
    """Prune the zeros of ``w`` into CSR rows with offsets into a padded input image.

    Parameters
    ----------
    w : np.ndarray, (K, C/groups, *kernel)
        Dense filters; exact zeros are dropped.
    padded_shape : tuple of int
        ``(C, *padded spatial)`` of one zero-padded input image, e.g. ``(C, H + 2p, W + 2p)``.
    dilation : int or tuple
    groups : int

    Returns
    -------
    SparseFilters
    """
    w = check_real_array(w, "w")
    spatial_ndim = w.ndim - 2
    padded_shape = tuple(int(n) for n in padded_shape)
    if spatial_ndim < 1 or len(padded_shape) != spatial_ndim + 1:
        raise ValueError(f"padded_shape must be (C, *padded spatial) with {spatial_ndim} spatial "
                         f"axes to match w of shape {w.shape}, got {padded_shape}")
    if isinstance(dilation, numbers.Integral):
        dilation = (int(dilation),) * spatial_ndim
    dilation = tuple(int(d) for d in dilation)
    if len(dilation) != spatial_ndim or min(dilation) < 1:
        raise ValueError(f"dilation must be >= 1 on each of the {spatial_ndim} spatial axes, "
                         f"got {dilation!r}")
    filters, channels_per_group = w.shape[:2]
    if not isinstance(groups, numbers.Integral) or groups < 1 or filters % groups:
        raise ValueError(f"groups must be >= 1 and divide the number of filters K={filters}, "
                         f"got groups={groups!r}")
    if padded_shape[0] != channels_per_group * groups:
        raise ValueError(f"padded_shape[0] must equal w.shape[1] * groups = "
                         f"{channels_per_group * groups}, got {padded_shape[0]}")
    for axis, (extent, size) in enumerate(zip(
            ((r - 1) * d + 1 for r, d in zip(w.shape[2:], dilation)), padded_shape[1:])):
        if extent > size:
            raise ValueError(f"kernel span {extent} along spatial axis {axis} must be <= the "
                             f"padded input size {size}")

    # Row-major element strides of one padded image: channel, then each spatial axis.
    image_strides = [math.prod(padded_shape[i + 1:]) for i in range(len(padded_shape))]
    filter_index, channel, *taps = np.nonzero(w)          # row-major, so grouped by filter
    absolute_channel = (filter_index // (filters // groups)) * channels_per_group + channel
    offsets = absolute_channel.astype(np.int64) * image_strides[0]
    for tap, dil, stride in zip(taps, dilation, image_strides[1:]):
        offsets += tap.astype(np.int64) * dil * stride
    row_ptr = np.zeros(filters + 1, dtype=np.int64)
    np.cumsum(np.bincount(filter_index, minlength=filters), out=row_ptr[1:])
    return SparseFilters(values=w[(filter_index, channel) + tuple(taps)], offsets=offsets,
                         row_ptr=row_ptr, filter_shape=tuple(w.shape), padded_shape=padded_shape,
                         dilation=dilation, groups=int(groups))


def prune_by_magnitude(w, sparsity):
    """Zero the ``sparsity`` fraction of weights with the smallest magnitude.

    Parameters
    ----------
    w : np.ndarray
    sparsity : float in [0, 1]

    Returns
    -------
    np.ndarray, a pruned copy of ``w`` with exactly ``round(sparsity * w.size)`` weights
    forced to zero (ties broken by position).
    """
    w = check_real_array(w, "w")
    if not isinstance(sparsity, numbers.Real) or not 0 <= sparsity <= 1:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity!r}")
    pruned = w.copy()
    count = int(round(sparsity * w.size))
    order = np.argsort(np.abs(w), axis=None, kind="stable")
    pruned.reshape(-1)[order[:count]] = 0
    return pruned


#: Bound on the input elements gathered at once (one block of a filter's non-zeros).
GATHER_ELEMENTS = 1 << 20


def direct_sparse_conv(xpad, sparse, geometry, acc_dtype, gather_elements=GATHER_ELEMENTS):
    """Direct sparse convolution over a padded batch ``xpad`` (N, C, *padded), C-contiguous.

    For each output channel, its non-zeros are taken in blocks: the pre-encoded offsets
    fetch ``in[offset + base]`` for every output position in one strided gather, and the
    block's values reduce it (``sum_j value_j * in[offset_j + base]``). Only non-zero
    weights are touched, so the work falls with the density; blocking bounds the gathered
    buffer to ``gather_elements`` and keeps the Python loop short.

    Returns
    -------
    (out, workspace bytes, multiply-accumulates performed)
    """
    n = geometry.batch
    flat = xpad.reshape(n, -1)
    item = flat.itemsize
    image_strides = [math.prod(geometry.padded_shape[i + 1:])
                     for i in range(geometry.spatial_ndim)]
    # windows[n, offset] is the (strided) input under all output positions for that offset.
    last_base = sum((o - 1) * s * st for o, s, st in
                    zip(geometry.out_shape, geometry.stride, image_strides))
    windows = as_strided(
        flat,
        shape=(n, flat.shape[1] - last_base) + geometry.out_shape,
        strides=(flat.strides[0], item) + tuple(s * st * item for s, st in
                                                zip(geometry.stride, image_strides)),
        writeable=False)
    out = np.zeros((n, geometry.filters) + geometry.out_shape, dtype=acc_dtype)
    block = max(1, gather_elements // (n * geometry.output_positions))
    values = sparse.values.astype(acc_dtype)
    row_ptr = sparse.row_ptr.tolist()
    largest_gather = 0
    for k in range(geometry.filters):
        for first in range(row_ptr[k], row_ptr[k + 1], block):
            last = min(first + block, row_ptr[k + 1])
            gathered = windows[:, sparse.offsets[first:last]]     # (N, block, *out)
            # einsum, not a BLAS GEMV: many small reductions, exact for integer dtypes too.
            out[:, k] += np.einsum("j,nj...->n...", values[first:last], gathered)
            largest_gather = max(largest_gather, gathered.nbytes)
    macs = sparse.nnz * n * geometry.output_positions
    return out, largest_gather, macs
