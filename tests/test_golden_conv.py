"""Golden models of convolution: every method against the direct reference and an
independent loop nest, the integer models bit-exact, band-limiting as published, MEC's
lowered size, direct sparse, argument checks, and the benchmark's outputs."""

import ast
import itertools
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from dnnhw.golden import conv as C


RNG_SEED = 5743
GOLDEN_DIR = Path(C.__file__).parent


# -- independent references ------------------------------------------------------------------

def loop_nest_conv(x, w, stride=1, padding=0, dilation=1, groups=1):
    """Plain-Python loop nest over every output and every tap (independent of dnnhw).

    Works for any number of spatial axes and keeps integers as Python ints (exact).
    """
    x, w = np.asarray(x), np.asarray(w)
    ndim = w.ndim - 2
    unbatched = x.ndim == ndim + 1
    if unbatched:
        x = x[None]
    per_axis = lambda v: (v,) * ndim if isinstance(v, int) else tuple(v)
    stride, padding, dilation = per_axis(stride), per_axis(padding), per_axis(dilation)
    n, c = x.shape[:2]
    k, cg = w.shape[:2]
    kg = k // groups
    kernel = w.shape[2:]
    out_shape = tuple((i + 2 * p - (r - 1) * d - 1) // s + 1 for i, p, r, d, s in
                      zip(x.shape[2:], padding, kernel, dilation, stride))
    integer = np.issubdtype(x.dtype, np.integer)
    out = np.zeros((n, k) + out_shape, dtype=object if integer else np.float64)
    for b, f in itertools.product(range(n), range(k)):
        group = f // kg
        for o in np.ndindex(*out_shape):
            total = 0
            for ch in range(cg):
                for tap in np.ndindex(*kernel):
                    pos = tuple(oi * s + t * d - p for oi, s, t, d, p in
                                zip(o, stride, tap, dilation, padding))
                    if all(0 <= q < size for q, size in zip(pos, x.shape[2:])):
                        xv = x[(b, group * cg + ch) + pos]
                        wv = w[(f, ch) + tap]
                        total += int(xv) * int(wv) if integer else float(xv) * float(wv)
            out[(b, f) + o] = total
    return out[0] if unbatched else out


def relative_error(result, reference):
    """Error relative to the reference's norm (to 1 when the reference is all zeros, as
    when a strided output only sees padding; the operands here are of order 1)."""
    reference = np.asarray(reference, dtype=np.float64)
    return np.linalg.norm(np.asarray(result, dtype=np.float64) - reference) / max(
        np.linalg.norm(reference), 1.0)


# -- float methods against the direct reference -----------------------------------------------

CASES_2D = [  # x shape, w shape, options
    ((2, 3, 7, 9), (4, 3, 3, 3), {}),                                         # odd sizes
    ((1, 4, 10, 11), (5, 4, 3, 3), dict(stride=2, padding=1)),                # stride 2, pad
    ((2, 6, 8, 8), (6, 3, 3, 2), dict(stride=(2, 1), padding=(1, 0), groups=2)),
    ((1, 5, 6, 7), (3, 5, 1, 1), {}),                                         # 1x1
    ((1, 4, 9, 9), (4, 1, 3, 3), dict(padding=2, dilation=2, groups=4)),      # depthwise
    ((3, 2, 5, 5), (2, 2, 5, 5), {}),                                         # kernel == input
    ((2, 3, 6, 5), (2, 3, 2, 3), dict(stride=3, padding=(0, 2), dilation=(1, 2))),
    ((3, 6, 6), (2, 3, 3, 3), dict(padding=1)),                               # no batch axis
]
CASES_3D = [
    ((1, 3, 5, 6, 7), (4, 3, 3, 3, 3), dict(padding=1)),
    ((2, 4, 4, 7, 5), (6, 2, 3, 2, 3), dict(stride=(1, 2, 1), padding=(1, 0, 1), groups=2)),
    ((1, 2, 6, 6, 6), (3, 2, 1, 1, 1), dict(stride=2)),                       # 1x1x1
    ((1, 2, 7, 6, 7), (2, 2, 2, 3, 2), dict(dilation=(2, 1, 2), padding=(1, 1, 0))),
    ((2, 5, 4, 4), (2, 2, 3, 3, 3), dict(padding=1)),                         # no batch axis
]
FLOAT_METHODS_2D = [C.conv2d_im2col, C.conv2d_mec, C.conv2d_fft, C.conv2d_direct_sparse,
                    lambda x, w, **kw: C.conv2d_fft_bandlimited(x, w, compression_rate=0, **kw),
                    lambda x, w, **kw: C.conv2d_fft(x, w, pow2=True, **kw)]
FLOAT_METHODS_3D = [C.conv3d_im2col, C.conv3d_mec, C.conv3d_fft, C.conv3d_direct_sparse,
                    lambda x, w, **kw: C.conv3d_fft_bandlimited(x, w, compression_rate=0, **kw)]
TOLERANCE = 1e-12      # float64, relative to the output's norm


@pytest.mark.parametrize("x_shape, w_shape, options", CASES_2D)
def test_2d_methods_agree_with_direct_and_loop_nest(x_shape, w_shape, options):
    rng = np.random.default_rng(RNG_SEED)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    reference = C.conv2d_direct(x, w, **options)
    assert relative_error(reference, loop_nest_conv(x, w, **options)) < TOLERANCE
    for method in FLOAT_METHODS_2D:
        result = method(x, w, **options)
        assert result.shape == reference.shape
        assert relative_error(result, reference) < TOLERANCE


