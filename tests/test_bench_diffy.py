"""``dnnhw bench diffy``: offline images, the fixed-point stack, its numbers against the
layers worked by hand (tests/diffy_by_hand.py), the replayable crop layers and the command
line."""

import json
import socket

import numpy as np
import pytest

import diffy_by_hand as by_hand
from dnnhw.bench import diffy as B
from dnnhw.cli import main as cli_main
from dnnhw.golden import diffy_published as D


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a socket fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


# -- images --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(B.IMAGES))
def test_images_load_offline(name, no_network):
    image = B.load_image(name)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert min(image.shape[:2]) >= 256
    assert image.std() > 5          # a real picture, not a blank


def test_prepare_and_quantize_image():
    rgb = np.arange(12 * 10 * 3, dtype=np.int64).reshape(12, 10, 3) % 256
    crop = B.prepare_image(rgb.astype(np.uint8), 4)
    assert crop.shape == (3, 4, 4)
    assert np.array_equal(crop, rgb[4:8, 3:7].transpose(2, 0, 1))
    down = B.prepare_image(rgb.astype(np.uint8), 5, mode="downscale")
    expected = rgb[1:11, :10].reshape(5, 2, 5, 2, 3).mean(axis=(1, 3))
    assert np.array_equal(down, np.rint(expected).transpose(2, 0, 1))
    # p / 256 with F fractional bits: p << (F - 8)
    assert np.array_equal(B.to_fixed(crop, 8), crop.astype(np.int64))
    assert np.array_equal(B.to_fixed(crop, 12), crop.astype(np.int64) << 4)
    x = B.image_input("astronaut", 16, frac_bits=10)
    assert x.shape == (3, 16, 16) and x.dtype == np.int64
    assert np.all(x % 4 == 0) and 0 <= x.min() and x.max() <= 255 << 2
    noisy = B.image_input("astronaut", 16, noise=8, seed=3)
    assert not np.array_equal(noisy, B.image_input("astronaut", 16))
    assert np.array_equal(noisy, B.image_input("astronaut", 16, noise=8, seed=3))
    assert noisy.min() >= 0 and noisy.max() <= 255
    with pytest.raises(ValueError, match="unknown image 'nope'; known images: astronaut"):
        B.load_image("nope")
    with pytest.raises(ValueError, match="size must be an int in 1..10 for a 12x10 image, got 13"):
        B.prepare_image(rgb.astype(np.uint8), 13)
    with pytest.raises(ValueError, match="mode must be 'crop' or 'downscale'"):
        B.prepare_image(rgb.astype(np.uint8), 4, mode="zoom")
    with pytest.raises(ValueError, match="frac_bits must be in 8..15, got 7"):
        B.to_fixed(crop, 7)


# -- the stack ----------------------------------------------------------------------------------

def test_first_layer_bank():
    bank = B.first_layer_bank(32)
    assert bank.shape == (32, 3, 3, 3)
    gauss = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16     # the binomial blur, by hand
    assert np.allclose(bank[0, 0], gauss) and not bank[0, 1:].any()
    for a in range(3, 13, 2):                       # +/- pairs of the luma edge filters
        assert np.allclose(bank[a], -bank[a + 1]) and abs(bank[a].sum()) < 1e-12
    for a in range(16, 32, 2):                      # +/- pairs of Gabor-like gratings
        assert np.allclose(bank[a], -bank[a + 1]) and abs(bank[a].sum()) < 1e-12
    assert np.array_equal(B.first_layer_bank(5), bank[:5])


def test_stack_spec_errors_name_the_parameter():
    with pytest.raises(ValueError, match="channels must be in 1..256, got 0"):
        B.StackSpec(channels=0)
    with pytest.raises(ValueError, match="depth must be in 2..32, got 1"):
        B.StackSpec(depth=1)
    with pytest.raises(TypeError, match="depth must be an int, got float 7.0"):
        B.StackSpec(depth=7.0)
    with pytest.raises(ValueError, match="hidden must be one of"):
        B.StackSpec(hidden="trained")
    with pytest.raises(ValueError, match="headroom must be in 0..8, got 9"):
        B.StackSpec(headroom=9)
    with pytest.raises(ValueError, match="calibrate the stack first"):
        B.run_stack(np.zeros((3, 4, 4), dtype=np.int64), B.stack_weights(B.StackSpec(4, 2)))


def _float_conv(x, w):
    """Real-valued 3x3 correlation, padding 1."""
    p = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    win = np.lib.stride_tricks.sliding_window_view(p, (3, 3), axis=(1, 2))
    return np.einsum("chwrs,kcrs->khw", win, w)


