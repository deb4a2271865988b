"""Golden-model tests for Diffy: term encodings, differential convolution, cycle models."""

import itertools

import numpy as np
import pytest

from dnnhw.golden import diffy_published as D
from dnnhw.golden.conv import conv2d_direct_int

RNG_SEED = 20181020


# --------------------------------------------------------------------------
# helpers independent of the module under test


def ref_conv(x, w, stride=1, padding=0):
    """Plain loop-nest integer convolution, x (N, C, H, W) or (C, H, W), w (K, C, R, S)."""
    x = np.asarray(x, dtype=np.int64)
    squeeze = x.ndim == 3
    if squeeze:
        x = x[None]
    N, C, H, W = x.shape
    K, _, R, S = w.shape
    xp = np.zeros((N, C, H + 2 * padding, W + 2 * padding), dtype=np.int64)
    xp[:, :, padding:padding + H, padding:padding + W] = x
    OH = (H + 2 * padding - R) // stride + 1
    OW = (W + 2 * padding - S) // stride + 1
    out = np.zeros((N, K, OH, OW), dtype=np.int64)
    for n in range(N):
        for k in range(K):
            for oy in range(OH):
                for ox in range(OW):
                    acc = 0
                    for c in range(C):
                        for r in range(R):
                            for s in range(S):
                                acc += int(w[k, c, r, s]) * int(xp[n, c, oy * stride + r, ox * stride + s])
                    out[n, k, oy, ox] = acc
    return out[0] if squeeze else out


def offsets_of(mask):
    return [i for i in range(40) if (int(mask) >> i) & 1]


# --------------------------------------------------------------------------
# term encodings


def _check_encodings(v, width, delta):
    plain = D.plain_terms(v)
    csd = D.csd_terms(v)
    best = D.encode_terms(v, width, "best", delta=delta)
    for terms in (plain, csd, best):
        assert D.terms_value(terms) == v
        offs = [o for o, _ in terms]
        assert offs == sorted(offs) and len(set(offs)) == len(offs)   # lowest first, distinct
        assert all(o <= (width if delta else width - 1) for o in offs)
    # plain is sign-magnitude: every term carries the value's sign
    assert all(s == (-1 if v < 0 else 1) for _, s in plain)
    # CSD: no two adjacent non-zero digits
    offs = [o for o, _ in csd]
    assert all(b - a >= 2 for a, b in zip(offs, offs[1:]))
    # best never has more terms than plain; it has min(plain, csd); ties keep plain
    assert len(best) == min(len(plain), len(csd)) <= len(plain)
    assert best == (csd if len(csd) < len(plain) else plain)
    return plain, csd, best


def test_encodings_exhaustive_width8_raw_and_delta():
    width = 8
    lo, hi = D.value_range(width)
    vals = np.arange(lo, hi + 1)
    for v in vals:
        _check_encodings(int(v), width, delta=False)
    dlo, dhi = D.delta_range(width)
    assert (dlo, dhi) == (-255, 255)
    dvals = np.arange(dlo, dhi + 1)
    for v in dvals:
        _check_encodings(int(v), width, delta=True)
    # vectorised counts and masks agree with the scalar encoders
    for enc, fn in (("plain", D.plain_terms), ("csd", D.csd_terms),
                    ("best", lambda v: D.encode_terms(v, width, delta=True))):
        counts = D.term_count(dvals, width, enc, delta=True)
        masks = D.term_masks(dvals, width, enc, delta=True)
        negs = D.term_neg_masks(dvals, width, enc, delta=True)
        for v, c, m, n in zip(dvals, counts, masks, negs):
            terms = fn(int(v))
            assert c == len(terms) and offsets_of(m) == [o for o, _ in terms]
            assert offsets_of(n) == [o for o, s in terms if s < 0]
    best_counts = D.term_count(vals, width, "best")
    assert list(best_counts) == [len(D.encode_terms(int(v), width)) for v in vals]


