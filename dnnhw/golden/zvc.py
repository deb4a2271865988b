"""Golden model of the cDMA zero-value (ZV) compressor, and the RL / ZL sizes it is
compared with (Rhu et al., HPCA 2018).

The ZV word format, shared bit for bit with ``dnnhw.rtl.zvc``:

- A *window* is ``lanes`` (N) elements of ``width`` (W) bits, unsigned bit patterns; an
  element is zero when all its bits are zero.
- A *slot* is W bits. The mask takes ``M = ceil(N / W)`` slots: mask bit ``j`` is 1 when
  element ``j`` is non-zero, LSB first (slot ``k`` holds mask bits ``k*W .. k*W + W - 1``;
  bits at or past N are zero).
- A compressed window is its M mask slots followed by its non-zero elements in element
  order: ``M + nnz`` slots.
- A *frame* (a run of windows ended by ``last``) is the concatenation of its compressed
  windows with no gaps, packed into *words* of N slots, slot ``s`` of a word at bits
  ``[s*W, (s+1)*W)``. The last word is zero-padded; ``last_length`` (1..N) says how many
  of its slots are valid, which is what tells a trailing all-zero window (mask slots of
  zero) from padding. Every frame starts on a new word.

Slot-granular packing keeps the hardware's shifters in units of whole elements; it costs
``M*W - N`` bits per window over bit-granular packing, none for the paper's 32 x 32-bit
window (128 B in, 4 B .. 132 B out).
"""

import zlib

import numpy as np

from dnnhw.spec.zvc import LANES, WIDTHS


__all__ = [
    "ZVCFormatError", "mask_slots", "compress_window", "compress_frame", "decompress_frame",
    "zv_compressed_bits", "rl_compressed_bits", "zl_compressed_bits", "compression_ratios",
    "relu_like", "WIDTHS", "LANES",
]


class ZVCFormatError(ValueError):
    """Compressed data that does not decode: truncated frame, mask / length mismatch."""


def _check_geometry(lanes, width):
    if not isinstance(lanes, (int, np.integer)) or isinstance(lanes, bool) or lanes < 1:
        raise ValueError(f"lanes must be a positive integer, got {lanes!r}")
    if width not in WIDTHS:
        raise ValueError(f"width must be one of {', '.join(map(str, WIDTHS))}, got {width!r}")


