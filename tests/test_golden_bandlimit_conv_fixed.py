"""Golden band-limited convolution engine (docs/bandlimit-conv.md sections 2-4): the kept
set against the float model's, the stored words against numpy.fft, a literal loop-by-loop
reading of section 3 bit for bit, a tiny case by hand, error bounds against the float and
direct references, overflow, and every argument check.

Error bound (defaults, ``coefficient_shift = spectrum_shift``)
----------------------------------------------------------------
The forward transforms halve every stage, so a bin holds ``DFT(x) / N`` (``N = n **
dims``) plus the roundings' error, of power ``sigma ** 2 <~ 1`` LSB ** 2 (complex) per bin:
half-up halving is ``+1/4`` bias and ``1/16`` variance per part and stage, a product
rounding ``1/12`` per part, and each later stage halves the earlier stages' error. The
filter multiplies that error by its gain (``G = sum_c |W_c| ** 2``, averaged over the
kept bins), step 5 adds ``1/6`` per bin, the unscaled inverse sums the ``N`` bins (the
variance grows ``N``-fold) and adds its own product roundings, about ``N / 6`` in all;
the real part takes half. So per output sample

    rms(y - reference) ~ sqrt(N (sigma ** 2 G + 1/3) / 2)  <=  sqrt(N)  LSB

for filters of rms gain 1/2 (``G ~ 1/4``, as :func:`random_case` makes them), whatever
the width: the SQNR grows 6 dB per bit of ``width`` and falls 3 dB per doubling of
``N``. The tests assert ``rms error <= sqrt(N)`` (measured: 0.1 .. 0.8 sqrt(N) over 1D n
= 8 .. 4096, 2D n = 8 .. 64, c = 0 .. 90, widths 10 .. 20); the 18-bit coefficients add
far less.
"""

import math
import time

import numpy as np
import pytest

from dnnhw.golden import bandlimit_conv_fixed as blc
from dnnhw.golden.conv_fft import band_limit_keep
from dnnhw.golden.fft_fixed import fft
from dnnhw.spec.bandlimit import kept_half_width
from dnnhw.spec.fft import POINTS

RATES = (0, 10, 25, 50, 75, 90, 99)
SMALL_POINTS = tuple(n for n in POINTS if n <= 64)


# --- helpers -----------------------------------------------------------------------------

def sqnr_db(y, reference):
    return 10 * math.log10(np.sum(reference ** 2) / np.sum((y - reference) ** 2))


def within_rounding_bound(y, reference, dims, n):
    """The docstring's bound: ``rms(y - reference) <= sqrt(n ** dims)`` LSB."""
    return np.sqrt(np.mean((y - reference) ** 2)) <= math.sqrt(n ** dims)


def coefficient_shift_for(w, n, coefficient_width):
    """The largest shift at which no part of ``w``'s spectrum is clamped."""
    dims = w.ndim - 2
    spectrum = np.fft.fftn(w, s=(n,) * dims, axes=tuple(range(-dims, 0)))
    peak = max(np.abs(spectrum.real).max(), np.abs(spectrum.imag).max())
    return int(math.floor(math.log2((2 ** (coefficient_width - 1) - 1) / peak)))


def random_case(rng, *, dims, n, taps, in_channels, out_channels, tiles, width):
    """White data uniform in half scale and Gaussian filters whose outputs have half the
    data's rms (peaks well inside the range)."""
    half = 2 ** (width - 2)
    x = rng.integers(-half, half, size=(tiles, in_channels) + (n,) * dims)
    w = rng.standard_normal((out_channels, in_channels) + (taps,) * dims)
    return x, w * 0.5 / math.sqrt(in_channels * taps ** dims)


def run(x, w, *, dims, n, taps, compression_rate, width, coefficient_width=18, **options):
    """Quantize ``w`` at its largest unclamped shift and run the engine with
    ``spectrum_shift`` equal to it (section 3's unit gain)."""
    shift = coefficient_shift_for(w, n, coefficient_width)
    words = blc.filter_spectra(w, n=n, compression_rate=compression_rate,
                               coefficient_width=coefficient_width, coefficient_shift=shift)
    return blc.conv(x, words, dims=dims, n=n, taps=taps, compression_rate=compression_rate,
                    width=width, twiddle_width=18, coefficient_width=coefficient_width,
                    spectrum_shift=shift, **options)


# --- a literal reading of section 3, one tile, bin by bin, in Python ints --------------