def test_encodings_random_16bit():
    rng = np.random.default_rng(RNG_SEED)
    lo, hi = D.value_range(16)
    vals = np.concatenate([rng.integers(lo, hi + 1, 3000), [lo, hi, 0, 1, -1, 0x5555, -0x5555, 0x7FFE]])
    for v in vals:
        _check_encodings(int(v), 16, delta=False)
    dlo, dhi = D.delta_range(16)
    dvals = np.concatenate([rng.integers(dlo, dhi + 1, 2000), [dlo, dhi, 0xAAAA, -0xAAAA]])
    for v in dvals:
        _check_encodings(int(v), 16, delta=True)
    best = D.term_count(vals, 16, "best")
    assert np.all(best <= D.term_count(vals, 16, "plain"))
    assert np.all(best == np.minimum(D.term_count(vals, 16, "plain"), D.term_count(vals, 16, "csd")))
    masks = D.term_masks(vals[:500], 16, "best")
    negs = D.term_neg_masks(vals[:500], 16, "best")
    for v, m, n in zip(vals[:500], masks, negs):
        terms = D.encode_terms(int(v), 16)
        assert offsets_of(m) == [o for o, _ in terms]
        assert offsets_of(n) == [o for o, s in terms if s < 0]


def test_encoding_examples_and_tie_break():
    assert D.plain_terms(11) == [(0, 1), (1, 1), (3, 1)]
    assert D.csd_terms(11) == [(0, -1), (2, -1), (4, 1)]          # 16 - 4 - 1
    assert D.csd_terms(-7) == [(0, 1), (3, -1)]                   # -(8 - 1)
    assert D.encode_terms(7, 8) == [(0, -1), (3, 1)]              # 2 terms < 3 plain
    assert D.encode_terms(3, 8) == [(0, 1), (1, 1)]               # tie 2 vs 2: plain
    assert D.encode_terms(11, 8) == [(0, 1), (1, 1), (3, 1)]      # tie 3 vs 3: plain
    assert D.encode_terms(0, 8) == []
    # the largest delta of 16-bit data needs a term at offset 16 in CSD
    assert D.encode_terms(65535, 16, delta=True) == [(0, -1), (16, 1)]
    assert D.terms_value([(4, 1), (0, -1)]) == 15


# --------------------------------------------------------------------------
# deltas and differential convolution


@pytest.mark.parametrize("channels", [1, 3, 5])
@pytest.mark.parametrize("kernel", [1, 3])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("padding", [0, 1])
def test_diffy_conv2d_bit_exact(channels, kernel, stride, padding):
    rng = np.random.default_rng(RNG_SEED + 97 * channels + 13 * kernel + 5 * stride + padding)
    x = rng.integers(-(1 << 15), 1 << 15, (2, channels, 6, 7))
    w = rng.integers(-(1 << 15), 1 << 15, (3, channels, kernel, kernel))
    got = D.diffy_conv2d(x, w, stride, padding)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, ref_conv(x, w, stride, padding))
    # unbatched input gives the unbatched result
    np.testing.assert_array_equal(D.diffy_conv2d(x[1], w, stride, padding), got[1])


def test_diffy_conv2d_more_layers():
    rng = np.random.default_rng(RNG_SEED + 1)
    # 16 channels, 8-bit, rectangular kernel and per-axis stride/padding
    x = rng.integers(-128, 128, (16, 5, 9))
    w = rng.integers(-128, 128, (4, 16, 3, 2))
    got = D.diffy_conv2d(x, w, (1, 2), (1, 0), width=8)
    xp = np.pad(x, ((0, 0), (1, 1), (0, 0)))
    exp = ref_conv(xp, w, 1, 0)[:, :, ::2]   # stride 2 along X only
    np.testing.assert_array_equal(got, exp)
    # alternating extremes: deltas hit the full (width + 1)-bit range
    lo, hi = D.value_range(8)
    x = np.tile(np.array([lo, hi], dtype=np.int64), 4)[None, None, :].repeat(3, axis=0)
    w = rng.integers(-128, 128, (2, 3, 1, 3))
    np.testing.assert_array_equal(D.diffy_conv2d(x, w, 1, 1, width=8), ref_conv(x, w, 1, 1))


