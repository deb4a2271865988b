"""Golden fixed-point DGC (docs/dgc.md section 2): hand-worked cases of every step, the
invariants of a step, an element-by-element reference in plain Python, the aggregator,
the host's commands and every argument check."""

import dataclasses
import math

import numpy as np
import pytest

from dnnhw.golden import dgc_fixed
from dnnhw.golden.dgc_fixed import (
    Command, SparsifierState, Status, aggregate, apply_update, clip_limit_for, clip_shift,
    key, plan_command, sample_size, saturate, sparse_bits, threshold_key,
)
from dnnhw.spec.dgc import (
    ADAPT_ROUNDS, KEY_MANTISSA_BITS, LOWER_BOUND, LR_FRAC, MAX_CLIP_SHIFT, MOMENTUM_FRAC,
    STATE_WIDTHS, UPPER_BOUND, key_count,
)


# --- an independent reference, element by element, from docs/dgc.md section 2 ------------

def ref_key(a):
    """Step 3 for one magnitude, with Python's bit_length."""
    if a == 0:
        return 0
    e = a.bit_length() - 1
    f = ((a << KEY_MANTISSA_BITS) >> e) & (2 ** KEY_MANTISSA_BITS - 1)
    return 1 + e * 2 ** KEY_MANTISSA_BITS + f


def ref_step(u, v, cmd, gradient, state_width):
    """Steps 1-6 on Python lists; returns (sent pairs, u, v, status tuple, H_all, H_s)."""
    u, v = [int(x) for x in u], [int(x) for x in v]
    g = [int(x) for x in gradient]
    n = cmd.length
    top = 2 ** (state_width - 1) - 1

    def sat(x):
        return max(-top, min(top, x))

    s = 0
    if cmd.clip:
        sumsq = 0
        for x in g:
            sumsq += x * x
        s = MAX_CLIP_SHIFT
        for t in range(MAX_CLIP_SHIFT + 1):
            if sumsq <= cmd.clip_limit * 4 ** t:
                s = t
                break
    if s > 0:
        g = [(x + (1 << (s - 1))) >> s for x in g]
    for i in range(n):
        mu = (cmd.momentum * u[i] + (1 << (MOMENTUM_FRAC - 1))) >> MOMENTUM_FRAC
        u[i] = sat(mu + g[i])
        v[i] = sat(v[i] + u[i])
    count = key_count(state_width)
    h_all, h_s = [0] * count, [0] * count
    for i in range(n):
        h_all[ref_key(abs(v[i]))] += 1
        if i >= cmd.sample_start and (i - cmd.sample_start) % cmd.sample_stride == 0:
            h_s[ref_key(abs(v[i]))] += 1

    def c(b):
        return sum(h_all[b:])

    def cs(b):
        return sum(h_s[b:])

    k, k_s = cmd.target, cmd.sample_target
    b = 1
    for j in range(1, count):
        if cs(j) >= k_s:
            b = j
    up = lambda j: UPPER_BOUND[1] * c(j) > UPPER_BOUND[0] * k         # noqa: E731
    down = lambda j: LOWER_BOUND[1] * c(j) < LOWER_BOUND[0] * k       # noqa: E731
    rounds = 0
    if up(b):
        while rounds < ADAPT_ROUNDS and b < count - 1 and up(b):
            b += 1
            rounds += 1
    elif down(b):
        while rounds < ADAPT_ROUNDS and b > 1 and down(b):
            b -= 1
            rounds += 1
    sent = []
    for i in range(n):
        if ref_key(abs(v[i])) >= b:
            sent.append((i, v[i]))
            u[i] = v[i] = 0
    return sent, u, v, (c(b), b, rounds, s), h_all, h_s


def random_command(rng, capacity, grad_width):
    n = int(rng.integers(1, capacity + 1))
    stride = int(rng.choice([1, 2, 3, 5, int(rng.integers(1, 2 ** 16))]))
    start = int(rng.integers(0, min(stride, n)))
    size = sample_size(n, start, stride)
    bits = capacity.bit_length() - 1
    return Command(
        length=n, momentum=int(rng.choice([0, 1 << 15, 58982, 65535,
                                           int(rng.integers(0, 2 ** 16))])),
        clip=int(rng.integers(0, 2)),
        clip_limit=int(rng.integers(0, 2 ** int(rng.integers(1, 2 * grad_width + bits + 1)))),
        sample_start=start, sample_stride=stride,
        target=int(rng.integers(1, n + 1)), sample_target=int(rng.integers(1, size + 1)))


@pytest.mark.parametrize("state_width,grad_width", [(12, 8), (12, 16), (13, 10), (16, 16),
                                                    (20, 12), (32, 16)])