@pytest.mark.parametrize("hidden", B.HIDDEN)
def test_activations_stay_in_16_bit_and_track_the_real_values(hidden):
    spec = B.StackSpec(channels=8, depth=5, hidden=hidden, headroom=1, seed=3)
    xs = [B.image_input(name, 24) for name in ("astronaut", "coffee")]
    layers = B.build_stack(spec, xs)
    lo, hi = D.value_range(16)
    peaks = [0] * len(layers)
    for x in xs:
        inputs, out, saturated = B.run_stack(x, layers)
        assert saturated == [0] * len(layers)
        for i, t in enumerate(inputs[1:] + [out]):
            assert lo <= t.min() and t.max() <= hi
            assert t.max() <= (1 << 14) - 1         # one bit of headroom
            peaks[i] = max(peaks[i], int(np.abs(t).max()))
        # the documented scaling: x_int / 2**F tracks the real-valued network
        real = x / 2.0 ** layers[0].in_frac_bits
        for layer, t in zip(layers, inputs[1:] + [out]):
            real = _float_conv(real, layer.weights / 2.0 ** layer.weight_frac_bits)
            if layer.relu:
                real = np.maximum(real, 0)
            scale = 2.0 ** layer.out_frac_bits
            # exact but for the write-back's rounding (half a unit in the last place)
            assert np.abs(t / scale - real).max() <= 0.5 / scale + 1e-9 * np.abs(real).max()
            real = t / scale       # carry the quantized values on (rounding does not compound)
    # calibration uses the range: each layer's peak lands in its top (non-headroom) bit
    for layer, peak in zip(layers, peaks):
        if layer.shift:
            assert peak >= 1 << 13, (layer.name, peak)
    assert [layer.in_frac_bits for layer in layers[1:]] == \
        [layer.out_frac_bits for layer in layers[:-1]]


# -- the numbers equal the layers worked by hand ------------------------------------------------

def test_crop_layers_replay_and_bench_numbers_equal_the_layers_by_hand():
    tuples, layers = B.crop_layers("chelsea", size=8, channels=4, depth=3, return_layers=True)
    assert len(tuples) == 3
    assert [t[0].shape for t in tuples] == [(3, 8, 8), (4, 8, 8), (4, 8, 8)]
    assert [t[1].shape for t in tuples] == [(4, 3, 3, 3), (4, 4, 3, 3), (3, 4, 3, 3)]
    assert np.array_equal(tuples[0][0], B.image_input("chelsea", 8))
    for (x, w, stride, padding), layer, nxt in zip(tuples, layers, tuples[1:]):
        assert (stride, padding) == (1, 1)
        D.check_values("x", x, 16)
        D.check_values("w", w, 16)
        acc = D.diffy_conv2d(x, w, stride, padding)
        assert np.array_equal(B.requantize(acc, layer.shift, layer.relu)[0], nxt[0])
    again = B.crop_layers("chelsea", size=8, channels=4, depth=3)
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
               for a, b in zip(tuples, again))

    tile = B.paper_tile()
    records = B.bench_image("chelsea", tuples[0][0], layers, tile)
    raw_terms = delta_terms = 0
    for record, (x, w, stride, padding) in zip(records, tuples):
        cycles, stats = _layer_by_hand(x, w, stride, padding)
        assert record["cycles"] == cycles
        assert record["speedup"] == {
            "diffy_over_bit_parallel": cycles["bit_parallel"] / cycles["diffy"],
            "diffy_over_stripes": cycles["stripes"] / cycles["diffy"],
            "diffy_over_pragmatic": cycles["pragmatic"] / cycles["diffy"],
            "pragmatic_over_bit_parallel": cycles["bit_parallel"] / cycles["pragmatic"],
            "stripes_over_bit_parallel": cycles["bit_parallel"] / cycles["stripes"]}
        for key, value in stats.items():
            assert record[key] == pytest.approx(value), key
        raw_terms += stats["raw_terms_per_activation"] * x.size
        delta_terms += stats["delta_terms_per_activation"] * x.size
        histogram = np.array(record["diffy_pallet_histogram"])
        assert histogram.sum() == record["pallets"]
        assert (histogram * np.arange(histogram.size)).sum() == record["cycles"]["diffy"]
        # 8x8 outputs = 4 groups of 16 windows, 9 taps, one channel group, one pass
        assert record["pallets"] == 4 * 9
        assert record["cycles"]["bit_parallel"] == 64 * 9

    summary = B.summarize(records)
    total = summary["total"]
    for engine in B.ENGINES:
        assert total["cycles"][engine] == sum(r["cycles"][engine] for r in records)
    assert total["speedup"]["diffy_over_pragmatic"] == \
        total["cycles"]["pragmatic"] / total["cycles"]["diffy"]
    n = sum(t[0].size for t in tuples)
    assert total["raw_terms_per_activation"] == pytest.approx(raw_terms / n)
    assert total["delta_terms_per_activation"] == pytest.approx(delta_terms / n)
    assert summary["without_first_layer"]["layers"] == 2