def test_diffy_conv2d_matches_the_conv_golden():
    rng = np.random.default_rng(RNG_SEED + 2)
    for c, k, s, p in itertools.product((1, 4, 16), (1, 3), (1, 2), (0, 1)):
        x = rng.integers(-(1 << 15), 1 << 15, (2, c, 8, 9))
        w = rng.integers(-(1 << 15), 1 << 15, (5, c, k, k))
        np.testing.assert_array_equal(D.diffy_conv2d(x, w, s, p),
                                      conv2d_direct_int(x, w, stride=s, padding=p))


def test_window_deltas_definition_and_range():
    rng = np.random.default_rng(RNG_SEED + 3)
    x = rng.integers(-(1 << 15), 1 << 15, (3, 6, 8))
    for kernel, stride, padding in [(3, 1, 1), (3, 2, 1), (1, 1, 0), (1, 2, 0), (2, 2, 0), (3, 2, 0)]:
        win = D.im2col_windows(x, kernel, stride, padding)
        d = D.window_deltas(x, kernel, stride, padding)
        np.testing.assert_array_equal(d[:, :, 0], win[:, :, 0])                 # first column raw
        np.testing.assert_array_equal(d[:, :, 1:], win[:, :, 1:] - win[:, :, :-1])
        # every delta (ox >= 1) is P(x) - P(x - stride) of the padded input
        di = D.input_deltas(x, stride, padding)
        oh, ow = d.shape[1:3]
        for oy, ox, r, s in itertools.product(range(oh), range(1, ow), range(kernel), range(kernel)):
            np.testing.assert_array_equal(d[:, oy, ox, r, s], di[:, oy * stride + r, ox * stride + s])
        if kernel <= stride:   # non-overlapping windows: both forms agree everywhere
            for oy, r, s in itertools.product(range(oh), range(kernel), range(kernel)):
                np.testing.assert_array_equal(d[:, oy, 0, r, s], di[:, oy * stride + r, s])
    # deltas of 16-bit data need 17 bits: the extremes are reached and checked
    lo, hi = D.value_range(16)
    x = np.array([[[lo, hi, lo, 0]]])
    d = D.window_deltas(x, 1)
    assert d.min() == -(2 ** 16 - 1) and d.max() == 2 ** 16 - 1
    assert (d.min(), d.max()) == D.delta_range(16)
    with pytest.raises(ValueError, match="16-bit two's complement"):
        D.check_values("d", d, 16)
    D.check_values("d", d, 16, delta=True)


# --------------------------------------------------------------------------
# the core term-serial rule


def test_brick_steps_hand_examples():
    # Brick of 4 lanes, term offsets:  A={0,2,5}  B={1}  C={}  D={3,4}
    lanes = [[0, 2, 5], [1], [], [3, 4]]
    # B=0, window [base, base]: only lanes holding the base offset advance,
    #   bases 0(A) 1(B) 2(A) 3(D) 4(D) 5(A)                               -> 6 steps
    assert D.brick_steps(lanes, 0) == 6
    # B=1, window [base, base+1]:
    #   base 0: A retires 0, B retires 1 (<=1), D's 3 waits  -> A={2,5} D={3,4}
    #   base 2: A retires 2, D retires 3                     -> A={5}   D={4}
    #   base 4: D retires 4, A retires 5 (<=5)               -> empty   -> 3 steps
    assert D.brick_steps(lanes, 1) == 3
    # B=2, window [base, base+3]:
    #   base 0: A 0, B 1, D 3 retire         -> A={2,5} D={4}
    #   base 2: A 2, D 4 (<=5) retire        -> A={5}
    #   base 5: A 5                          -> 3 steps (A has 3 terms: can't be fewer)
    assert D.brick_steps(lanes, 2) == 3
    # Window limit with B=2: lanes {0,1,2,3} and {7}
    #   bases 0,1,2,3 retire lane 0 one term each; 7 > 3+3 so lane 1 waits -> 5 steps
    #   with B=3 (window 8) lane 1's 7 goes with base 0                    -> 4 steps
    assert D.brick_steps([[0, 1, 2, 3], [7]], 2) == 5
    assert D.brick_steps([[0, 1, 2, 3], [7]], 3) == 4
    # B=0 on identical lanes: both retire together -> 2 steps
    assert D.brick_steps([[0, 1], [0, 1]], 0) == 2
    # order of offsets inside a lane does not matter
    assert D.brick_steps([[5, 0, 2], [1], [], [4, 3]], 1) == 3
    # all-zero brick costs 1 (published), or what the caller says
    assert D.brick_steps([[], [], []], 2) == 1
    assert D.brick_steps([[], []], 2, empty_cycles=0) == 0
    # the vectorised form agrees on these
    masks = np.array([[0b100101, 0b10, 0, 0b11000]])
    for b, exp in ((0, 6), (1, 3), (2, 3)):
        assert D.brick_steps_masks(masks, b).tolist() == [exp]
    assert D.brick_steps_masks(np.zeros((2, 3, 16), dtype=np.int64), 2).tolist() == [[1] * 3] * 2


