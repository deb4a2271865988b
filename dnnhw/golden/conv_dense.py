"""Dense convolution cores: direct loop nest, im2col + GEMM, and MEC (Cho & Brand, ICML 2017).

The cores take a zero-padded, batched input ``xpad`` of shape ``(N, C, *padded)`` and
filters ``w`` of shape ``(K, C / groups, *kernel)``, and return ``(output, workspace
bytes)``; the output has shape ``(N, K, *out)``. They are dtype-generic: the float
models run them in a floating dtype, the integer models in int64 (exact). Argument
checking and padding happen in :mod:`dnnhw.golden.conv`.
"""

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .conv_common import lowering_sizes_for


__all__ = ["direct_conv", "im2col_conv", "im2col_tiling", "mec_conv", "exact_integer_matmul"]


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


#: Target size of one im2col tile: the lowered columns of a block of output positions.
#: A tile this size stays in cache between the lowering copy that writes it and the GEMM
#: that reads it, instead of a whole lowered image going out to DRAM and back (VGG-16
#: conv1_2 lowers 110 MiB per image).
IM2COL_TILE_BYTES = 4 << 20
#: Fewest output positions (GEMM columns) per tile when a layer is deep, so that each GEMM
#: call still amortizes BLAS's packing of the filter matrix.
IM2COL_MIN_TILE_POSITIONS = 512