def reference_conv(tile, words, *, dims, n, taps, c, width, twiddle_width, spectrum_shift,
                   forward_shifts, inverse_shifts):
    """Section 3 on one tile ``(C, n[, n])`` with stored words ``(O, C, words, 2)``: the
    kept rule, axis index and storage index written out from section 2, every FFT pass a
    frame at a time. Returns ``(y as nested lists, overflow)``."""
    m = kept_half_width(n, dims, c)
    t = min(n, 2 * m + 1)
    kept = [k <= m or k >= n - m for k in range(n)]

    def idx(k):
        return k if k <= m else k - (n - t)

    flags = []

    def one_fft(values, inverse, shifts):
        frame = np.array([[int(v.real), int(v.imag)] for v in values], dtype=np.int64)
        out, over = fft(frame, n=n, width=width, twiddle_width=twiddle_width,
                        inverse=inverse, shifts=shifts)
        flags.append(over)
        return [complex(int(re), int(im)) for re, im in out]

    big_m = 2 ** (width - 1)

    def sat(v):
        flags.append(not -big_m <= v <= big_m - 1)
        return min(max(v, -big_m), big_m - 1)

    def rnd(v):
        return (v + 2 ** (spectrum_shift - 1)) >> spectrum_shift if spectrum_shift else v

    # Step 1: spectra as dicts {(k1, k2): complex} (1D: k2 = k, k1 = 0).
    spectra = []
    for channel in tile:
        if dims == 1:
            spectrum = one_fft(channel, False, forward_shifts)
            spectra.append({(0, k): spectrum[k] for k in range(n)})
        else:
            rows = [one_fft(row, False, forward_shifts) for row in channel]    # [a][k2]
            by_column = [one_fft([rows[a][k2] for a in range(n)], False, forward_shifts)
                         for k2 in range(n)]                                    # [k2][k1]
            spectra.append({(k1, k2): by_column[k2][k1] for k1 in range(n)
                            for k2 in range(n)})
    out = n - taps + 1
    result = []
    for filters in words:
        # Steps 2-5.
        y_bins = {}
        for (k1, k2) in spectra[0]:
            if not (kept[k2] and (dims == 1 or kept[k1])):
                y_bins[(k1, k2)] = 0j
                continue
            if k2 > n // 2:        # mirrored: the word of (-k1, n - k2), conjugated
                q, row, sign = n - k2, (-k1) % n, -1
            else:
                q, row, sign = k2, k1, 1
            j = q if dims == 1 else q * t + idx(row)
            acc_re = acc_im = 0
            for c_index, spectrum in enumerate(spectra):
                w_re, w_im = int(filters[c_index][j][0]), sign * int(filters[c_index][j][1])
                x_re, x_im = int(spectrum[(k1, k2)].real), int(spectrum[(k1, k2)].imag)
                acc_re += x_re * w_re - x_im * w_im
                acc_im += x_re * w_im + x_im * w_re
            y_bins[(k1, k2)] = complex(sat(rnd(acc_re)), sat(rnd(acc_im)))
        # Steps 6-7.
        if dims == 1:
            samples = one_fft([y_bins[(0, k)] for k in range(n)], True, inverse_shifts)
            result.append([int(v.real) for v in samples[:out]])
        else:
            columns = [one_fft([y_bins[(k1, k2)] for k1 in range(n)], True, inverse_shifts)
                       for k2 in range(n)]                                      # [k2][a]
            rows = [one_fft([columns[k2][a] for k2 in range(n)], True, inverse_shifts)
                    for a in range(n)]                                          # [a][b]
            result.append([[int(v.real) for v in rows[a][:out]] for a in range(out)])
    return result, any(flags)


EXACT_CASES = [
    # dims, n, taps, c, in, out, width, spectrum_shift - coefficient_shift, forward
    # shifts, inverse shifts, data scale (of full scale)
    (1, 8, 3, 0, 2, 3, 12, 0, None, None, 0.5),
    (1, 16, 5, 50, 3, 2, 10, 0, None, None, 0.5),
    (1, 16, 4, 75, 1, 1, 14, 2, 0b1011, 0b0001, 0.5),
    (1, 32, 9, 25, 2, 2, 8, -3, None, 0, 1.0),          # too little shift: saturates
    (2, 8, 3, 0, 2, 2, 12, 0, None, None, 0.5),
    (2, 8, 2, 50, 1, 2, 10, 0, None, None, 1.0),
    (2, 16, 3, 75, 2, 1, 12, -2, None, (0, 1, 0, 0), 1.0),
    (2, 16, 5, 90, 1, 1, 16, 1, (1, 1, 0, 1), None, 0.5),
]


def exact_case(dims, n, taps, c, cin, cout, width, delta, fwd, inv, scale):
    """Two random tiles, the stored words of random filters (12 bits) and the engine's
    parameters for one of :data:`EXACT_CASES`."""
    rng = np.random.default_rng(n * 100 + taps + int(c))
    limit = int(2 ** (width - 1) * scale)
    x = rng.integers(-limit, limit, size=(2, cin) + (n,) * dims)
    w = rng.standard_normal((cout, cin) + (taps,) * dims)
    shift = coefficient_shift_for(w, n, 12)
    words = blc.filter_spectra(w, n=n, compression_rate=c, coefficient_width=12,
                               coefficient_shift=shift)
    options = dict(dims=dims, n=n, taps=taps, width=width, twiddle_width=14,
                   spectrum_shift=shift + delta)
    return x, words, options


@pytest.mark.parametrize("case", EXACT_CASES)
def test_matches_a_literal_reading_of_section_3_bit_for_bit(case):
    x, words, options = exact_case(*case)
    dims, n, taps, c, _, cout, _, _, fwd, inv, _ = case
    y, overflow = blc.conv(x, words, compression_rate=c, coefficient_width=12,
                           forward_shifts=fwd, inverse_shifts=inv, **options)
    stages = n.bit_length() - 1
    flags = []
    for tile, y_tile in zip(x, y):
        expected, over = reference_conv(
            tile.tolist(), words.tolist(), c=c,
            forward_shifts=(1,) * stages if fwd is None else fwd,
            inverse_shifts=(0,) * stages if inv is None else inv, **options)
        assert y_tile.tolist() == expected
        flags.append(over)
    assert overflow == any(flags)
    assert y.dtype == np.int64 and y.shape == (2, cout) + (n - taps + 1,) * dims