def test_brick_steps_masks_matches_reference():
    rng = np.random.default_rng(RNG_SEED + 4)
    for b in range(5):
        for lanes in (1, 3, 16):
            # sparse random masks over 17 offsets, some all-zero bricks
            masks = rng.integers(0, 1 << 17, (60, lanes)) & rng.integers(0, 1 << 17, (60, lanes))
            masks[rng.random(60) < 0.1] = 0
            got = D.brick_steps_masks(masks, b)
            exp = [D.brick_steps([offsets_of(m) for m in row], b) for row in masks]
            assert got.tolist() == exp
            # never fewer steps than the busiest lane, never more than distinct offsets
            busiest = np.array([[len(offsets_of(m)) for m in row] for row in masks]).max(axis=1)
            distinct = np.array([len(offsets_of(np.bitwise_or.reduce(row))) for row in masks])
            assert np.all(got >= np.maximum(busiest, 1)) and np.all(got <= np.maximum(distinct, 1))


def test_combine_pallets_sync_modes():
    # 4 pallets x 2 window columns
    c = np.array([[4, 1], [1, 1], [1, 1], [1, 4]])
    # lockstep: 4 + 1 + 1 + 4
    assert D.combine_pallets(c, "windows") == 10
    # independent columns: max(4+1+1+1, 1+1+1+4)
    assert D.combine_pallets(c, "column") == 7
    # DNNsim column registers, R=1: after pallet t a column may not be <= the
    # slowest column's time after pallet t-1:
    #   t0 [4,1] end=[4]; t1 [5,2] -> col1 bumped to 5 -> [5,5]; t2 [6,6]; t3 [7,10]  -> 10
    assert D.combine_pallets(c, "windows", 1) == 10
    # R=2: t0 [4,1] end=[0,4]; t1 [5,2] floor 0, end=[4,5]; t2 [6,3] floor 4 -> [6,5],
    #   end=[5,6]; t3 [7,9] floor 5                                                  -> 9
    assert D.combine_pallets(c, "windows", 2) == 9


# --------------------------------------------------------------------------
# layer cycle models


def test_tiny_layer_hand_worked():
    # 2 channels x 1 row x 2 columns, 1x1 kernel, tile L=2 lanes, W=2 windows, B=0,
    # plain encoding.  ch0 = [1, 5], ch1 = [2, 6].
    x = np.array([[[1, 5]], [[2, 6]]])
    w = np.ones((1, 2, 1, 1), dtype=np.int64)
    tile = D.TileConfig(lanes=2, filters=1, windows=2, shifter_bits=0)
    # Pragmatic: window 0 = {1, 2}: offsets {0},{1} -> 2 steps;
    #            window 1 = {5, 6}: {0,2},{1,2} -> offsets 0,1,2 -> 3 steps; lockstep max -> 3
    assert D.pragmatic_cycles(x, w, tile=tile, encoding="plain") == 3
    # Diffy: window 0 raw -> 2 steps; window 1 deltas {4, 4}: {2},{2} -> 1 step; max -> 2
    assert D.diffy_cycles(x, w, tile=tile, encoding="plain") == 2
    # Stripes: layer precision = 3 bits (max 6), one pallet -> 3
    assert D.stripes_cycles(x, w, tile=tile) == 3
    # bit-parallel (1 window / cycle): 2 windows x 1 channel group
    assert D.bit_parallel_cycles(x, w, tile=tile) == 2


