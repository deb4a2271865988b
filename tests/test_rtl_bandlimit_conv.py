"""BandLimitedConv (Python simulator) against the bit-exact golden model
(``dnnhw.golden.bandlimit_conv_fixed``): small 1D and 2D engines, tiles back to back and
under random stalls on all three streams, every output in order and exact; the overflow
flag; the derived sizes against the golden model's; every parameter error."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from dnnhw.golden import bandlimit_conv_fixed as golden
from dnnhw.rtl.bandlimit_conv import BandLimitedConv
from dnnhw.sim.fft_data import unit_filters


BASE = dict(dims=1, n=8, taps=3, in_channels=2, out_channels=2, compression_rate=50,
            width=12, twiddle_width=12, coefficient_width=12, spectrum_shift=10)


def _data(dut, tiles, seed, scale=0.5):
    rng = np.random.default_rng(seed)
    top = int((1 << (dut.width - 1)) * scale)
    x = rng.integers(-top, top, size=(tiles, dut.in_channels, *(dut.n,) * dut.dims))
    w = unit_filters(rng, dut.out_channels, dut.in_channels, dut.taps, dut.dims)
    words = golden.filter_spectra(w, n=dut.n, compression_rate=dut.compression_rate,
                                  coefficient_width=dut.coefficient_width,
                                  coefficient_shift=dut.spectrum_shift)
    return x, words


def _golden(dut, x, words):
    return golden.conv(x, words, dims=dut.dims, n=dut.n, taps=dut.taps,
                       compression_rate=dut.compression_rate, width=dut.width,
                       twiddle_width=dut.twiddle_width,
                       coefficient_width=dut.coefficient_width,
                       spectrum_shift=dut.spectrum_shift)


def _run(dut, x, words, *, stall=0.0, seed=0):
    """Filters and tiles in (each source idle with probability ``stall`` a cycle), the
    sink not ready with probability ``stall``; returns ``(outputs, overflow, cycles)``."""
    rng = random.Random(seed)
    filters = words.reshape(-1, 2).tolist()
    samples = x.reshape(-1).tolist()
    expected = x.shape[0] * dut.result_samples
    got, held = [], None
    out = {}

    async def bench(ctx):
        nonlocal held
        f = s = cycle = 0
        while len(got) < expected:
            cycle += 1
            assert cycle < 200 * (len(samples) + len(filters)) + 20000, "the engine hung"
            fv = f < len(filters) and rng.random() >= stall
            sv = s < len(samples) and rng.random() >= stall
            ready = rng.random() >= stall
            if fv:
                ctx.set(dut.filters.payload, {"re": filters[f][0], "im": filters[f][1]})
            ctx.set(dut.filters.valid, fv)
            if sv:
                ctx.set(dut.input.payload, samples[s])
            ctx.set(dut.input.valid, sv)
            ctx.set(dut.output.ready, ready)
            await ctx.delay(1e-8)
            if fv and ctx.get(dut.filters.ready):
                f += 1
            if sv and ctx.get(dut.input.ready):
                s += 1
            if ctx.get(dut.output.valid):
                payload = ctx.get(dut.output.payload)
                if held is not None:   # shown, not taken: must be shown again unchanged
                    assert payload == held
                if ready:
                    got.append(payload)
                    held = None
                else:
                    held = payload
            else:
                assert held is None, "output.valid fell before the transfer"
            await ctx.tick()
            # Anything that could not stall would need more input: nothing else comes out.
        for _ in range(64):
            ctx.set(dut.output.ready, 1)
            await ctx.tick()
            assert not ctx.get(dut.output.valid), "an output beyond the expected ones"
        out["overflow"] = ctx.get(dut.overflow)
        out["cycles"] = cycle

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return np.array(got), out["overflow"], out["cycles"]


@pytest.mark.parametrize("params", [
    BASE,
    dict(BASE, compression_rate=0, taps=1, in_channels=1, out_channels=3),
    dict(BASE, compression_rate=90, in_channels=3, out_channels=1),
    dict(BASE, dims=2, compression_rate=50, in_channels=1, out_channels=2),
], ids=["1d-c50", "1d-c0-taps1", "1d-c90", "2d-c50"])
@pytest.mark.parametrize("stall", [0.0, 0.3])
def test_tiles_are_bit_exact_whatever_the_stalls(params, stall):
    dut = BandLimitedConv(**params)
    x, words = _data(dut, tiles=3, seed=params["compression_rate"] + params["dims"])
    want, overflow = _golden(dut, x, words)
    got, rtl_overflow, _ = _run(dut, x, words, stall=stall, seed=7)
    np.testing.assert_array_equal(got, want.reshape(-1))
    assert rtl_overflow == overflow == 0


def test_saturation_sets_the_sticky_overflow_flag():
    # Filters quantized at 2 ** 10 but scaled back by 2 ** 2 only: a gain of 256 on
    # full-scale samples saturates.
    dut = BandLimitedConv(**dict(BASE, spectrum_shift=2))
    rng = np.random.default_rng(1)
    x = rng.integers(-2048, 2048, size=(2, 2, 8))
    words = golden.filter_spectra(unit_filters(rng, 2, 2, 3, 1), n=8,
                                  compression_rate=50, coefficient_width=12,
                                  coefficient_shift=10)
    want, overflow = _golden(dut, x, words)
    assert overflow
    got, rtl_overflow, _ = _run(dut, x, words)
    np.testing.assert_array_equal(got, want.reshape(-1))
    assert rtl_overflow == 1


def test_stall_free_tiles_keep_the_period():
    dut = BandLimitedConv(**dict(BASE, n=16, in_channels=1, out_channels=1))
    x, words = _data(dut, tiles=8, seed=3)
    _, _, cycles = _run(dut, x, words)
    # The last result comes out a fixed fill time after the last tile went in; the tiles
    # themselves pass at the core's period.
    assert cycles <= len(x) * dut.cycles_per_tile + 4 * dut.cycles_per_tile + 200


@pytest.mark.parametrize("dims,n,c", [(1, 64, 0), (1, 64, 50), (1, 8, 90), (2, 16, 0),
                                      (2, 16, 50), (2, 32, 75), (2, 64, 90)])
def test_sizes_are_the_golden_models(dims, n, c):
    dut = BandLimitedConv(**dict(BASE, dims=dims, n=n, compression_rate=c, in_channels=3,
                                 out_channels=5, coefficient_width=16))
    band = golden.band(n, dims, c)
    assert dut.kept_bins == band.kept_bins
    assert dut.words_per_filter == band.words_per_filter
    assert dut.filter_words == 15 * band.words_per_filter
    assert dut.filter_memory_bits == golden.filter_memory_bits(
        dims=dims, n=n, in_channels=3, out_channels=5, compression_rate=c,
        coefficient_width=16)
    assert dut.accumulator_width == golden.accumulator_width(12, 16, 3)
    assert dut.out == n - 3 + 1
    assert dut.cycles_per_tile == max(3 * n ** dims, 15 * band.kept_bins, 5 * n ** dims)


@pytest.mark.parametrize("change,error,match", [
    ({"dims": 3}, ValueError, r"dims must be in 1\.\.2"),
    ({"n": 12}, ValueError, r"n must be a power of two in 8\.\.4096 for dims=1"),
    ({"dims": 2, "n": 128}, ValueError, r"n must be in 8\.\.64"),
    ({"taps": 9}, ValueError, r"taps must be in 1\.\.8"),
    ({"taps": 0}, ValueError, r"taps must be in 1\.\.8"),
    ({"in_channels": 0}, ValueError, r"in_channels must be in 1\.\.256"),
    ({"out_channels": 300}, ValueError, r"out_channels must be in 1\.\.256"),
    ({"compression_rate": 100}, ValueError, r"compression_rate must be in \[0, 100\)"),
    ({"compression_rate": -1}, ValueError, r"compression_rate must be in \[0, 100\)"),
    ({"compression_rate": "50"}, TypeError, r"compression_rate must be a number"),
    ({"width": 7}, ValueError, r"width must be in 8\.\.24"),
    ({"twiddle_width": 19}, ValueError, r"twiddle_width must be in 8\.\.18"),
    ({"coefficient_width": 20}, ValueError, r"coefficient_width must be in 8\.\.18"),
    ({"spectrum_shift": 25}, ValueError, r"spectrum_shift must be in 0\.\.24"),
    ({"forward_shifts": 8}, ValueError, r"forward_shifts must be in 0\.\.7"),
    ({"inverse_shifts": [1, 1]}, ValueError, r"inverse_shifts must have log2\(n\) = 3 values"),
    ({"n": 8.0}, TypeError, r"n must be an integer"),
])
def test_parameter_errors_name_the_parameter_and_its_range(change, error, match):
    with pytest.raises(error, match=match):
        BandLimitedConv(**dict(BASE, **change))
