"""StreamingFFT2D (Python simulator) against the bit-exact golden model applied pass by
pass (``dnnhw.golden.fft_fixed.fft`` over each frame, transpose, over each frame again):
every tile out, in order, exact, whatever the stalls; the orders of the contract (forward
row-major in, column-major out; the inverse the other way round); one sample a cycle and
the latency property; the sticky overflow of both passes; a forward-inverse round trip;
the parameter errors."""

import random

import numpy as np
import pytest
from amaranth.hdl import Value
from amaranth.sim import Simulator

from dnnhw.golden.fft_fixed import fft as golden_fft
from dnnhw.rtl.fft2d import StreamingFFT2D


def _simulate(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def _tiles(rng, tiles, n, width, scale=1.0, real=False):
    """``tiles`` random tiles in stream order, ``(tiles, n * n, 2)``, uniform within
    ``scale`` of full range; imaginary parts 0 when ``real``."""
    top = 1 << (width - 1)
    lim = max(1, int(top * scale))
    x = rng.integers(max(-lim, -top), min(lim, top - 1) + 1,
                     size=(tiles, n * n, 2)).astype(np.int64)
    if real:
        x[..., 1] = 0
    return x


def _passes(dut, x):
    """The contract's computation on tiles in stream order ``(..., n * n, 2)``: the FFT of
    each group of ``n`` samples, the tile transposed, the FFT of each group again.
    Returns ``(y, first_overflow, second_overflow)``, ``y`` in stream order."""
    n = dut.n
    kwargs = dict(n=n, width=dut.width, twiddle_width=dut.twiddle_width,
                  inverse=dut.inverse, shifts=list(dut.shifts))
    frames = x.reshape(x.shape[:-2] + (n, n, 2))
    first, first_overflow = golden_fft(frames, **kwargs)
    second, second_overflow = golden_fft(np.swapaxes(first, -3, -2), **kwargs)
    return second.reshape(x.shape), first_overflow, second_overflow


class Run:
    """What :func:`_run` saw: ``out`` (payload pairs, in order), ``in_cycles`` and
    ``out_cycles`` (the cycle of each transfer), ``ready`` (``input.ready`` per cycle),
    ``overflow`` (the flag at the end)."""


def _run(dut, x, *, offer=None, accept=None, idle_before=None, quiet=None,
         flip_checks=False):
    """Stream the tiles ``x`` ``(tiles, n * n, 2)`` through ``dut`` until every output is
    out and the output has been quiet ``quiet`` cycles more.

    ``offer(cycle)``: whether the source raises ``valid`` (asked only while it holds no
    sample; a held sample stays valid until taken); ``accept(cycle)``: whether the sink is
    ready; ``idle_before(tile)``: cycles the source waits before a tile's first sample.
    Every cycle checks that a sample shown and not taken is shown again; with
    ``flip_checks``, that ``output.valid``, ``output.payload`` and ``input.ready`` do not
    change when this cycle's ``input.valid`` or ``output.ready`` flips."""
    size = dut.n * dut.n
    samples = x.reshape(-1, 2).tolist()
    total = len(samples)
    offer = offer or (lambda cycle: True)
    accept = accept or (lambda cycle: True)
    quiet = quiet if quiet is not None else 2 * size
    out_payload = Value.cast(dut.output.payload)
    run = Run()
    run.out, run.in_cycles, run.out_cycles, run.ready = [], [], [], []

    async def bench(ctx):
        sent, holding, silent, cycle, held = 0, False, 0, 0, None
        wait = idle_before(0) if idle_before else 0
        while sent < total or len(run.out) < total or silent < quiet:
            if sent < total and not holding:
                if wait > 0:
                    wait -= 1
                elif offer(cycle):
                    holding = True
                    re, im = samples[sent]
                    ctx.set(dut.input.payload, {"re": re, "im": im})
            ctx.set(dut.input.valid, holding)
            ready = accept(cycle)
            ctx.set(dut.output.ready, ready)
            now = (ctx.get(dut.output.valid), ctx.get(out_payload), ctx.get(dut.input.ready))
            if flip_checks:
                for port, value in ((dut.output.ready, ready), (dut.input.valid, holding)):
                    ctx.set(port, not value)
                    assert (ctx.get(dut.output.valid), ctx.get(out_payload),
                            ctx.get(dut.input.ready)) == now, f"cycle {cycle}: {port} leaks"
                    ctx.set(port, value)
            out_valid, _, in_ready = now
            run.ready.append(in_ready)
            if holding and in_ready:
                run.in_cycles.append(cycle)
                holding, sent = False, sent + 1
                if idle_before and sent % size == 0 and sent < total:
                    wait = idle_before(sent // size)
            payload = ctx.get(dut.output.payload)
            pair = (payload.re, payload.im)
            if held is not None:
                assert out_valid and pair == held, \
                    f"cycle {cycle}: output changed before its transfer"
            held = None
            if out_valid:
                silent = 0
                if ready:
                    run.out.append(pair)
                    run.out_cycles.append(cycle)
                else:
                    held = pair
            elif sent == total and len(run.out) >= total:
                silent += 1
            await ctx.tick()
            cycle += 1
            assert cycle < 30 * total + 20 * dut.latency, \
                f"stuck: {sent} of {total} in, {len(run.out)} out after {cycle} cycles"
        run.overflow = ctx.get(dut.overflow)

    _simulate(dut, bench)
    return run


def _assert_exact(dut, x, run):
    want, first_overflow, second_overflow = _passes(dut, x)
    assert len(run.out) == want.shape[0] * want.shape[1], f"{len(run.out)} samples out"
    got = np.array(run.out, dtype=np.int64).reshape(want.shape)
    for t in range(want.shape[0]):
        bad = np.argwhere(np.any(got[t] != want[t], axis=-1)).ravel()
        assert bad.size == 0, (f"tile {t}: positions {bad[:8].tolist()} differ: got "
                               f"{got[t][bad[:4]].tolist()}, want {want[t][bad[:4]].tolist()}")
    assert bool(run.overflow) == bool(first_overflow or second_overflow)


# --- Bit-exact against the golden passes, no stalls --------------------------------------

@pytest.mark.parametrize("n, width, twiddle_width, inverse, shifts, scale", [
    (8, 16, 16, False, None, 1.0),
    (8, 12, 10, True, None, 1.0),
    (8, 14, 12, False, 0b010, 1 / 4),
    (8, 12, 12, True, 0, 1 / 64),              # no shifts, inputs small enough
    (8, 10, 8, False, 0, 1.0),                 # saturates all over
    (16, 16, 16, False, None, 1.0),
    (16, 18, 14, True, [1, 0, 1, 0], 1 / 8),
], ids=lambda v: str(v))
def test_matches_golden(n, width, twiddle_width, inverse, shifts, scale):
    dut = StreamingFFT2D(n=n, width=width, twiddle_width=twiddle_width, inverse=inverse,
                         shifts=shifts)
    x = _tiles(np.random.default_rng(n * 1000 + width * 10 + inverse), 2, n, width, scale)
    # _assert_exact asserts every output sample and the overflow flag against the golden.
    _assert_exact(dut, x, _run(dut, x))


def test_forward_output_is_the_2d_dft_column_major():
    # The order, against NumPy's float transform rather than the golden's passes: with
    # every shift 1 the forward result is DFT2(x) / n ** 2 up to the stages' rounding,
    # and stream position k2 * n + k1 holds bin (k1, k2).
    n, width = 8, 16
    dut = StreamingFFT2D(n=n, width=width, twiddle_width=16)
    x = _tiles(np.random.default_rng(21), 1, n, width, real=True)
    run = _run(dut, x)
    _assert_exact(dut, x, run)
    got = np.array(run.out, dtype=np.int64).reshape(n, n, 2)      # [k2, k1]
    want = np.fft.fft2(x[0, :, 0].reshape(n, n)) / n ** 2          # [k1, k2]
    got_bins = (got[..., 0] + 1j * got[..., 1]).T
    assert np.max(np.abs(got_bins - want)) < 4
    # a transposed reading would not match: the spectrum of a random tile is not symmetric
    assert np.max(np.abs(got_bins.T - want)) > 100


# --- Stalls, ghost frames ----------------------------------------------------------------

@pytest.mark.parametrize("n, inverse, seed, p_offer, p_accept", [
    (8, False, 0, 0.7, 0.7),
    (8, True, 1, 0.95, 0.4),
    (8, False, 2, 0.4, 0.95),
    (16, True, 3, 0.8, 0.8),
])
def test_random_stalls_every_tile_in_order_exact(n, inverse, seed, p_offer, p_accept):
    dut = StreamingFFT2D(n=n, width=12, twiddle_width=12, inverse=inverse,
                         shifts=None if not inverse else (1 << (n.bit_length() - 1)) - 2)
    rng = random.Random(seed)
    x = _tiles(np.random.default_rng(seed), 4, n, 12, scale=1 / 4)
    # Gaps before a tile: none, one cycle (ghost frames at once), or long enough for the
    # last tile to come out with no more input.
    gaps = [0, 1, dut.latency + 4 * n, 0]
    run = _run(dut, x, offer=lambda c: rng.random() < p_offer,
               accept=lambda c: rng.random() < p_accept, idle_before=lambda t: gaps[t],
               flip_checks=n == 8)
    # _assert_exact asserts every tile out, in order, exact, and the overflow flag.
    _assert_exact(dut, x, run)


def test_output_stalled_long_backpressures_input():
    # The sink stalls for long stretches: the second pass, the transpose banks and the
    # first pass fill, the input sees ready low; nothing is lost.
    n = 8
    dut = StreamingFFT2D(n=n, width=12, twiddle_width=12)
    x = _tiles(np.random.default_rng(5), 5, n, 12)
    run = _run(dut, x, accept=lambda c: (c // 150) % 3 == 2)
    _assert_exact(dut, x, run)
    assert not all(run.ready[:run.in_cycles[-1]]), "the input never saw backpressure"


# --- Throughput and latency --------------------------------------------------------------

@pytest.mark.parametrize("n, tiles, inverse", [(8, 4, False), (8, 3, True), (16, 2, False)])
def test_one_sample_a_cycle_and_the_latency(n, tiles, inverse):
    dut = StreamingFFT2D(n=n, width=16, twiddle_width=16, inverse=inverse,
                         shifts=0 if inverse else None)
    x = _tiles(np.random.default_rng(n + tiles), tiles, n, 16, scale=1 / 64)
    run = _run(dut, x, quiet=2)
    _assert_exact(dut, x, run)
    total = tiles * n * n
    assert run.in_cycles == list(range(total))                    # never a stall on input
    assert run.out_cycles[0] - run.in_cycles[0] == dut.latency
    assert run.out_cycles == list(range(dut.latency, dut.latency + total))   # no bubbles


def test_latency_formula():
    assert [StreamingFFT2D(n=n, width=16, twiddle_width=16).latency
            for n in (8, 16, 32, 64)] == [105, 331, 1161, 4359]
    for n in (8, 64):
        dut = StreamingFFT2D(n=n, width=12, twiddle_width=10, inverse=True)
        assert dut.latency == 2 * dut.pass_latency + n * n + 1


# --- Overflow ----------------------------------------------------------------------------

def test_overflow_of_either_pass_is_sticky_and_clears():
    # shifts 0. A row of c with n c > M saturates in the first pass only (the second sees
    # one non-zero sample per column); a tile of c with n c < M < n ** 2 c only in the
    # second. Tile by tile, each flushed: the flag after each is the OR of the golden's
    # flags so far since the last clear.
    n, width = 8, 12
    top = 1 << (width - 1)
    dut = StreamingFFT2D(n=n, width=width, twiddle_width=12, shifts=0)
    small = _tiles(np.random.default_rng(23), 1, n, width, scale=1 / 256)[0]
    first_only = np.zeros((n * n, 2), dtype=np.int64)
    first_only[:n, 0] = top // 4
    second_only = np.zeros((n * n, 2), dtype=np.int64)
    second_only[:, 0] = top // (2 * n)
    for tile, want in ((small, (False, False)), (first_only, (True, False)),
                       (second_only, (False, True))):
        assert _passes(dut, tile[None])[1:] == want
    # (tile, clear after it, flag wanted after it)
    script = [(small, False, 0), (first_only, True, 1), (small, False, 0),
              (second_only, True, 1), (first_only, False, 1), (second_only, False, 1),
              (small, True, 1), (small, False, 0)]
    seen = []

    async def bench(ctx):
        ctx.set(dut.output.ready, 1)
        for tile, clear, _ in script:
            for re, im in tile.tolist():
                ctx.set(dut.input.valid, 1)
                ctx.set(dut.input.payload, {"re": re, "im": im})
                await ctx.tick().until(dut.input.ready)
            ctx.set(dut.input.valid, 0)
            out = 0
            for _ in range(dut.latency + 4 * n):
                out += ctx.get(dut.output.valid)
                await ctx.tick()
            assert out == n * n
            seen.append(ctx.get(dut.overflow))
            await ctx.tick().repeat(5)
            assert ctx.get(dut.overflow) == seen[-1], "the flag did not hold"
            if clear:
                ctx.set(dut.clear_overflow, 1)
                await ctx.tick()
                ctx.set(dut.clear_overflow, 0)
                assert ctx.get(dut.overflow) == 0, "clear_overflow left a flag set"

    _simulate(dut, bench)
    assert seen == [flag for _, _, flag in script]


# --- Round trip --------------------------------------------------------------------------

@pytest.mark.parametrize("n", [8, 16])
def test_forward_then_inverse_returns_the_input(n):
    # Forward halving every stage (DFT2 / n ** 2), inverse never (unscaled): the input
    # comes back up to the forward stages' rounding, which the inverse sums over n ** 2
    # bins. Independent errors e per bin give about n e per sample (RMS bound n), but
    # round half up adds about +1/2 to every bin, a bias that the inverse sums into
    # sample (0, 0): about n ** 2 / 2 there (bound n ** 2), far less elsewhere (bound
    # n ** 2 / 2; the largest are in column 0, the first pass's bias).
    width = 16
    forward = StreamingFFT2D(n=n, width=width, twiddle_width=16)
    inverse = StreamingFFT2D(n=n, width=width, twiddle_width=16, inverse=True, shifts=0)
    x = _tiles(np.random.default_rng(29 + n), 2, n, width, scale=1 / 2, real=True)
    spectrum = _run(forward, x)
    _assert_exact(forward, x, spectrum)
    y = np.array(spectrum.out, dtype=np.int64).reshape(x.shape)
    back = _run(inverse, y)
    _assert_exact(inverse, y, back)
    assert not back.overflow
    error = np.array(back.out, dtype=np.int64).reshape(x.shape) - x
    assert np.abs(error[:, 0]).max() <= n ** 2, f"error at (0, 0): {error[:, 0].tolist()}"
    rest = error[:, 1:]
    assert np.abs(rest).max() <= n ** 2 / 2, f"largest error {np.abs(rest).max()}"
    assert np.sqrt(np.mean(rest.astype(float) ** 2)) <= n


# --- Parameter errors --------------------------------------------------------------------

_GOOD = {"n": 16, "width": 16, "twiddle_width": 16}


@pytest.mark.parametrize("kwargs, error, message", [
    ({"n": 4}, ValueError, r"n must be in 8\.\.64, got 4"),
    ({"n": 128}, ValueError, r"n must be in 8\.\.64, got 128"),
    ({"n": 12}, ValueError, r"n must be a power of two in 8\.\.64, got 12"),
    ({"n": 16.0}, TypeError, "n must be an integer"),
    ({"width": 7}, ValueError, r"width must be in 8\.\.24, got 7"),
    ({"width": 25}, ValueError, r"width must be in 8\.\.24"),
    ({"twiddle_width": 19}, ValueError, r"twiddle_width must be in 8\.\.18, got 19"),
    ({"twiddle_width": 7}, ValueError, r"twiddle_width must be in 8\.\.18"),
    ({"inverse": 1}, TypeError, "inverse must be a bool"),
    ({"shifts": [1, 1, 1]}, ValueError,
     r"shifts must have log2\(n\) = 4 values \(one per stage\), got 3"),
    ({"shifts": [1, 2, 1, 1]}, ValueError, r"shifts\[1\] must be in 0\.\.1, got 2"),
    ({"shifts": 16}, ValueError, r"shifts must be in 0\.\.15, got 16"),
    ({"shifts": 1.5}, TypeError, "shifts must be None, an int mask in 0..15 or a sequence"),
])
def test_bad_parameters_name_the_range(kwargs, error, message):
    with pytest.raises(error, match=message):
        StreamingFFT2D(**{**_GOOD, **kwargs})


def test_good_parameters_and_derived_values():
    dut = StreamingFFT2D(n=64, width=18, twiddle_width=14, inverse=True, shifts=0b101010)
    assert (dut.n, dut.width, dut.twiddle_width, dut.inverse) == (64, 18, 14, True)
    assert dut.shifts == (0, 1, 0, 1, 0, 1)
    assert StreamingFFT2D(**_GOOD).shifts == (1, 1, 1, 1)
    assert StreamingFFT2D(**_GOOD, shifts=(1, 0, 1, 0)).shifts == (1, 0, 1, 0)