def test_bit_parallel_and_stripes_counts():
    rng = np.random.default_rng(RNG_SEED + 5)
    x = rng.integers(0, 1001, (20, 5, 6))
    x[0, 0, 0] = 1000                                        # 10 bits unsigned
    w = rng.integers(-5, 5, (20, 20, 3, 3))
    tile = D.TileConfig()                                    # 16 x 16 x 16, B = 2
    # 5 x 6 = 30 windows, 9 kernel positions, ceil(20/16) = 2 channel groups, 2 filter passes
    assert D.bit_parallel_cycles(x, w, 1, 1, tile=tile) == 30 * 9 * 2 * 2
    wide = D.TileConfig(bit_parallel_windows=16)
    assert D.bit_parallel_cycles(x, w, 1, 1, tile=wide) == 2 * 9 * 2 * 2
    # Stripes: ceil(30/16) = 2 window groups -> 36 pallets x 10 bits x 2 passes
    assert D.stripes_cycles(x, w, 1, 1, tile=tile) == 36 * 10 * 2
    assert D.stripes_cycles(x, w, 1, 1, tile=tile, precision=16) == 36 * 16 * 2
    assert D.stripes_cycles(x, w, 1, 1, tile=tile, precision="group") <= 36 * 10 * 2
    # two tiles share the filters: half the passes
    assert D.bit_parallel_cycles(x, w, 1, 1, tile=D.TileConfig(tiles=2)) == 30 * 9 * 2


def test_pragmatic_within_stripes_bound():
    rng = np.random.default_rng(RNG_SEED + 6)
    for c, k, s, p in [(16, 3, 1, 1), (20, 1, 1, 0), (8, 3, 2, 1)]:
        # ReLU-like activations: half zeros, 12-bit magnitudes
        x = np.maximum(rng.integers(-4095, 4096, (c, 9, 10)), 0)
        w = rng.integers(-8, 8, (4, c, k, k))
        stripes = D.stripes_cycles(x, w, s, p)
        for b in range(5):
            tile = D.TileConfig(shifter_bits=b)
            # plain terms sit at offsets < precision: a brick takes <= precision steps
            assert D.pragmatic_cycles(x, w, s, p, tile=tile, encoding="plain") <= stripes
        # the published configuration (B = 2, best encoding) is well inside too; not a
        # theorem (a CSD term can sit at offset == precision), hence "sensible cases"
        assert D.pragmatic_cycles(x, w, s, p) <= stripes


def test_sync_scopes_order():
    rng = np.random.default_rng(RNG_SEED + 7)
    x = rng.integers(0, 4096, (16, 8, 12))
    w = rng.integers(-8, 8, (16, 16, 3, 3))
    lock = D.diffy_cycles(x, w, 1, 1)
    regs = D.diffy_cycles(x, w, 1, 1, tile=D.TileConfig(column_registers=4))
    col = D.diffy_cycles(x, w, 1, 1, tile=D.TileConfig(sync="column"))
    assert col <= regs <= lock
    row = D.diffy_cycles(x, w, 1, 1, tile=D.TileConfig(row_aligned=True))
    assert row >= 1


