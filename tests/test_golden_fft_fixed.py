"""Golden fixed-point FFT (docs/fft.md section 2): the twiddle ROM against the formula, a
frame worked by hand stage by stage, a sample-by-sample reference in plain Python ints,
error bounds against numpy.fft, the inverse, saturation and every argument check.

Error bounds (complex modulus, per bin), derived from section 2
-----------------------------------------------------------------
Write stage ``s`` as the exact linear map ``T_s`` (``(a + b) / 2`` and
``(a - b) / 2 * W`` with the exact twiddle ``W``) plus an error ``e_s``. With ``h =
sqrt(2) / 2`` (a complex rounding of at most 1/2 per part) and ``q = 2 ** -F / sqrt(2)``
(``|W_q - W|``, the ROM's quantization, at most ``2 ** -(F + 1)`` per part):

- ``u = rnd(a + b, 1)`` is ``(a + b) / 2 + delta`` with ``delta`` in ``[0, 1/2]`` per
  part: ``|e| <= h``;
- ``rnd(v * W_q, F) = (v - delta) * W + rho + v * (W_q - W) + delta * W``: ``|e| <= 2 h
  + |v| q`` with ``|v| <= R_s + h`` if the inputs have ``|x| <= R_s``;
- and ``R_{s+1} = (R_s + h) (1 + q) + h`` bounds the modulus after the stage.

Each ``T_t`` maps ``|.| <= r`` into ``|.| <= r`` (every output is half a sum or a
difference times a unit twiddle), so the error after the last stage is at most
``B = sum_s (2 h + (R_s + h) q)``. If every ``R_s < M - 1`` nothing can saturate: with
inputs in the disc of radius ``M / 2`` that holds for every legal configuration
(:func:`test_radius_half_never_saturates_in_any_legal_configuration`).

The inverse with every shift 0 after the forward with every shift 1: the exact inverse
stages are ``sqrt(2)`` times unitary and add only product roundings, ``|e'_s| <= h +
|v| q``, so ``rms(x_rt - x) <= sqrt(n) rms(E_f) + sum_s 2 ** ((L - 1 - s) / 2) e'_s``
with ``E_f`` the forward's error; per sample ``|x_rt - x| <= n max|E_f| + sum_s
2 ** (L - 1 - s) e'_s``. (The ``sqrt(n)`` is real: the forward's rounding errors come
back multiplied by the unscaled inverse; the half-up rounding's bias, ~+0.5 LSB per part
in every bin, comes back as ~0.7 n in sample 0: 730 for n = 1024.)
"""

import math
import time

import numpy as np
import pytest

from dnnhw.golden import fft_fixed
from dnnhw.golden.fft_fixed import bit_reverse, bit_reversed_order, fft, stage, twiddles
from dnnhw.spec.fft import POINTS, TWIDDLE_WIDTHS, WIDTHS

H = math.sqrt(2) / 2


# --- an independent reference, sample by sample, in plain Python ints -------------------

def ref_twiddle(k, n, twiddle_width, inverse):
    f = twiddle_width - 2
    angle = 2 * math.pi * k / n
    sine = math.sin(angle) if inverse else -math.sin(angle)
    return math.floor(math.cos(angle) * 2 ** f + 0.5), math.floor(sine * 2 ** f + 0.5)


def ref_fft(frame, n, width, twiddle_width, inverse, shifts):
    """docs/fft.md section 2 on one frame of (re, im) int pairs, loop by loop; returns
    (natural-order list of pairs, overflow, per-stage outputs)."""
    m, f = 2 ** (width - 1), twiddle_width - 2
    flags = []

    def rnd(x, k):
        return (x + 2 ** (k - 1)) >> k if k else x

    def sat(x):
        y = min(max(x, -m), m - 1)
        flags.append(y != x)
        return y

    x = [tuple(int(p) for p in z) for z in frame]
    stages = []
    for s in range(n.bit_length() - 1):
        d, sh = n >> (s + 1), shifts[s]
        out = list(x)
        for base in range(0, n, 2 * d):
            for j in range(d):
                (ar, ai), (br, bi) = x[base + j], x[base + j + d]
                u = [rnd(ar + br, sh), rnd(ai + bi, sh)]
                v = [rnd(ar - br, sh), rnd(ai - bi, sh)]
                u, v = [sat(p) for p in u], [sat(p) for p in v]
                c, sn = ref_twiddle(j << s, n, twiddle_width, inverse)
                re = sat(rnd(v[0] * c - v[1] * sn, f))
                im = sat(rnd(v[0] * sn + v[1] * c, f))
                out[base + j], out[base + j + d] = tuple(u), (re, im)
        x = out
        stages.append(out)
    bits = n.bit_length() - 1
    natural = [x[int(format(k, f"0{bits}b")[::-1], 2)] for k in range(n)]
    return natural, any(flags), stages


