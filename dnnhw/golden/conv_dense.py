"""Dense convolution cores: direct loop nest, im2col + GEMM, and MEC (Cho & Brand, ICML 2017).

The cores take a zero-padded, batched input ``xpad`` of shape ``(N, C, *padded)`` and
filters ``w`` of shape ``(K, C / groups, *kernel)``, and return ``(output, workspace
bytes)``; the output has shape ``(N, K, *out)``. They are dtype-generic: the float
models run them in a floating dtype, the integer models in int64 (exact). Argument
checking and padding happen in :mod:`dnnhw.golden.conv`.
"""

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .conv_common import lowering_sizes_for


__all__ = ["direct_conv", "im2col_conv", "mec_conv", "exact_integer_matmul"]


def _window_slices(geometry, tap):
    """Slices picking, for one kernel tap, the input element under every output position."""
    return tuple(slice(t * d, t * d + (o - 1) * s + 1, s)
                 for t, d, o, s in zip(tap, geometry.dilation, geometry.out_shape,
                                       geometry.stride))


def direct_conv(xpad, w, geometry, acc_dtype):
    """Direct convolution: the loop nest over channels and kernel taps, no lowering.

    For each input channel ``c`` and tap, the strided window of ``xpad`` under all output
    positions is scaled by the ``K`` weights ``w[:, c, tap]`` and accumulated (an outer
    product over filters x output positions). Only a product buffer of the output's size
    is allocated.
    """
    n, kg, cg = geometry.batch, geometry.filters_per_group, geometry.channels_per_group
    out = np.zeros((n, geometry.filters) + geometry.out_shape, dtype=acc_dtype)
    product = np.empty((n, kg) + geometry.out_shape, dtype=acc_dtype)
    w = w.astype(acc_dtype, copy=False)
    spatial_ones = (1,) * geometry.spatial_ndim
    for group in range(geometry.groups):
        filters = slice(group * kg, (group + 1) * kg)
        out_group = out[:, filters]
        for c_local in range(cg):
            channel = xpad[:, group * cg + c_local]
            for tap in np.ndindex(*geometry.kernel_shape):
                window = channel[(slice(None),) + _window_slices(geometry, tap)]
                weights = w[(filters, c_local) + tap].reshape((1, kg) + spatial_ones)
                np.multiply(weights, window[:, np.newaxis], out=product)
                out_group += product
    return out, product.nbytes


def _im2col_windows(image, geometry):
    """Read-only view ``(C, *kernel, *out)`` of one padded image: every input element each
    output position sees, without copying."""
    axis_strides = image.strides[1:]
    return as_strided(
        image,
        shape=(geometry.channels,) + geometry.kernel_shape + geometry.out_shape,
        strides=((image.strides[0],)
                 + tuple(d * st for d, st in zip(geometry.dilation, axis_strides))
                 + tuple(s * st for s, st in zip(geometry.stride, axis_strides))),
        writeable=False)


def exact_integer_matmul(a, b, bound):
    """``a @ b`` for integer operands, exact, as int64.

    When ``bound`` (a bound on every partial sum) is below 2**53 every intermediate value
    is an integer float64 represents exactly, so the BLAS float64 product is exact and
    much faster than NumPy's integer matmul; otherwise multiply in int64.

    Returns
    -------
    (product, workspace bytes of the converted operands)
    """
    if bound < 2 ** 53:
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        return np.matmul(a64, b64).astype(np.int64), a64.nbytes + b64.nbytes
    a64, b64 = a.astype(np.int64), b.astype(np.int64)
    return np.matmul(a64, b64), a64.nbytes + b64.nbytes


def im2col_conv(xpad, w, geometry, matmul):
    """im2col + GEMM: lower each image to a ``(C * prod(kernel)) x prod(out)`` matrix and
    multiply it by the filters reshaped to ``K x (C/groups * prod(kernel))``, one GEMM per
    group (batched in one call).

    ``matmul(a, b) -> (product, workspace bytes)`` does the multiply, so the integer
    models can make it exact.
    """
    g, kg, cg = geometry.groups, geometry.filters_per_group, geometry.channels_per_group
    rows, positions = cg * geometry.taps, geometry.output_positions
    filters_matrix = w.reshape(g, kg, rows)
    lowered = np.empty((g, rows, positions), dtype=xpad.dtype)   # reused for every image
    out = None
    workspace = lowered.nbytes
    for image_index, image in enumerate(xpad):
        np.copyto(lowered.reshape((geometry.channels,) + geometry.kernel_shape
                                  + geometry.out_shape),
                  _im2col_windows(image, geometry))
        product, matmul_bytes = matmul(filters_matrix, lowered)     # (g, kg, positions)
        if out is None:
            out = np.empty((geometry.batch, geometry.filters) + geometry.out_shape,
                           dtype=product.dtype)
            workspace += matmul_bytes
        out[image_index] = product.reshape((geometry.filters,) + geometry.out_shape)
    return out, workspace