@pytest.mark.parametrize("x_shape, w_shape, options", CASES_3D)
def test_3d_methods_agree_with_direct_and_loop_nest(x_shape, w_shape, options):
    rng = np.random.default_rng(RNG_SEED + 1)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    reference = C.conv3d_direct(x, w, **options)
    assert relative_error(reference, loop_nest_conv(x, w, **options)) < TOLERANCE
    for method in FLOAT_METHODS_3D:
        result = method(x, w, **options)
        assert result.shape == reference.shape
        assert relative_error(result, reference) < TOLERANCE


def _random_case(rng, ndim):
    """A random valid convolution: any channels, groups, kernel, stride, padding, dilation."""
    groups = int(rng.choice([1, 1, 2, 3]))
    channels = groups * int(rng.integers(1, 4))
    filters = groups * int(rng.integers(1, 4))
    kernel = tuple(int(k) for k in rng.integers(1, 4, ndim))
    dilation = tuple(int(d) for d in rng.integers(1, 3, ndim))
    padding = tuple(int(p) for p in rng.integers(0, 3, ndim))
    stride = tuple(int(s) for s in rng.integers(1, 4, ndim))
    size = tuple(max((k - 1) * d + 1 - 2 * p, 1) + int(rng.integers(0, 7))
                 for k, d, p in zip(kernel, dilation, padding))
    x_shape = (int(rng.integers(1, 3)), channels) + size
    w_shape = (filters, channels // groups) + kernel
    return x_shape, w_shape, dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


@pytest.mark.parametrize("ndim", [2, 3])
def test_random_shapes_all_methods_agree(ndim):
    rng = np.random.default_rng(RNG_SEED + ndim)
    methods = FLOAT_METHODS_2D if ndim == 2 else FLOAT_METHODS_3D
    direct = C.conv2d_direct if ndim == 2 else C.conv3d_direct
    for _ in range(25 if ndim == 2 else 12):
        x_shape, w_shape, options = _random_case(rng, ndim)
        x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
        reference = direct(x, w, **options)
        for method in methods:
            assert relative_error(method(x, w, **options), reference) < TOLERANCE, (
                x_shape, w_shape, options)


def test_float32_operands_compute_in_float32():
    rng = np.random.default_rng(RNG_SEED)
    x = rng.standard_normal((1, 8, 12, 12)).astype(np.float32)
    w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
    reference = loop_nest_conv(x, w, padding=1)
    for method in [C.conv2d_direct] + FLOAT_METHODS_2D:
        result = method(x, w, padding=1)
        assert result.dtype == np.float32
        assert relative_error(result, reference) < 1e-5
    assert C.conv2d_direct(x, w.astype(np.float64)).dtype == np.float64


def test_1d_fft_variants_agree_with_direct():
    rng = np.random.default_rng(RNG_SEED)
    x, w = rng.standard_normal((2, 4, 23)), rng.standard_normal((6, 2, 5))
    options = dict(stride=2, padding=3, dilation=2, groups=2)
    reference = C.conv1d_direct(x, w, **options)
    assert relative_error(reference, loop_nest_conv(x, w, **options)) < TOLERANCE
    assert relative_error(C.conv1d_fft(x, w, **options), reference) < TOLERANCE
    assert relative_error(C.conv1d_fft_bandlimited(x, w, compression_rate=0, **options),
                          reference) < TOLERANCE


# -- integer (fixed-point) models --------------------------------------------------------------

INT_CASES = [
    ((2, 3, 7, 9), (4, 3, 3, 3), dict(padding=1)),
    ((1, 4, 9, 8), (4, 2, 3, 3), dict(stride=2, padding=(1, 2), dilation=(2, 1), groups=2)),
    ((3, 5, 5), (2, 3, 1, 1), {}),
]


@pytest.mark.parametrize("dtype", [np.int8, np.int16])
@pytest.mark.parametrize("x_shape, w_shape, options", INT_CASES)
def test_integer_models_bit_exact(dtype, x_shape, w_shape, options):
    rng = np.random.default_rng(RNG_SEED)
    info = np.iinfo(dtype)
    x = rng.integers(info.min, info.max, x_shape, endpoint=True).astype(dtype)
    w = rng.integers(info.min, info.max, w_shape, endpoint=True).astype(dtype)
    direct = C.conv2d_direct_int(x, w, **options)
    im2col = C.conv2d_im2col_int(x, w, **options)
    assert direct.dtype == im2col.dtype == np.int64
    np.testing.assert_array_equal(direct, im2col)
    np.testing.assert_array_equal(direct, loop_nest_conv(x, w, **options).astype(np.int64))
    # Small integers are exact in float64 too: an independent floating check.
    np.testing.assert_array_equal(direct, C.conv2d_direct(x.astype(np.float64),
                                                          w.astype(np.float64), **options))


def test_integer_extremes_and_int64_fallback():
    # All -32768: every product is 2**30, the exact sum needs 35 bits.
    x = np.full((1, 16, 5, 5), -32768, dtype=np.int16)
    w = np.full((2, 16, 3, 3), -32768, dtype=np.int16)
    expected = 16 * 9 * (1 << 30)
    assert (C.conv2d_direct_int(x, w) == expected).all()
    assert (C.conv2d_im2col_int(x, w) == expected).all()
    # Values near 2**28: partial sums pass 2**53, so im2col must multiply in int64.
    rng = np.random.default_rng(RNG_SEED)
    x = rng.integers(-(1 << 28), 1 << 28, (1, 3, 6, 6))
    w = rng.integers(-(1 << 28), 1 << 28, (2, 3, 2, 2))
    expected = loop_nest_conv(x, w, padding=1).astype(np.int64)
    np.testing.assert_array_equal(C.conv2d_direct_int(x, w, padding=1), expected)
    np.testing.assert_array_equal(C.conv2d_im2col_int(x, w, padding=1), expected)


def test_integer_3d_models_bit_exact():
    rng = np.random.default_rng(RNG_SEED)
    x = rng.integers(-128, 128, (1, 4, 4, 5, 6)).astype(np.int8)
    w = rng.integers(-128, 128, (4, 2, 3, 3, 2)).astype(np.int8)
    options = dict(stride=(1, 2, 1), padding=1, groups=2)
    expected = loop_nest_conv(x, w, **options).astype(np.int64)
    np.testing.assert_array_equal(C.conv3d_direct_int(x, w, **options), expected)
    np.testing.assert_array_equal(C.conv3d_im2col_int(x, w, **options), expected)


def test_integer_models_reject_floats_and_overflow():
    x, w = np.ones((1, 2, 4, 4)), np.ones((1, 2, 3, 3), dtype=np.int8)
    for method in (C.conv2d_direct_int, C.conv2d_im2col_int):
        with pytest.raises(TypeError, match=r"x must have an integer dtype .* got dtype float64"):
            method(x, w)
        with pytest.raises(TypeError, match=r"w must have an integer dtype .* got dtype float32"):
            method(w.astype(np.int8)[:, :, :2, :2].repeat(2, 2).repeat(2, 3), w.astype(np.float32))
        with pytest.raises(OverflowError, match="beyond the int64 accumulator"):
            method(np.full((1, 2, 4, 4), 1 << 62, dtype=np.int64), np.full((1, 2, 3, 3), 4))


def test_requantize_rounds_half_up_and_saturates():
    acc = np.array([5, 6, 7, -5, -6, -7, 2, -2, 0])
    # shift 2 divides by 4: 1.25, 1.5, 1.75, -1.25, -1.5, -1.75, 0.5, -0.5, 0
    np.testing.assert_array_equal(C.requantize(acc, shift=2, out_bits=8),
                                  [1, 2, 2, -1, -1, -2, 1, 0, 0])
    np.testing.assert_array_equal(C.requantize(acc, shift=2, out_bits=8, rounding="floor"),
                                  [1, 1, 1, -2, -2, -2, 0, -1, 0])
    np.testing.assert_array_equal(C.requantize(np.array([1000, -1000, 127, -128, 128, -129]),
                                               shift=0, out_bits=8),
                                  [127, -128, 127, -128, 127, -128])
    np.testing.assert_array_equal(C.requantize(np.array([1 << 40]), shift=20, out_bits=16),
                                  [32767])
    assert C.requantize(np.array([3], dtype=np.int8), shift=1, out_bits=4).dtype == np.int64
    # Against the definition on random accumulators of a real conv.
    rng = np.random.default_rng(RNG_SEED)
    acc = C.conv2d_direct_int(rng.integers(-128, 128, (1, 8, 6, 6)).astype(np.int8),
                              rng.integers(-128, 128, (4, 8, 3, 3)).astype(np.int8))
    expected = np.clip(np.floor(acc / 2 ** 7 + 0.5), -128, 127)
    np.testing.assert_array_equal(C.requantize(acc, shift=7, out_bits=8), expected)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(shift=-1, out_bits=8), ValueError, r"shift must be in \[0, 62\], got -1"),
    (dict(shift=63, out_bits=8), ValueError, r"shift must be in \[0, 62\], got 63"),
    (dict(shift=1, out_bits=1), ValueError, r"out_bits must be in \[2, 64\], got 1"),
    (dict(shift=1, out_bits=8, rounding="even"), ValueError,
     r"rounding must be one of \('half_up', 'floor'\), got 'even'"),
    (dict(shift=1.0, out_bits=8), TypeError, r"shift must be an int, got 1.0"),
])
def test_requantize_argument_checks(kwargs, error, message):
    with pytest.raises(error, match=message):
        C.requantize(np.array([1]), **kwargs)


