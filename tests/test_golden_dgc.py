"""The float DGC golden model (``dnnhw.golden.dgc``, docs/dgc.md section 1): the authors'
sampled threshold on hand cases (every branch), momentum correction and factor masking,
clipping, the warm-up, the wire bytes, the aggregate, and every argument check."""

import math
import struct

import numpy as np
import pytest

from dnnhw.golden import dgc


# -- the threshold -------------------------------------------------------------------------

def test_target_and_sample():
    assert dgc.selection_target(1, 0.001) == 1            # at least one element
    assert dgc.selection_target(3000, 0.001) == 3
    assert dgc.selection_target(3001, 0.001) == 4
    assert dgc.selection_target(100, 0.25) == 25
    assert list(dgc.sample_indices(10, 0.25, 3)) == [3, 7]
    # The stride (1 / sample_ratio = 100) is capped at n, so the sample is never empty.
    assert list(dgc.sample_indices(16, 0.01, 15)) == [15]
    assert list(dgc.sample_indices(250, 0.01, 40)) == [40, 140, 240]


def test_threshold_accepts_a_count_within_bounds():
    abs_v = np.arange(100, dtype=float)                   # 0 .. 99, distinct
    t = dgc.sampled_threshold(abs_v, keep=0.05, sample_ratio=1.0, start=0)
    assert t == dgc.Threshold(threshold=95.0, target=5, sample_target=5, sample_size=100,
                              selected=5, rounds=1, exit="accept")


def test_threshold_takes_the_exact_top_k_above_1_3_k():
    # k = 10; the sample (every 10th element from 0) holds only small values, so its top
    # element (k_s = 1) lets through far more than 1.3 k: the rule takes the exact top 10.
    abs_v = np.linspace(1.0, 2.0, 1000)
    abs_v[::10] = np.linspace(0.0, 0.5, 100)
    t = dgc.sampled_threshold(abs_v, keep=0.01, sample_ratio=0.1, start=0)
    assert (t.sample_size, t.sample_target) == (100, 1)
    assert t.exit == "top-k" and t.rounds == 1
    assert t.threshold == np.sort(abs_v)[-10]
    assert t.selected == 10 == np.count_nonzero(abs_v >= t.threshold)


def test_threshold_times_0_8_below_0_8_k():
    # k = 10. The sample's largest is 1.0 (one element): 1 < 8 selected, so the threshold
    # becomes 0.8, which lets through that element and nine at 0.85: 10, accepted.
    abs_v = np.full(1000, 0.1)
    abs_v[0] = 1.0
    abs_v[[1, 2, 3, 4, 5, 6, 7, 8, 9]] = 0.85           # outside the sample (0, 10, 20, ...)
    t = dgc.sampled_threshold(abs_v, keep=0.01, sample_ratio=0.1, start=0)
    assert t.exit == "accept" and t.rounds == 2
    assert t.threshold == pytest.approx(0.8)
    assert t.selected == 10


def test_threshold_stops_after_ten_rounds():
    # One element stands out; the rest are tiny: ten rounds of 0.8 (to 0.107) do not
    # reach them, so the rule stops with the threshold multiplied ten times.
    abs_v = np.full(1000, 1e-6)
    abs_v[0] = 1.0
    t = dgc.sampled_threshold(abs_v, keep=0.01, sample_ratio=0.1, start=0)
    assert t.exit == "cap" and t.rounds == dgc.MAX_ROUNDS == 10
    assert t.threshold == pytest.approx(0.8 ** 10)
    assert t.selected == 1
    # A smaller cap stops sooner.
    t3 = dgc.sampled_threshold(abs_v, keep=0.01, sample_ratio=0.1, start=0, rounds=3)
    assert (t3.exit, t3.rounds, t3.threshold) == ("cap", 3, pytest.approx(0.8 ** 3))


