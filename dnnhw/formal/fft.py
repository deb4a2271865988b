"""Properties of the streaming FFT (``fft``), for any samples and any stalls.

A frame is ``n`` consecutive samples; every output sample depends on all ``n`` inputs of
its frame, so a correct core can start no output frame before that input frame is
complete, and owes one output frame per input frame. The counting argument:

- ``frames-causal``: the ``k``-th output frame starts only after the ``k``-th input frame
  ended (no sample created ahead of its data);
- ``frames-leave``: once the input pauses at a frame boundary (the core's documented
  flush point, where it pushes a ghost frame through), an owed frame is offered within
  the flush time (none lost or held back);
- so never more than ``n`` samples out per frame in (none created or duplicated), and
  what is owed is offered (the values themselves are the testbenches' to check against
  the golden model).

Depths are sized by the latency: a frame needs :attr:`~dnnhw.rtl.fft.StreamingFFT.latency`
cycles from its first sample in to its first sample out, so the checks run to that plus
a frame: one frame in and out (28 cycles at ``n = 8``, the size the tests prove; at the
default ``n = 64`` it would be 195, out of a BMC's reach). All but the stream rule are
deep. ``clear_overflow`` is free every cycle.
"""

from amaranth.hdl import Assert, Signal

from .properties import (Property, consecutive, cover, no_stall_longer_than,
                         stream_properties)


__all__ = ["fft_properties", "flush_cycles"]


def flush_cycles(fft):
    """Cycles from a frame's last sample in to its first sample out when the input then
    pauses: the latency less the ``n - 1`` cycles the frame took to come in."""
    return fft.latency - (fft.n - 1)


def _counts(harness, fft, bits):
    """``(frames_in, samples_in_frame, samples_out)``: frames fully in, samples of the
    input frame in progress, and samples out so far."""
    m, i, o = harness.m, harness.inputs["input"], harness.outputs["output"]
    in_frame = Signal(range(fft.n), name="samples_in_frame")
    with m.If(harness.transfer(i)):
        m.d.sync += in_frame.eq(in_frame + 1)
    frames_in = harness.counter("frames_in", harness.transfer(i) & (in_frame == fft.n - 1),
                                width=bits)
    samples_out = harness.counter("samples_out", harness.transfer(o), width=bits)
    return frames_in, in_frame, samples_out


def fft_properties(fft):
    n, log2_n = fft.n, fft.stages
    # A frame in and out again (28 cycles at n = 8: 8 to 16 s a check). Two frames (36)
    # took 12 to 15 minutes on a loaded machine: each step from 24 on costs several times
    # the one before.
    depth = fft.latency + n
    bits = (depth + 1).bit_length() + 1
    flush = flush_cycles(fft)

    def frames_causal(harness):
        o = harness.outputs["output"]
        frames_in, _, samples_out = _counts(harness, fft, bits)
        with harness.m.If(harness.transfer(o)):
            harness.m.d.comb += Assert((samples_out >> log2_n) < frames_in,
                                       "an output sample of a frame whose input had not "
                                       "all come in")

    def frames_leave(harness):
        frames_in, in_frame, samples_out = _counts(harness, fft, bits)
        owed = (frames_in << log2_n) != samples_out
        no_stall_longer_than(harness, busy=owed & (in_frame == 0),
                             progress=harness.outputs["output"].valid
                             | harness.transfer(harness.inputs["input"]),
                             cycles=flush, message="an owed frame was not offered after "
                                                   "the input paused at a frame boundary")

    def covers(harness):
        o = harness.outputs["output"]
        cover(harness, consecutive(harness, harness.transfer(o), n, "out_run"),
              f"a whole frame out, {n} samples in {n} cycles")

    return (
        *stream_properties(fft),
        Property("frames-causal", "no output sample of the k-th frame before the k-th "
                 "input frame's last sample came in", "bmc", depth, frames_causal,
                 deep=True),
        Property("frames-leave", f"with the input paused at a frame boundary, an owed "
                 f"frame is offered within {flush} cycles (latency - n + 1)", "bmc",
                 depth, frames_leave, deep=True),
        Property("covers", "a whole frame out at one sample a cycle", "cover", depth + 2,
                 covers, deep=True),
    )