def test_step_against_reference(state_width, grad_width):
    rng = np.random.default_rng(state_width * 100 + grad_width)
    for capacity in (16, 32, 64):
        state = SparsifierState(capacity=capacity, grad_width=grad_width,
                                state_width=state_width)
        # Random state past every length: the steps must leave it alone.
        top = 2 ** (state_width - 1) - 1
        state.u[:] = rng.integers(-top, top + 1, capacity)
        state.v[:] = rng.integers(-top, top + 1, capacity)
        for _ in range(12):
            cmd = random_command(rng, capacity, grad_width)
            half = 2 ** (grad_width - 1)
            scale = 2 ** int(rng.integers(0, grad_width))
            gradient = rng.integers(-scale, scale, cmd.length).clip(-half, half - 1)
            gradient[rng.random(cmd.length) < rng.random()] = 0
            if rng.random() < 0.2:
                gradient[0] = -half
            u0, v0 = state.u.copy(), state.v.copy()
            sent, u, v, status, h_all, h_s = ref_step(u0, v0, cmd, gradient, state_width)
            indices, values, got = state.step(cmd, gradient)
            assert indices.dtype == np.int64 and values.dtype == np.int64
            assert list(zip(indices.tolist(), values.tolist())) == sent
            assert (got.selected, got.threshold, got.rounds, got.shift) == status
            assert state.u.tolist() == u and state.v.tolist() == v
            assert state.last_h_all.tolist() == h_all
            assert state.last_h_sample.tolist() == h_s
            assert np.array_equal(state.u[cmd.length:], u0[cmd.length:])
            assert np.array_equal(state.v[cmd.length:], v0[cmd.length:])


# --- keys, saturation, the clip shift ------------------------------------------------------

def test_key_by_hand():
    # 1: e 0; 2: e 1, f 0; 3: e 1, f 2 (0b11 -> bits below the one, shifted to 2 bits: 10);
    # 4: e 2; 5: e 2, f 1; 7: e 2, f 3; 8: e 3; 2047 = 0b111_1111_1111: e 10, f 3.
    got = key(np.array([0, 1, 2, 3, 4, 5, 7, 8, 2047]), 12)
    assert got.dtype == np.int64
    assert got.tolist() == [0, 1, 5, 7, 9, 10, 12, 13, 44]
    assert key(2 ** 31 - 1, 32) == 1 + 30 * 4 + 3 == key_count(32) - 1
    assert key(np.array([[6, 9]]), 12).tolist() == [[1 + 8 + 2, 1 + 12 + 0]]


@pytest.mark.parametrize("state_width", list(STATE_WIDTHS))
def test_key_range_and_order(state_width):
    top = 2 ** (state_width - 1) - 1
    assert key(top, state_width) == key_count(state_width) - 1
    rng = np.random.default_rng(state_width)
    a = np.unique(np.concatenate([np.arange(min(top, 5000) + 1),
                                  rng.integers(0, top + 1, 2000), [top]]))
    got = key(a, state_width)
    assert got.tolist() == [ref_key(int(x)) for x in a]
    assert np.all(np.diff(got) >= 0) and got.min() == 0


def test_saturate_both_ends():
    x = [-10 ** 9, -2048, -2047, -1, 0, 2047, 2048, 10 ** 9]
    assert saturate(x, 12).tolist() == [-2047, -2047, -2047, -1, 0, 2047, 2047, 2047]
    assert saturate(np.array([-2 ** 62, 2 ** 62]), 63).tolist() == [1 - 2 ** 62, 2 ** 62 - 1]


@pytest.mark.parametrize("gradient,limit,shift", [
    ([3, 1], 10, 0),            # sumsq 10 = limit
    ([3, 1, 1], 10, 1),         # 11: one above
    ([6, 2], 10, 1),            # 40 = limit * 4
    ([6, 2, 1], 10, 2),         # 41: one above
    ([0, 0], 0, 0),             # 0 <= 0
    ([1], 0, MAX_CLIP_SHIFT),   # never fits: the largest shift
    ([2 ** 15], 1, MAX_CLIP_SHIFT),        # 4**15 = limit * 4**15 exactly
    ([2 ** 15, 1], 1, MAX_CLIP_SHIFT),     # one above, still the largest
    ([2 ** 14, 1], 1, MAX_CLIP_SHIFT),     # 4**14 + 1 > 4**14: needs 15
    ([2 ** 14], 1, 14),
    ([-(2 ** 40)] * 3, 2 ** 80, 1),        # 3 * 2**80: beyond int64, exact
    ([-(2 ** 40)] * 4, 2 ** 80, 1),
    ([-(2 ** 40)] * 5, 2 ** 80, 2),
])
def test_clip_shift_boundaries(gradient, limit, shift):
    assert clip_shift(np.array(gradient, dtype=np.int64), limit) == shift