def as_complex(y):
    return y[..., 0] + 1j * y[..., 1]


def disc(rng, frames, n, radius):
    """Integer complex samples uniform in the disc of ``radius`` (truncated toward 0, so
    every one is inside)."""
    r = radius * np.sqrt(rng.random((frames, n)))
    z = r * np.exp(2j * np.pi * rng.random((frames, n)))
    return np.trunc(z.real) + 1j * np.trunc(z.imag)


def forward_bound(n, width, twiddle_width, radius):
    """(B, max R_s) of the module docstring for inputs with ``|x| <= radius``."""
    q = 2.0 ** -(twiddle_width - 2) / math.sqrt(2)
    big_r, bound, peak = radius, 0.0, radius
    for _ in range(n.bit_length() - 1):
        bound += 2 * H + (big_r + H) * q
        big_r = (big_r + H) * (1 + q) + H
        peak = max(peak, big_r)
    return bound, peak


# --- the twiddle ROM ---------------------------------------------------------------------

@pytest.mark.parametrize("n", POINTS)
def test_twiddles_match_the_formula_exactly(n):
    for tw in TWIDDLE_WIDTHS:
        f = tw - 2
        for inverse in (False, True):
            rom = twiddles(n, tw, inverse=inverse)
            assert rom.shape == (n // 2, 2) and rom.dtype == np.int64
            assert tuple(rom[0]) == (2 ** f, 0)
            assert rom.tolist() == [list(ref_twiddle(k, n, tw, inverse))
                                    for k in range(n // 2)]
            k = np.arange(n // 2)
            assert np.all(np.abs(rom[:, 0] / 2 ** f - np.cos(2 * np.pi * k / n))
                          <= 0.5 / 2 ** f)
            sign = 1 if inverse else -1
            assert np.all(np.abs(rom[:, 1] / 2 ** f - sign * np.sin(2 * np.pi * k / n))
                          <= 0.5 / 2 ** f)
            assert np.abs(rom).max() <= 2 ** f          # fits twiddle_width bits


def test_twiddles_inverse_is_the_conjugate_and_far_from_rounding_ties():
    for n in POINTS:
        for tw in TWIDDLE_WIDTHS:
            fwd, inv = twiddles(n, tw), twiddles(n, tw, True)
            assert np.array_equal(fwd[:, 0], inv[:, 0])
            # floor(-x + .5) == -floor(x + .5) unless x + .5 is an integer (a tie): none
            # occur (sines of 2 pi k / n are 0, +-1 or irrational), and no scaled value
            # is near a tie, so any float evaluation of the formula gives this ROM.
            assert np.array_equal(inv[:, 1], -fwd[:, 1])
            scaled = np.sin(2 * np.pi * np.arange(n // 2) / n) * 2.0 ** (tw - 2) + 0.5
            assert np.abs(scaled - np.round(scaled)).min() > 1e-4


def test_twiddles_worked_by_hand():
    # F = 6: cos(pi/4) * 64 = 45.25 -> 45; -sin(pi/4) * 64 = -45.25 -> floor(-44.75) = -45
    assert twiddles(8, 8).tolist() == [[64, 0], [45, -45], [0, -64], [-45, -45]]
    assert twiddles(8, 8, inverse=True).tolist() == [[64, 0], [45, 45], [0, 64], [-45, 45]]


def test_bit_reversed_order():
    assert bit_reversed_order(8).tolist() == [0, 4, 2, 6, 1, 5, 3, 7]
    for n in (1, 2, 16, 4096):
        order = bit_reversed_order(n)
        assert np.array_equal(order[order], np.arange(n))
    frames = np.arange(3 * 8 * 2).reshape(3, 8, 2)
    assert np.array_equal(bit_reverse(frames, 8), frames[:, [0, 4, 2, 6, 1, 5, 3, 7], :])
    assert bit_reverse(list(range(8)), 8).tolist() == [0, 4, 2, 6, 1, 5, 3, 7]
    with pytest.raises(ValueError, match="power of two"):
        bit_reversed_order(12)
    with pytest.raises(ValueError, match="8 elements"):
        bit_reverse(np.zeros((4, 2)), 8)


# --- a frame worked by hand --------------------------------------------------------------

# n = 8, width 8 (M = 128), twiddle_width 8 (F = 6, ROM above), forward, shifts 0b101
# (stages 0 and 2 halve, stage 1 does not).
HAND_X = [(5, 1), (-3, 2), (7, -4), (0, 6), (-1, -1), (2, -5), (4, 0), (-6, 3)]
HAND_STAGES = [
    # s = 0, D = 4, shift 1, W(j):
    #  j=0: a+b = (4, 0) -> u = (2, 0); a-b = (6, 2) -> v = (3, 1); * (64, 0) -> (3, 1)
    #  j=1: a+b = (-1, -3) -> (0, -1); a-b = (-5, 7) -> v = (-2, 4); * (45, -45):
    #       re = rnd(-90 + 180, 6) = 122 >> 6 = 1, im = rnd(90 + 180, 6) = 302 >> 6 = 4
    #  j=2: (11, -4) -> (6, -2); v = (2, -2) * (0, -64): re = rnd(-128) = -96 >> 6 = -2,
    #       im = rnd(-128) = -2
    #  j=3: (-6, 9) -> (-3, 5); v = (3, 2) * (-45, -45): re = rnd(-135 + 90) = -13 >> 6
    #       = -1, im = rnd(-135 - 90) = -193 >> 6 = -4
    [(2, 0), (0, -1), (6, -2), (-3, 5), (3, 1), (1, 4), (-2, -2), (-1, -4)],
    # s = 1, D = 2, shift 0, W(0) and W(2) = (0, -64):
    #  block 0: j=0: u = (8, -2), v = (-4, 2) -> (-4, 2); j=1: u = (-3, 4),
    #           v = (3, -6) -> (rnd(-384), rnd(-192)) = (-6, -3)
    #  block 1: j=0: u = (1, -1), v = (5, 3); j=1: u = (0, 0), v = (2, 8) -> (8, -2)
    [(8, -2), (-3, 4), (-4, 2), (-6, -3), (1, -1), (0, 0), (5, 3), (8, -2)],
    # s = 2, D = 1, shift 1, W(0): (8,-2),(-3,4): u = rnd((5, 2)) = (3, 1),
    #  v = rnd((11, -6)) = (6, -3); (-4,2),(-6,-3): (-5, 0), (1, 3); (1,-1),(0,0):
    #  (1, 0), (1, 0); (5,3),(8,-2): (7, 1), rnd((-3, 5)) = (-1, 3)
    [(3, 1), (6, -3), (-5, 0), (1, 3), (1, 0), (1, 0), (7, 1), (-1, 3)],
]
# Natural order: bin k is at position bitrev(k) = 0, 4, 2, 6, 1, 5, 3, 7.
HAND_Y = [(3, 1), (1, 0), (-5, 0), (7, 1), (6, -3), (1, 0), (1, 3), (-1, 3)]


def test_a_frame_worked_by_hand():
    frames = np.array(HAND_X)
    for s, shift in enumerate([1, 0, 1]):
        frames, overflow = stage(frames, s, n=8, width=8, twiddle_width=8, inverse=False,
                                 shift=shift)
        assert frames.tolist() == [list(p) for p in HAND_STAGES[s]], f"stage {s}"
        assert overflow is False
    for shifts in (0b101, [1, 0, 1], (1, 0, 1), np.array([1, 0, 1])):
        y, overflow = fft(HAND_X, n=8, width=8, twiddle_width=8, shifts=shifts)
        assert y.tolist() == [list(p) for p in HAND_Y] and overflow is False
    natural, overflow, stages = ref_fft(HAND_X, 8, 8, 8, False, [1, 0, 1])
    assert stages == HAND_STAGES and natural == HAND_Y and not overflow
    # The same frame as complex input; and close to DFT / 4 (two halving stages).
    xc = np.array([complex(*p) for p in HAND_X])
    y, _ = fft(xc, n=8, width=8, twiddle_width=8, shifts=0b101)
    assert y.tolist() == [list(p) for p in HAND_Y]
    assert np.abs(as_complex(y) - np.fft.fft(xc) / 4).max() < 2


def test_full_scale_difference_saturates_before_the_multiplier():
    # With shift 1, a - b = 127 - (-128) = 255 gives rnd(255, 1) = 128 = M: clamped to
    # 127 (and flagged) before the product, so the multiplier sees width bits.
    x = np.zeros((8, 2), dtype=np.int64)
    x[1], x[5] = (127, 0), (-128, 0)           # j = 1 of stage 0: W(1) = (45, -45)
    out, overflow = stage(x, 0, n=8, width=8, twiddle_width=8, inverse=False, shift=1)
    # u = rnd(-1, 1) = 0; re = rnd(127 * 45, 6) = (5715 + 32) >> 6 = 89, im = -89
    assert out[1].tolist() == [0, 0] and out[5].tolist() == [89, -89]
    assert overflow is True
    x = np.zeros((8, 2), dtype=np.int64)
    x[0], x[4] = (126, 0), (-128, 0)           # 254 halves to 127 exactly: no saturation
    out, overflow = stage(x, 0, n=8, width=8, twiddle_width=8, inverse=False, shift=1)
    assert out[4].tolist() == [127, 0] and overflow is False


# --- against the reference, bit for bit --------------------------------------------------

@pytest.mark.parametrize("n", [8, 16, 32, 64])
def test_matches_the_python_reference_bit_for_bit(n):
    rng = np.random.default_rng(n)
    stages = n.bit_length() - 1
    for trial in range(12):
        width = int(rng.choice([8, 9, 12, 16, 24]))
        tw = int(rng.choice([8, 11, 16, 18]))
        inverse = bool(trial % 2)
        shifts = [int(b) for b in rng.integers(0, 2, stages)]
        m = 2 ** (width - 1)
        # Full-scale data, with the extremes over-represented, so that saturation (and
        # the clamped M - 1 - (-M) difference) happens in some trials.
        x = rng.integers(-m, m, (3, n, 2))
        x[rng.random((3, n, 2)) < 0.2] = -m
        x[rng.random((3, n, 2)) < 0.2] = m - 1
        y, overflow = fft(x, n=n, width=width, twiddle_width=tw, inverse=inverse,
                          shifts=shifts)
        flags = []
        for frame, got in zip(x, y):
            natural, over, _ = ref_fft(frame, n, width, tw, inverse, shifts)
            assert got.tolist() == [list(p) for p in natural], (width, tw, shifts)
            flags.append(over)
        assert overflow is any(flags)
        # Per stage too: stage() chained then bit_reverse() is fft().
        frames = x
        for s, shift in enumerate(shifts):
            frames, _ = stage(frames, s, n=n, width=width, twiddle_width=tw,
                              inverse=inverse, shift=shift)
        assert np.array_equal(bit_reverse(frames, n), y)


def test_batch_shapes_and_overflow_in_any_frame():
    rng = np.random.default_rng(1)
    x = rng.integers(-12, 13, (2, 3, 16, 2))   # |part| <= 16 * 24 + rounding < 511
    y, overflow = fft(x, n=16, width=10, twiddle_width=12, shifts=0)
    assert y.shape == (2, 3, 16, 2) and y.dtype == np.int64
    for i in range(2):
        for j in range(3):
            yi, oi = fft(x[i, j], n=16, width=10, twiddle_width=12, shifts=0)
            assert np.array_equal(yi, y[i, j])
    assert overflow is False
    x[1, 2, 0] = (511, 511)                    # one frame of six saturates
    _, overflow = fft(x, n=16, width=10, twiddle_width=12, shifts=0)
    assert overflow is True
    y, overflow = fft(np.zeros((0, 16, 2), dtype=np.int32), n=16, width=10,
                      twiddle_width=12)
    assert y.shape == (0, 16, 2) and overflow is False


# --- against numpy.fft -------------------------------------------------------------------

@pytest.mark.parametrize("n", [8, 64, 256, 1024])
@pytest.mark.parametrize("width", [10, 16, 18])
def test_forward_is_dft_over_n_within_the_derived_bound(n, width):
    m, tw = 2 ** (width - 1), 18
    rng = np.random.default_rng(n * width)
    x = disc(rng, 16, n, m / 2)
    y, overflow = fft(x, n=n, width=width, twiddle_width=tw)
    assert overflow is False
    exact = np.fft.fft(x) / n
    err = np.abs(as_complex(y) - exact)
    bound, _ = forward_bound(n, width, tw, m / 2)
    assert err.max() <= bound
    # Typical errors are far below the worst case (B = 4.3 .. 21): measured max 1.9
    # (n = 8) .. 4.1 (n = 1024), rms 0.8 .. 1.0 LSB, of which a bias of ~+0.5 LSB per
    # part (round half up), for these sizes.
    assert err.max() <= 6 and np.sqrt(np.mean(err ** 2)) <= 1.3
    # round(DFT / n) is within B + 1/2 per part.
    assert np.abs(y - np.stack([np.round(exact.real), np.round(exact.imag)], -1)).max() \
        <= bound + 0.5


def test_sqnr_rises_with_width():
    n, tw = 256, 18
    rng = np.random.default_rng(7)
    sqnr = {}
    for width in (10, 12, 16, 18):
        m = 2 ** (width - 1)
        x = disc(rng, 32, n, m / 2)
        y, overflow = fft(x, n=n, width=width, twiddle_width=tw)
        assert not overflow
        exact = np.fft.fft(x) / n
        sqnr[width] = 10 * np.log10(np.mean(np.abs(exact) ** 2)
                                    / np.mean(np.abs(as_complex(y) - exact) ** 2))
    # The noise stays ~1 LSB while the signal doubles per bit: ~6 dB per bit (measured
    # 21, 33, 57, 69 dB).
    for lo, hi in ((10, 12), (12, 16), (16, 18)):
        assert sqnr[hi] - sqnr[lo] >= 5 * (hi - lo)
        assert sqnr[hi] - sqnr[lo] <= 7 * (hi - lo)
    assert sqnr[16] > 55


def test_twiddle_width_limits_sqnr():
    n, width = 256, 24
    rng = np.random.default_rng(8)
    x = disc(rng, 8, n, 2 ** 22)
    exact = np.fft.fft(x) / n
    sqnr = []
    for tw in (8, 12, 18):
        y, _ = fft(x, n=n, width=width, twiddle_width=tw)
        sqnr.append(10 * np.log10(np.mean(np.abs(exact) ** 2)
                                  / np.mean(np.abs(as_complex(y) - exact) ** 2)))
    assert sqnr[0] + 15 < sqnr[1] < sqnr[2]


@pytest.mark.parametrize("n", [8, 16, 64, 1024])
def test_inverse_after_forward_returns_the_input(n):
    width, tw = 16, 18
    m, stages = 2 ** (width - 1), n.bit_length() - 1
    rng = np.random.default_rng(n + 3)
    x = disc(rng, 8, n, m / 4)
    y, over_f = fft(x, n=n, width=width, twiddle_width=tw)
    back, over_i = fft(y, n=n, width=width, twiddle_width=tw, inverse=True, shifts=0)
    assert not over_f and not over_i
    # The inverse of the exact spectrum is the input: numpy agrees on the conjugate sign.
    assert np.allclose(np.fft.ifft(np.fft.fft(x)), x)
    err = np.abs(as_complex(back) - x)
    e_f = np.abs(as_complex(y) - np.fft.fft(x) / n)
    q = 2.0 ** -(tw - 2) / math.sqrt(2)
    e_i = H + m * q                            # |v| <= M in the inverse
    rms_bound = (np.sqrt(n) * np.sqrt(np.mean(e_f ** 2))
                 + sum(2 ** ((stages - 1 - s) / 2) for s in range(stages)) * e_i)
    max_bound = n * e_f.max() + sum(2 ** (stages - 1 - s) for s in range(stages)) * e_i
    assert np.sqrt(np.mean(err ** 2)) <= rms_bound
    assert err.max() <= max_bound
    # Measured rms 2.4 (n = 8), 8 (64), 34 (1024), max 6.4 .. 765 (sample 0): the
    # forward's ~1 LSB of error per bin comes back ~sqrt(n) times, its bias n times.
    assert np.sqrt(np.mean(err ** 2)) <= 1.5 * np.sqrt(n) + 1


def test_exact_round_trip_of_an_impulse():
    for n in (8, 256, 4096):
        width = 24
        x = np.zeros((n, 2), dtype=np.int64)
        x[0] = (3 * n, -5 * n)                     # DFT / n = 3 - 5j in every bin, exactly
        y, overflow = fft(x, n=n, width=width, twiddle_width=18)
        assert not overflow and np.all(y == [3, -5])
        back, overflow = fft(y, n=n, width=width, twiddle_width=18, inverse=True, shifts=0)
        assert not overflow and np.array_equal(back, x)


def test_an_inverse_with_halving_of_a_tone():
    # A single bin k of amplitude A: the inverse (all halving) gives A e^{+2 pi i kt/n}/n.
    n, width, tw = 64, 16, 18
    spec = np.zeros(n, dtype=complex)
    spec[5] = 2 ** 14
    y, overflow = fft(spec, n=n, width=width, twiddle_width=tw, inverse=True)
    expect = 2 ** 14 / n * np.exp(2j * np.pi * 5 * np.arange(n) / n)
    assert not overflow
    assert np.abs(as_complex(y) - expect).max() <= forward_bound(n, width, tw, 2 ** 14)[0]
    y, _ = fft(spec, n=n, width=width, twiddle_width=tw)       # forward: e^{-...}
    assert np.abs(as_complex(y) - np.conj(expect)).max() <= 6


# --- saturation --------------------------------------------------------------------------

@pytest.mark.parametrize("width", [8, 16, 24])
def test_full_scale_without_shifts_overflows(width):
    m, n = 2 ** (width - 1), 64
    x = np.full((n, 2), m - 1)
    y, overflow = fft(x, n=n, width=width, twiddle_width=16, shifts=0)
    assert overflow is True
    assert y.min() >= -m and y.max() <= m - 1
    assert tuple(y[0]) == (m - 1, m - 1)            # the DC bin clamps at +full scale
    x = np.full((n, 2), -m)
    y, overflow = fft(x, n=n, width=width, twiddle_width=16, shifts=0)
    assert overflow is True and tuple(y[0]) == (-m, -m)
    # A random full-scale frame overflows too (stage 0's sums already do).
    rng = np.random.default_rng(width)
    _, overflow = fft(rng.integers(-m, m, (4, n, 2)), n=n, width=width, twiddle_width=16,
                      shifts=0)
    assert overflow is True


@pytest.mark.parametrize("j, a, b, shift, out_a, out_b", [
    (0, (100, 0), (100, 0), 0, (127, 0), (0, 0)),          # the sum saturates
    (0, (100, 0), (-100, 0), 0, (0, 0), (127, 0)),         # the difference does
    (0, (-100, 0), (100, 0), 0, (0, 0), (-128, 0)),
    # the product does: (127 + 127j) * (45 - 45j) / 64 = 178.6 -> 127
    (1, (127, 127), (0, 0), 0, (127, 127), (127, 0)),
    (1, (127, 127), (0, 0), 1, (64, 64), (90, 0)),         # halved, it fits
])
def test_each_saturation_sets_overflow(j, a, b, shift, out_a, out_b):
    x = np.zeros((8, 2), dtype=np.int64)
    x[j], x[j + 4] = a, b
    out, overflow = stage(x, 0, n=8, width=8, twiddle_width=8, inverse=False, shift=shift)
    assert tuple(out[j]) == out_a and tuple(out[j + 4]) == out_b
    assert overflow is (shift == 0)
    _, over, stages = ref_fft(x, 8, 8, 8, False, [shift, 1, 1])
    assert stages[0][j] == out_a and stages[0][j + 4] == out_b


def test_an_impulse_at_full_scale_fits_without_shifts():
    # A value reaching -M or M - 1 is not an overflow: only a change is.
    for value in (-128, 127):
        x = np.zeros((16, 2), dtype=np.int64)
        x[0] = (value, value)
        y, overflow = fft(x, n=16, width=8, twiddle_width=8, shifts=0)
        assert overflow is False and np.all(y == value)


def test_radius_half_never_saturates_in_any_legal_configuration():
    for n in POINTS:
        for width in WIDTHS:
            for tw in TWIDDLE_WIDTHS:
                m = 2 ** (width - 1)
                _, peak = forward_bound(n, width, tw, m / 2)
                assert peak < m - 1, (n, width, tw, peak)


@pytest.mark.parametrize("n, width, tw, inverse", [
    (4096, 8, 8, False), (4096, 8, 8, True), (1024, 9, 10, False), (8, 8, 8, True),
    (256, 24, 18, False), (2048, 12, 8, True)])
def test_random_inputs_in_radius_half_with_shifts_do_not_overflow(n, width, tw, inverse):
    m = 2 ** (width - 1)
    rng = np.random.default_rng(n + width + tw)
    x = disc(rng, 4, n, m / 2)
    # the extreme points of the disc too
    x[0, :8] = (m // 2) * np.exp(2j * np.pi * np.arange(8) / 8)
    x[0, :8] = np.trunc(x[0, :8].real) + 1j * np.trunc(x[0, :8].imag)
    _, overflow = fft(x, n=n, width=width, twiddle_width=tw, inverse=inverse)
    assert overflow is False


# --- argument checks ---------------------------------------------------------------------

GOOD = dict(n=8, width=8, twiddle_width=8)
X8 = np.zeros((8, 2), dtype=np.int64)


@pytest.mark.parametrize("changes, error, message", [
    (dict(n=12), ValueError, r"n must be a power of two in 8\.\.4096, got 12"),
    (dict(n=4), ValueError, r"n must be a power of two in 8\.\.4096, got 4"),
    (dict(n=8192), ValueError, r"n must be a power of two in 8\.\.4096"),
    (dict(n=8.0), TypeError, r"n must be an int"),
    (dict(n=True), TypeError, r"n must be an int"),
    (dict(width=7), ValueError, r"width must be in 8\.\.24, got 7"),
    (dict(width=25), ValueError, r"width must be in 8\.\.24, got 25"),
    (dict(width="8"), TypeError, r"width must be an int"),
    (dict(twiddle_width=19), ValueError, r"twiddle_width must be in 8\.\.18, got 19"),
    (dict(twiddle_width=7), ValueError, r"twiddle_width must be in 8\.\.18, got 7"),
    (dict(inverse=1), TypeError, r"inverse must be a bool"),
    (dict(shifts=[1, 1]), ValueError, r"shifts must have log2\(n\) = 3 values.*got 2"),
    (dict(shifts=[1, 1, 1, 1]), ValueError, r"shifts must have log2\(n\) = 3 values"),
    (dict(shifts=[1, 2, 1]), ValueError, r"shifts\[1\] must be in 0\.\.1, got 2"),
    (dict(shifts=[1, -1, 1]), ValueError, r"shifts\[1\] must be in 0\.\.1, got -1"),
    (dict(shifts=[1, 0.5, 1]), TypeError, r"shifts\[1\] must be an int"),
    (dict(shifts=8), ValueError, r"shifts must be in 0\.\.7, got 8"),
    (dict(shifts=-1), ValueError, r"shifts must be in 0\.\.7, got -1"),
    (dict(shifts=True), TypeError, r"shifts must be None, an int mask in 0\.\.7"),
    (dict(shifts="101"), TypeError, r"shifts must be None, an int mask"),
    (dict(shifts=1.0), TypeError, r"shifts must be None, an int mask"),
])
def test_fft_parameter_errors(changes, error, message):
    with pytest.raises(error, match=message):
        fft(X8, **{**GOOD, **changes})


@pytest.mark.parametrize("x, error, message", [
    (np.full((8, 2), 128), ValueError, r"x must hold values in -128\.\.127 \(signed 8 "
                                       r"bits\), got 128\.\.128"),
    (np.full((8, 2), -129), ValueError, r"x must hold values in -128\.\.127"),
    (np.full(8, 128 + 0j), ValueError, r"x must hold values in -128\.\.127"),
    (np.full((8, 2), 2 ** 63, dtype=np.uint64), ValueError, r"x must hold values in"),
    (np.zeros((8, 3), dtype=int), ValueError, r"x must have shape \(\.\.\., n, 2\) = "
                                              r"\(\.\.\., 8, 2\).*got \(8, 3\)"),
    (np.zeros((16, 2), dtype=int), ValueError, r"x must have shape \(\.\.\., n, 2\)"),
    (np.zeros(8, dtype=int), ValueError, r"x must have shape \(\.\.\., n, 2\)"),
    (np.zeros((8, 2), dtype=complex), ValueError, r"x \(complex\) must have shape "
                                                  r"\(\.\.\., n\) = \(\.\.\., 8\)"),
    (np.full(8, 0.5 + 1j), ValueError, r"x \(complex\) must have integer"),
    (np.full(8, complex("nan")), ValueError, r"x \(complex\) must have integer"),
    (np.zeros((8, 2)), TypeError, r"x must be an integer array.*got dtype float64"),
    (np.zeros((8, 2), dtype=bool), TypeError, r"x must be an integer array"),
])
def test_fft_input_errors(x, error, message):
    with pytest.raises(error, match=message):
        fft(x, **GOOD)


def test_stage_and_twiddles_errors():
    kw = dict(GOOD, inverse=False, shift=1)
    stage(X8, 2, **kw)
    with pytest.raises(ValueError, match=r"s must be in 0\.\.2, got 3"):
        stage(X8, 3, **kw)
    with pytest.raises(ValueError, match=r"shift must be in 0\.\.1, got 2"):
        stage(X8, 0, **{**kw, "shift": 2})
    with pytest.raises(TypeError, match=r"inverse must be a bool"):
        stage(X8, 0, **{**kw, "inverse": None})
    with pytest.raises(ValueError, match=r"width must be in 8\.\.24"):
        stage(X8, 0, **{**kw, "width": 7})
    with pytest.raises(ValueError, match=r"x must hold values in -128\.\.127"):
        stage(X8 + 200, 0, **kw)
    with pytest.raises(ValueError, match=r"n must be a power of two in 8\.\.4096, got 12"):
        twiddles(12, 8)
    with pytest.raises(ValueError, match=r"twiddle_width must be in 8\.\.18, got 19"):
        twiddles(8, 19)
    with pytest.raises(TypeError, match=r"inverse must be a bool"):
        twiddles(8, 8, inverse="yes")


def test_inputs_are_not_modified_and_list_input_works():
    x = np.arange(16).reshape(8, 2)
    keep = x.copy()
    y, _ = fft(x, **GOOD)
    assert np.array_equal(x, keep)
    y2, _ = fft(x.tolist(), **GOOD)
    y3, _ = fft(x.astype(np.int8), **GOOD)
    assert np.array_equal(y, y2) and np.array_equal(y, y3)


def test_fast_enough():
    x = np.random.default_rng(0).integers(-2 ** 15, 2 ** 15, (16, 4096, 2))
    start = time.perf_counter()
    fft(x, n=4096, width=16, twiddle_width=18)
    assert time.perf_counter() - start < 2.0
    assert fft_fixed.__all__ == ["twiddles", "fft", "stage", "bit_reverse",
                                 "bit_reversed_order"]
