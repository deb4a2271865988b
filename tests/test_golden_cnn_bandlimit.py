"""The band-limited FFT conv layer and CNN (``dnnhw.golden.cnn_bandlimit``): c = 0 against
direct convolution, c > 0 against ``conv2d_fft_bandlimited``, the kept set against
``band_limit_keep``, the gradients against finite differences and as the exact adjoint,
the sharded gradients, the spectra memory against c, and the argument checks."""

import numpy as np
import pytest

from dnnhw.golden import cnn
from dnnhw.golden.cnn_bandlimit import BandLimitedCNN, BandLimitedConv2d, plan
from dnnhw.golden.conv import conv2d_direct, conv2d_fft_bandlimited
from dnnhw.golden.conv_common import conv_geometry
from dnnhw.golden.conv_fft import band_limit_keep, fft_shape_for
from dnnhw.workloads import digits


RATES = (0, 25, 50, 75, 90)
# (input H x W, kernel, stride, padding): the CNN's two layers, odd and non-square shapes.
GEOMETRIES = [((8, 8), 3, 1, 1), ((8, 8), 3, 2, 1), ((7, 6), 3, (2, 1), 1),
              ((9, 5), (5, 3), 1, (2, 0))]


@pytest.fixture(scope="module")
def data():
    return digits()


def _arrays(rng, layer, n=3, c=2, k=4):
    x = rng.standard_normal((n, c) + layer.in_shape)
    w = rng.standard_normal((k, c) + layer.kernel)
    b = rng.standard_normal(k)
    return x, w, b


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_rate_zero_is_direct_convolution(geometry):
    shape, kernel, stride, padding = geometry
    layer = BandLimitedConv2d(shape, kernel, stride=stride, padding=padding)
    x, w, b = _arrays(np.random.default_rng(0), layer)
    out, _ = layer.forward(x, w, b)
    direct = conv2d_direct(x, w, stride=stride, padding=padding) + b[None, :, None, None]
    assert out.shape == direct.shape
    assert np.max(np.abs(out - direct)) < 1e-12 * np.max(np.abs(direct))


def test_rate_zero_cnn_is_the_im2col_cnn(data):
    plain, banded = cnn.CNN(channels=(3, 4)), BandLimitedCNN(channels=(3, 4))
    rng = np.random.default_rng(1)
    # Non-zero biases keep the ReLUs off their kink: a zero pixel with a zero bias is
    # exactly 0 by im2col and 1e-17 either way by FFT.
    params = {k: v + 0.1 * rng.standard_normal(v.shape) for k, v in plain.init(rng).items()}
    x, y = data.x_train[:8], data.y_train[:8]
    assert np.allclose(banded.logits(params, x), plain.logits(params, x), rtol=0, atol=1e-12)
    a, b = plain.gradients(params, x, y), banded.gradients(params, x, y)
    assert a.loss == pytest.approx(b.loss, rel=1e-12)
    for name in params:
        assert np.allclose(a.grads[name], b.grads[name], rtol=1e-9, atol=1e-12), name


@pytest.mark.parametrize("pow2", [False, True])
@pytest.mark.parametrize("geometry", GEOMETRIES[:3])
def test_band_limited_forward_is_the_golden_fft_convolution(geometry, pow2):
    shape, kernel, stride, padding = geometry
    rng = np.random.default_rng(2)
    for rate in RATES[1:]:
        layer = BandLimitedConv2d(shape, kernel, stride=stride, padding=padding,
                                  compression_rate=rate, pow2=pow2)
        x, w, _ = _arrays(rng, layer)
        out, _ = layer.forward(x, w)
        golden = conv2d_fft_bandlimited(x, w, stride=stride, padding=padding,
                                        compression_rate=rate, pow2=pow2)
        assert np.max(np.abs(out - golden)) < 1e-12 * np.max(np.abs(golden)), rate


