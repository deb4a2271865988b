"""StreamingFFT (Python simulator) against the bit-exact golden model
(``dnnhw.golden.fft_fixed``): every frame out, in order, exact, whatever the stalls; the
ghost-frame flush; one sample a cycle; the latency property; the sticky overflow flag;
the twiddle ROM; the parameter errors. Also the BitReverseBuffer on its own."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from dnnhw.golden.fft_fixed import fft as golden_fft
from dnnhw.golden.fft_fixed import twiddles as golden_twiddles
from dnnhw.rtl.bit_reverse import BitReverseBuffer, bit_reverse
from dnnhw.rtl.fft import StreamingFFT, twiddle_table


def _simulate(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def _frames(rng, frames, n, width, scale=1.0, values=None):
    """``frames`` random frames ``(frames, n, 2)``: uniform within ``scale`` of full range,
    or drawn from ``values``."""
    top = 1 << (width - 1)
    if values is not None:
        return rng.choice(values, size=(frames, n, 2)).astype(np.int64)
    lim = max(1, int(top * scale))
    return rng.integers(max(-lim, -top), min(lim, top - 1) + 1,
                        size=(frames, n, 2)).astype(np.int64)


def _golden(dut, x):
    return golden_fft(x, n=dut.n, width=dut.width, twiddle_width=dut.twiddle_width,
                      inverse=dut.inverse, shifts=list(dut.shifts))


class Run:
    """What :func:`_run` saw: ``out`` (payload pairs, in order), ``in_cycles`` and
    ``out_cycles`` (the cycle of each transfer), ``ready`` (``input.ready`` per cycle),
    ``overflow`` (the flag at the end), ``cycles``."""


def _run(dut, x, *, offer=None, accept=None, idle_before=None, quiet=None, checks=True):
    """Stream the frames ``x`` ``(frames, n, 2)`` through ``dut`` until every output is out
    and the output has been quiet ``quiet`` cycles.

    ``offer(cycle)`` says whether the source may raise ``valid`` this cycle (asked only
    while it holds no sample; a held sample stays valid until taken); ``accept(cycle)``
    whether the sink is ready. ``idle_before(frame)`` is a number of cycles the source
    waits before a frame's first sample. With ``checks``, the output obeys the stream
    rules (valid and payload hold until taken).
    """
    n = dut.n
    samples = x.reshape(-1, 2).tolist()
    total = len(samples)
    offer = offer or (lambda cycle: True)
    accept = accept or (lambda cycle: True)
    quiet = quiet if quiet is not None else 4 * n + dut.latency
    run = Run()
    run.out, run.in_cycles, run.out_cycles, run.ready = [], [], [], []

    async def bench(ctx):
        sent, holding, wait, silent, cycle = 0, False, 0, 0, 0
        held_out = None
        if idle_before is not None and total:
            wait = idle_before(0)
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
            in_ready = ctx.get(dut.input.ready)
            run.ready.append(in_ready)
            if holding and in_ready:
                run.in_cycles.append(cycle)
                holding = False
                sent += 1
                if idle_before is not None and sent % n == 0 and sent < total:
                    wait = idle_before(sent // n)
            out_valid = ctx.get(dut.output.valid)
            payload = ctx.get(dut.output.payload)
            pair = (payload.re, payload.im)
            if checks and held_out is not None:
                assert out_valid and pair == held_out, \
                    f"cycle {cycle}: output changed before its transfer"
            held_out = None
            if out_valid:
                silent = 0
                if ready:
                    run.out.append(pair)
                    run.out_cycles.append(cycle)
                else:
                    held_out = pair
            elif sent == total and len(run.out) >= total:
                silent += 1
            await ctx.tick()
            cycle += 1
            assert cycle < 200 * n + 40 * total + 2000, \
                f"stuck: {sent} of {total} in, {len(run.out)} out after {cycle} cycles"
        run.overflow = ctx.get(dut.overflow)
        run.cycles = cycle

    _simulate(dut, bench)
    return run


def _assert_exact(dut, x, run):
    want, overflow = _golden(dut, x)
    assert len(run.out) == x.shape[0] * dut.n, f"{len(run.out)} samples out"
    got = np.array(run.out, dtype=np.int64).reshape(want.shape)
    for f in range(want.shape[0]):
        bad = np.argwhere(np.any(got[f] != want[f], axis=-1)).ravel()
        assert bad.size == 0, (f"frame {f}: bins {bad[:8].tolist()} differ: got "
                               f"{got[f][bad[:4]].tolist()}, want {want[f][bad[:4]].tolist()}")
    assert bool(run.overflow) == bool(np.any(overflow))


# --- Bit-exact against the golden model, no stalls ---------------------------------------

@pytest.mark.parametrize("n, width, twiddle_width, inverse, shifts, scale", [
    (8, 16, 16, False, None, 1.0),
    (8, 8, 8, True, None, 1.0),
    (8, 12, 12, False, 0, 1 / 8),             # no shifts, inputs small enough
    (16, 12, 10, False, 0b0101, 1 / 4),
    (16, 16, 18, True, [1, 0, 1, 1], 1 / 2),
    (16, 20, 14, False, 0b1111, 1.0),
    (64, 16, 16, False, None, 1.0),
    (64, 18, 18, True, None, 1.0),
    (64, 24, 18, False, [1, 1, 0, 1, 0, 1], 1 / 4),
    (64, 10, 8, True, 0, 1 / 64),
    (64, 16, 16, False, 0, 1.0),              # saturates all over
    (256, 16, 16, False, None, 1.0),
], ids=lambda v: str(v))
def test_matches_golden(n, width, twiddle_width, inverse, shifts, scale):
    dut = StreamingFFT(n=n, width=width, twiddle_width=twiddle_width, inverse=inverse,
                       shifts=shifts)
    rng = np.random.default_rng(n * 1000 + width * 10 + twiddle_width + inverse)
    x = _frames(rng, 2 if n == 256 else 4, n, width, scale)
    # _assert_exact asserts every output sample and the overflow flag against the golden.
    _assert_exact(dut, x, _run(dut, x))


@pytest.mark.parametrize("inverse", [False, True])
@pytest.mark.parametrize("shifts", [None, 0, 0b010])
def test_extreme_values_match_golden(inverse, shifts):
    # Only -M, M - 1, 0, +-1: the sums and differences that round or saturate at the edge
    # (a - b = 2M - 1 with a shift), and products at full scale.
    n, width = 8, 8
    top = 1 << (width - 1)
    dut = StreamingFFT(n=n, width=width, twiddle_width=8, inverse=inverse, shifts=shifts)
    rng = np.random.default_rng(7 + inverse)
    x = _frames(rng, 12, n, width, values=[-top, top - 1, 0, 1, -1])
    x[0] = 0
    x[0, :4, 0], x[0, 4:, 0] = top - 1, -top             # a - b = 2M - 1 at stage 0
    # _assert_exact asserts every output sample and the overflow flag against the golden.
    _assert_exact(dut, x, _run(dut, x))


def test_twiddle_rom_is_the_golden_table():
    for n, tw, inverse in [(8, 8, False), (64, 16, True), (4096, 18, False),
                           (4096, 13, True), (1024, 8, False)]:
        assert np.array_equal(np.array(twiddle_table(n, tw, inverse)),
                              np.asarray(golden_twiddles(n, tw, inverse))), (n, tw, inverse)


# --- Stalls, ghost frames ----------------------------------------------------------------

@pytest.mark.parametrize("n, seed, p_offer, p_accept", [
    (8, 0, 0.7, 0.7),
    (16, 1, 0.5, 0.9),
    (16, 2, 0.95, 0.4),
    (64, 3, 0.8, 0.6),
])
def test_random_stalls_every_frame_in_order_exact(n, seed, p_offer, p_accept):
    dut = StreamingFFT(n=n, width=14, twiddle_width=12, shifts=(1 << dut_stages(n)) - 2)
    rng = random.Random(seed)
    x = _frames(np.random.default_rng(seed), 7, n, 14)
    # Gaps at frame boundaries: none, one cycle (a ghost frame at once), or long idles
    # (the last real frame must come out with no more input).
    gaps = [0, 1, 0, 3 * n + dut.latency, 2, n // 2, 0]
    run = _run(dut, x, offer=lambda c: rng.random() < p_offer,
               accept=lambda c: rng.random() < p_accept,
               idle_before=lambda f: gaps[f])
    # _assert_exact asserts every frame out, in order, exact, and the overflow flag.
    _assert_exact(dut, x, run)


def dut_stages(n):
    return n.bit_length() - 1


def test_output_stalled_long_backpressures_input():
    # The sink stalls for long stretches: both reorder banks fill, the pipeline stops,
    # the input sees ready low; nothing is lost.
    n = 16
    dut = StreamingFFT(n=n, width=12, twiddle_width=12, inverse=True)
    x = _frames(np.random.default_rng(5), 6, n, 12)
    run = _run(dut, x, accept=lambda c: (c // 40) % 3 == 2)
    _assert_exact(dut, x, run)
    assert not all(run.ready[:len(run.in_cycles)]), "the input never saw backpressure"


def test_ghost_frame_flushes_a_lone_frame():
    # One frame, then nothing: it comes out as fast as if more frames followed. The ghost
    # frame starts in the boundary cycle that finds the input not valid (ready was high:
    # it does not look at valid) and the input is not ready for the other n - 1.
    n = 16
    dut = StreamingFFT(n=n, width=16, twiddle_width=16)
    x = _frames(np.random.default_rng(9), 1, n, 16)
    run = _run(dut, x, quiet=3 * n)
    _assert_exact(dut, x, run)
    assert run.in_cycles == list(range(n))
    assert run.out_cycles == list(range(dut.latency, dut.latency + n))
    assert run.ready[:n + 1] == [1] * (n + 1)
    assert run.ready[n + 1:2 * n] == [0] * (n - 1)   # the ghost frame
    assert all(run.ready[2 * n:])                  # then never again: nothing real inside


def test_pause_inside_a_frame_only_pauses():
    # A long pause mid-frame: no ghost frame (ready stays high), the frame finishes when
    # the input comes back, and comes out exact.
    n = 16
    dut = StreamingFFT(n=n, width=16, twiddle_width=16)
    x = _frames(np.random.default_rng(11), 2, n, 16)
    pause = range(5, 5 + 3 * n + dut.latency)
    run = _run(dut, x, offer=lambda c: c not in pause)
    _assert_exact(dut, x, run)
    assert all(run.ready[:pause.stop + 2 * n - 5])
    # nothing of the first frame comes out before its last sample went in
    assert run.out_cycles[0] > run.in_cycles[n - 1]


# --- Throughput and latency --------------------------------------------------------------

@pytest.mark.parametrize("n, frames", [(8, 6), (16, 5), (64, 4), (256, 2)])
def test_one_sample_a_cycle_and_the_latency(n, frames):
    dut = StreamingFFT(n=n, width=16, twiddle_width=16)
    x = _frames(np.random.default_rng(n), frames, n, 16, scale=0.5)
    run = _run(dut, x, quiet=2)
    _assert_exact(dut, x, run)
    total = frames * n
    assert run.in_cycles == list(range(total))               # never a stall on input
    assert run.out_cycles[0] - run.in_cycles[0] == dut.latency
    assert run.out_cycles == list(range(dut.latency, dut.latency + total))
    # m frames: m * n + latency cycles from the first sample in to the last out (both
    # cycles counted)
    assert run.out_cycles[-1] - run.in_cycles[0] + 1 == total + dut.latency


def test_latency_formula():
    for n in (8, 16, 64, 256, 4096):
        dut = StreamingFFT(n=n, width=16, twiddle_width=16)
        assert dut.latency == n + dut.pipeline_registers + dut.reorder_start
        # the last two stages need no multiplier (twiddles in {0, +-2 ** F})
        assert [dut.multiplies(s) for s in range(dut.stages)] == \
            [True] * (dut.stages - 2) + [False, False]
        assert dut.multipliers == 4 * (dut.stages - 2)


# --- Overflow ----------------------------------------------------------------------------

def test_overflow_sets_only_on_saturation_and_clears():
    # Frame by frame, each flushed by a ghost frame: the flag after each is the golden's
    # overflow for that frame alone; clear_overflow clears it in between.
    n, width = 16, 12
    dut = StreamingFFT(n=n, width=width, twiddle_width=12, shifts=0)
    rng = np.random.default_rng(13)
    top = 1 << (width - 1)
    frames = [_frames(rng, 1, n, width, scale=1 / 32)[0],          # fits: no overflow
              _frames(rng, 1, n, width, values=[top - 1])[0],        # saturates
              _frames(rng, 1, n, width, scale=1 / 32)[0],
              _frames(rng, 1, n, width, scale=1.0)[0],
              _frames(rng, 1, n, width, scale=1 / 20)[0]]
    want_flags = [bool(np.any(_golden(dut, f[None])[1])) for f in frames]
    assert want_flags[:2] == [False, True] and want_flags[3]
    seen = []

    async def bench(ctx):
        ctx.set(dut.output.ready, 1)
        for frame in frames:
            for re, im in frame.tolist():
                ctx.set(dut.input.valid, 1)
                ctx.set(dut.input.payload, {"re": re, "im": im})
                await ctx.tick().until(dut.input.ready)
            ctx.set(dut.input.valid, 0)
            out = 0
            for _ in range(4 * n + dut.latency):
                out += ctx.get(dut.output.valid)
                await ctx.tick()
            assert out == n
            seen.append(ctx.get(dut.overflow))
            # the flag holds until cleared
            await ctx.tick().repeat(5)
            assert ctx.get(dut.overflow) == seen[-1]
            ctx.set(dut.clear_overflow, 1)
            await ctx.tick()
            ctx.set(dut.clear_overflow, 0)
            assert ctx.get(dut.overflow) == 0

    _simulate(dut, bench)
    assert [bool(v) for v in seen] == want_flags


def test_no_overflow_from_small_inputs_ever():
    dut = StreamingFFT(n=64, width=16, twiddle_width=16, shifts=0)
    x = _frames(np.random.default_rng(17), 3, 64, 16, scale=1 / 64)
    rng = random.Random(17)
    run = _run(dut, x, offer=lambda c: rng.random() < 0.8,
               accept=lambda c: rng.random() < 0.8, idle_before=lambda f: [0, 200, 1][f])
    _assert_exact(dut, x, run)
    assert run.overflow == 0


def test_stale_delay_lines_after_reset_do_not_leak():
    # Saturating frames fill the delay lines (block RAM and flip-flops keep their words
    # through a reset); a reset mid-frame, then small frames: exact, and no overflow from
    # the stale words the first steps push out.
    from amaranth.hdl import Module, ResetInserter, Signal

    n, width = 64, 12
    dut = StreamingFFT(n=n, width=width, twiddle_width=12, shifts=0)
    rst = Signal()
    top = Module()
    top.submodules.dut = ResetInserter(rst)(dut)
    top_val = (1 << (width - 1)) - 1
    rng = np.random.default_rng(19)
    x = _frames(rng, 2, n, width, scale=1 / 64)
    want, want_overflow = _golden(dut, x)
    assert not np.any(want_overflow)
    got = []

    async def bench(ctx):
        ctx.set(dut.output.ready, 1)
        for k in range(n + n // 2):                       # saturating garbage
            ctx.set(dut.input.valid, 1)
            ctx.set(dut.input.payload, {"re": top_val, "im": -top_val - k % 2})
            await ctx.tick()
        assert ctx.get(dut.overflow)
        ctx.set(dut.input.valid, 0)
        ctx.set(rst, 1)
        await ctx.tick().repeat(2)
        ctx.set(rst, 0)
        assert ctx.get(dut.overflow) == 0
        for re, im in x.reshape(-1, 2).tolist():
            ctx.set(dut.input.valid, 1)
            ctx.set(dut.input.payload, {"re": re, "im": im})
            if ctx.get(dut.output.valid):
                got.append((ctx.get(dut.output.payload.re), ctx.get(dut.output.payload.im)))
            await ctx.tick().until(dut.input.ready)
        ctx.set(dut.input.valid, 0)
        for _ in range(4 * n + dut.latency):
            if ctx.get(dut.output.valid):
                got.append((ctx.get(dut.output.payload.re), ctx.get(dut.output.payload.im)))
            await ctx.tick()
        assert ctx.get(dut.overflow) == 0

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert np.array_equal(np.array(got).reshape(want.shape), want)


# --- The reorder buffer alone ------------------------------------------------------------

@pytest.mark.parametrize("n", [2, 8, 32])
def test_bit_reverse_buffer_reorders_with_stalls(n):
    dut = BitReverseBuffer(n=n, shape=16)
    rng = random.Random(n)
    frames = 6
    words = [rng.randrange(1 << 16) for _ in range(frames * n)]
    bits = n.bit_length() - 1
    want = [words[f * n + bit_reverse(k, bits)] for f in range(frames) for k in range(n)]
    got = []

    async def bench(ctx):
        sent, holding = 0, False
        for cycle in range(20 * frames * n):
            if sent < len(words) and not holding and rng.random() < 0.7:
                holding = True
                ctx.set(dut.i.payload, words[sent])
            ctx.set(dut.i.valid, holding)
            ready = rng.random() < 0.6
            ctx.set(dut.o.ready, ready)
            if holding and ctx.get(dut.i.ready):
                holding, sent = False, sent + 1
            if ready and ctx.get(dut.o.valid):
                got.append(ctx.get(dut.o.payload))
            await ctx.tick()

    _simulate(dut, bench)
    assert got == want


# --- Parameter errors --------------------------------------------------------------------

_GOOD = {"n": 16, "width": 16, "twiddle_width": 16}


@pytest.mark.parametrize("kwargs, error, message", [
    ({"n": 12}, ValueError, r"n must be a power of two in 8\.\.4096, got 12"),
    ({"n": 4}, ValueError, r"n must be in 8\.\.4096, got 4"),
    ({"n": 8192}, ValueError, r"n must be in 8\.\.4096"),
    ({"n": 16.0}, TypeError, "n must be an integer"),
    ({"width": 7}, ValueError, r"width must be in 8\.\.24, got 7"),
    ({"width": 25}, ValueError, r"width must be in 8\.\.24"),
    ({"twiddle_width": 19}, ValueError, r"twiddle_width must be in 8\.\.18, got 19"),
    ({"twiddle_width": 7}, ValueError, r"twiddle_width must be in 8\.\.18"),
    ({"inverse": 1}, TypeError, "inverse must be a bool"),
    ({"shifts": [1, 1, 1]}, ValueError,
     r"shifts must have log2\(n\) = 4 values \(one per stage\), got 3"),
    ({"shifts": [1, 1, 1, 1, 1]}, ValueError, "shifts must have log2"),
    ({"shifts": [1, 2, 1, 1]}, ValueError, r"shifts\[1\] must be in 0\.\.1, got 2"),
    ({"shifts": [1, -1, 1, 1]}, ValueError, r"shifts\[1\] must be in 0\.\.1"),
    ({"shifts": [1, 0.5, 1, 1]}, TypeError, r"shifts\[1\] must be an int, got float"),
    ({"shifts": 16}, ValueError, r"shifts must be in 0\.\.15, got 16"),
    ({"shifts": -1}, ValueError, r"shifts must be in 0\.\.15"),
    ({"shifts": True}, TypeError, "shifts must be None, an int mask in 0..15 or a sequence"),
    ({"shifts": 1.5}, TypeError, "shifts must be None, an int mask in 0..15 or a sequence"),
])
def test_bad_parameters_name_the_range(kwargs, error, message):
    with pytest.raises(error, match=message):
        StreamingFFT(**{**_GOOD, **kwargs})


def test_good_parameters_and_derived_values():
    dut = StreamingFFT(n=64, width=16, twiddle_width=16, inverse=True, shifts=0b101010)
    assert dut.shifts == (0, 1, 0, 1, 0, 1)
    assert dut.stages == 6 and dut.fraction_bits == 14 and dut.inverse
    assert [dut.span(s) for s in range(6)] == [32, 16, 8, 4, 2, 1]
    assert StreamingFFT(**_GOOD).shifts == (1, 1, 1, 1)
    assert StreamingFFT(**_GOOD, shifts=(1, 0, 1, 0)).shifts == (1, 0, 1, 0)