def test_threshold_never_selects_zeros():
    # Fewer non-zeros than k: the k-th largest is 0, yet no zero is selected.
    abs_v = np.zeros(50)
    abs_v[[3, 7]] = [2.0, 1.0]
    t = dgc.sampled_threshold(abs_v, keep=0.2, sample_ratio=1.0, start=0)
    assert t.selected == 2
    all_zero = dgc.sampled_threshold(np.zeros(20), keep=0.1, sample_ratio=1.0, start=0)
    assert all_zero.selected == 0 and all_zero.exit == "cap"


def test_threshold_draws_its_start_from_rng():
    abs_v = np.arange(1000, dtype=float)
    a = dgc.sampled_threshold(abs_v, 0.01, 0.01, np.random.default_rng(5))
    b = dgc.sampled_threshold(abs_v, 0.01, 0.01, np.random.default_rng(5))
    assert a == b
    start = int(np.random.default_rng(5).integers(100))
    assert a == dgc.sampled_threshold(abs_v, 0.01, 0.01, start=start)


# -- one worker ----------------------------------------------------------------------------

def _step(worker, g, **kw):
    kw.setdefault("rng", np.random.default_rng(0))
    return worker.step(g, **kw)


def test_momentum_correction_and_factor_masking():
    rng = np.random.default_rng(1)
    w = dgc.Worker(200)
    for _ in range(5):
        g = rng.standard_normal(200)
        u0, v0 = w.u.copy(), w.v.copy()
        indices, values = _step(w, g, momentum=0.9, keep=0.05, rng=rng)
        u1 = 0.9 * u0 + g
        v1 = v0 + u1
        assert np.array_equal(values, v1[indices])           # sent: v before masking
        assert np.all(w.v[indices] == 0) and np.all(w.u[indices] == 0)
        rest = np.setdiff1d(np.arange(200), indices)
        assert np.allclose(w.u[rest], u1[rest]) and np.allclose(w.v[rest], v1[rest])
        assert np.array_equal(indices, np.sort(indices))
        # The sent ones are the largest |v|.
        assert np.abs(v1[indices]).min() >= np.abs(v1[rest]).max()
        assert w.last.selected == indices.size


def test_without_factor_masking_u_is_kept():
    rng = np.random.default_rng(2)
    w = dgc.Worker(100)
    g = rng.standard_normal(100)
    indices, _ = _step(w, g, momentum=0.9, keep=0.1, factor_masking=False)
    assert indices.size and np.allclose(w.u, g)              # u = 0.9 * 0 + g, unmasked
    assert np.all(w.v[indices] == 0)


def test_without_momentum_correction_v_accumulates_the_gradient():
    rng = np.random.default_rng(3)
    w = dgc.Worker(100)
    g1, g2 = rng.standard_normal(100), rng.standard_normal(100)
    i1, _ = _step(w, g1, keep=0.1, momentum_correction=False)
    i2, values = _step(w, g2, keep=0.1, momentum_correction=False)
    expected = g1.copy()
    expected[i1] = 0
    expected += g2
    assert np.allclose(values, expected[i2])
    assert np.all(w.u == 0)


def test_nothing_is_lost_without_momentum():
    # With m = 0: everything sent plus what is left equals the sum of the gradients.
    rng = np.random.default_rng(4)
    w = dgc.Worker(300)
    total_g, total_sent = np.zeros(300), np.zeros(300)
    for _ in range(40):
        g = rng.standard_normal(300)
        indices, values = _step(w, g, momentum=0.0, keep=0.01, rng=rng)
        total_g += g
        total_sent[indices] += values
    assert np.allclose(total_sent + w.v, total_g)
    assert w.steps == 40


def test_clipping():
    g = np.array([3.0, 4.0])                                  # norm 5
    assert np.allclose(dgc.clip_by_norm(g, 1.0), g / 5, rtol=1e-5)
    assert np.array_equal(dgc.clip_by_norm(g, 10.0), g)       # below the norm: unchanged
    assert np.linalg.norm(dgc.clip_by_norm(g, 2.5)) == pytest.approx(2.5, rel=1e-6)
    assert dgc.local_clip_norm(2.0, 4) == pytest.approx(1.0)
    w = dgc.Worker(2)
    indices, values = _step(w, g, momentum=0.9, keep=0.5, clip_norm=1.0, sample_ratio=1.0)
    assert list(indices) == [1] and values[0] == pytest.approx(0.8, rel=1e-5)
    assert w.v[0] == pytest.approx(0.6, rel=1e-5)