def test_requantize_rejects_float_accumulators():
    with pytest.raises(TypeError, match=r"acc must have an integer dtype .* got dtype float64"):
        C.requantize(np.array([1.5]), shift=1, out_bits=8)


# -- band-limited FFT convolution --------------------------------------------------------------

def published_block(length, compression_rate):
    """n of the published (2n + 1) x (n + 1) block for a square FFT of side ``length``."""
    return int((length // 2 + 1) * math.sqrt((100 - compression_rate) / 100)) - 1


@pytest.mark.parametrize("length", [24, 25, 32])
@pytest.mark.parametrize("rate", [5, 10, 21, 30, 50, 67.5, 75, 90, 95])
def test_band_limit_mask_is_the_published_block(length, rate):
    n = published_block(length, rate)
    assert n >= 0
    mask = C.band_limit_mask((length, length), rate)
    assert mask.shape == (length, length // 2 + 1)
    expected = np.zeros_like(mask)
    expected[:n + 1, :n + 1] = True
    if n > 0:
        expected[-n:, :n + 1] = True
    np.testing.assert_array_equal(mask, expected)
    assert mask.sum() == (2 * n + 1) * (n + 1)


def test_band_limit_mask_keeps_everything_at_zero_and_3d_block():
    assert C.band_limit_mask((25, 25), 0).all()
    assert C.band_limit_mask((20, 31), 0).all()      # non-square: every axis cut on its own
    n = published_block(16, 50)
    assert C.band_limit_mask((16, 16, 16), 50).sum() == (2 * n + 1) ** 2 * (n + 1)


def test_bandlimited_output_matches_masked_spectra_and_stays_real():
    rng = np.random.default_rng(RNG_SEED)
    x, w = rng.standard_normal((1, 3, 12, 12)), rng.standard_normal((2, 3, 3, 3))
    result, stats = C.conv2d_fft_bandlimited(x, w, compression_rate=50, padding=1,
                                             return_stats=True)
    fft_shape = stats.fft_shape
    assert fft_shape == (14 + 12 - 1,) * 2        # padded + max(out, kernel) - 1
    n = published_block(fft_shape[-1], 50)
    assert stats.kept_coefficients == (2 * n + 1) * (n + 1)
    assert stats.spectrum_coefficients == fft_shape[0] * (fft_shape[1] // 2 + 1)
    # Independent: full NumPy FFTs of input and filter, both masked with the block.
    mask = C.band_limit_mask(fft_shape, 50)
    xs = np.fft.rfft2(np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))), s=fft_shape) * mask
    ws = np.fft.rfft2(w, s=fft_shape) * mask
    spectrum = np.einsum("nchw,kchw->nkhw", xs, np.conj(ws))
    expected = np.fft.irfft2(spectrum, s=fft_shape)[..., :12, :12]
    assert relative_error(result, expected) < TOLERANCE
    # Conjugate symmetry: the masked spectrum is the spectrum of a real signal.
    np.testing.assert_allclose(np.fft.rfft2(np.fft.irfft2(xs, s=fft_shape), s=fft_shape), xs,
                               atol=1e-9)
    # Kept energy, by Parseval on the masked input.
    xpad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    kept = np.sum(np.fft.irfft2(xs, s=fft_shape) ** 2) / np.sum(xpad ** 2)
    assert stats.kept_energy_input == pytest.approx(kept, rel=1e-9)


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_bandlimited_error_grows_and_energy_falls_with_rate(ndim):
    rng = np.random.default_rng(RNG_SEED)
    size = {1: (64,), 2: (16, 16), 3: (8, 8, 8)}[ndim]
    x = rng.standard_normal((1, 3) + size)
    w = rng.standard_normal((4, 3) + (3,) * ndim)
    function = {1: C.conv1d_fft_bandlimited, 2: C.conv2d_fft_bandlimited,
                3: C.conv3d_fft_bandlimited}[ndim]
    exact = {1: C.conv1d_fft, 2: C.conv2d_fft, 3: C.conv3d_fft}[ndim](x, w, padding=1)
    errors, input_energy, filter_energy, kept = [], [], [], []
    for rate in range(0, 100, 10):
        result, stats = function(x, w, compression_rate=rate, padding=1, return_stats=True)
        errors.append(relative_error(result, exact))
        input_energy.append(stats.kept_energy_input)
        filter_energy.append(stats.kept_energy_filter)
        kept.append(stats.kept_coefficients)
    assert errors[0] < TOLERANCE and input_energy[0] == pytest.approx(1)
    assert all(b >= a for a, b in zip(errors, errors[1:])), errors
    assert all(b <= a for a, b in zip(input_energy, input_energy[1:])), input_energy
    assert all(b <= a for a, b in zip(filter_energy, filter_energy[1:])), filter_energy
    assert all(b <= a for a, b in zip(kept, kept[1:])), kept
    assert errors[-1] > 2 * errors[1] > 0 and input_energy[-1] < 0.5


@pytest.mark.parametrize("length", [40, 41])
def test_1d_band_limit_drops_the_published_count(length):
    half = length // 2 + 1
    assert C.band_limit_mask((length,), 0).sum() == half
    for rate in (1, 10, 33, 50, 80, 99):
        mask = C.band_limit_mask((length,), rate)
        dropped = min(int(half * rate / 100) + 1, half - 1)   # at least one coefficient stays
        assert mask.sum() == half - dropped
        assert mask[:half - dropped].all()          # the highest frequencies go first


# -- MEC lowering -------------------------------------------------------------------------------

@pytest.mark.parametrize("x_shape, w_shape, options", [
    ((1, 3, 10, 12), (4, 3, 3, 3), {}),
    ((1, 8, 14, 14), (4, 8, 3, 3), dict(padding=1)),
    ((2, 4, 15, 9), (2, 4, 5, 3), dict(stride=2, padding=(2, 1))),
    ((1, 6, 9, 9), (6, 2, 3, 3), dict(padding=1, dilation=2, groups=3)),
])
def test_mec_lowered_size(x_shape, w_shape, options):
    rng = np.random.default_rng(RNG_SEED)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    result, stats = C.conv2d_mec(x, w, return_stats=True, **options)
    _, im2col_stats = C.conv2d_im2col(x, w, return_stats=True, **options)
    out_h, out_w = result.shape[-2:]
    padding = options.get("padding", 0)
    pad_h = padding if isinstance(padding, int) else padding[0]
    channels, (kernel_h, kernel_w) = x_shape[1], w_shape[2:]
    assert stats.lowered_elements == out_w * (x_shape[2] + 2 * pad_h) * kernel_w * channels
    assert im2col_stats.lowered_elements == out_h * out_w * kernel_h * kernel_w * channels
    assert stats.im2col_lowered_elements == im2col_stats.lowered_elements
    assert stats.lowered_ratio_to_im2col == pytest.approx(
        stats.lowered_elements / im2col_stats.lowered_elements)
    sizes = C.lowering_sizes(x_shape, w_shape, **options)
    assert (sizes.mec, sizes.im2col) == (stats.lowered_elements, im2col_stats.lowered_elements)
    assert stats.workspace_bytes < im2col_stats.workspace_bytes


def test_mec_saves_about_kernel_over_stride_on_large_images():
    sizes = C.lowering_sizes((1, 64, 224, 224), (64, 64, 3, 3), padding=1)
    assert sizes.mec_to_im2col == pytest.approx(1 / 3, rel=0.02)
    # Exactly H_padded / (out_H * R): 228 / (55 * 11), close to stride / R = 4 / 11.
    sizes = C.lowering_sizes((1, 3, 224, 224), (64, 3, 11, 11), stride=4, padding=2)
    assert sizes.mec_to_im2col == pytest.approx(228 / (55 * 11))
    assert sizes.mec_to_im2col == pytest.approx(4 / 11, rel=0.05)


def test_mec_3d_lowered_size():
    rng = np.random.default_rng(RNG_SEED)
    x, w = rng.standard_normal((1, 3, 6, 8, 9)), rng.standard_normal((2, 3, 3, 3, 3))
    result, stats = C.conv3d_mec(x, w, padding=1, return_stats=True)
    assert stats.lowered_elements == result.shape[-1] * 8 * 10 * 3 * 3


# -- direct sparse convolution ------------------------------------------------------------------

@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9, 1.0])
def test_direct_sparse_gives_the_dense_result_and_counts_its_macs(sparsity):
    rng = np.random.default_rng(RNG_SEED)
    for x_shape, w_shape, options, dense, sparse in [
        ((2, 4, 9, 10), (6, 2, 3, 3), dict(stride=2, padding=1, dilation=(1, 2), groups=2),
         C.conv2d_direct, C.conv2d_direct_sparse),
        ((1, 3, 5, 6, 7), (4, 3, 3, 3, 2), dict(padding=1), C.conv3d_direct,
         C.conv3d_direct_sparse),
    ]:
        x = rng.standard_normal(x_shape)
        w = C.prune_by_magnitude(rng.standard_normal(w_shape), sparsity)
        assert np.count_nonzero(w) == w.size - round(sparsity * w.size)
        result, stats = sparse(x, w, return_stats=True, **options)
        expected = dense(x, w, **options)
        np.testing.assert_allclose(result, expected, rtol=1e-12, atol=1e-12)
        positions = math.prod(expected.shape[2:])
        assert stats.macs == np.count_nonzero(w) * x_shape[0] * positions