def _mec_lowered(image, geometry):
    """MEC's compact lowering of one padded image, as a read-only view.

    Shape ``(groups, *padded leading axes, S, C/groups, out_W)``: for every output column
    ``ow`` the vertical strip of ``S`` input columns it reads (all rows, all channels).
    Stored transposed relative to the paper's ``out_W x (H * S * C)`` so that the GEMM
    operands below are plain row blocks and the result lands in NCHW order.
    """
    g, cg = geometry.groups, geometry.channels_per_group
    channel_stride, *axis_strides = image.strides
    return as_strided(
        image,
        shape=((g,) + geometry.padded_shape[:-1]
               + (geometry.kernel_shape[-1], cg, geometry.out_shape[-1])),
        strides=((cg * channel_stride,) + tuple(axis_strides[:-1])
                 + (geometry.dilation[-1] * axis_strides[-1], channel_stride,
                    geometry.stride[-1] * axis_strides[-1])),
        writeable=False)


def _mec_row_blocks(geometry):
    """Runs of kernel rows (along H) that form one contiguous row block of the lowered matrix.

    Without dilation along H all R kernel rows are adjacent, so one output row needs a
    single GEMM (the paper's case); with dilation each kernel row is its own block.
    """
    rows = geometry.kernel_shape[-2]
    if geometry.dilation[-2] == 1:
        return [(0, rows)]
    return [(r, 1) for r in range(rows)]


def mec_conv(xpad, w, geometry):
    """MEC: compact lowering along W, then per output row a small GEMM on a strided view.

    ``O[oh] = K @ L[rows of input rows oh*s .. oh*s+R-1]``: the operand for output row
    ``oh`` is a contiguous block of the lowered matrix starting ``oh * stride`` input rows
    down, so the out_H GEMMs run as one batched matmul over an overlapping strided view
    (no second copy). In 3D the leading axis (D) and its kernel taps are an outer loop.
    Needs at least two spatial axes.
    """
    g, kg, cg = geometry.groups, geometry.filters_per_group, geometry.channels_per_group
    kernel_w = geometry.kernel_shape[-1]
    out_h, out_w = geometry.out_shape[-2:]
    stride_h, dilation_h = geometry.stride[-2], geometry.dilation[-2]
    lead_stride, lead_dilation = geometry.stride[:-2], geometry.dilation[:-2]
    row_elements = kernel_w * cg * out_w                  # one input row of the lowered matrix
    lowered = np.empty(lowering_sizes_for(geometry).mec, dtype=xpad.dtype)
    lowered_view = lowered.reshape((g,) + geometry.padded_shape[:-1] + (kernel_w, cg, out_w))
    # Filters ordered (K, *leading taps, R, S, C) to match the lowered rows (h, s, c), cut
    # once into the K/g x (run * S * C/g) matrix of every (group, leading tap, row block).
    spatial = tuple(range(2, 2 + geometry.spatial_ndim))
    w_ordered = w.reshape((g, kg, cg) + geometry.kernel_shape).transpose(
        (0, 1) + tuple(a + 1 for a in spatial) + (2,))
    blocks = _mec_row_blocks(geometry)
    kernels = {
        (group, lead_tap, first_row): np.ascontiguousarray(
            w_ordered[(group, slice(None)) + lead_tap + (slice(first_row, first_row + run),)]
        ).reshape(kg, run * kernel_w * cg)
        for group in range(g) for lead_tap in np.ndindex(*geometry.kernel_shape[:-2])
        for first_row, run in blocks}
    out = np.empty((geometry.batch, geometry.filters) + geometry.out_shape, dtype=xpad.dtype)
    partial = np.empty((out_h, kg, out_w), dtype=xpad.dtype) if (
        len(blocks) > 1 or geometry.spatial_ndim > 2) else None
    item = lowered.itemsize
    for image_index, image in enumerate(xpad):
        np.copyto(lowered_view, _mec_lowered(image, geometry))
        for group in range(g):
            group_lowered = lowered_view[group]
            for lead_out in np.ndindex(*geometry.out_shape[:-2]):
                # (out_H, K/g, out_W) view of this output slab, written in place.
                target = out[(image_index, slice(group * kg, (group + 1) * kg)) + lead_out]
                target = target.transpose(1, 0, 2)
                first = True
                for lead_tap in np.ndindex(*geometry.kernel_shape[:-2]):
                    lead_row = tuple(o * s + t * d for o, s, t, d in
                                     zip(lead_out, lead_stride, lead_tap, lead_dilation))
                    plane = group_lowered[lead_row]          # (H, S, C/g, out_W), contiguous
                    for first_row, run in blocks:
                        operand = as_strided(
                            plane[first_row * dilation_h:],
                            shape=(out_h, run * kernel_w * cg, out_w),
                            strides=(stride_h * row_elements * item, out_w * item, item),
                            writeable=False)
                        kernel = kernels[group, lead_tap, first_row]
                        if first:
                            np.matmul(kernel, operand, out=target)
                            first = False
                        else:
                            np.matmul(kernel, operand, out=partial)
                            target += partial
    workspace = (lowered.nbytes + sum(k.nbytes for k in kernels.values())
                 + (partial.nbytes if partial is not None else 0))
    return out, workspace