def test_warmup_schedule():
    assert [dgc.keep_ratio(e) for e in range(6)] == [0.25, 0.0625, 0.015625, 0.004,
                                                     0.001, 0.001]
    sparsity = [100 * (1 - dgc.keep_ratio(e)) for e in range(5)]
    assert sparsity == pytest.approx([75, 93.75, 98.4375, 99.6, 99.9])
    assert dgc.keep_ratio(100) == dgc.KEEP == 0.001
    assert dgc.keep_ratio(0, warmup=False) == 0.001
    assert dgc.keep_ratio(2, keep=0.01) == 0.015625
    assert dgc.keep_ratio(7, keep=0.01) == 0.01


# -- the wire and the aggregate ------------------------------------------------------------

def test_encode_is_the_exact_wire_format():
    data = dgc.encode(np.array([0, 5, 70000]), np.array([1.5, -2.0, 0.25]))
    assert data == struct.pack("<I3I3f", 3, 0, 5, 70000, 1.5, -2.0, 0.25)
    assert len(data) == dgc.sparse_bytes(3) == 28
    assert dgc.encode([], []) == b"\0\0\0\0" and dgc.sparse_bytes(0) == 4
    assert dgc.dense_bytes(9930) == 39720


def test_decode_round_trip():
    rng = np.random.default_rng(6)
    indices = np.sort(rng.choice(10000, 37, replace=False))
    values = rng.standard_normal(37)
    data = dgc.encode(indices, values)
    assert len(data) == 4 + 8 * 37
    back_i, back_v = dgc.decode(data)
    assert np.array_equal(back_i, indices)
    assert np.array_equal(back_v, values.astype(np.float32))
    assert back_v.dtype == np.float32
    i0, v0 = dgc.decode(dgc.encode([], []))
    assert i0.size == v0.size == 0


def test_aggregate_and_sgd():
    m1 = (np.array([0, 3]), np.array([1.0, 2.0]))
    m2 = dgc.encode(np.array([3, 4]), np.array([0.5, -1.0]))
    total = dgc.aggregate(5, [m1, m2])
    assert np.array_equal(total, [1.0, 0, 0, 2.5, -1.0])
    w = dgc.sgd_step(np.ones(5), total, 0.1)
    assert np.allclose(w, [0.9, 1, 1, 0.75, 1.1])


# -- the argument checks -------------------------------------------------------------------