def test_direct_sparse_macs_fall_with_sparsity():
    rng = np.random.default_rng(RNG_SEED)
    x, w = rng.standard_normal((1, 8, 12, 12)), rng.standard_normal((8, 8, 3, 3))
    macs = [C.conv2d_direct_sparse(x, C.prune_by_magnitude(w, s), padding=1,
                                   return_stats=True)[1].macs for s in (0, 0.25, 0.5, 0.75, 0.9)]
    assert macs[0] == C.conv2d_direct(x, w, padding=1, return_stats=True)[1].macs
    assert all(b < a for a, b in zip(macs, macs[1:]))


def test_sparse_offsets_are_pre_encoded_into_the_padded_input():
    w = np.zeros((2, 3, 3, 3))
    w[1, 2, 1, 2] = 5.0
    w[0, 0, 0, 1] = -1.0
    encoded = C.encode_sparse_filters(w, (3, 9, 10), dilation=2)
    padded_h, padded_w = 9, 10
    assert encoded.row_ptr.tolist() == [0, 1, 2]
    assert encoded.values.tolist() == [-1.0, 5.0]
    # c * (H+P)(W+P) + r * dilation * (W+P) + s * dilation
    assert encoded.offsets.tolist() == [0 + 0 + 1 * 2,
                                        2 * padded_h * padded_w + 1 * 2 * padded_w + 2 * 2]
    assert encoded.density == pytest.approx(2 / w.size)
    # Pre-encoded filters are accepted, and checked against the input they were made for.
    rng = np.random.default_rng(RNG_SEED)
    x = rng.standard_normal((1, 3, 7, 8))
    np.testing.assert_allclose(C.conv2d_direct_sparse(x, encoded, padding=1),
                               C.conv2d_direct(x, w, padding=1, dilation=2), atol=1e-12)
    with pytest.raises(ValueError, match=r"w was encoded for padded input images of shape "
                                         r"\(3, 9, 10\), but x with padding=0 gives \(3, 7, 8\)"):
        C.conv2d_direct_sparse(x, encoded)