def test_diffy_on_smooth_ramp_beats_raw():
    c, h, wd = 16, 10, 24
    cc, yy, xx = np.meshgrid(np.arange(c), np.arange(h), np.arange(wd), indexing="ij")
    x = 1000 * cc + 37 * yy + 5 * xx + 12345       # smooth ramp, 16-bit
    st = D.activation_stats(x)
    # raw values have many terms; deltas are all 5 (2 terms) except the first column
    assert st["delta_terms_per_activation"] < st["raw_terms_per_activation"]
    assert st["delta_terms_per_activation"] < 2.5
    w = np.ones((16, 16, 3, 3), dtype=np.int64)
    rep = D.layer_report(x, w, 1, 1)
    assert rep["cycles"]["diffy"] < rep["cycles"]["pragmatic"]
    assert rep["stats"]["window_delta_terms_per_activation"] < rep["stats"]["window_raw_terms_per_activation"]


def test_activation_stats_small():
    x = np.array([[[3, 3, 7, 0]]])
    st = D.activation_stats(x, width=8)
    # raw terms: 3 -> 2 (tie, plain), 3 -> 2, 7 -> 2 (8 - 1), 0 -> 0            = 6 / 4
    # deltas [3, 0, 4, -7]: 2, 0, 1, 2                                          = 5 / 4
    assert st["raw_terms_per_activation"] == 1.5
    assert st["delta_terms_per_activation"] == 1.25
    assert st["raw_zero_fraction"] == 0.25 and st["delta_zero_fraction"] == 0.25
    assert (st["delta_min"], st["delta_max"]) == (-7, 4)


def test_layer_report_structure():
    rng = np.random.default_rng(RNG_SEED + 8)
    x = rng.integers(0, 2000, (2, 8, 6, 6))
    w = rng.integers(-8, 8, (8, 8, 3, 3))
    rep = D.layer_report(x, w, 2, 1, D.TileConfig(lanes=8, filters=8, windows=4))
    cyc = rep["cycles"]
    assert set(cyc) == {"bit_parallel", "stripes", "pragmatic", "diffy"}
    assert all(isinstance(v, int) and v > 0 for v in cyc.values())
    for k in ("bit_parallel", "stripes", "pragmatic"):
        assert rep["speedup"][f"diffy_over_{k}"] == pytest.approx(cyc[k] / cyc["diffy"])
    assert rep["config"]["tile"]["windows"] == 4


# --------------------------------------------------------------------------
# validation


@pytest.mark.parametrize("bad", [7, 17, 0, -16])
def test_width_out_of_range(bad):
    with pytest.raises(ValueError, match=r"width must be in 8\.\.16"):
        D.value_range(bad)
    with pytest.raises(ValueError, match=r"width must be in 8\.\.16"):
        D.term_count([1, 2], bad)
    with pytest.raises(ValueError, match=r"width must be in 8\.\.16"):
        D.diffy_conv2d(np.zeros((1, 3, 3), int), np.zeros((1, 1, 1, 1), int), width=bad)


@pytest.mark.parametrize("bad", [16.0, "16", True, None])
def test_width_wrong_type(bad):
    with pytest.raises(TypeError, match="width must be an int"):
        D.check_width(bad)


@pytest.mark.parametrize("bad", [-1, 5])
def test_shifter_bits_out_of_range(bad):
    with pytest.raises(ValueError, match=r"shifter_bits must be in 0\.\.4"):
        D.brick_steps([[0]], bad)
    with pytest.raises(ValueError, match=r"shifter_bits must be in 0\.\.4"):
        D.brick_steps_masks([[1]], bad)
    with pytest.raises(ValueError, match=r"shifter_bits must be in 0\.\.4"):
        D.TileConfig(shifter_bits=bad)


@pytest.mark.parametrize("field", ["lanes", "filters", "windows", "tiles", "bit_parallel_windows"])
def test_tile_sizes_at_least_one(field):
    with pytest.raises(ValueError, match=f"{field} must be >= 1"):
        D.TileConfig(**{field: 0})
    with pytest.raises(TypeError, match=f"{field} must be an int"):
        D.TileConfig(**{field: 2.0})


