"""The tile's stream contract (golden/diffy_tile.py) against the independent golden
models: the plain integer convolution, the window deltas and the published cycle model."""

import numpy as np
import pytest

from dnnhw.golden import diffy_published as golden
from dnnhw.golden.conv import conv2d_direct_int
from dnnhw.golden.diffy_tile import published_cycles, tile_schedule


SHAPES = [
    # (N, C, H, W), (K, R, S), stride, padding, (lanes, filters, windows)
    ((1, 3, 6, 9), (5, 3, 3), 1, 1, (4, 2, 4)),
    ((2, 7, 7, 8), (3, 3, 3), 2, 1, (3, 4, 5)),
    ((1, 9, 5, 7), (4, 1, 1), 1, 0, (4, 4, 4)),
    ((1, 2, 6, 6), (2, 1, 1), 2, 0, (1, 1, 1)),
    ((1, 5, 4, 11), (6, 3, 2), (1, 2), (0, 1), (16, 16, 16)),
]


def _layer(rng, xs, ks, smooth):
    x = rng.integers(-3000, 3000, size=xs)
    if smooth:
        x = np.clip(np.cumsum(rng.integers(-40, 41, size=xs), axis=-1) + 500, 0, 32767)
    w = rng.integers(-5000, 5000, size=(ks[0], xs[1], ks[1], ks[2]))
    return x, w


def _sum_pallets(sched, value_of):
    """The group outputs rebuilt from the pallets (what an ideal tile computes)."""
    out, acc = [], 0
    for k in range(len(sched.last)):
        acc = acc + value_of(k)
        if sched.last[k]:
            out.append(acc)
            acc = 0
    return np.array(out)


@pytest.mark.parametrize("mode", ["diffy", "pragmatic", "stripes", "bitparallel"])
@pytest.mark.parametrize("shape", SHAPES, ids=range(len(SHAPES)))
def test_schedule_matches_the_published_model_and_the_conv(mode, shape):
    xs, ks, stride, padding, (L, F, W) = shape
    rng = np.random.default_rng(len(mode) + xs[1])
    x, w = _layer(rng, xs, ks, smooth=mode == "diffy")
    if mode == "stripes":
        x = np.abs(x)
    sched = tile_schedule(x, w, stride, padding, lanes=L, filters=F, windows=W, mode=mode)
    tile = golden.TileConfig(lanes=L, filters=F, windows=W, bit_parallel_windows=W)
    model = {
        "diffy": golden.diffy_cycles, "pragmatic": golden.pragmatic_cycles,
        "stripes": golden.stripes_cycles, "bitparallel": golden.bit_parallel_cycles,
    }[mode](x, w, stride, padding, tile=tile)
    assert sched.steps == model
    assert published_cycles(x, w, stride, padding, mode=mode, lanes=L, filters=F,
                            windows=W) == model
    # The pallets, summed per group, give the convolution (Diffy: after the running sum).
    sums = _sum_pallets(sched, lambda k: np.einsum("wl,fl->fw", sched.acts[k], sched.weights[k]))
    assert np.array_equal(sums, sched.outputs)
    out = conv2d_direct_int(x, w, stride=stride, padding=padding)
    assert np.abs(sched.outputs).sum() == np.abs(out).sum()


@pytest.mark.parametrize("shape", SHAPES, ids=range(len(SHAPES)))
def test_prev_and_raw_give_the_window_deltas(shape):
    xs, ks, stride, padding, (L, F, W) = shape
    rng = np.random.default_rng(3)
    x, w = _layer(rng, xs, ks, smooth=True)
    sched = tile_schedule(x, w, stride, padding, lanes=L, filters=F, windows=W)
    before = np.concatenate([sched.prev[:, None, :], sched.acts[:, :-1, :]], axis=1)
    deltas = sched.acts - np.where(sched.raw[..., None], 0, before)
    # The same deltas, summed with the weights and rebuilt along X, give the outputs.
    partial = _sum_pallets(sched, lambda k: np.einsum("wl,fl->fw", deltas[k], sched.weights[k]))
    carry = np.zeros(partial.shape[1], dtype=np.int64)
    raw_of_group = sched.raw[sched.last]
    rebuilt = []
    for g in range(len(partial)):
        cols = []
        for c in range(partial.shape[2]):
            carry = (0 if raw_of_group[g, c] else carry) + partial[g, :, c]
            cols.append(carry)
        rebuilt.append(np.stack(cols, axis=1))
    assert np.array_equal(np.array(rebuilt), sched.outputs)
    # And they are the golden window deltas (the values the step model counts terms of).
    d = golden.window_deltas(x, ks[1:], stride, padding)
    assert deltas.min() >= d.min() and deltas.max() <= d.max()


def test_stripes_precision_and_sign():
    x = np.array([[[[0, 5, 200]]]])
    w = np.ones((1, 1, 1, 1), dtype=np.int64)
    s = tile_schedule(x, w, lanes=1, filters=1, windows=1, mode="stripes")
    assert (s.stripes_msb, s.stripes_signed) == (7, False)
    s = tile_schedule(-x, w, lanes=1, filters=1, windows=1, mode="stripes")
    assert (s.stripes_msb, s.stripes_signed) == (8, True)
    assert s.steps == 3 * 9


@pytest.mark.parametrize("kwargs,message", [
    ({"mode": "dadiannao"}, "mode must be one of diffy, pragmatic, stripes, bitparallel"),
    ({"width": 20}, "width must be in 8..16, got 20"),
])
def test_schedule_errors(kwargs, message):
    x, w = np.zeros((1, 2, 3, 3), dtype=np.int64), np.zeros((1, 2, 1, 1), dtype=np.int64)
    with pytest.raises(ValueError, match=message):
        tile_schedule(x, w, lanes=2, filters=1, windows=1, **kwargs)


def test_schedule_rejects_out_of_range_values_and_channel_mismatch():
    x, w = np.zeros((1, 2, 3, 3), dtype=np.int64), np.zeros((1, 2, 1, 1), dtype=np.int64)
    with pytest.raises(ValueError, match="x must hold 8-bit values -128..127"):
        tile_schedule(x + 128, w, lanes=2, filters=1, windows=1, width=8)
    with pytest.raises(ValueError, match="w has 3 input channels but x has 2"):
        tile_schedule(x, np.zeros((1, 3, 1, 1)), lanes=2, filters=1, windows=1)