@pytest.mark.parametrize("call,error,match", [
    (lambda: dgc.Worker(4).step(np.array([]), rng=np.random.default_rng()), ValueError,
     "g must have at least one element"),
    (lambda: dgc.Worker(4).step(np.ones(3), rng=np.random.default_rng()), ValueError,
     r"g must have n = 4 elements, got 3"),
    (lambda: dgc.Worker(2).step([1.0, np.nan], rng=np.random.default_rng()), ValueError,
     "g must be finite"),
    (lambda: dgc.Worker(4).step(np.ones(4)), TypeError,
     "rng must be a numpy.random.Generator"),
    (lambda: dgc.Worker(0), ValueError, "n must be >= 1, got 0"),
    (lambda: dgc.Worker(4).step(np.ones(4), keep=0.0, rng=np.random.default_rng()),
     ValueError, r"keep must be in \(0, 1\), got 0.0"),
    (lambda: dgc.Worker(4).step(np.ones(4), keep=1.0, rng=np.random.default_rng()),
     ValueError, r"keep must be in \(0, 1\), got 1.0"),
    (lambda: dgc.Worker(4).step(np.ones(4), momentum=1.0, rng=np.random.default_rng()),
     ValueError, r"momentum must be in \[0, 1\), got 1.0"),
    (lambda: dgc.Worker(4).step(np.ones(4), sample_ratio=0, rng=np.random.default_rng()),
     ValueError, r"sample_ratio must be in \(0, 1\]"),
    (lambda: dgc.Worker(4).step(np.ones(4), clip_norm=0.0, rng=np.random.default_rng()),
     ValueError, r"clip_norm must be in \(0, inf\)"),
    (lambda: dgc.sampled_threshold(np.array([]), 0.1, 0.5, start=0), ValueError,
     "abs_v must have at least one element"),
    (lambda: dgc.sampled_threshold(np.array([-1.0, 2.0]), 0.1, 0.5, start=0), ValueError,
     "abs_v must hold finite magnitudes"),
    (lambda: dgc.sampled_threshold(np.ones(10), 1.5, 0.5, start=0), ValueError,
     r"keep must be in \(0, 1\), got 1.5"),
    (lambda: dgc.sampled_threshold(np.ones(10), 0.1, 1.5, start=0), ValueError,
     r"sample_ratio must be in \(0, 1\], got 1.5"),
    (lambda: dgc.sampled_threshold(np.ones(10), 0.1, 0.5, start=2), ValueError,
     r"start must be in 0..1, got 2"),
    (lambda: dgc.sampled_threshold(np.ones(10), 0.1, 0.5, start=0, rounds=0), ValueError,
     r"rounds must be in 1..100"),
    (lambda: dgc.sampled_threshold(np.ones(10), 0.1, 0.5), TypeError,
     "rng must be a numpy.random.Generator"),
    (lambda: dgc.sampled_threshold(np.ones(10), "0.1", 0.5, start=0), TypeError,
     "keep must be a number"),
    (lambda: dgc.keep_ratio(-1), ValueError, "epoch must be >= 0, got -1"),
    (lambda: dgc.keep_ratio(0, keep=2.0), ValueError, r"keep must be in \(0, 1\)"),
    (lambda: dgc.local_clip_norm(1.0, 0), ValueError, "workers must be >= 1, got 0"),
    (lambda: dgc.local_clip_norm(-1.0, 4), ValueError, r"thr_g must be in \(0, inf\)"),
    (lambda: dgc.clip_by_norm(np.array([]), 1.0), ValueError,
     "g must have at least one element"),
    (lambda: dgc.selection_target(0, 0.1), ValueError, "n must be >= 1, got 0"),
    (lambda: dgc.sparse_bytes(-1), ValueError, "count must be >= 0, got -1"),
    (lambda: dgc.dense_bytes(0), ValueError, "n must be >= 1, got 0"),
    (lambda: dgc.encode([1, 2], [1.0]), ValueError,
     "indices and values must have the same length, got 2 and 1"),
    (lambda: dgc.encode([-1], [1.0]), ValueError, r"indices must be in 0..2\*\*32 - 1"),
    (lambda: dgc.encode([0.5], [1.0]), TypeError, "indices must hold integers"),
    (lambda: dgc.decode(b"\1\0"), ValueError, "data must hold at least the 4-byte count"),
    (lambda: dgc.decode(dgc.encode([1, 2], [1.0, 2.0])[:-1]), ValueError,
     "data has 19 bytes; a count of 2 needs 20"),
    (lambda: dgc.aggregate(4, [([0, 4], [1.0, 1.0])]), ValueError,
     r"message 0: indices must be in 0..3, got 0..4"),
    (lambda: dgc.aggregate(0, []), ValueError, "n must be >= 1, got 0"),
    (lambda: dgc.sgd_step(np.ones(3), np.ones(2), 0.1), ValueError,
     "update must have 3 elements"),
    (lambda: dgc.sgd_step(np.ones(3), np.ones(3), -0.1), ValueError,
     r"lr must be in \[0, inf\)"),
])
def test_errors_name_the_parameter(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_float_noise_in_the_ratios_is_handled():
    assert math.ceil(100 * 0.07) == 8            # 7.000000000000001: the noise rounded away
    assert dgc.selection_target(100, 0.07) == 7
    t = dgc.sampled_threshold(np.arange(100, dtype=float), 0.07, 1.0, start=0)
    assert t.target == 7 and t.sample_target == 7 and t.selected == 7