def im2col_tiling(geometry, itemsize, tile_bytes=None, min_positions=None):
    """How :func:`im2col_conv` cuts the output positions of one image into tiles.

    A tile is a run of ``chunk`` consecutive indices along output axis ``axis`` (all later
    axes whole, every earlier axis at one index), so its positions are one contiguous
    range of the flattened output. The run is the longest that keeps the tile's lowered
    data (``C * taps`` values per position) within ``tile_bytes``, but at least
    ``min_positions`` positions long, and at most the whole axis; the runs along ``axis``
    are then evened out (their count rounded down), which can make a tile up to twice
    that long. A layer whose whole lowered matrix fits ``tile_bytes`` is one tile.

    Returns
    -------
    (axis, chunk, positions in the largest tile, tiles per image)
    """
    tile_bytes = IM2COL_TILE_BYTES if tile_bytes is None else tile_bytes
    min_positions = IM2COL_MIN_TILE_POSITIONS if min_positions is None else min_positions
    out_shape = geometry.out_shape
    fitting = tile_bytes // (geometry.channels * geometry.taps * itemsize)
    for axis in range(len(out_shape)):
        slab = math.prod(out_shape[axis + 1:])          # positions per index along axis
        if slab <= max(fitting, min_positions, 1):
            run = max(fitting // slab, -(-min_positions // slab), 1)
            runs = max(1, out_shape[axis] // run)
            chunk = -(-out_shape[axis] // runs)
            return axis, chunk, chunk * slab, math.prod(out_shape[:axis]) * runs
    raise AssertionError("unreachable: the last axis has slabs of one position")


def _im2col_sources(image, geometry):
    """Where the lowering copies read one padded image ``(C, *padded)`` from.

    A list of ``(array, taps, origin, tap_step, out_step)``: ``array`` has the image's
    axes, and the kernel taps ``taps`` (a slice of the last kernel axis, S) read, along its
    last axis, element ``origin + tap_step * i + out_step * ow`` for the ``i``-th of them
    and output column ``ow``.

    Usually that is the image itself (one source). With a W stride ``st > 1`` and at
    least ``2 * st`` taps along W, the image's columns are first split by phase
    (``phase[p][..., q] = image[..., q * st + p]``, one copy of the padded image): then
    the taps sharing a phase read runs of consecutive elements of one phase array instead
    of every ``st``-th element of the image, which makes the lowering copy about 1.6x
    faster for AlexNet conv1 (11x11, stride 4) and 2x for a 7x7 stride-2 layer. With fewer
    taps (3x3 stride 2) the extra pass costs more than it saves. The lowered matrix is the
    same either way.
    """
    stride, dilation = geometry.stride[-1], geometry.dilation[-1]
    taps = geometry.kernel_shape[-1]
    if stride == 1 or taps < 2 * stride:
        return [(image, slice(None), 0, dilation, stride)]
    step = stride // math.gcd(stride, dilation)        # taps apart that share a phase
    sources = []
    for first_tap in range(min(step, taps)):
        phase, origin = divmod(first_tap * dilation, stride)[::-1]
        array = np.ascontiguousarray(image[..., phase::stride])
        sources.append((array, slice(first_tap, None, step), origin,
                        step * dilation // stride, 1))
    return sources


def _im2col_tile_windows(source, geometry, axis, lead_index, first, count):
    """Read-only view ``(C, *kernel taps of the source, count, *out[axis+1:])`` of one
    source of :func:`_im2col_sources`: every input element the output positions of one
    tile see through those taps, without copying.

    The tile is output indices ``lead_index`` on the axes before ``axis`` and ``first ..
    first + count - 1`` along ``axis``.
    """
    array, taps, origin, tap_step, out_step = source
    channel_stride, *axis_strides = array.strides
    last = geometry.spatial_ndim - 1
    tile_index = lead_index + (first,)
    start = [i * s for i, s in zip(tile_index[:last], geometry.stride)]
    start += [0] * (last - len(start)) + [origin + (first * out_step if axis == last else 0)]
    origin_view = array[(slice(None),) + tuple(slice(o, None) for o in start)]
    tile_shape = (count,) + geometry.out_shape[axis + 1:]
    kernel_shape = geometry.kernel_shape[:-1] + (len(range(*taps.indices(
        geometry.kernel_shape[-1]))),)
    kernel_strides = tuple(d * st for d, st in zip(geometry.dilation[:-1], axis_strides))
    out_steps = geometry.stride[:-1] + (out_step,)
    return as_strided(
        origin_view,
        shape=(geometry.channels,) + kernel_shape + tile_shape,
        strides=((channel_stride,) + kernel_strides + (tap_step * axis_strides[-1],)
                 + tuple(s * st for s, st in zip(out_steps[axis:], axis_strides[axis:]))),
        writeable=False)


def exact_integer_matmul(a, b, bound, out=None):
    """``a @ b`` for integer operands, exact, as int64 (written into ``out`` if given).

    When ``bound`` (a bound on every partial sum) is below 2**53 every intermediate value
    is an integer float64 represents exactly, so the BLAS float64 product is exact and
    much faster than NumPy's integer matmul; otherwise multiply in int64.

    Returns
    -------
    (product, workspace bytes of the converted operands and the float64 product)
    """
    if bound < 2 ** 53:
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        product = np.matmul(a64, b64)
        if out is None:
            out = np.empty(product.shape, dtype=np.int64)
        np.copyto(out, product, casting="unsafe")     # integer-valued: the cast is exact
        return out, a64.nbytes + b64.nbytes + product.nbytes
    a64, b64 = a.astype(np.int64), b.astype(np.int64)
    return np.matmul(a64, b64, out=out), a64.nbytes + b64.nbytes


def im2col_conv(xpad, w, geometry, matmul, out_dtype=None):
    """im2col + GEMM: lower each image to a ``(C * prod(kernel)) x prod(out)`` matrix and
    multiply the filters, reshaped to ``K x (C/groups * prod(kernel))``, by it, one GEMM
    per group (batched in one call).

    The lowered matrix is built and multiplied in column tiles (see
    :func:`im2col_tiling`) so that a tile is still in cache when the GEMM reads it. A
    tile is one strided copy of the padded image (one per phase after a phase split, see
    :func:`_im2col_sources`) into a buffer reused for every tile, laid out ``(C, *kernel)
    x positions`` so that the GEMM reads it as a plain row-major matrix; the GEMM writes
    its ``K x positions`` result straight into the NCHW output, where each tile's
    positions are contiguous. Small layers are one tile, the whole lowered matrix at once.

    ``matmul(a, b, out) -> (out, workspace bytes)`` does the multiply into ``out``, so the
    integer models can make it exact. ``out_dtype`` defaults to the input's dtype.

    Returns
    -------
    (output, workspace bytes: the tile buffer, the phase-split copy if any, and the most
    ``matmul`` reports for one call)
    """
    g, kg, cg = geometry.groups, geometry.filters_per_group, geometry.channels_per_group
    rows = cg * geometry.taps
    filters_matrix = w.reshape(g, kg, rows)
    if g == 1:
        filters_matrix = filters_matrix[0]
    axis, chunk, tile_positions, _ = im2col_tiling(geometry, xpad.dtype.itemsize)
    out = np.empty((geometry.batch, geometry.filters) + geometry.out_shape,
                   dtype=xpad.dtype if out_dtype is None else out_dtype)
    out_flat = out.reshape(geometry.batch, g, kg, geometry.output_positions)
    buffer = np.empty(g * rows * tile_positions, dtype=xpad.dtype)   # reused for every tile
    slab = math.prod(geometry.out_shape[axis + 1:])
    last_kernel_axis = geometry.spatial_ndim          # of the (C, *kernel, ...) tile layout
    phase_bytes = matmul_bytes = 0
    for image_index, image in enumerate(xpad):
        sources = _im2col_sources(image, geometry)
        if sources[0][0] is not image:
            phase_bytes = sum(array.nbytes for array, *_ in sources)
        for lead_index in np.ndindex(*geometry.out_shape[:axis]):
            lead_offset = (np.ravel_multi_index(lead_index, geometry.out_shape[:axis])
                           * geometry.out_shape[axis] * slab if axis else 0)
            for first in range(0, geometry.out_shape[axis], chunk):
                count = min(chunk, geometry.out_shape[axis] - first)
                positions = count * slab
                lowered = buffer[:g * rows * positions]
                tile = lowered.reshape((geometry.channels,) + geometry.kernel_shape
                                       + (count,) + geometry.out_shape[axis + 1:])
                for source in sources:
                    taps = source[1]
                    np.copyto(tile[(slice(None),) * last_kernel_axis + (taps,)],
                              _im2col_tile_windows(source, geometry, axis, lead_index,
                                                   first, count))
                start = lead_offset + first * slab
                target = out_flat[image_index, :, :, start:start + positions]
                lowered = lowered.reshape(g, rows, positions)
                if g == 1:
                    target, lowered = target[0], lowered[0]
                _, used = matmul(filters_matrix, lowered, target)
                matmul_bytes = max(matmul_bytes, used)
    return out, buffer.nbytes + phase_bytes + matmul_bytes


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