@pytest.mark.parametrize("pow2", [False, True])
def test_keep_set_is_band_limit_keep(pow2):
    rng = np.random.default_rng(3)
    for shape, kernel, stride, padding in GEOMETRIES:
        geometry = conv_geometry((1, 2) + shape, (4, 2) + ((kernel,) * 2 if isinstance(
            kernel, int) else kernel), spatial_ndim=2, stride=stride, padding=padding)
        for rate in RATES:
            layer = BandLimitedConv2d(shape, kernel, stride=stride, padding=padding,
                                      compression_rate=rate, pow2=pow2)
            assert layer.fft_shape == fft_shape_for(geometry, pow2=pow2)
            keep = band_limit_keep(layer.fft_shape, rate)
            assert all(np.array_equal(a, b) for a, b in zip(layer.keep, keep))
            assert layer.kept == len(keep[0]) * len(keep[1])
            # The partial DFTs are the tile's real FFT at exactly those coefficients.
            x, w, _ = _arrays(rng, layer)
            xpad = np.pad(x, ((0, 0), (0, 0)) + tuple((p, p) for p in layer.padding))
            full = np.fft.rfft2(xpad, s=layer.fft_shape)[:, :, keep[0][:, None],
                                                         keep[1][None, :]]
            spectrum = layer.input_spectrum(x)                 # (F, N, C)
            assert np.allclose(spectrum, full.reshape(x.shape[:2] + (-1,)).transpose(2, 0, 1))
            w_full = np.fft.rfft2(w, s=layer.fft_shape)[:, :, keep[0][:, None],
                                                        keep[1][None, :]]
            assert np.allclose(layer.filter_spectrum(w),
                               w_full.reshape(w.shape[:2] + (-1,)).transpose(2, 0, 1))
    # The published block on the CNN's 17 x 17 tiles: (2n + 1) x (n + 1).
    assert [plan((8, 8), compression_rate=c).kept_shape for c in RATES] == \
        [(17, 9), (13, 7), (11, 6), (7, 4), (3, 2)]


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_backward_is_the_exact_adjoint(geometry, rate):
    shape, kernel, stride, padding = geometry
    layer = BandLimitedConv2d(shape, kernel, stride=stride, padding=padding,
                              compression_rate=rate)
    rng = np.random.default_rng(4)
    x, w, _ = _arrays(rng, layer)
    out, cache = layer.forward(x, w)
    g = rng.standard_normal(out.shape)
    dx, dw, db = layer.backward(g, cache)
    # The layer is linear in x and in w: <y(x, w), g> = <x, dx> = <w, dw>.
    inner = np.sum(out * g)
    assert np.sum(x * dx) == pytest.approx(inner, rel=1e-11, abs=1e-11)
    assert np.sum(w * dw[0]) == pytest.approx(inner, rel=1e-11, abs=1e-11)
    assert np.allclose(db[0], g.sum(axis=(0, 2, 3)))


@pytest.mark.parametrize("rate", [0, 50, 90])
def test_layer_gradients_match_finite_differences(rate):
    layer = BandLimitedConv2d((8, 8), 3, stride=2, padding=1, compression_rate=rate)
    rng = np.random.default_rng(5)
    x, w, b = _arrays(rng, layer)
    g = rng.standard_normal((3, 4) + layer.out_shape)

    def loss():
        return float(np.sum(np.tanh(layer.forward(x, w, b)[0]) * g))

    out, cache = layer.forward(x, w, b)
    dx, dw, db = layer.backward(g * (1 - np.tanh(out) ** 2), cache)
    eps = 1e-6
    for array, grad in ((x, dx), (w, dw[0]), (b, db[0])):
        for _ in range(5):
            index = tuple(int(rng.integers(s)) for s in array.shape)
            old = array[index]
            array[index] = old + eps
            plus = loss()
            array[index] = old - eps
            minus = loss()
            array[index] = old
            assert grad[index] == pytest.approx((plus - minus) / (2 * eps), rel=1e-5,
                                                abs=1e-8)


def test_backward_compresses_the_output_gradient_spectrum():
    """A gradient whose spectrum lies outside the kept band reaches neither x nor w."""
    layer = plan((8, 8), compression_rate=75)
    rng = np.random.default_rng(6)
    x, w, _ = _arrays(rng, layer)
    _, cache = layer.forward(x, w)
    # The highest-frequency checkerboard on the 17 x 17 tile, restricted to the outputs.
    i = np.arange(8)
    g = np.broadcast_to(np.cos(2 * np.pi * 8 * (i[:, None] + i[None, :]) / 17),
                        (3, 4, 8, 8)).copy()
    dx, dw, _ = layer.backward(g, cache)
    dx_full, dw_full, _ = plan((8, 8)).backward(g, plan((8, 8)).forward(x, w)[1])
    # Only the leakage of the crop's window remains in the band.
    assert np.linalg.norm(dx) < 0.2 * np.linalg.norm(dx_full)
    assert np.linalg.norm(dw) < 0.2 * np.linalg.norm(dw_full)


def test_cnn_gradients_match_finite_differences(data):
    model = BandLimitedCNN(channels=(3, 4), compression_rate=50)
    rng = np.random.default_rng(7)
    params = {k: v + 0.1 * rng.standard_normal(v.shape)
              for k, v in model.init(rng).items()}
    x, y = data.x_train[:6], data.y_train[:6]
    result = model.gradients(params, x, y)
    eps = 1e-6
    for name, p in params.items():
        for _ in range(4):
            index = tuple(int(rng.integers(s)) for s in p.shape)
            old = p[index]
            p[index] = old + eps
            plus = model.gradients(params, x, y).loss
            p[index] = old - eps
            minus = model.gradients(params, x, y).loss
            p[index] = old
            assert result.grads[name][index] == pytest.approx(
                (plus - minus) / (2 * eps), rel=1e-4, abs=1e-8), (name, index)