# -- argument checks ------------------------------------------------------------------------------

def _bandlimited(x, w, **kw):
    return C.conv2d_fft_bandlimited(x, w, compression_rate=10, **kw)


ALL_2D_METHODS = [C.conv2d_direct, C.conv2d_im2col, C.conv2d_mec, C.conv2d_fft, _bandlimited,
                  C.conv2d_direct_sparse, C.conv2d_direct_int, C.conv2d_im2col_int]

INVALID = [  # x shape, w shape, options, error, message
    ((1, 3, 8, 8), (4, 2, 3, 3), {}, ValueError,
     r"w.shape\[1\] must equal x channels / groups = 3/1 = 3, got w.shape\[1\]=2"),
    ((1, 1, 4, 4), (1, 1, 7, 7), dict(padding=1), ValueError,
     r"kernel must fit the padded input along H: need \(kernel-1\)\*dilation\+1 <= H \+ "
     r"2\*padding, got kernel 7 with dilation 1 \(span 7\) > 4 \+ 2\*1 = 6"),
    ((1, 1, 8, 4), (1, 1, 3, 3), dict(dilation=(1, 2)), ValueError,
     r"kernel must fit the padded input along W: .* got kernel 3 with dilation 2 \(span 5\) "
     r"> 4 \+ 2\*0 = 4"),
    ((1, 2, 8, 8), (2, 2, 3, 3), dict(padding=-1), ValueError, r"padding must be >= 0, got -1"),
    ((1, 2, 8, 8), (2, 2, 3, 3), dict(stride=0), ValueError, r"stride must be >= 1, got 0"),
    ((1, 2, 8, 8), (2, 2, 3, 3), dict(stride=(1, -2)), ValueError,
     r"stride must be >= 1, got \(1, -2\)"),
    ((1, 2, 8, 8), (2, 2, 3, 3), dict(dilation=0), ValueError, r"dilation must be >= 1, got 0"),
    ((1, 2, 8, 8), (2, 2, 3, 3), dict(stride=(1, 1, 1)), ValueError,
     r"stride must be an int or have 2 entries \(one per spatial axis \('H', 'W'\)\), "
     r"got \(1, 1, 1\)"),
    ((1, 2, 8, 8), (2, 2, 3, 3), dict(stride=1.5), TypeError,
     r"stride must be an int or a tuple of 2 ints, got 1.5"),
    ((1, 3, 8, 8), (4, 1, 3, 3), dict(groups=2), ValueError,
     r"groups must divide the input channels C=3, got groups=2"),
    ((1, 4, 8, 8), (3, 2, 3, 3), dict(groups=2), ValueError,
     r"groups must divide the number of filters K=3, got groups=2"),
    ((1, 4, 8, 8), (4, 4, 3, 3), dict(groups=0), ValueError, r"groups must be >= 1, got 0"),
    ((1, 1, 3, 8, 8), (4, 1, 3, 3), {}, ValueError,
     r"x must have shape \(N, C, H, W\) or \(C, H, W\), got shape \(1, 1, 3, 8, 8\)"),
    ((1, 2, 8, 8), (4, 2, 3), {}, ValueError,
     r"w must have shape \(K, C/groups, R, S\), got shape \(4, 2, 3\)"),
    ((1, 0, 8, 8), (4, 0, 3, 3), {}, ValueError, r"x dimensions must all be >= 1"),
]