def mask_slots(lanes, width):
    """Slots the mask of one window takes: ``ceil(lanes / width)``."""
    _check_geometry(lanes, width)
    return -(-lanes // width)


def _as_windows(windows, width):
    windows = np.asarray(windows)
    if windows.ndim != 2 or windows.shape[0] < 1:
        raise ValueError(f"windows must be a 2-D array (n_windows >= 1, lanes), "
                         f"got shape {windows.shape}")
    if not np.issubdtype(windows.dtype, np.integer):
        raise TypeError(f"windows must hold integers, got dtype {windows.dtype}")
    if windows.min() < 0 or int(windows.max()) >> width:
        raise ValueError(f"window elements must be unsigned {width}-bit values "
                         f"(0..{(1 << width) - 1}), got range {windows.min()}..{windows.max()}")
    return windows.astype(np.uint64)


def compress_window(window, *, width):
    """Slots (uint64) of one compressed window: M mask slots, then the non-zeros."""
    window = _as_windows(np.asarray(window)[None, :], width)[0]
    lanes = window.shape[0]
    m = mask_slots(lanes, width)
    mask = 0
    for j, value in enumerate(window):
        if value:
            mask |= 1 << j
    mask_part = [(mask >> (k * width)) & ((1 << width) - 1) for k in range(m)]
    return np.array(mask_part + [v for v in window if v], dtype=np.uint64)


def compress_frame(windows, *, width):
    """Compress one frame of windows (shape ``(n_windows, lanes)``).

    Returns ``(words, last_length)``: ``words`` is ``(n_words, lanes)`` uint64 slots, the
    last word zero-padded past ``last_length`` valid slots.
    """
    windows = _as_windows(windows, width)
    lanes = windows.shape[1]
    _check_geometry(lanes, width)
    slots = np.concatenate([compress_window(w, width=width) for w in windows])
    n_words = -(-len(slots) // lanes)
    words = np.zeros(n_words * lanes, dtype=np.uint64)
    words[:len(slots)] = slots
    return words.reshape(n_words, lanes), len(slots) - (n_words - 1) * lanes


def decompress_frame(words, last_length, *, width):
    """Inverse of :func:`compress_frame`; raises :class:`ZVCFormatError` on malformed input."""
    words = np.asarray(words)
    if words.ndim != 2 or words.shape[0] < 1:
        raise ValueError(f"words must be a 2-D array (n_words >= 1, lanes), got shape {words.shape}")
    lanes = words.shape[1]
    _check_geometry(lanes, width)
    if not 1 <= last_length <= lanes:
        raise ValueError(f"last_length must be in 1..{lanes}, got {last_length}")
    words = words.astype(np.uint64)
    if words.max() >> np.uint64(width) if width < 64 else False:
        raise ValueError(f"slots must be unsigned {width}-bit values")
    total = (words.shape[0] - 1) * lanes + last_length
    flat = words.reshape(-1)
    if flat[total:].any():
        raise ZVCFormatError(f"non-zero padding after the frame's {total} valid slots")
    slots = flat[:total]
    m = mask_slots(lanes, width)
    windows, pos = [], 0
    while pos < total:
        if pos + m > total:
            raise ZVCFormatError(
                f"frame ends inside a mask: {total - pos} slot(s) left at slot {pos}, "
                f"a mask takes {m} (length does not match the masks)")
        mask = 0
        for k in range(m):
            mask |= int(slots[pos + k]) << (k * width)
        if mask >> lanes:
            raise ZVCFormatError(f"mask at slot {pos} has bits set at or past lane {lanes}")
        nnz = bin(mask).count("1")
        if pos + m + nnz > total:
            raise ZVCFormatError(
                f"truncated frame: the mask at slot {pos} announces {nnz} non-zero "
                f"element(s) but only {total - pos - m} slot(s) remain")
        values = iter(slots[pos + m:pos + m + nnz])
        windows.append([int(next(values)) if (mask >> j) & 1 else 0 for j in range(lanes)])
        pos += m + nnz
    return np.array(windows, dtype=np.uint64)


# --- sizes of a tensor under ZV, RL and ZL -------------------------------------------------

def _as_words(tensor, width):
    """A tensor as a flat array of unsigned ``width``-bit words (floats by their bits)."""
    tensor = np.asarray(tensor)
    if np.issubdtype(tensor.dtype, np.floating):
        kind = {16: np.uint16, 32: np.uint32, 64: np.uint64}[tensor.dtype.itemsize * 8]
        if tensor.dtype.itemsize * 8 != width:
            raise ValueError(f"a {tensor.dtype} tensor has {tensor.dtype.itemsize * 8}-bit "
                             f"words, but width={width}")
        return tensor.reshape(-1).view(kind).astype(np.uint64)
    if not np.issubdtype(tensor.dtype, np.integer):
        raise TypeError(f"tensor must hold integers or floats, got dtype {tensor.dtype}")
    flat = tensor.reshape(-1).astype(np.int64)
    lo, hi = -(1 << (width - 1)), (1 << width) - 1
    if flat.size and (flat.min() < lo or flat.max() > hi):
        raise ValueError(f"tensor values must fit in {width} bits ({lo}..{hi})")
    return (flat & ((1 << width) - 1)).astype(np.uint64)


def zv_compressed_bits(tensor, *, lanes, width):
    """Bits of the ZV stream of ``tensor`` sent as one frame (word padding included)."""
    words = _as_words(tensor, width)
    m = mask_slots(lanes, width)
    n_windows = -(-words.size // lanes)
    slots = n_windows * m + int(np.count_nonzero(words))
    return -(-slots // lanes) * lanes * width


def rl_compressed_bits(tensor, *, width, run_bits=4):
    """Bits of a zero run-length (RL) encoding: a stream of ``(run, value)`` tokens.

    A token stands for ``run`` zeros followed by ``value``; a run longer than
    ``2**run_bits - 1`` zeros is split with tokens whose value is zero. A token costs
    ``run_bits + width`` bits.
    """
    if not 1 <= run_bits <= 16:
        raise ValueError(f"run_bits must be in 1..16, got {run_bits}")
    words = _as_words(tensor, width)
    max_run = (1 << run_bits) - 1
    nonzero = np.flatnonzero(words)
    # Zeros before each non-zero, and after the last one.
    gaps = np.diff(np.concatenate(([-1], nonzero, [words.size]))) - 1
    # A gap of g zeros before a value needs floor(g / (max_run + 1)) filler tokens;
    # the trailing gap needs ceil(g / (max_run + 1)) tokens of its own.
    fillers = int((gaps[:-1] // (max_run + 1)).sum())
    tail = -(-int(gaps[-1]) // (max_run + 1))
    tokens = nonzero.size + fillers + tail
    return tokens * (run_bits + width)


def zl_compressed_bits(tensor, *, width, level=6):
    """Bits of the zlib (ZL) stream of the tensor's little-endian words."""
    words = _as_words(tensor, width)
    raw = words.astype({8: "<u1", 16: "<u2", 32: "<u4"}[width]).tobytes()
    return 8 * len(zlib.compress(raw, level))


def compression_ratios(tensor, *, lanes=32, width=32, run_bits=4):
    """Uncompressed / compressed size for ZV, RL and ZL, and the density of ``tensor``."""
    words = _as_words(tensor, width)
    raw = words.size * width
    return {
        "elements": int(words.size),
        "density": float(np.count_nonzero(words) / max(words.size, 1)),
        "zv": raw / zv_compressed_bits(tensor, lanes=lanes, width=width),
        "rl": raw / rl_compressed_bits(tensor, width=width, run_bits=run_bits),
        "zl": raw / zl_compressed_bits(tensor, width=width),
    }


def relu_like(shape, density, *, dtype=np.float32, rng=None, scale=1.0):
    """A ReLU output with the given fraction of non-zeros, as float or signed fixed point.

    ``max(0, x - t)`` with standard Gaussian ``x`` and ``t`` its ``(1 - density)``
    quantile (a small offset keeps every kept value non-zero). For an integer ``dtype`` the
    values are scaled so the largest is a quarter of the type's range (headroom, as a
    quantized activation would have) and rounded up, so no kept value becomes zero.
    """
    if not 0.0 <= density <= 1.0:
        raise ValueError(f"density must be in [0, 1], got {density}")
    rng = np.random.default_rng(rng)
    x = rng.standard_normal(shape)
    if density == 0:
        return np.zeros(shape, dtype=dtype)
    threshold = np.quantile(x, 1.0 - density) if density < 1 else x.min() - 1.0
    y = np.where(x > threshold, x - threshold + 1e-3, 0.0) * scale
    if np.issubdtype(np.dtype(dtype), np.integer):
        top = np.iinfo(dtype).max
        y = np.clip(np.ceil(y * (top / 4 / max(y.max(), 1e-9))), 0, top)
    return y.astype(dtype)