def _layer_by_hand(x, w, stride, padding):
    """The paper tile's cycles on one layer (16 lanes x 16 filters x 16 windows, B = 2,
    pallet lockstep; one filter pass and one channel group for these small layers) and
    the activation statistics, by hand: tests/diffy_by_hand.py, loops only."""
    assert x.shape[0] <= 16 and w.shape[0] <= 16 * 16
    pallets = by_hand.tile_pallets(x[None], w, stride, padding, 16, 16, 16)
    precision = by_hand.precision_bits(x.ravel().tolist())
    cycles = {mode: sum(by_hand.pallet_steps(p, mode, precision=precision) for p in pallets)
              for mode in ("stripes", "pragmatic", "diffy")}
    # The value-agnostic baseline: one window per cycle, each through every tap.
    out_h, out_w = by_hand.output_size(x[None].shape, w.shape, stride, padding)
    cycles["bit_parallel"] = out_h * out_w * w.shape[2] * w.shape[3]
    # Deltas as stored: along X, step 1, the first column of every row raw.
    values = x.ravel().tolist()
    deltas = [int(row[i]) - (int(row[i - 1]) if i else 0)
              for channel in x for row in channel for i in range(len(row))]
    stats = {
        "raw_terms_per_activation": np.mean([len(by_hand.term_offsets(v)) for v in values]),
        "delta_terms_per_activation": np.mean([len(by_hand.term_offsets(d)) for d in deltas]),
        "raw_zero_fraction": np.mean([v == 0 for v in values]),
        "delta_zero_fraction": np.mean([d == 0 for d in deltas]),
    }
    return {k: cycles[k] for k in B.ENGINES}, stats


# -- command line ---------------------------------------------------------------------------------

def test_cli_quick_writes_its_reports(tmp_path, capsys):
    assert cli_main(["bench", "diffy", "--quick", "--size", "16", "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "diffy_bench.json").read_text())
    assert report["meta"]["images"] == ["astronaut", "chelsea"]
    records = report["records"]
    assert len(records) == 2 * 3
    assert "astronaut" in out and "chelsea" in out
    cycles = {e: sum(r["cycles"][e] for r in records) for e in B.ENGINES}
    assert report["summary"]["total"]["cycles"] == cycles
    # The measured column is the ratio of the summed cycles, beside the paper's figure.
    markdown = (tmp_path / "diffy_bench.md").read_text()
    for row, over in (("Diffy over value-agnostic (DaDianNao-like) | 7.10x", "bit_parallel"),
                      ("Diffy over Pragmatic | 1.41x", "pragmatic")):
        line = f"| {row} | {cycles[over] / cycles['diffy']:.2f}x |"
        assert line in out and line in markdown
    assert "## Per layer" in markdown


@pytest.mark.parametrize("argv,message", [
    (["--channels", "0"], "--channels must be in 1..256, got 0"),
    (["--depth", "1"], "--depth must be in 2..32, got 1"),
    (["--size", "2"], "--size must be in 4..1024, got 2"),
    (["--size", "1000"], "--size 1000 does not fit image 'astronaut'"),
    (["--frac-bits", "20"], "--frac-bits must be in 8..15, got 20"),
    (["--headroom", "-1"], "--headroom must be in 0..8, got -1"),
    (["--noise", "-3"], "--noise must be in 0..255"),
    (["--images", "astronaut,lena"], "--images: unknown image(s) 'lena'; known images:"),
    (["--resize", "zoom"], "argument --resize: invalid choice: 'zoom'"),
    (["--channels", "many"], "argument --channels: invalid int value: 'many'"),
])
def test_cli_bad_options_name_the_option(argv, message, capsys):
    assert cli_main(["bench", "diffy", "--quick"] + argv) == 2
    assert message in capsys.readouterr().err


def test_cli_unknown_benchmark(capsys):
    assert cli_main(["bench", "nope"]) == 2
    assert ("unknown benchmark 'nope'; known: bandlimit, bandlimit-conv, conv, dgc, diffy, morph, ratios"
            in capsys.readouterr().err)


@pytest.mark.slow
def test_rtl_crop_matches_the_models(tmp_path):
    from dnnhw.bench.diffy import RTL_GEOMETRY, RTL_TILES, render_rtl, rtl_crop
    from dnnhw.catalog import get_core
    crop = rtl_crop(size=8, channels=4, depth=2, log=lambda line: None)
    assert [(r["mode"], r["windows"]) for r in crop["rows"]] == list(RTL_TILES)
    for row in crop["rows"]:
        assert row["steps_rtl"] == row["steps_model"] == row["published_model"]
        tile = get_core("diffy-tile").build(dict(RTL_GEOMETRY, mode=row["mode"],
                                                 windows=row["windows"]))
        # Stall-free, first input to last output inclusive: steps + latency per layer.
        assert row["cycles"] == row["steps_rtl"] + 2 * tile.latency
    assert "| diffy | 4x4x4 |" in render_rtl(crop)