@pytest.mark.parametrize("method", ALL_2D_METHODS)
@pytest.mark.parametrize("x_shape, w_shape, options, error, message", INVALID)
def test_invalid_arguments_name_the_argument_and_range(method, x_shape, w_shape, options, error,
                                                       message):
    x, w = np.ones(x_shape, dtype=np.int8), np.ones(w_shape, dtype=np.int8)
    with pytest.raises(error, match=message):
        method(x, w, **options)


@pytest.mark.parametrize("rate, error", [(-1, ValueError), (100, ValueError), (150.5, ValueError),
                                         ("50", TypeError), (True, TypeError)])
@pytest.mark.parametrize("function", [C.conv1d_fft_bandlimited, C.conv2d_fft_bandlimited,
                                      C.conv3d_fft_bandlimited])
def test_compression_rate_must_be_in_range(rate, error, function):
    ndim = {C.conv1d_fft_bandlimited: 1, C.conv2d_fft_bandlimited: 2}.get(function, 3)
    x, w = np.ones((1, 1) + (6,) * ndim), np.ones((1, 1) + (3,) * ndim)
    with pytest.raises(error, match=r"compression_rate must be (a number )?in \[0, 100\), got "):
        function(x, w, compression_rate=rate)
    with pytest.raises(ValueError, match=r"compression_rate must be in \[0, 100\), got 100"):
        C.band_limit_mask((8,) * ndim, 100)


def test_non_real_inputs_are_rejected():
    with pytest.raises(TypeError, match=r"x must be a real numeric array .* got dtype complex128"):
        C.conv2d_direct(np.ones((1, 1, 4, 4), dtype=complex), np.ones((1, 1, 3, 3)))
    with pytest.raises(TypeError, match=r"w must be a real numeric array .* got dtype bool"):
        C.conv2d_im2col(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3), dtype=bool))
    with pytest.raises(ValueError, match=r"sparsity must be in \[0, 1\], got 1.5"):
        C.prune_by_magnitude(np.ones(4), 1.5)