def test_tile_other_fields():
    with pytest.raises(ValueError, match="sync must be one of"):
        D.TileConfig(sync="tile")
    with pytest.raises(ValueError, match="column_registers must be >= 0"):
        D.TileConfig(column_registers=-1)
    with pytest.raises(ValueError, match="column_registers applies to sync='windows'"):
        D.TileConfig(sync="column", column_registers=2)
    with pytest.raises(TypeError, match="tile must be a TileConfig"):
        D.diffy_cycles(np.zeros((1, 3, 3), int), np.zeros((1, 1, 1, 1), int), tile={"lanes": 4})


def test_values_out_of_range_for_width():
    with pytest.raises(ValueError, match=r"x has values in \[0, 128\], outside the 8-bit two's complement range \[-128, 127\]"):
        D.diffy_conv2d(np.array([[[0, 128]]]), np.ones((1, 1, 1, 1), int), width=8)
    with pytest.raises(ValueError, match=r"w has values .* outside the 8-bit"):
        D.diffy_conv2d(np.array([[[0, 1]]]), np.full((1, 1, 1, 1), -129), width=8)
    with pytest.raises(ValueError, match=r"outside the delta range of 8-bit values \[-255, 255\]"):
        D.term_count([256], 8, delta=True)
    with pytest.raises(ValueError, match=r"16-bit two's complement range \[-32768, 32767\]"):
        D.encode_terms(40000, 16)
    with pytest.raises(ValueError, match="x has values"):
        D.pragmatic_cycles(np.array([[[70000]]]), np.ones((1, 1, 1, 1), int))


def test_other_argument_errors():
    x = np.zeros((2, 4, 4), dtype=np.int64)
    w = np.zeros((1, 2, 3, 3), dtype=np.int64)
    with pytest.raises(TypeError, match="x must hold integers, got dtype float64"):
        D.diffy_conv2d(x.astype(float), w)
    with pytest.raises(TypeError, match="value must be an int"):
        D.plain_terms(1.5)
    with pytest.raises(ValueError, match="encoding must be one of"):
        D.term_count([1], 16, "booth")
    with pytest.raises(ValueError, match="stride must be >= 1"):
        D.diffy_conv2d(x, w, stride=0)
    with pytest.raises(ValueError, match="padding must be >= 0"):
        D.diffy_conv2d(x, w, padding=-1)
    with pytest.raises(ValueError, match="w has 2 input channels but x has 3"):
        D.diffy_conv2d(np.zeros((3, 4, 4), int), w)
    with pytest.raises(ValueError, match="x must have shape"):
        D.diffy_conv2d(np.zeros((4, 4), int), w)
    with pytest.raises(ValueError, match="w must have shape"):
        D.diffy_conv2d(x, np.zeros((2, 3, 3), int))
    with pytest.raises(ValueError, match=r"kernel must fit the padded input along H: .* got kernel 5"):
        D.diffy_conv2d(x, np.zeros((1, 2, 5, 5), int))
    with pytest.raises(ValueError, match=r"precision must be in 1\.\.16"):
        D.stripes_cycles(x, w, precision=17)
    with pytest.raises(ValueError, match="precision must be 'layer', 'group'"):
        D.stripes_cycles(x, w, precision="dynamic")
    with pytest.raises(ValueError, match="negative term offset"):
        D.brick_steps([[-1, 2]], 2)
    with pytest.raises(ValueError, match="masks must be non-negative"):
        D.brick_steps_masks([[-1]], 2)
    with pytest.raises(ValueError, match="empty_cycles must be >= 0"):
        D.brick_steps([[]], 2, empty_cycles=-1)
    with pytest.raises(ValueError, match=r"frac_bits must be in 0\.\.15"):
        D.quantize([0.5], 16, 16)


def test_quantize():
    q = D.quantize([0.5, -0.25, 1.5, 100.0, -100.0, 0.375], width=8, frac_bits=4)
    # 8, -4, 24, saturate 127, saturate -128, 6
    assert q.tolist() == [8, -4, 24, 127, -128, 6]
    assert D.quantize([2.5, 3.5], 8).tolist() == [2, 4]   # ties to even
