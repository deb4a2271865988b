"""Amaranth-simulator tests of the ZV cores at small sizes: quick checks against the
golden model with stalls, and the decompressor's malformed-frame behaviour (which the
cocotb benches, fed by the golden compressor, never see)."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from dnnhw.golden.zvc import compress_frame
from dnnhw.rtl.zvc import ZVCCompressor, ZVCDecompressor, ZVCLoopback


def _run(simulate_streams, dut, beats, *, idle=0.0, backpressure=0.0, seed=1):
    """``beats`` through ``dut`` with random stalls; returns (outputs, error flag after)."""
    sample = ("error",) if hasattr(dut, "error") else ()
    seg, = simulate_streams(dut, [beats], source=idle, sink=backpressure, seed=seed,
                            sample=sample)
    return seg.out, seg.after.get("error", 0)


def _frames(lanes, width, rng, count=6, density=0.5):
    frames = []
    for _ in range(count):
        n = int(rng.integers(1, 5))
        values = rng.integers(1, 1 << width, size=(n, lanes), dtype=np.uint64)
        frames.append(np.where(rng.random((n, lanes)) < density, values, 0).astype(np.uint64))
    return frames


def _window_beats(frames):
    return [{"data": [int(x) for x in row], "last": int(k == len(f) - 1)}
            for f in frames for k, row in enumerate(f)]


def _expected_words(frames, lanes, width):
    expected = []
    for f in frames:
        words, last_length = compress_frame(f, width=width)
        for k, word in enumerate(words):
            final = k == len(words) - 1
            expected.append(([int(x) for x in word], last_length if final else lanes, int(final)))
    return expected


@pytest.mark.parametrize("lanes,width", [(4, 8), (8, 16), (16, 8)])
def test_compressor_matches_golden_under_stalls(lanes, width, simulate_streams):
    rng = np.random.default_rng(lanes + width)
    frames = _frames(lanes, width, rng)
    out, _ = _run(simulate_streams, ZVCCompressor(lanes=lanes, width=width),
                  _window_beats(frames), idle=0.3, backpressure=0.4)
    got = [([int(x) for x in p.data], int(p.length), int(p.last)) for p in out]
    assert got == _expected_words(frames, lanes, width)


@pytest.mark.parametrize("lanes,width", [(4, 8), (8, 16)])
def test_loopback_round_trip_under_stalls(lanes, width, simulate_streams):
    rng = np.random.default_rng(7 * lanes + width)
    frames = _frames(lanes, width, rng, count=8, density=0.6)
    beats = _window_beats(frames)
    out, error = _run(simulate_streams, ZVCLoopback(lanes=lanes, width=width), beats,
                      idle=0.3, backpressure=0.3)
    assert [([int(x) for x in p.data], int(p.last)) for p in out] == \
        [(b["data"], b["last"]) for b in beats]
    assert error == 0


def test_decompressor_truncated_frame_ends_with_last_and_error(simulate_streams):
    # lanes 4 width 8: the mask 0b0111 announces three non-zeros, the frame holds two.
    dut = ZVCDecompressor(lanes=4, width=8)
    bad = {"data": [0b0111, 5, 6, 0], "length": 3, "last": 1}
    good = {"data": [0b0001, 9, 0, 0], "length": 2, "last": 1}
    out, error = _run(simulate_streams, dut, [bad, good])
    got = [([int(x) for x in p.data], int(p.last)) for p in out]
    # The bad frame still ends (missing element zero-filled); the next frame is intact.
    assert got == [([5, 6, 0, 0], 1), ([9, 0, 0, 0], 1)]
    assert error == 1


def test_decompressor_well_formed_frames_leave_error_clear(simulate_streams):
    dut = ZVCDecompressor(lanes=4, width=8)
    words, last_length = compress_frame(np.array([[1, 0, 2, 0], [0, 0, 0, 0]]), width=8)
    beats = [{"data": [int(x) for x in w], "length": last_length if k == len(words) - 1 else 4,
              "last": int(k == len(words) - 1)} for k, w in enumerate(words)]
    out, error = _run(simulate_streams, dut, beats)
    assert [([int(x) for x in p.data], int(p.last)) for p in out] == \
        [([1, 0, 2, 0], 0), ([0, 0, 0, 0], 1)]
    assert error == 0


@pytest.mark.parametrize("lanes,width", [(8, 16), (16, 8)])
def test_compressor_dense_burst_into_stalled_output(lanes, width, simulate_streams):
    # Dense windows against an output that is mostly stalled: the queues fill, the credit
    # holds the input, and no word is lost or duplicated.
    rng = np.random.default_rng(3 * lanes + width)
    frames = _frames(lanes, width, rng, count=24, density=1.0)
    out, _ = _run(simulate_streams, ZVCCompressor(lanes=lanes, width=width),
                  _window_beats(frames), backpressure=0.85)
    got = [([int(x) for x in p.data], int(p.length), int(p.last)) for p in out]
    assert got == _expected_words(frames, lanes, width)


def test_compressor_handshake_is_registered():
    # `i.ready` is a register (it follows neither `o.ready` nor `i.valid` within a cycle),
    # and `o.valid` does not follow `o.ready`: the credit scheme's promise.
    dut = ZVCCompressor(lanes=8, width=16)
    rng = np.random.default_rng(5)
    frames = _frames(8, 16, rng, count=10, density=1.0)
    beats = _window_beats(frames)
    seen = {"ready_low": 0}

    async def bench(ctx):
        pick = random.Random(9)
        sent = 0
        for cycle in range(400):
            observed = set()
            for o_ready in (0, 1):
                for i_valid in (0, 1):
                    ctx.set(dut.o.ready, o_ready)
                    ctx.set(dut.i.valid, i_valid and sent < len(beats))
                    await ctx.delay(1e-9)
                    observed.add((ctx.get(dut.i.ready), ctx.get(dut.o.valid)))
            assert len(observed) == 1, observed
            i_valid = sent < len(beats)
            ctx.set(dut.i.valid, i_valid)
            if i_valid:
                ctx.set(dut.i.payload, beats[sent])
            ctx.set(dut.o.ready, pick.random() < 0.2)
            await ctx.delay(1e-9)
            if i_valid and ctx.get(dut.i.ready):
                sent += 1
            seen["ready_low"] += cycle > 0 and not ctx.get(dut.i.ready)  # 0: out of reset
            await ctx.tick()
        assert sent == len(beats)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert seen["ready_low"] > 10  # the credit did hold the input


# --- the decompressor's malformed-input contract ---------------------------------------
# Every hand-made case of dnnhw.sim.zvc_data (each malformed class that can occur at the
# geometry, plus controls), after a well-formed frame and followed by one (recovery), and
# random corruptions of compressed frames: windows, `last` and `error` at every output
# transfer equal to the golden model's hardware mode under each stall pattern (and so
# identical across them), `error` sticky after the stream. The DUT is reset between cases.

from dnnhw.sim.zvc_data import corrupted_stream, frames_stream, malformed_cases  # noqa: E402

STALLS = {
    "full": (None, None),
    "random": (0.3, 0.3),
    "bursts": ({"name": "bursts", "go": 3, "stall": 2}, {"name": "bursts", "go": 4, "stall": 3}),
    "slow sink": (None, {"name": "every", "n": 4}),
}
MALFORMED_POINTS = [(4, 8), (8, 16), (16, 8), pytest.param(32, 8, marks=pytest.mark.slow)]


def check_against_contract(streams, segments, width):
    for k, (stream, seg) in enumerate(zip(streams, segments)):
        d = stream.decode(width)
        got = [[int(x) for x in p.data] for p in seg.out]
        assert got == d.windows.tolist(), f"stream {k}: windows"
        assert [int(p.last) for p in seg.out] == d.last.astype(int).tolist(), f"stream {k}: last"
        assert [s["error"] for s in seg.samples] == d.error_at.astype(int).tolist(), \
            f"stream {k}: error at the transfers"
        assert seg.after["error"] == int(d.error), f"stream {k}: error after"


@pytest.mark.parametrize("stalls", list(STALLS))
@pytest.mark.parametrize("lanes,width", MALFORMED_POINTS)
def test_decompressor_malformed_cases(lanes, width, stalls, simulate_streams):
    rng = np.random.default_rng([lanes, width])
    before = frames_stream([_frames(lanes, width, rng, count=1)[0][:1]], width)
    after = frames_stream(_frames(lanes, width, rng, count=1), width)
    cases = malformed_cases(lanes, width)
    streams = [before + case.stream + after for case in cases]
    source, sink = STALLS[stalls]
    segments = simulate_streams(ZVCDecompressor(lanes=lanes, width=width),
                                [s.beats() for s in streams], source=source, sink=sink,
                                seed=lanes + width, sample=("error",))
    check_against_contract(streams, segments, width)
    for case, seg in zip(cases, segments):
        # The error is the case's own: clear after the well-formed frame before it.
        assert seg.samples[0]["error"] == 0
        assert seg.after["error"] == int(case.cls != "well-formed"), case


@pytest.mark.parametrize("stalls", list(STALLS))
@pytest.mark.parametrize("lanes,width", MALFORMED_POINTS)
def test_decompressor_random_corruptions(lanes, width, stalls, simulate_streams):
    rng = np.random.default_rng([lanes, width, 8])
    streams = [corrupted_stream(rng, lanes, width, frames=5)[0] for _ in range(6)]
    source, sink = STALLS[stalls]
    segments = simulate_streams(ZVCDecompressor(lanes=lanes, width=width),
                                [s.beats() for s in streams], source=source, sink=sink,
                                seed=3 * lanes + width, sample=("error",))
    check_against_contract(streams, segments, width)


def test_decompressor_error_rises_with_the_bad_frames_last_window(simulate_streams):
    # Frames: good, bad (non-zero padding), good. `error` is 0 while the first frame and
    # the bad frame's first window are offered, 1 from the bad frame's last window on,
    # even though the bad word is taken long before (slow sink: the input runs ahead).
    lanes, width = 4, 8
    good = frames_stream([np.array([[1, 2, 3, 4], [0, 0, 5, 0]], dtype=np.uint64)], width)
    from dnnhw.sim.zvc_data import Stream
    bad = Stream([[0b0011, 7, 8, 0b0001], [9, 6, 0, 0]], [4, 1], [0, 1], lanes)
    bad.words[1, 2] = 3                                 # padding past length 1
    stream = good + bad + good
    seg, = simulate_streams(ZVCDecompressor(lanes=lanes, width=width), [stream.beats()],
                            sink={"name": "every", "n": 6}, sample=("error",))
    got = [([int(x) for x in p.data], int(p.last), s["error"])
           for p, s in zip(seg.out, seg.samples)]
    assert got == [([1, 2, 3, 4], 0, 0), ([0, 0, 5, 0], 1, 0),
                   ([7, 8, 0, 0], 0, 0), ([9, 0, 0, 0], 1, 1),
                   ([1, 2, 3, 4], 0, 1), ([0, 0, 5, 0], 1, 1)]
