"""ZVC test data: random frames, the corner-case frames, and (below) the malformed-input
cases and random corruptions the decompressor's bench and tests feed.

Pure NumPy and the golden model (no cocotb), so the Amaranth-simulator tests use the same
data as the cocotb benches.

Elements: non-zero with probability ``density``; a non-zero value is uniform in
``1 .. 2**W - 1``, and with probability ``corner_values`` one of ``1``, ``2**(W-1)``,
``2**W - 1`` (the all-ones pattern is otherwise never drawn at W = 32).
"""

import math

import numpy as np

from dnnhw.golden import zvc as golden


__all__ = ["random_frame", "frame_lengths", "corner_frames"]


def random_frame(rng, n_windows, lanes, width, density, corner_values=0.05):
    """``(n_windows, lanes)`` uint64 elements, each non-zero with probability
    ``density`` (a number, or one per window)."""
    top = (1 << width) - 1
    values = rng.integers(1, top, size=(n_windows, lanes), dtype=np.uint64, endpoint=True)
    if corner_values:
        corner = rng.random((n_windows, lanes)) < corner_values
        picks = np.array([1, 1 << (width - 1), top], dtype=np.uint64)
        values[corner] = picks[rng.integers(0, 3, size=int(corner.sum()))]
    density = np.asarray(density, dtype=float)
    if density.ndim:
        density = density.reshape(n_windows, 1)
    keep = rng.random((n_windows, lanes)) < density
    return np.where(keep, values, np.uint64(0))


def frame_lengths(rng, total, max_frame):
    """Frame lengths summing to ``total``: log-uniform in 1..max_frame."""
    lengths = []
    while total > 0:
        length = int(math.exp(rng.uniform(0.0, math.log(max_frame + 1))))
        length = max(1, min(length, max_frame, total))
        lengths.append(length)
        total -= length
    return lengths


def corner_frames(lanes, width):
    """Frames that hit the format's edges: empty and full windows, a single non-zero in
    each end lane, frames whose slots fill their last word exactly, and the all-ones
    pattern."""
    top = (1 << width) - 1
    m = golden.mask_slots(lanes, width)
    zero = np.zeros((1, lanes), dtype=np.uint64)
    full = np.full((1, lanes), top, dtype=np.uint64)
    first = zero.copy(); first[0, 0] = top
    lastlane = zero.copy(); lastlane[0, -1] = 1
    frames = [zero, full, first, lastlane, zero.copy(), full.copy()]
    # N all-zero windows: N*M slots, exactly M words.
    frames.append(np.zeros((lanes, lanes), dtype=np.uint64))
    # Windows whose slots sum to a multiple of N: (N - M) non-zeros -> exactly one word.
    exact = np.zeros((3, lanes), dtype=np.uint64)
    exact[:, :max(lanes - m, 0)] = top
    frames.append(exact)
    # One slot short of / past a word boundary.
    short = np.zeros((2, lanes), dtype=np.uint64)
    short[0, :max(lanes - m - 1, 0)] = 5
    frames.append(short)
    frames.append(np.vstack([full] * 5))
    frames.append(np.vstack([zero, full, zero, full, zero]))
    alternating = np.zeros((4, lanes), dtype=np.uint64)
    alternating[:, ::2] = top
    frames.append(alternating)
    return frames