def test_clip_shift_large_tensor_is_exact():
    g = np.full(2 ** 20, -32768, dtype=np.int64)       # sumsq 2**50
    assert clip_shift(g, 2 ** 50 // 4 ** 3) == 3
    assert clip_shift(g, 2 ** 50 // 4 ** 3 - 1) == 4
    g[0] = -32767                                      # 2**50 - 65535
    assert clip_shift(g, 2 ** 44 - 1) == 3


# --- the threshold key -------------------------------------------------------------------

@pytest.mark.parametrize("h_all,h_sample,k,k_s,expected", [
    # no adaptation: b0 = 5 (cs(5) = 2 >= 2, cs(6) = 0), c(5) = 6: 4.8 <= 6 <= 7.8
    ([3, 2, 0, 4, 0, 6, 0, 0], [1, 0, 0, 1, 0, 2, 0, 0], 6, 2, (5, 0)),
    # moving up: b0 = 3, c = 16, 6, 3 > 2.6 -> 4, 5, 6; c(6) = 1 stops
    ([0, 0, 0, 10, 3, 2, 1, 0], [0, 0, 0, 3, 0, 0, 0, 0], 2, 1, (6, 3)),
    # moving down: b0 = 4, c = 1, 1 < 2.4 -> 3, 2; c(2) = 3 stops
    ([0, 5, 2, 0, 1, 0, 0, 0], [0, 0, 0, 0, 1, 0, 0, 0], 3, 1, (2, 2)),
    # moving down to the bottom of the range: c(2) = 3 < 3.2 still, but b stops at 1
    ([0, 5, 2, 0, 1, 0, 0, 0], [0, 0, 0, 0, 1, 0, 0, 0], 4, 1, (1, 3)),
    # the 10-round cap, up: every c(b) = 10 > 1.3 from b0 = 1
    ([0, 1] + [0] * 17 + [10], [0, 1] + [0] * 18, 1, 1, (1 + ADAPT_ROUNDS, ADAPT_ROUNDS)),
    # the 10-round cap, down: c(b) = 1 < 8 from b0 = 19 down
    ([0, 10] + [0] * 17 + [1], [0] * 19 + [1], 10, 1, (19 - ADAPT_ROUNDS, ADAPT_ROUNDS)),
    # b0 falls back to 1: the sample is all zero keys; c(1) = 1 is on target
    ([5, 1, 0, 0, 0, 0, 0, 0], [5, 0, 0, 0, 0, 0, 0, 0], 1, 1, (1, 0)),
    # b0 falls back to 1: cs(1) = 1 < k_s = 2; c(1) = 3 > 2.6 -> up to 2 (c = 2)
    ([2, 1, 2, 0, 0, 0, 0, 0], [3, 1, 0, 0, 0, 0, 0, 0], 2, 2, (2, 1)),
    # moving up to the top of the range: b0 = 1, c(2..7) = 5 > 1.3, stops at key 7
    ([0, 1, 0, 0, 0, 0, 0, 5], [0, 1, 0, 0, 0, 0, 0, 0], 1, 1, (7, 6)),
    # b0 at the top key: too many above, but no key is higher
    ([0, 1, 0, 0, 0, 0, 0, 5], [0, 0, 0, 0, 0, 0, 0, 1], 1, 1, (7, 0)),
    # the bounds are strict: c = 13 for k = 10 (10 c = 13 k) and c = 8 (10 c = 8 k) stay
    ([0, 0, 0, 13, 0], [0, 0, 0, 1, 0], 10, 1, (3, 0)),
    ([2, 0, 0, 8, 0], [0, 0, 0, 1, 0], 10, 1, (3, 0)),
    ([0, 0, 1, 14, 0], [0, 0, 0, 1, 0], 10, 1, (4, 1)),
])
def test_threshold_key_by_hand(h_all, h_sample, k, k_s, expected):
    assert threshold_key(np.array(h_all), np.array(h_sample), target=k,
                         sample_target=k_s) == expected


# --- steps worked by hand ----------------------------------------------------------------

def test_step_by_hand():
    state = SparsifierState(capacity=16, grad_width=8, state_width=12)
    state.u[:7] = [0, 4, -3, 0, 1, 0, 7]
    state.v[:7] = [0, 0, 10, -2, 0, 0, 5]
    cmd = Command(length=6, momentum=1 << 15, clip=0, clip_limit=0, sample_start=0,
                  sample_stride=2, target=2, sample_target=1)
    indices, values, status = state.step(cmd, np.array([3, -1, 0, 0, 20, -5]))
    # mu = round half up of u / 2: 0, 2 (2.5), -1 (-1.5), 0, 1 (0.5), 0
    # u = mu + g = 3, 1, -1, 0, 21, -5; v = v + u = 3, 1, 9, -2, 21, -5
    # keys of |v|: 7, 1, 13, 5, 18, 10; sample (0, 2, 4): 7, 13, 18 -> b0 = 18, c = 1;
    # 10 * 1 < 8 * 2: down while c(b) = 1 (18 .. 14); c(13) = 2 stops: 5 rounds
    assert indices.tolist() == [2, 4] and values.tolist() == [9, 21]
    assert status == Status(selected=2, threshold=13, rounds=5, shift=0)
    assert state.u[:8].tolist() == [3, 1, 0, 0, 0, -5, 7, 0]
    assert state.v[:8].tolist() == [3, 1, 0, -2, 0, -5, 5, 0]
    assert state.last_h_all.sum() == 6 and state.last_h_sample.sum() == 3
    assert state.last_h_all[[1, 5, 7, 10, 13, 18]].tolist() == [1] * 6


def test_step_with_clip_by_hand():
    state = SparsifierState(capacity=16, grad_width=8, state_width=12)
    cmd = Command(length=3, momentum=0, clip=1, clip_limit=20, sample_start=0,
                  sample_stride=1, target=1, sample_target=1)
    # sumsq 158 > 20, > 80, <= 320: s = 2; (g + 2) >> 2 = 3, -2 (-1.75), 1 (1.25)
    indices, values, status = state.step(cmd, [10, -7, 3])
    assert indices.tolist() == [0] and values.tolist() == [3]
    assert status == Status(selected=1, threshold=7, rounds=0, shift=2)
    assert state.u[:3].tolist() == state.v[:3].tolist() == [0, -2, 1]


def test_momentum_rounds_half_up():
    state = SparsifierState(capacity=16, grad_width=8, state_width=12)
    state.u[:6] = [-3, -1, 1, 3, 0, -2]
    state.v[4] = 1000
    cmd = Command(length=6, momentum=1 << 15, clip=0, clip_limit=0, sample_start=0,
                  sample_stride=1, target=1, sample_target=1)
    indices, _, status = state.step(cmd, [0] * 6)
    # -1.5 -> -1, -0.5 -> 0, 0.5 -> 1, 1.5 -> 2, -1 exact; element 4 is the one sent
    assert indices.tolist() == [4] and status.rounds == 0
    assert state.u[:6].tolist() == [-1, 0, 1, 2, 0, -1]
    assert state.v[:6].tolist() == [-1, 0, 1, 2, 0, -1]
    state.u[:3] = [-2, 2, 0]
    state.v[:] = 0
    # momentum 0.75: -1.5 -> -1, 1.5 -> 2; element 2 (100) is the one sent
    indices, _, _ = state.step(dataclasses.replace(cmd, length=3, momentum=3 << 14),
                               [0, 0, 100])
    assert indices.tolist() == [2] and state.u[:3].tolist() == [-1, 2, 0]


def test_clip_shift_rounds_half_up():
    state = SparsifierState(capacity=16, grad_width=8, state_width=12)
    cmd = Command(length=6, momentum=0, clip=1, clip_limit=7, sample_start=0,
                  sample_stride=1, target=1, sample_target=1)
    # sumsq 9 + 1 + 1 + 9 + 4 + 4 = 28 <= 7 * 4: s = 1; (g + 1) >> 1
    _, values, status = state.step(cmd, [-3, -1, 1, 3, -2, 2])
    assert status.shift == 1 and values.tolist() == [2]
    assert state.v[:6].tolist() == [-1, 0, 1, 0, -1, 1]
    cmd = dataclasses.replace(cmd, length=2, clip_limit=3, target=2)
    state.u[:] = state.v[:] = 0
    # sumsq 36 + 9 = 45 > 3, > 12, <= 48: s = 2; -6 -> -1 (-1.5), 3 -> 1 (0.75);
    # both key 1: b0 = 1, c(1) = 2 is on target 2
    indices, values, status = state.step(cmd, [-6, 3])
    assert status == Status(selected=2, threshold=1, rounds=0, shift=2)
    assert indices.tolist() == [0, 1] and values.tolist() == [-1, 1]


def test_step_saturates_both_ends():
    state = SparsifierState(capacity=16, grad_width=16, state_width=12)
    state.v[:4] = [2000, -2000, 0, 0]
    cmd = Command(length=4, momentum=0, clip=0, clip_limit=0, sample_start=0,
                  sample_stride=1, target=3, sample_target=1)
    indices, values, status = state.step(cmd, [100, -100, 32767, -32768])
    # u = 100, -100, 2047, -2047; v = 2047 (2100), -2047 (-2100), 2047, -2047: all key 44
    assert indices.tolist() == [0, 1, 2, 3] and values.tolist() == [2047, -2047] * 2
    assert status == Status(selected=4, threshold=44, rounds=0, shift=0)


def test_step_selecting_nothing():
    state = SparsifierState(capacity=16, grad_width=8, state_width=12)
    cmd = Command(length=4, momentum=0, clip=0, clip_limit=0, sample_start=1,
                  sample_stride=2, target=1, sample_target=2)
    indices, values, status = state.step(cmd, [0, 0, 0, 0])
    assert indices.size == values.size == 0 and indices.dtype == np.int64
    assert status == Status(selected=0, threshold=1, rounds=0, shift=0)


def test_step_invariants():
    rng = np.random.default_rng(7)
    for state_width in (12, 17, 24, 32):
        state = SparsifierState(capacity=256, grad_width=12, state_width=state_width)
        for _ in range(20):
            cmd = random_command(rng, 256, 12)
            plan = plan_command(int(rng.integers(1, 257)), momentum=0.9,
                                keep=float(rng.choice([0.25, 0.0625, 0.01])),
                                sample_ratio=0.1, rng=rng)
            for cmd in (cmd, plan):
                before_u, before_v = state.u.copy(), state.v.copy()
                g = rng.integers(-2048, 2048, cmd.length)
                indices, values, status = state.step(cmd, g)
                n = cmd.length
                assert status.selected == len(indices) \
                    == state.last_h_all[status.threshold:].sum()
                assert 1 <= status.threshold < key_count(state_width)
                assert 0 <= status.rounds <= ADAPT_ROUNDS
                assert np.all(np.diff(indices) > 0) and (indices < n).all()
                assert np.all(state.u[indices] == 0) and np.all(state.v[indices] == 0)
                updated = state.v[:n].copy()
                updated[indices] = values
                chosen = key(np.abs(updated), state_width) >= status.threshold
                assert np.array_equal(np.flatnonzero(chosen), indices)
                assert state.last_h_all.sum() == n
                assert state.last_h_sample.sum() == cmd.sample_size
                assert np.array_equal(state.u[n:], before_u[n:])
                assert np.array_equal(state.v[n:], before_v[n:])


# --- the aggregate, the host -------------------------------------------------------------

def test_aggregate_by_hand():
    sparse = [([1, 4, 9], [5, -3, 7]), (np.array([4, 12]), np.array([10, 99])),
              ([1, 1], [2, 2]), ([], [])]
    agg, error = aggregate(10, sparse, capacity=16, value_width=12, workers=4)
    expected = [0] * 16
    expected[1], expected[4], expected[9] = 9, 7, 7       # 12 >= length: dropped
    assert agg.dtype == np.int64 and agg.tolist() == expected and error
    agg, error = aggregate(16, sparse, capacity=16, value_width=12, workers=4)
    assert agg[12] == 99 and not error
    agg, error = aggregate(1, [([0], [-2048]), ([0], [-2048])], capacity=16,
                           value_width=12, workers=2)
    assert agg[0] == -4096 and not error


def test_apply_update_rounding_and_saturation():
    weights = np.array([0, 0, 0, 0, 100, -100, -128, 127])
    agg = np.array([-1, 1, 3, -3, -300, 300, 0, 0, 55, 66])
    # lr 0.5: agg / 2 rounded half up: 0 (-0.5), 1 (0.5), 2 (1.5), -1 (-1.5), -150, 150
    got = apply_update(weights, agg, lr_q=1 << (LR_FRAC - 1), weight_width=8)
    assert got.tolist() == [0, -1, -2, 1, 127, -127, -127, 127]
    assert apply_update([5], [7], lr_q=0, weight_width=8).tolist() == [5]
    top = dgc_fixed.AGG_MAX                                # 2**35: exact, no overflow
    assert apply_update([0, 0], [top, -top], lr_q=65535, weight_width=32).tolist() == \
        [1 - 2 ** 31, 2 ** 31 - 1]
    assert apply_update([0, 0], [top, -top], lr_q=3, weight_width=32).tolist() == \
        [-3 * 2 ** 19, 3 * 2 ** 19]


def test_plan_command():
    rng = np.random.default_rng(3)
    cmd = plan_command(1000, momentum=0.9, keep=0.001, rng=np.random.default_rng(3))
    assert cmd == Command(length=1000, momentum=58982, clip=0, clip_limit=0,
                          sample_start=int(rng.integers(100)), sample_stride=100,
                          target=1, sample_target=1)
    cmd = plan_command(10, momentum=0.0, keep=0.25, sample_ratio=1, clip_limit=123,
                       rng=rng)
    assert (cmd.sample_stride, cmd.sample_start, cmd.target, cmd.sample_target) == \
        (1, 0, 3, 3)
    assert (cmd.clip, cmd.clip_limit, cmd.momentum) == (1, 123, 0)
    assert plan_command(5, momentum=0.99999999, keep=0.5, rng=rng).momentum == 65535
    # the product's float noise does not round k up: 100 * 0.07 = 7.000000000000001
    cmd = plan_command(100, momentum=0.5, keep=0.07, sample_ratio=1, rng=rng)
    assert cmd.target == cmd.sample_target == 7
    # a stride beyond the tensor is capped at its length, as in the float model
    cmd = plan_command(3, momentum=0.5, keep=0.9, sample_ratio=1e-9, rng=rng)
    assert cmd.sample_stride == 3 and cmd.sample_start <= 2
    assert cmd.target == 3 and cmd.sample_target == 1
    cmd = plan_command(100_000, momentum=0.5, keep=0.9, sample_ratio=1e-9, rng=rng)
    assert cmd.sample_stride == 65535
    for length in (1, 2, 7, 100, 1000, 2 ** 20):
        for keep in (0.25, 0.0625, 0.015625, 0.004, 0.001, 0.999):
            for ratio in (1.0, 0.5, 0.1, 0.01, 0.001):
                cmd = plan_command(length, momentum=0.9, keep=keep, sample_ratio=ratio,
                                   rng=rng)
                cmd.check(capacity=max(16, 1 << (length - 1).bit_length()), grad_width=8)
                assert cmd.target == min(length, max(1, math.ceil(length * keep - 1e-9)))
                size = cmd.sample_size
                assert cmd.sample_target == min(size, max(1, math.ceil(size * keep - 1e-9)))
                assert 0 <= cmd.sample_start < min(cmd.sample_stride, length)


def test_clip_limit_for():
    assert clip_limit_for(1.5, 2) == 36
    assert clip_limit_for(3.0, 4) == 2304
    assert clip_limit_for(0.1, 10) == 10485          # 102.4000000000000057 ** 2
    assert clip_limit_for(0, 8) == 0
    # exact: a float product would lose the trailing 1
    assert clip_limit_for(2.0 ** 27 + 1, 0) == 2 ** 54 + 2 ** 28 + 1


def test_sizes():
    assert sample_size(10, 3, 4) == 2 and sample_size(10, 0, 1) == 10
    assert sample_size(10, 9, 100) == 1 and sample_size(5, 5, 1) == 0
    assert Command(10, 0, 0, 0, 3, 4, 1, 1).sample_size == 2
    assert sparse_bits(0, capacity=16, state_width=12) == 16
    assert sparse_bits(1, capacity=16, state_width=12) == 16
    assert sparse_bits(5, capacity=16, state_width=12) == 80
    assert sparse_bits(3, capacity=2 ** 20, state_width=32) == 3 * 52


# --- argument checks ---------------------------------------------------------------------

GOOD = Command(length=10, momentum=0, clip=0, clip_limit=0, sample_start=1,
               sample_stride=4, target=2, sample_target=3)


@pytest.mark.parametrize("field,value,error,match", [
    ("length", 0, ValueError, r"length must be in 1\.\.16"),
    ("length", 17, ValueError, r"length must be in 1\.\.16"),
    ("length", 2.0, TypeError, "length must be an int"),
    ("momentum", -1, ValueError, r"momentum must be in 0\.\.65535"),
    ("momentum", 65536, ValueError, r"momentum must be in 0\.\.65535"),
    ("clip", 2, ValueError, r"clip must be in 0\.\.1"),
    ("clip", True, TypeError, "clip must be an int"),
    ("clip_limit", -1, ValueError, r"clip_limit must be in 0\.\.1048575"),
    ("clip_limit", 2 ** 20, ValueError, r"clip_limit must be in 0\.\.1048575"),
    ("sample_stride", 0, ValueError, r"sample_stride must be in 1\.\.65535"),
    ("sample_stride", 65536, ValueError, r"sample_stride must be in 1\.\.65535"),
    ("sample_start", 4, ValueError, r"sample_start must be in 0\.\.3"),
    ("sample_start", -1, ValueError, r"sample_start must be in 0\.\.3"),
    ("target", 0, ValueError, r"target must be in 1\.\.10"),
    ("target", 11, ValueError, r"target must be in 1\.\.10"),
    ("sample_target", 0, ValueError, r"sample_target must be in 1\.\.3"),
    ("sample_target", 4, ValueError, r"sample_target must be in 1\.\.3"),
])
def test_command_errors(field, value, error, match):
    GOOD.check(capacity=16, grad_width=8)
    bad = dataclasses.replace(GOOD, **{field: value})
    with pytest.raises(error, match=match):
        bad.check(capacity=16, grad_width=8)
    state = SparsifierState(capacity=16, grad_width=8, state_width=12)
    with pytest.raises(error, match=match):
        state.step(bad, [1] * 10)


def test_command_edges_are_legal():
    for fields in [{"length": 16}, {"momentum": 65535}, {"clip": 1},
                   {"clip_limit": 2 ** 20 - 1}, {"sample_stride": 65535, "sample_target": 1},
                   {"sample_start": 3, "sample_target": 2}, {"target": 10},
                   {"sample_target": 1}]:
        dataclasses.replace(GOOD, **fields).check(capacity=16, grad_width=8)
    # start below the stride but not below the length
    with pytest.raises(ValueError, match=r"sample_start must be in 0\.\.1"):
        Command(2, 0, 0, 0, 2, 4, 1, 1).check(capacity=16, grad_width=8)


def test_step_errors_leave_the_state_alone():
    state = SparsifierState(capacity=16, grad_width=8, state_width=12)
    state.u[:] = 5
    cmd = dataclasses.replace(GOOD, length=3, sample_start=0, target=1, sample_target=1)
    for gradient, error, match in [
            ([1.0, 2.0, 3.0], TypeError, "gradient must hold integers"),
            ([[1, 2, 3]], ValueError, "gradient must be a 1-D array"),
            ([1, 2], ValueError, "gradient must have length 3"),
            ([1, 2, 128], ValueError, r"gradient must hold values in -128\.\.127"),
            ([1, 2, -129], ValueError, r"gradient must hold values in -128\.\.127")]:
        with pytest.raises(error, match=match):
            state.step(cmd, gradient)
    with pytest.raises(TypeError, match="command must be a Command"):
        state.step((3, 0, 0, 0, 0, 4, 1, 1), [1, 2, 3])
    assert (state.u == 5).all() and (state.v == 0).all()
    state.v = state.v.astype(np.int32)
    with pytest.raises(TypeError, match="v must be an int64 array of 16"):
        state.step(cmd, [1, 2, 3])
    state.v = np.zeros(16, dtype=np.int64)
    state.u[3] = 2048
    with pytest.raises(ValueError, match=r"u must hold values in -2047\.\.2047"):
        state.step(cmd, [1, 2, 3])
    state.u[3] = 0
    state.step(cmd, [-128, 0, 127])                       # the full signed range is legal


@pytest.mark.parametrize("call,error,match", [
    (lambda: SparsifierState(capacity=15, grad_width=8, state_width=12), ValueError,
     r"capacity must be a power of two in 2\*\*4\.\.2\*\*20"),
    (lambda: SparsifierState(capacity=8, grad_width=8, state_width=12), ValueError,
     "capacity must be a power of two"),
    (lambda: SparsifierState(capacity=2 ** 21, grad_width=8, state_width=12), ValueError,
     "capacity must be a power of two"),
    (lambda: SparsifierState(capacity="16", grad_width=8, state_width=12), TypeError,
     "capacity must be an int"),
    (lambda: SparsifierState(capacity=16, grad_width=7, state_width=12), ValueError,
     r"grad_width must be in 8\.\.16"),
    (lambda: SparsifierState(capacity=16, grad_width=17, state_width=12), ValueError,
     r"grad_width must be in 8\.\.16"),
    (lambda: SparsifierState(capacity=16, grad_width=8, state_width=11), ValueError,
     r"state_width must be in 12\.\.32"),
    (lambda: SparsifierState(capacity=16, grad_width=8, state_width=33), ValueError,
     r"state_width must be in 12\.\.32"),
    (lambda: GOOD.check(capacity=16, grad_width=20), ValueError, "grad_width must be in"),
    (lambda: GOOD.check(capacity=100, grad_width=8), ValueError, "capacity must be"),
    (lambda: key([-1], 12), ValueError, r"magnitude must hold values in 0\.\.2047"),
    (lambda: key([2048], 12), ValueError, r"magnitude must hold values in 0\.\.2047"),
    (lambda: key([1.0], 12), TypeError, "magnitude must hold integers"),
    (lambda: key([1], 11), ValueError, r"state_width must be in 12\.\.32"),
    (lambda: saturate([1], 1), ValueError, r"width must be in 2\.\.63"),
    (lambda: saturate([1], 64), ValueError, r"width must be in 2\.\.63"),
    (lambda: saturate([0.5], 12), TypeError, "x must hold integers"),
    (lambda: clip_shift([1], -1), ValueError, "clip_limit must be >= 0"),
    (lambda: clip_shift([[1]], 1), ValueError, "gradient must be a 1-D array"),
    (lambda: clip_shift([0.5], 1), TypeError, "gradient must hold integers"),
    (lambda: threshold_key([1], [1], target=1, sample_target=1), ValueError,
     "h_all must have at least 2 keys"),
    (lambda: threshold_key([1, -1], [0, 1], target=1, sample_target=1), ValueError,
     "h_all must hold values >= 0"),
    (lambda: threshold_key([1, 1], [1, 1, 0], target=1, sample_target=1), ValueError,
     "h_sample must have 2 keys"),
    (lambda: threshold_key([1, 1], [0, -1], target=1, sample_target=1), ValueError,
     "h_sample must hold values"),
    (lambda: threshold_key([1, 1], [0, 1], target=0, sample_target=1), ValueError,
     r"target must be in 1\.\.2"),
    (lambda: threshold_key([1, 1], [0, 1], target=3, sample_target=1), ValueError,
     r"target must be in 1\.\.2"),
    (lambda: threshold_key([1, 1], [0, 1], target=1, sample_target=2), ValueError,
     r"sample_target must be in 1\.\.1"),
    (lambda: aggregate(4, [([], [])], capacity=12, value_width=12, workers=1),
     ValueError, "capacity must be a power of two"),
    (lambda: aggregate(0, [([], [])], capacity=16, value_width=12, workers=1),
     ValueError, r"length must be in 1\.\.16"),
    (lambda: aggregate(17, [([], [])], capacity=16, value_width=12, workers=1),
     ValueError, r"length must be in 1\.\.16"),
    (lambda: aggregate(4, [([], [])], capacity=16, value_width=11, workers=1),
     ValueError, r"value_width must be in 12\.\.32"),
    (lambda: aggregate(4, [], capacity=16, value_width=12, workers=0),
     ValueError, r"workers must be in 1\.\.16"),
    (lambda: aggregate(4, [([], [])] * 17, capacity=16, value_width=12, workers=17),
     ValueError, r"workers must be in 1\.\.16"),
    (lambda: aggregate(4, [([], [])], capacity=16, value_width=12, workers=2),
     ValueError, "sparse must hold 2"),
    (lambda: aggregate(4, [[1, 2, 3]], capacity=16, value_width=12, workers=1),
     ValueError, r"sparse\[0\] must be an \(indices, values\) pair"),
    (lambda: aggregate(4, [([-1], [1])], capacity=16, value_width=12, workers=1),
     ValueError, r"sparse\[0\] indices must hold values in 0\.\.15"),
    (lambda: aggregate(4, [([], []), ([16], [1])], capacity=16, value_width=12, workers=2),
     ValueError, r"sparse\[1\] indices must hold values in 0\.\.15"),
    (lambda: aggregate(4, [([1], [2048])], capacity=16, value_width=12, workers=1),
     ValueError, r"sparse\[0\] values must hold values in -2048\.\.2047"),
    (lambda: aggregate(4, [([1], [-2049])], capacity=16, value_width=12, workers=1),
     ValueError, r"sparse\[0\] values must hold values in -2048\.\.2047"),
    (lambda: aggregate(4, [([1], [1.5])], capacity=16, value_width=12, workers=1),
     TypeError, r"sparse\[0\] values must hold integers"),
    (lambda: aggregate(4, [([1, 2], [1])], capacity=16, value_width=12, workers=1),
     ValueError, r"sparse\[0\] has 2 indices and 1 values"),
    (lambda: apply_update([1], [1], lr_q=1, weight_width=7), ValueError,
     r"weight_width must be in 8\.\.32"),
    (lambda: apply_update([1], [1], lr_q=1, weight_width=33), ValueError,
     r"weight_width must be in 8\.\.32"),
    (lambda: apply_update([128], [1], lr_q=1, weight_width=8), ValueError,
     r"weights must hold values in -128\.\.127"),
    (lambda: apply_update([1, 2], [1], lr_q=1, weight_width=8), ValueError,
     "agg must have at least 2 entries"),
    (lambda: apply_update([1], [2 ** 35 + 1], lr_q=1, weight_width=8), ValueError,
     r"agg must hold values in -34359738368\.\.34359738368"),
    (lambda: apply_update([1], [1], lr_q=-1, weight_width=8), ValueError,
     r"lr_q must be in 0\.\.65535"),
    (lambda: apply_update([1], [1], lr_q=65536, weight_width=8), ValueError,
     r"lr_q must be in 0\.\.65535"),
    (lambda: plan_command(10, momentum=0.9, keep=0, rng=np.random.default_rng()),
     ValueError, r"keep must be in \(0, 1\)"),
    (lambda: plan_command(10, momentum=0.9, keep=1, rng=np.random.default_rng()),
     ValueError, r"keep must be in \(0, 1\)"),
    (lambda: plan_command(10, momentum=0.9, keep=float("nan"), rng=np.random.default_rng()),
     ValueError, r"keep must be in \(0, 1\)"),
    (lambda: plan_command(10, momentum=0.9, keep="a", rng=np.random.default_rng()),
     TypeError, "keep must be a real number"),
    (lambda: plan_command(10, momentum=1.0, keep=0.1, rng=np.random.default_rng()),
     ValueError, r"momentum must be in \[0, 1\)"),
    (lambda: plan_command(10, momentum=-0.1, keep=0.1, rng=np.random.default_rng()),
     ValueError, r"momentum must be in \[0, 1\)"),
    (lambda: plan_command(10, momentum=0.9, keep=0.1, sample_ratio=0,
                          rng=np.random.default_rng()),
     ValueError, r"sample_ratio must be in \(0, 1\]"),
    (lambda: plan_command(10, momentum=0.9, keep=0.1, sample_ratio=1.5,
                          rng=np.random.default_rng()),
     ValueError, r"sample_ratio must be in \(0, 1\]"),
    (lambda: plan_command(0, momentum=0.9, keep=0.1, rng=np.random.default_rng()),
     ValueError, "length must be >= 1"),
    (lambda: plan_command(10, momentum=0.9, keep=0.1, clip_limit=-1,
                          rng=np.random.default_rng()),
     ValueError, "clip_limit must be >= 0"),
    (lambda: plan_command(10, momentum=0.9, keep=0.1, rng=None),
     TypeError, "rng must be a numpy.random.Generator"),
    (lambda: clip_limit_for(-1.0, 4), ValueError, r"norm must be in \[0, inf\)"),
    (lambda: clip_limit_for(float("inf"), 4), ValueError, r"norm must be in \[0, inf\)"),
    (lambda: clip_limit_for(1.0, -1), ValueError, "scale_bits must be >= 0"),
    (lambda: sparse_bits(-1, capacity=16, state_width=12), ValueError,
     r"count must be in 0\.\.16"),
    (lambda: sparse_bits(17, capacity=16, state_width=12), ValueError,
     r"count must be in 0\.\.16"),
    (lambda: sparse_bits(1, capacity=10, state_width=12), ValueError,
     "capacity must be a power of two"),
    (lambda: sparse_bits(1, capacity=16, state_width=40), ValueError,
     r"state_width must be in 12\.\.32"),
    (lambda: sample_size(0, 0, 1), ValueError, "length must be >= 1"),
    (lambda: sample_size(4, -1, 1), ValueError, "start must be >= 0"),
    (lambda: sample_size(4, 0, 0), ValueError, "stride must be >= 1"),
])
def test_argument_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