def test_3d_and_1d_shape_messages():
    with pytest.raises(ValueError, match=r"x must have shape \(N, C, D, H, W\) or \(C, D, H, W\)"):
        C.conv3d_direct(np.ones((1, 4, 4)), np.ones((1, 1, 3, 3, 3)))
    with pytest.raises(ValueError, match=r"kernel must fit the padded input along D"):
        C.conv3d_im2col(np.ones((1, 1, 2, 4, 4)), np.ones((1, 1, 3, 3, 3)))
    with pytest.raises(ValueError, match=r"w must have shape \(K, C/groups, S\)"):
        C.conv1d_fft(np.ones((1, 1, 8)), np.ones((1, 1, 3, 3)))


# -- workspace statistics -------------------------------------------------------------------------

def test_every_method_reports_its_workspace():
    rng = np.random.default_rng(RNG_SEED)
    x = rng.standard_normal((1, 16, 20, 20)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    report = {}
    for method in [C.conv2d_direct, C.conv2d_im2col, C.conv2d_mec, C.conv2d_fft, _bandlimited,
                   C.conv2d_direct_sparse]:
        _, stats = method(x, w, padding=1, return_stats=True)
        assert isinstance(stats, C.ConvStats) and stats.workspace_bytes > 0
        report[stats.method] = stats.workspace_bytes
    padded = 16 * 22 * 22 * 4
    assert report["im2col"] == padded + 16 * 9 * 400 * 4          # pad copy + lowered matrix
    # pad copy + compact lowering + the filters cut into per-row-block matrices
    assert report["mec"] == padded + 20 * 22 * 3 * 16 * 4 + w.nbytes
    assert report["fft_bandlimited"] < report["fft"]
    # Unpadded float32 input of the compute dtype: direct allocates only its product buffer.
    _, stats = C.conv2d_direct(x, w, return_stats=True)
    assert stats.workspace_bytes == 16 * 18 * 18 * 4


# -- im2col tiles ---------------------------------------------------------------------------------

@pytest.mark.parametrize("tile_bytes", [1, 300, 2000])
@pytest.mark.parametrize("ndim", [2, 3])
def test_im2col_in_small_tiles_agrees_with_direct(monkeypatch, tile_bytes, ndim):
    """Tiny tiles force every tiling (runs of rows, of single positions, across leading
    axes) and the phase-split lowering of W strides, float and integer."""
    from dnnhw.golden import conv_dense

    monkeypatch.setattr(conv_dense, "IM2COL_TILE_BYTES", tile_bytes)
    monkeypatch.setattr(conv_dense, "IM2COL_MIN_TILE_POSITIONS", 1)
    rng = np.random.default_rng(RNG_SEED + 10 * ndim + tile_bytes)
    im2col, im2col_int, direct, direct_int = (
        (C.conv2d_im2col, C.conv2d_im2col_int, C.conv2d_direct, C.conv2d_direct_int)
        if ndim == 2 else
        (C.conv3d_im2col, C.conv3d_im2col_int, C.conv3d_direct, C.conv3d_direct_int))
    cases = [_random_case(rng, ndim) for _ in range(12 if ndim == 2 else 6)]
    # W strides and dilations that share phases in every way (gcd 1, 2, stride | dilation),
    # with enough taps along W (>= 2 * stride) for the phase-split lowering.
    kernel = (2,) * (ndim - 1)
    for stride, dilation in [(4, 1), (2, 2), (3, 2), (4, 2), (2, 3)]:
        cases.append(((2, 4) + (6,) * (ndim - 1) + (30,), (4, 2) + kernel + (9,),
                      dict(stride=(1,) * (ndim - 1) + (stride,), dilation=(1,) * (ndim - 1)
                           + (dilation,), padding=(1,) * (ndim - 1) + (2,), groups=2)))
    for x_shape, w_shape, options in cases:
        x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
        assert relative_error(im2col(x, w, **options), direct(x, w, **options)) < TOLERANCE, (
            x_shape, w_shape, options)
        xi = rng.integers(-128, 128, x_shape, dtype=np.int8)
        wi = rng.integers(-128, 128, w_shape, dtype=np.int8)
        np.testing.assert_array_equal(im2col_int(xi, wi, **options),
                                      direct_int(xi, wi, **options))


def test_im2col_tiles_large_layers_and_reports_the_tile_buffer():
    from dnnhw.golden import conv_dense

    # VGG-16 conv1_2: 64 * 9 rows x 224 * 224 positions lowered, in runs of whole rows.
    geometry = C.conv_geometry((1, 64, 224, 224), (64, 64, 3, 3), spatial_ndim=2, padding=1)
    axis, chunk, positions, tiles = conv_dense.im2col_tiling(geometry, 4)
    assert (axis, positions) == (0, chunk * 224)
    assert positions * 64 * 9 * 4 <= conv_dense.IM2COL_TILE_BYTES
    assert tiles == -(-224 // chunk) and tiles > 1
    # A small layer is one tile: the whole lowered matrix.
    small = C.conv_geometry((1, 16, 20, 20), (16, 16, 3, 3), spatial_ndim=2, padding=1)
    assert conv_dense.im2col_tiling(small, 4) == (0, 20, 400, 1)
    # A deep layer keeps at least IM2COL_MIN_TILE_POSITIONS positions per GEMM.
    deep = C.conv_geometry((1, 512, 28, 28), (512, 512, 3, 3), spatial_ndim=2, padding=1)
    assert conv_dense.im2col_tiling(deep, 4)[2] >= conv_dense.IM2COL_MIN_TILE_POSITIONS

    rng = np.random.default_rng(RNG_SEED)
    x = rng.standard_normal((1, 32, 96, 96), dtype=np.float32)
    w = rng.standard_normal((16, 32, 3, 3), dtype=np.float32)
    result, stats = C.conv2d_im2col(x, w, padding=1, return_stats=True)
    assert result.dtype == np.float32
    assert relative_error(result, C.conv2d_direct(x.astype(np.float64), w.astype(np.float64),
                                                  padding=1)) < 1e-5
    geometry = C.conv_geometry(x.shape, w.shape, spatial_ndim=2, padding=1)
    _, _, positions, tiles = conv_dense.im2col_tiling(geometry, 4)
    assert tiles > 1
    assert stats.workspace_bytes == 32 * 98 * 98 * 4 + 32 * 9 * positions * 4
    assert stats.lowered_elements == 32 * 9 * 96 * 96          # the whole matrix, in tiles
    # A W stride adds the phase-split copy of the padded image (AlexNet conv1's shape).
    x = rng.standard_normal((1, 3, 224, 224), dtype=np.float32)
    w = rng.standard_normal((64, 3, 11, 11), dtype=np.float32)
    _, stats = C.conv2d_im2col(x, w, stride=4, padding=2, return_stats=True)
    geometry = C.conv_geometry(x.shape, w.shape, spatial_ndim=2, stride=4, padding=2)
    _, _, positions, _ = conv_dense.im2col_tiling(geometry, 4)
    assert stats.workspace_bytes == (3 * 228 * 228 * 4 + 3 * 121 * positions * 4
                                     + 3 * 228 * 228 * 4)     # pad, tile, phases (228 = 4 * 57)


# -- module rules and the benchmark ---------------------------------------------------------------

def test_golden_conv_modules_import_only_numpy_the_standard_library_and_the_spec():
    # dnnhw.spec holds the ranges and rules shared with the rtl (stdlib only, test_spec).
    allowed = set(sys.stdlib_module_names) | {"numpy"}
    modules = sorted(GOLDEN_DIR.glob("conv*.py"))
    assert GOLDEN_DIR / "conv.py" in modules
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:              # relative: must stay among the conv modules
                    assert (node.module or "").startswith("conv"), (path.name, node.module)
                    continue
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed or name.startswith("dnnhw.spec."), \
                    (path.name, name)


def test_benchmark_quick_writes_its_reports(tmp_path):
    from dnnhw.bench.conv import main

    assert main(["--quick", "--out", str(tmp_path)]) == 0
    for name in ("conv_bench.md", "conv_bench.json", "conv_bandlimited.png",
                 "conv_mec_memory.md"):
        assert (tmp_path / name).stat().st_size > 0, name
    report = json.loads((tmp_path / "conv_bench.json").read_text())
    methods = {record["method"] for record in report["records"]}
    assert {"direct", "im2col", "mec", "fft", "fft-bl50", "sparse50%", "sparse90%"} <= methods
    timed = [r for r in report["records"] if "seconds" in r]
    assert timed and all(r["workspace_bytes"] >= 0 for r in timed)
    assert all(r["relative_error"] < 1e-4 for r in timed if not r["method"].startswith("fft-bl"))
    assert report["bandlimited_sweep"][0]["relative_error_white"] < 1e-9
    assert (tmp_path / "conv_bandlimited.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "MEC / im2col" in (tmp_path / "conv_mec_memory.md").read_text()
    markdown = (tmp_path / "conv_bench.md").read_text()
    assert ("torch is not installed" in markdown) == (report["meta"]["torch"] is None)


def test_benchmark_torch_column_with_a_stand_in_torch(tmp_path, monkeypatch):
    """torch is optional and absent here: a stand-in with torch's API exercises the column."""
    import contextlib
    import types

    from dnnhw.bench import conv as bench_conv

    functional = types.SimpleNamespace(
        conv2d=lambda x, w, stride, padding: C.conv2d_im2col(x, w, stride=stride, padding=padding),
        conv3d=lambda x, w, stride, padding: C.conv3d_im2col(x, w, stride=stride, padding=padding))
    fake_torch = types.SimpleNamespace(__version__="0.0-standin", from_numpy=lambda a: a,
                                       no_grad=contextlib.nullcontext)
    monkeypatch.setattr(bench_conv, "_load_torch", lambda: (fake_torch, functional))
    # A budget no method can exceed, even on a loaded machine: a skipped method has no
    # torch ratio, and this test is about the column, not the budget.
    assert bench_conv.main(["--quick", "--layers", "resnet18-layer4,c3d-*", "--methods",
                            "im2col,mec", "--budget", "1000", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "conv_bench.json").read_text())
    assert report["meta"]["torch"] == "0.0-standin"
    assert {r["layer"] for r in report["records"]} == {"resnet18-layer4", "c3d-conv1"}
    assert all(r["ratio_to_torch"] > 0 for r in report["records"])
    assert "torch ms" in (tmp_path / "conv_bench.md").read_text()