def test_the_exact_cases_cover_mirrored_bins_and_both_overflow_outcomes():
    """The cases above only check mirroring and the flag if they reach them."""
    outcomes = set()
    for case in EXACT_CASES:
        x, words, options = exact_case(*case)
        dims, n, _, c, _, _, _, _, fwd, inv, _ = case
        outcomes.add(blc.conv(x, words, compression_rate=c, coefficient_width=12,
                              forward_shifts=fwd, inverse_shifts=inv, **options)[1])
        assert blc.band(n, dims, c).mirrored.any()
    assert outcomes == {False, True}


# --- section 2: the kept set -------------------------------------------------------------

@pytest.mark.parametrize("dims", (1, 2))
@pytest.mark.parametrize("n", SMALL_POINTS)
@pytest.mark.parametrize("c", RATES)
def test_kept_set_is_the_float_models_and_its_two_sided_closure(dims, n, c):
    band = blc.band(n, dims, c)
    one_sided = band_limit_keep((n,) * dims, c)
    positions = np.arange(n ** dims)
    k1, k2 = (np.zeros_like(positions), positions) if dims == 1 else (positions % n,
                                                                      positions // n)
    kept = set(zip(k1[band.kept].tolist(), k2[band.kept].tolist()))
    if dims == 1:
        stored = {(0, k) for k in one_sided[0].tolist()}
    else:
        stored = {(a, b) for a in one_sided[0].tolist() for b in one_sided[1].tolist()}
        assert band.kept_frequencies.tolist() == one_sided[0].tolist()
    assert {(a, b) for a, b in kept if b <= n // 2} == stored
    closure = stored | {((-a) % (n if dims == 2 else 1), (-b) % n) for a, b in stored}
    assert kept == closure

    t = band.kept_per_axis
    assert len(band.kept_frequencies) == t and band.m == kept_half_width(n, dims, c)
    assert band.kept_bins == t ** dims == len(kept) == len(band.kept_positions)
    assert band.columns == len(one_sided[-1])
    assert band.words_per_filter == band.columns * (t if dims == 2 else 1)
    if dims == 2 and t < n:
        assert band.words_per_filter == (2 * band.m + 1) * (band.m + 1)   # published


@pytest.mark.parametrize("dims, n, c", [(1, 8, 0), (1, 64, 50), (1, 4096, 90),
                                        (2, 8, 0), (2, 16, 25), (2, 64, 75)])
def test_indices_follow_section_2(dims, n, c):
    band = blc.band(n, dims, c)
    t, m = band.kept_per_axis, band.m
    kept = band.kept_positions
    assert np.array_equal(band.accumulator_index[kept], np.arange(band.kept_bins))
    assert np.all(band.accumulator_index[~band.kept] == -1)
    assert np.all(band.storage_index[~band.kept] == -1)
    assert not band.mirrored[~band.kept].any()
    k1, k2 = (kept * 0, kept) if dims == 1 else (kept % n, kept // n)
    assert np.array_equal(band.mirrored[kept], k2 > n // 2)
    axis_index = {k: (k if k <= m else k - (n - t)) for k in band.kept_frequencies.tolist()}
    assert list(axis_index.values()) == list(range(t))
    if dims == 2:
        assert np.array_equal(band.accumulator_index[kept],
                              [axis_index[b] * t + axis_index[a] for a, b in zip(k1, k2)])
    # A word's bin is the bin itself, or for a mirrored bin its negative.
    source = band.stored_positions[band.storage_index[kept]]
    negative = (-k2) % n if dims == 1 else ((-k2) % n) * n + (-k1) % n
    assert np.array_equal(source, np.where(band.mirrored[kept], negative, kept))
    assert np.array_equal(band.storage_index[band.stored_positions],
                          np.arange(band.words_per_filter))
    assert not band.kept.flags.writeable


# --- section 4: the filters --------------------------------------------------------------

@pytest.mark.parametrize("dims, n, taps, c", [(1, 8, 3, 0), (1, 64, 7, 50),
                                              (1, 256, 16, 90), (2, 8, 3, 0),
                                              (2, 16, 5, 50), (2, 32, 3, 75)])
def test_stored_words_are_the_quantized_conjugate_dft_at_every_kept_bin(dims, n, taps, c):
    rng = np.random.default_rng(taps)
    w = rng.standard_normal((2, 3) + (taps,) * dims)
    cw, shift = 16, 9
    words = blc.filter_spectra(w, n=n, compression_rate=c, coefficient_width=cw,
                               coefficient_shift=shift)
    band = blc.band(n, dims, c)
    assert words.dtype == np.int64 and words.shape == (2, 3, band.words_per_filter, 2)
    assert band.mirrored.any()
    spectrum = np.fft.fftn(w, s=(n,) * dims, axes=tuple(range(-dims, 0)))
    if dims == 2:      # [k1, k2] -> stream position k2 * n + k1
        spectrum = np.swapaxes(spectrum, -1, -2).reshape(2, 3, n * n)
    kept = band.kept_positions
    word = words[:, :, band.storage_index[kept]]
    used = word[..., 0] + 1j * np.where(band.mirrored[kept], -word[..., 1], word[..., 1])
    target = np.conj(spectrum[..., kept]) * 2 ** shift
    assert np.abs(used.real - target.real).max() <= 0.5
    assert np.abs(used.imag - target.imag).max() <= 0.5


def test_filter_words_round_half_up_and_clamp():
    # An impulse of weight 1.5 / 2 ** s: every bin is 1.5 -> floor(2.0) = 2.
    words = blc.filter_spectra(np.full((1, 1, 1), 1.5 / 2 ** 4), n=8, compression_rate=0,
                               coefficient_width=8, coefficient_shift=4)
    assert words.tolist() == [[[[2, 0]] * 5]]
    # Too large either way: clamped to the 8-bit range at every bin.
    for value, clamped in ((1000.0, 127), (-1000.0, -128)):
        words = blc.filter_spectra(np.full((1, 1, 1), value), n=8, compression_rate=0,
                                   coefficient_width=8, coefficient_shift=0)
        assert words[..., 0].tolist() == [[[clamped] * 5]] and not words[..., 1].any()


def test_filter_memory_bits_and_accumulator_width():
    for dims, n, c in [(1, 64, 0), (1, 64, 50), (2, 16, 0), (2, 32, 75)]:
        words = blc.band(n, dims, c).words_per_filter
        assert blc.filter_memory_bits(dims=dims, n=n, in_channels=3, out_channels=5,
                                      compression_rate=c,
                                      coefficient_width=16) == 15 * words * 32
    # 2D n = 16, c = 75: m + 1 = int(9 * 0.5) = 4, so a filter is 7 x 4 words.
    assert blc.band(16, 2, 75).words_per_filter == 28
    assert [blc.accumulator_width(16, 16, k) for k in (1, 2, 3, 4, 5, 256)] == \
        [33, 34, 35, 35, 36, 41]
    # The widest channel sum fits: in_channels products of -M * -M_c, twice.
    for width in (8, 24):
        for cw in (8, 18):
            for channels in (1, 3, 256):
                bits = blc.accumulator_width(width, cw, channels)
                worst = channels * 2 * 2 ** (width - 1) * 2 ** (cw - 1)
                assert worst <= 2 ** (bits - 1) - 1


# --- the references ----------------------------------------------------------------------

@pytest.mark.parametrize("dims, n", [(1, 8), (1, 64), (2, 8), (2, 16)])
def test_float_reference_at_c0_is_the_direct_correlation(dims, n):
    rng = np.random.default_rng(n)
    for taps in sorted({1, 2, 3, n // 2 + 1, n}):
        x = rng.standard_normal((3, 2) + (n,) * dims)
        w = rng.standard_normal((4, 2) + (taps,) * dims)
        y = blc.float_reference(x, w, dims=dims, n=n, compression_rate=0)
        direct = blc.direct_reference(x, w, dims=dims, taps=taps)
        assert y.shape == direct.shape == (3, 4) + (n - taps + 1,) * dims
        assert np.abs(y - direct).max() <= 1e-9 * np.abs(direct).max()


def test_direct_reference_by_hand():
    x = np.array([[1.0, 2.0, 3.0, 4.0]])
    w = np.array([[[1.0, -1.0]], [[0.5, 2.0]]])
    assert blc.direct_reference(x, w, dims=1, taps=2).tolist() == [[-1, -1, -1],
                                                                   [4.5, 7.0, 9.5]]
    x2 = np.arange(9.0).reshape(1, 3, 3)
    w2 = np.array([[[[1.0, 0.0], [0.0, 1.0]]]])          # x[i, j] + x[i + 1, j + 1]
    assert blc.direct_reference(x2, w2, dims=2, taps=2).tolist() == [[[4, 6], [10, 12]]]


def test_float_reference_band_limits_by_the_kept_set():
    """A tone at a dropped frequency vanishes; one at a kept frequency passes."""
    n, c = 32, 50
    band = blc.band(n, 1, c)
    t = np.arange(n)
    dropped = int(np.flatnonzero(~band.kept)[0])
    w = np.zeros((1, 1, 1)) + 1.0
    for k, passes in ((dropped, False), (band.m, True)):
        x = np.cos(2 * np.pi * k * t / n)[None]
        y = blc.float_reference(x, w, dims=1, n=n, compression_rate=c)
        assert np.allclose(y, x if passes else 0, atol=1e-12)


# --- the fixed-point path against the references -----------------------------------------

@pytest.mark.parametrize("dims, n, taps", [(1, 64, 1), (1, 64, 9), (1, 1024, 33),
                                           (2, 16, 1), (2, 16, 3), (2, 64, 5)])
def test_conv_at_c0_is_the_correlation_within_the_rounding_bound(dims, n, taps):
    rng = np.random.default_rng(taps)
    x, w = random_case(rng, dims=dims, n=n, taps=taps, in_channels=3, out_channels=2,
                       tiles=4, width=16)
    y, overflow = run(x, w, dims=dims, n=n, taps=taps, compression_rate=0, width=16)
    direct = blc.direct_reference(x, w, dims=dims, taps=taps)
    assert not overflow
    assert within_rounding_bound(y, direct, dims, n)


def test_conv_at_c0_and_width_16_reaches_60_db_in_1d_at_n_64():
    """The docstring's estimate: y's rms is half the data's, 2 ** 14 / sqrt(3) / 2 = 4730,
    the error's about sqrt(64 (G + 1/3) / 2) = 4.3 with G = 1/4, so SQNR ~ 61 dB."""
    rng = np.random.default_rng(11)
    x, w = random_case(rng, dims=1, n=64, taps=5, in_channels=4, out_channels=4,
                       tiles=8, width=16)
    y, overflow = run(x, w, dims=1, n=64, taps=5, compression_rate=0, width=16)
    assert not overflow
    assert sqnr_db(y, blc.direct_reference(x, w, dims=1, taps=5)) > 60


@pytest.mark.parametrize("dims, n, taps", [(1, 64, 5), (2, 16, 3)])
@pytest.mark.parametrize("c", (25, 50, 75, 90))
def test_sqnr_against_the_float_reference_grows_6_db_per_bit(dims, n, taps, c):
    rng = np.random.default_rng(int(c) + n)
    unit = rng.random((4, 2) + (n,) * dims) - 0.5        # the same data at every width
    w = rng.standard_normal((2, 2) + (taps,) * dims) * 0.5 / math.sqrt(2 * taps ** dims)
    figures = []
    for width in (10, 12, 14, 16):
        x = np.floor(unit * 2 ** (width - 1)).astype(np.int64)
        y, overflow = run(x, w, dims=dims, n=n, taps=taps, compression_rate=c, width=width)
        reference = blc.float_reference(x, w, dims=dims, n=n, compression_rate=c)
        assert not overflow
        figures.append(sqnr_db(y, reference))
        assert within_rounding_bound(y, reference, dims, n)
    steps = np.diff(figures)
    assert np.all(steps > 8) and np.all(steps < 16), figures          # 12 dB per 2 bits
    assert 5 < (figures[-1] - figures[0]) / 6 < 7, figures


def test_band_limiting_error_grows_with_c():
    """Against the direct correlation the error is the band limit's, not the rounding's."""
    rng = np.random.default_rng(7)
    x, w = random_case(rng, dims=2, n=16, taps=3, in_channels=2, out_channels=2, tiles=2,
                       width=16)
    direct = blc.direct_reference(x, w, dims=2, taps=3)
    figures = [sqnr_db(run(x, w, dims=2, n=16, taps=3, compression_rate=c, width=16)[0],
                       direct) for c in (0, 25, 50, 75, 90)]
    assert all(a > b for a, b in zip(figures, figures[1:])), figures


def test_tiles_axis_is_optional_and_zero_tiles_work():
    rng = np.random.default_rng(3)
    x, w = random_case(rng, dims=2, n=8, taps=3, in_channels=2, out_channels=3, tiles=1,
                       width=12)
    batch, over_batch = run(x, w, dims=2, n=8, taps=3, compression_rate=50, width=12)
    single, over_single = run(x[0], w, dims=2, n=8, taps=3, compression_rate=50, width=12)
    assert single.shape == (3, 6, 6) and np.array_equal(single, batch[0])
    assert over_single == over_batch
    empty, over_empty = run(x[:0], w, dims=2, n=8, taps=3, compression_rate=50, width=12)
    assert empty.shape == (0, 3, 6, 6) and not over_empty
    reference = blc.float_reference(x[0], w, dims=2, n=8, compression_rate=50)
    assert reference.shape == (3, 6, 6)


# --- a tiny case by hand -----------------------------------------------------------------

def test_identity_filter_by_hand():
    """n = 8, 1D, taps = 1, c = 0, one channel, w = [1]. The DFT of an impulse is 1 at
    every bin, so each of the Q = 5 words is (2 ** s, 0); with spectrum_shift = s step 5
    is exact (Y = X), and the output is the forward (halving) then inverse (not halving)
    FFT of the input: the input, up to the FFTs' rounding. What the rounding does:

    - DC and Nyquist only (a constant, (-1) ** t) and 8 a at t = 0: every halving is of an
      even sum and every twiddle is W(0), so they come back exactly;
    - one LSB at t = 0: each of the 3 forward stages halves a 1 (sum and difference) and
      rounds 1/2 up to 1, so every bin holds 1 instead of 1/8, and the inverse sums the 8
      ones: y = 8 at t = 0, 0 elsewhere.
    """
    s, width = 6, 12
    words = blc.filter_spectra(np.ones((1, 1, 1)), n=8, compression_rate=0,
                               coefficient_width=8, coefficient_shift=s)
    assert words.tolist() == [[[[2 ** s, 0]] * 5]]

    def engine(samples):
        y, overflow = blc.conv(np.array([samples]), words, dims=1, n=8, taps=1,
                               compression_rate=0, width=width, twiddle_width=12,
                               coefficient_width=8, spectrum_shift=s)
        assert not overflow and y.shape == (1, 8)
        return y[0].tolist()

    t = np.arange(8)
    for exact in ([100] * 8, (300 * (-1) ** t).tolist(), [8 * 97] + [0] * 7):
        assert engine(exact) == exact
    assert engine([1] + [0] * 7) == [8] + [0] * 7

    # Any input: exactly the forward then inverse FFT of fft_fixed, real part.
    x = np.random.default_rng(0).integers(-1000, 1000, 8)
    frames = np.stack([x, 0 * x], axis=-1)
    spectrum, _ = fft(frames, n=8, width=width, twiddle_width=12)
    back, _ = fft(spectrum, n=8, width=width, twiddle_width=12, inverse=True, shifts=0)
    assert engine(x.tolist()) == back[:, 0].tolist()
    assert np.abs(np.array(engine(x.tolist())) - x).max() <= 8


# --- overflow ----------------------------------------------------------------------------

def test_full_scale_data_with_a_large_gain_overflows_and_small_data_does_not():
    n, taps, width = 32, 8, 12
    w = np.ones((2, 2, taps))                             # gain 2 * 8 = 16 at DC
    m = 2 ** (width - 1)
    rng = np.random.default_rng(5)
    full = np.where(rng.random((3, 2, n)) < 0.5, -m, m - 1)
    _, overflow = run(full, w, dims=1, n=n, taps=taps, compression_rate=0, width=width)
    assert overflow
    small = rng.integers(-m // 64, m // 64, size=(3, 2, n))       # |y| <= 16 * m / 64
    y, overflow = run(small, w, dims=1, n=n, taps=taps, compression_rate=0, width=width)
    assert not overflow
    # The docstring's bound with this filter's gain G = sum_c |W_c| ** 2 = 16.
    error = y - blc.direct_reference(small, w, dims=1, taps=taps)
    assert np.sqrt(np.mean(error ** 2)) <= math.sqrt(n * (16 + 1 / 3) / 2)


def test_spectrum_shift_saturation_alone_sets_overflow():
    """A constant a through w = [1]: the forward gives X[0] = a exactly and 0 elsewhere
    (no saturation), so only step 5 can saturate: with spectrum_shift = 0 the sum a * 2 **
    s saturates to M - 1, and the inverse of a lone DC bin is M - 1 everywhere, exactly."""
    n, s, width, a = 8, 6, 10, 100
    m = 2 ** (width - 1)
    x = np.full((1, n), a)
    spectrum, forward_overflow = fft(np.stack([x, 0 * x], axis=-1), n=n, width=width,
                                     twiddle_width=12)
    assert not forward_overflow and spectrum[0, 0].tolist() == [a, 0]
    assert not spectrum[0, 1:].any()
    words = blc.filter_spectra(np.ones((1, 1, 1)), n=n, compression_rate=0,
                               coefficient_width=8, coefficient_shift=s)
    options = dict(dims=1, n=n, taps=1, compression_rate=0, width=width, twiddle_width=12,
                   coefficient_width=8)
    y, overflow = blc.conv(x, words, spectrum_shift=0, **options)
    assert overflow and y.tolist() == [[m - 1] * n]
    y, overflow = blc.conv(x, words, spectrum_shift=s, **options)
    assert not overflow and y.tolist() == [[a] * n]


def test_inverse_saturation_alone_sets_overflow():
    """An impulse of 3 M / 4 through w = [2] (2D, taps = 1): the forward spreads it to
    3 M / 4 / 256 at every bin (no saturation), step 5 gives twice that (far inside the
    range), and only the unscaled inverse, summing 256 bins to 3 M / 2, saturates. With
    w = [1] the output is the impulse, exactly, without overflow."""
    n, width = 16, 12
    m = 2 ** (width - 1)
    x = np.zeros((1, n, n), dtype=np.int64)
    x[0, 0, 0] = 3 * m // 4
    for gain, saturates in ((2.0, True), (1.0, False)):
        y, overflow = run(x, np.full((1, 1, 1, 1), gain), dims=2, n=n, taps=1,
                          compression_rate=0, width=width)
        assert overflow == saturates
        if saturates:
            assert y[0, 0, 0] == m - 1
        else:
            assert np.array_equal(y, x)


# --- argument checks ---------------------------------------------------------------------

def conv_call(**changes):
    args = dict(x=np.zeros((1, 8), dtype=np.int64),
                filters=np.zeros((1, 1, 5, 2), dtype=np.int64), dims=1, n=8, taps=3,
                compression_rate=0, width=12, twiddle_width=12, coefficient_width=12,
                spectrum_shift=4)
    args.update(changes)
    x, filters = args.pop("x"), args.pop("filters")
    return blc.conv(x, filters, **args)


@pytest.mark.parametrize("changes, error, message", [
    (dict(n=12), ValueError, r"n must be a power of two in 8\.\.4096 for dims = 1"),
    (dict(n=8192), ValueError, r"n must be a power of two in 8\.\.4096"),
    (dict(n=128, dims=2), ValueError, r"n must be a power of two in 8\.\.64 for dims = 2"),
    (dict(n=8.0), TypeError, r"n must be an int"),
    (dict(dims=3), ValueError, r"dims must be 1 or 2"),
    (dict(dims="1"), TypeError, r"dims must be an int"),
    (dict(taps=9), ValueError, r"taps must be in 1\.\.n \(1\.\.8\), got 9"),
    (dict(taps=0), ValueError, r"taps must be in 1\.\.n"),
    (dict(taps=True), TypeError, r"taps must be an int"),
    (dict(compression_rate=100), ValueError, r"compression_rate must be in \[0, 100\)"),
    (dict(compression_rate=-0.5), ValueError, r"compression_rate must be in \[0, 100\)"),
    (dict(compression_rate="50"), TypeError,
     r"compression_rate must be a number in \[0, 100\)"),
    (dict(width=7), ValueError, r"width must be in 8\.\.24"),
    (dict(width=25), ValueError, r"width must be in 8\.\.24"),
    (dict(twiddle_width=19), ValueError, r"twiddle_width must be in 8\.\.18"),
    (dict(coefficient_width=7), ValueError, r"coefficient_width must be in 8\.\.18"),
    (dict(coefficient_width=19), ValueError, r"coefficient_width must be in 8\.\.18"),
    (dict(spectrum_shift=25), ValueError, r"spectrum_shift must be in 0\.\.24"),
    (dict(spectrum_shift=-1), ValueError, r"spectrum_shift must be in 0\.\.24"),
    (dict(spectrum_shift=1.0), TypeError, r"spectrum_shift must be an int"),
    (dict(forward_shifts=8), ValueError, r"forward_shifts must be in 0\.\.7"),
    (dict(forward_shifts=(1, 1)), ValueError, r"forward_shifts must have log2\(n\) = 3"),
    (dict(forward_shifts="111"), TypeError, r"forward_shifts must be None, an int mask"),
    (dict(inverse_shifts=(0, 2, 0)), ValueError, r"inverse_shifts\[1\] must be in 0\.\.1"),
    (dict(inverse_shifts=(0, 0.0, 0)), TypeError, r"inverse_shifts\[1\] must be an int"),
    (dict(x=np.zeros((1, 8))), TypeError, r"x must be an integer array"),
    (dict(x=np.zeros((1, 16), dtype=int)), ValueError,
     r"x must have shape \(tiles, in_channels, n\) or \(in_channels, n\) with n = 8"),
    (dict(x=np.zeros(8, dtype=int)), ValueError, r"x must have shape"),
    (dict(x=np.zeros((2, 1, 1, 8), dtype=int)), ValueError, r"x must have shape"),
    (dict(x=np.zeros((257, 8), dtype=int),
          filters=np.zeros((1, 257, 5, 2), dtype=int)), ValueError,
     r"in_channels \(x's axis -2\) must be in 1\.\.256, got 257"),
    (dict(x=np.full((1, 8), 2048)), ValueError,
     r"x must hold values in -2048\.\.2047 \(signed 12 bits\)"),
    (dict(x=np.full((1, 8), -2049)), ValueError, r"x must hold values in -2048\.\.2047"),
    (dict(filters=np.zeros((1, 1, 5, 2))), TypeError, r"filters must be an integer array"),
    (dict(filters=np.zeros((1, 1, 4, 2), dtype=int)), ValueError,
     r"filters must have shape \(out_channels, in_channels, words_per_filter, 2\) = "
     r"\(out_channels, 1, 5, 2\)"),
    (dict(filters=np.zeros((1, 2, 5, 2), dtype=int)), ValueError,
     r"filters must have shape"),
    (dict(filters=np.zeros((0, 1, 5, 2), dtype=int)), ValueError,
     r"out_channels \(filters' axis 0\) must be in 1\.\.256, got 0"),
    (dict(filters=np.full((1, 1, 5, 2), 2048)), ValueError,
     r"filters must hold values in -2048\.\.2047 \(signed 12 bits\)"),
])
def test_conv_errors(changes, error, message):
    with pytest.raises(error, match=message):
        conv_call(**changes)


def test_conv_accepts_legal_extremes():
    y, overflow = conv_call(x=np.array([[-2048, 2047] * 4]),
                            filters=np.full((1, 1, 5, 2), -2048), spectrum_shift=24)
    assert y.shape == (1, 6) and isinstance(overflow, bool)
    y, _ = conv_call(dims=2, n=64, taps=64, x=np.zeros((1, 64, 64), dtype=np.int16),
                     filters=np.zeros((1, 1, 33 * 64, 2), dtype=np.int8))
    assert y.shape == (1, 1, 1)


def spectra_call(**changes):
    args = dict(w=np.ones((1, 1, 3)), n=8, compression_rate=0, coefficient_width=12,
                coefficient_shift=4)
    args.update(changes)
    return blc.filter_spectra(args.pop("w"), **args)


@pytest.mark.parametrize("changes, error, message", [
    (dict(w=np.ones((1, 1, 9))), ValueError, r"taps must be in 1\.\.n \(1\.\.8\), got 9"),
    (dict(w=np.ones((1, 1, 0))), ValueError, r"taps must be in 1\.\.n"),
    (dict(w=np.ones((1, 1, 3, 2))), ValueError, r"w must be square \(taps x taps\) in 2D"),
    (dict(w=np.ones((1, 3))), ValueError,
     r"w must have shape \(out_channels, in_channels, taps\) or"),
    (dict(w=np.ones((1, 1, 3)) + 1j), TypeError, r"w must hold real numbers"),
    (dict(w=np.ones((1, 1, 3), dtype=bool)), TypeError, r"w must hold real numbers"),
    (dict(w=np.array([[[1.0, np.inf, 0.0]]])), ValueError, r"w must hold finite values"),
    (dict(w=np.ones((1, 257, 1))), ValueError,
     r"in_channels \(w's axis 1\) must be in 1\.\.256, got 257"),
    (dict(w=np.ones((0, 1, 1))), ValueError,
     r"out_channels \(w's axis 0\) must be in 1\.\.256, got 0"),
    (dict(n=6), ValueError, r"n must be a power of two in 8\.\.4096 for dims = 1"),
    (dict(n=128, w=np.ones((1, 1, 3, 3))), ValueError,
     r"n must be a power of two in 8\.\.64 for dims = 2"),
    (dict(compression_rate=100.0), ValueError, r"compression_rate must be in \[0, 100\)"),
    (dict(coefficient_width=19), ValueError, r"coefficient_width must be in 8\.\.18"),
    (dict(coefficient_shift=blc.COEFFICIENT_SHIFT_MAX + 1), ValueError,
     rf"coefficient_shift must be in 0\.\.{blc.COEFFICIENT_SHIFT_MAX}"),
    (dict(coefficient_shift=-1), ValueError, r"coefficient_shift must be in 0\.\."),
    (dict(coefficient_shift=2.0), TypeError, r"coefficient_shift must be an int"),
])
def test_filter_spectra_errors(changes, error, message):
    with pytest.raises(error, match=message):
        spectra_call(**changes)


def test_coefficient_shift_covers_every_spectrum_shift():
    assert blc.COEFFICIENT_SHIFT_MAX == 24 + 18          # the widest width + coefficient
    words = spectra_call(w=np.full((1, 1, 1), 1e-12), coefficient_width=18,
                         coefficient_shift=blc.COEFFICIENT_SHIFT_MAX)
    assert words[0, 0, 0].tolist() == [math.floor(1e-12 * 2 ** 42 + 0.5), 0]


@pytest.mark.parametrize("call, error, message", [
    (lambda: blc.band(8, 3, 0), ValueError, r"dims must be 1 or 2"),
    (lambda: blc.band(64, 2, 99.9), None, None),
    (lambda: blc.band(128, 2, 0), ValueError, r"n must be a power of two in 8\.\.64"),
    (lambda: blc.band(8, 1, 100), ValueError, r"compression_rate must be in \[0, 100\)"),
    (lambda: blc.float_reference(np.ones((1, 8)), np.ones((1, 1, 9)), dims=1, n=8,
                                 compression_rate=0), ValueError, r"taps must be in 1\.\.n"),
    (lambda: blc.float_reference(np.ones((2, 8)), np.ones((1, 1, 3)), dims=1, n=8,
                                 compression_rate=0), ValueError,
     r"x and w must have the same in_channels, got 2 and 1"),
    (lambda: blc.float_reference(np.ones((1, 16)), np.ones((1, 1, 3)), dims=1, n=8,
                                 compression_rate=0), ValueError, r"x must have shape"),
    (lambda: blc.float_reference(np.ones((1, 8, 8)), np.ones((1, 1, 3)), dims=2, n=8,
                                 compression_rate=0), ValueError,
     r"w must have shape \(out_channels, in_channels, taps, taps\) for dims = 2"),
    (lambda: blc.float_reference(np.ones((1, 8), dtype=complex), np.ones((1, 1, 3)),
                                 dims=1, n=8, compression_rate=0), TypeError,
     r"x must hold real numbers"),
    (lambda: blc.direct_reference(np.ones((1, 4)), np.ones((1, 1, 5)), dims=1, taps=5),
     ValueError, r"x's spatial sizes must be at least taps = 5"),
    (lambda: blc.direct_reference(np.ones((1, 8)), np.ones((1, 1, 3)), dims=1, taps=2),
     ValueError, r"w must have shape \(out_channels, in_channels, taps\) with taps = 2"),
    (lambda: blc.direct_reference(np.ones((1, 8)), np.ones((1, 1, 2)), dims=1, taps=0),
     ValueError, r"taps must be >= 1"),
    (lambda: blc.filter_memory_bits(dims=1, n=8, in_channels=0, out_channels=1,
                                    compression_rate=0, coefficient_width=8), ValueError,
     r"in_channels must be in 1\.\.256"),
    (lambda: blc.filter_memory_bits(dims=1, n=8, in_channels=1, out_channels=1,
                                    compression_rate=0, coefficient_width=20), ValueError,
     r"coefficient_width must be in 8\.\.18"),
    (lambda: blc.accumulator_width(16, 16, 257), ValueError,
     r"in_channels must be in 1\.\.256"),
    (lambda: blc.accumulator_width(26, 16, 1), ValueError, r"width must be in 8\.\.24"),
    (lambda: blc.accumulator_width(16, 16.0, 1), TypeError,
     r"coefficient_width must be an int"),
])
def test_other_errors(call, error, message):
    if error is None:
        assert call().kept_bins == 1          # c = 99.9 keeps DC only
    else:
        with pytest.raises(error, match=message):
            call()


def test_inputs_are_not_modified_and_lists_work():
    x = np.arange(16, dtype=np.int64).reshape(2, 8)
    w = np.ones((1, 2, 3))
    x_copy, w_copy = x.copy(), w.copy()
    words = blc.filter_spectra(w.tolist(), n=8, compression_rate=25, coefficient_width=12,
                               coefficient_shift=6)
    words_copy = words.copy()
    y, _ = blc.conv(x.tolist(), words.tolist(), dims=1, n=8, taps=3, compression_rate=25,
                    width=12, twiddle_width=12, coefficient_width=12, spectrum_shift=6)
    assert np.array_equal(y, blc.conv(x, words, dims=1, n=8, taps=3, compression_rate=25,
                                      width=12, twiddle_width=12, coefficient_width=12,
                                      spectrum_shift=6)[0])
    assert np.array_equal(x, x_copy) and np.array_equal(w, w_copy)
    assert np.array_equal(words, words_copy)


def test_fast_enough():
    rng = np.random.default_rng(0)
    x, w = random_case(rng, dims=2, n=64, taps=3, in_channels=4, out_channels=4, tiles=8,
                       width=16)
    start = time.perf_counter()
    run(x, w, dims=2, n=64, taps=3, compression_rate=50, width=16)
    assert time.perf_counter() - start < 2.0
