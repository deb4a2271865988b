"""The tile's stream contract (golden/diffy_tile.py) and the published cycle models it
cites, against the definitions computed by hand (tests/diffy_by_hand.py): every pallet's
values, weights and steps, the output beats, and the cycles."""

import numpy as np
import pytest

import diffy_by_hand as by_hand
from dnnhw.golden.diffy_tile import published_cycles, tile_schedule
from dnnhw.spec.diffy_tile import MODES


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


def _expected_outputs(x, w, stride, padding, L, F, W):
    """The output beats by hand: per (image, filter pass, group) the F x W sums of the
    loop-nest convolution, 0 for idle columns and missing filters."""
    out = by_hand.conv2d(x, w, stride, padding)
    K = w.shape[0]
    OH, OW = by_hand.output_size(x.shape, w.shape, stride, padding)
    beats = {}
    for pallet in by_hand.tile_pallets(x, w, stride, padding, L, F, W):
        n, fp, g = pallet["key"][:3]
        beats[n, fp, g] = [[out[n][fp * F + f][(g * W + c) // OW][(g * W + c) % OW]
                            if pallet["real"][c] and fp * F + f < K else 0
                            for c in range(W)] for f in range(F)]
    return np.array([beats[key] for key in sorted(beats)])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", SHAPES, ids=range(len(SHAPES)))
def test_schedule_and_published_cycles_equal_the_layer_by_hand(mode, shape):
    xs, ks, stride, padding, (L, F, W) = shape
    rng = np.random.default_rng(len(mode) + xs[1])
    x, w = _layer(rng, xs, ks, smooth=mode == "diffy")
    if mode == "stripes":
        x = np.abs(x)
    sched = tile_schedule(x, w, stride, padding, lanes=L, filters=F, windows=W, mode=mode)
    pallets = by_hand.tile_pallets(x, w, stride, padding, L, F, W)
    assert sched.acts.tolist() == [p["raw"] for p in pallets]
    assert sched.weights.tolist() == [p["weights"] for p in pallets]
    precision = by_hand.precision_bits(x.ravel().tolist())
    steps = [by_hand.pallet_steps(p, mode, precision=precision) for p in pallets]
    assert sched.pallet_steps.tolist() == steps
    assert sched.steps == sum(steps) == published_cycles(
        x, w, stride, padding, mode=mode, lanes=L, filters=F, windows=W)
    assert np.array_equal(sched.outputs, _expected_outputs(x, w, stride, padding, L, F, W))
    # The pallets, summed per group, give those outputs (Diffy: after the running sum).
    sums = _sum_pallets(sched, lambda k: np.einsum("wl,fl->fw", sched.acts[k], sched.weights[k]))
    assert np.array_equal(sums, sched.outputs)


@pytest.mark.parametrize("mode", ["diffy", "pragmatic"])
@pytest.mark.parametrize("encoding,shifter_bits", [("plain", 0), ("csd", 1), ("best", 4)])
def test_term_serial_steps_in_every_encoding_and_shifter(mode, encoding, shifter_bits):
    xs, ks, stride, padding, (L, F, W) = SHAPES[1]
    x, w = _layer(np.random.default_rng(shifter_bits), xs, ks, smooth=True)
    sched = tile_schedule(x, w, stride, padding, lanes=L, filters=F, windows=W, mode=mode,
                          encoding=encoding, shifter_bits=shifter_bits)
    steps = [by_hand.pallet_steps(p, mode, encoding=encoding, shifter_bits=shifter_bits)
             for p in by_hand.tile_pallets(x, w, stride, padding, L, F, W)]
    assert sched.pallet_steps.tolist() == steps
    assert published_cycles(x, w, stride, padding, mode=mode, lanes=L, filters=F, windows=W,
                            encoding=encoding, shifter_bits=shifter_bits) == sum(steps)


@pytest.mark.parametrize("mode", ["diffy", "pragmatic"])
def test_a_pallet_without_terms_takes_one_step(mode):
    xs, ks, stride, padding, (L, F, W) = SHAPES[0]
    x, w = _layer(np.random.default_rng(7), xs, ks, smooth=True)
    x[:, :, :4] = 0                 # the windows of output rows 0..2 see only zeros
    sched = tile_schedule(x, w, stride, padding, lanes=L, filters=F, windows=W, mode=mode)
    pallets = by_hand.tile_pallets(x, w, stride, padding, L, F, W)
    values = "delta" if mode == "diffy" else "raw"
    empty = [not any(v for brick in p[values] for v in brick) for p in pallets]
    assert any(empty) and not all(empty)
    assert sched.pallet_steps.tolist() == [by_hand.pallet_steps(p, mode) for p in pallets]
    assert all(sched.pallet_steps[empty] == 1)


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
    # And they are the window deltas by hand (the values the step model counts terms of).
    assert deltas.tolist() == [p["delta"] for p in by_hand.tile_pallets(x, w, stride, padding,
                                                                       L, F, W)]


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