def test_shard_gradients_add_up(data):
    model = BandLimitedCNN(channels=(3, 4), compression_rate=25)
    params = model.init(np.random.default_rng(8))
    x, y = data.x_train[:12], data.y_train[:12]
    whole = model.gradients(params, x, y)
    losses, shards, _ = model.shard_gradients(params, x, y, 3)
    assert sum(losses) == pytest.approx(whole.loss)
    for name in params:
        assert np.allclose(sum(s[name] for s in shards), whole.grads[name])


def test_training_at_rate_zero_learns(data):
    from threadpoolctl import threadpool_limits
    model = BandLimitedCNN(channels=(4, 8))
    with threadpool_limits(1):       # tiny matrices: more BLAS threads are slower
        result = cnn.train(model, data, workers=1, epochs=1, seed=0, batch=32, lr=0.05)
    assert result.history[-1]["test_accuracy"] > 0.8         # chance is 0.1


def test_spectra_memory_falls_with_the_kept_fraction():
    totals, fractions = [], []
    for rate in RATES:
        model = BandLimitedCNN(compression_rate=rate)
        memory = model.spectra_memory()
        layers = {r["layer"]: r for r in memory["layers"]}
        assert layers["conv1"]["filter_coefficients"] == 16 * 1 * layers["conv1"]["kept"]
        assert layers["conv2"]["filter_coefficients"] == 32 * 16 * layers["conv2"]["kept"]
        assert layers["conv2"]["input_bytes"] == 16 * layers["conv2"]["kept"] * 8
        totals.append(memory["total"]["bytes"])
        fractions.append(layers["conv1"]["kept"] / layers["conv1"]["spectrum"])
    assert totals[0] == (16 + 512 + 1 + 16) * 153 * 8
    assert all(b < a for a, b in zip(totals, totals[1:]))
    assert np.allclose(np.array(totals) / totals[0], fractions)
    assert fractions == pytest.approx([1, 91 / 153, 66 / 153, 28 / 153, 6 / 153])


@pytest.mark.parametrize("rate", [100, 100.0, -1, 250])
def test_bad_compression_rate_names_the_range(rate):
    with pytest.raises(ValueError, match=r"compression_rate must be in \[0, 100\)"):
        BandLimitedConv2d((8, 8), compression_rate=rate)
    with pytest.raises(ValueError, match=r"compression_rate must be in \[0, 100\)"):
        BandLimitedCNN(compression_rate=rate)
    with pytest.raises(TypeError, match=r"compression_rate must be a number in \[0, 100\)"):
        BandLimitedCNN(compression_rate="50")


def test_filter_larger_than_the_fft_tile():
    with pytest.raises(ValueError, match=r"the filter \(3 x 3\) is larger than the FFT tile "
                                         r"fft_shape=\(2, 17\).*legal: 10 or more on axis 0"):
        BandLimitedConv2d((8, 8), 3, fft_shape=(2, 17))
    with pytest.raises(ValueError, match=r"fft_shape=\(17, 9\) is smaller than the padded "
                                         r"input \(10, 10\).*legal: 10 or more on axis 1"):
        BandLimitedConv2d((8, 8), 3, fft_shape=(17, 9))
    with pytest.raises(ValueError, match=r"kernel 5 x 5 is larger than the padded input "
                                         r"4 x 4.*kernel entries must be in 1..4"):
        BandLimitedConv2d((2, 2), 5)
    # A legal, longer tile gives the same convolution at c = 0.
    layer = BandLimitedConv2d((8, 8), 3, fft_shape=(10, 12))
    x, w, _ = _arrays(np.random.default_rng(9), layer)
    assert np.allclose(layer.forward(x, w)[0], conv2d_direct(x, w, padding=1))


def test_other_argument_checks():
    layer = plan((8, 8))
    rng = np.random.default_rng(10)
    x, w, _ = _arrays(rng, layer)
    with pytest.raises(ValueError, match=r"x must have shape \(N, C, 8, 8\)"):
        layer.forward(x[:, :, :7], w)
    with pytest.raises(ValueError, match=r"w must have shape \(K, 2, 3, 3\)"):
        layer.forward(x, w[:, :1])
    out, cache = layer.forward(x, w)
    with pytest.raises(ValueError, match="dout must have shape"):
        layer.backward(out[:, :, :4], cache)
    with pytest.raises(ValueError, match="groups must divide the 3 images, got 2"):
        layer.backward(out, cache, groups=2)
    with pytest.raises(ValueError, match="stride entries must be >= 1, got 0"):
        BandLimitedConv2d((8, 8), stride=0)
    with pytest.raises(ValueError, match="padding entries must be >= 0, got -1"):
        BandLimitedConv2d((8, 8), padding=-1)
    with pytest.raises(TypeError, match="pow2 must be True or False"):
        BandLimitedCNN(pow2="yes")
