"""Properties of the zero-value cores (``zvc-compress``, ``zvc-decompress``,
``zvc-loopback``), for any data and any stalls on every stream.

Counting is by tracking (:func:`~dnnhw.formal.properties.track`): with "no more out than
in", a check of the ``k``-th beat out against the ``k``-th beat in for a free ``k`` rules
out a beat created, lost (within the depth), duplicated or reordered.

Depths are sized by the latencies: a window needs ``latency`` cycles to cross a core, so
a BMC depth is at least that plus the beats the property needs to see.
"""

from amaranth.hdl import Assert, Cat, Signal, Value

from .properties import (INDEX_BITS, Property, consecutive, cover, no_stall_longer_than,
                         stays_within, stream_properties, track)


__all__ = ["compressor_properties", "decompressor_properties", "loopback_properties"]


def _nonzero_lanes(window):
    return Cat(lane != 0 for lane in window.data)


def _frames_in_and_out(harness):
    i, o = harness.inputs["i"], harness.outputs["o"]
    frames_in = harness.counter("frames_in", harness.transfer(i) & i.payload.last,
                                width=INDEX_BITS + 1)
    frames_out = harness.counter("frames_out", harness.transfer(o) & o.payload.last,
                                 width=INDEX_BITS + 1)
    return frames_in, frames_out


def _no_frame_created(harness):
    frames_in, frames_out = _frames_in_and_out(harness)
    stays_within(harness, frames_out, frames_in, "a frame left before its last beat came in")


def _frames_leave(harness, cycles):
    """A frame whose last beat came in leaves: the output offers a beat within ``cycles``
    of any cycle that owes one (whatever the input does meanwhile)."""
    frames_in, frames_out = _frames_in_and_out(harness)
    o = harness.outputs["o"]
    no_stall_longer_than(harness, busy=frames_out != frames_in, progress=o.valid,
                         cycles=cycles, message="a frame that came in did not come out")


def compressor_properties(component):
    n, ms = component.lanes, component.mask_slots
    latency = component.latency

    def frame_slots(harness):
        i, o = harness.inputs["i"], harness.outputs["o"]
        m = harness.m
        wide = 8   # a frame of depth-many windows of at most M + N slots each
        window_slots = (ms + sum(_nonzero_lanes(i.payload))).as_unsigned()
        slots_in = Signal(wide, name="slots_in")    # of the input frame in progress
        slots_out = Signal(wide, name="slots_out")  # of the output frame in progress
        in_frame = harness.transfer(i) & i.payload.last
        out_frame = harness.transfer(o) & o.payload.last
        k, seen, recorded, _ = track(harness, in_frame, slots_in + window_slots, "frame_in")
        frames_out = harness.counter("frames_out", out_frame, width=INDEX_BITS + 1)
        with m.If(harness.transfer(i)):
            m.d.sync += slots_in.eq(0)
            with m.If(~i.payload.last):
                m.d.sync += slots_in.eq(slots_in + window_slots)
        with m.If(harness.transfer(o)):
            m.d.sync += slots_out.eq(0)
            with m.If(~o.payload.last):
                m.d.sync += slots_out.eq(slots_out + o.payload.length)
                m.d.comb += Assert(o.payload.length == n, "a word without last is not full")
        with m.If(out_frame & (frames_out == k)):
            m.d.comb += [Assert(seen, "a frame left before it came in"),
                         Assert(slots_out + o.payload.length == recorded,
                                "a frame left with a slot count other than its windows'")]

    def dense_at_full_rate(harness):
        i, o = harness.inputs["i"], harness.outputs["o"]
        dense = harness.transfer(i) & _nonzero_lanes(i.payload).all()
        cover(harness, consecutive(harness, dense, 3, "dense_run"),
              "three dense windows taken in three cycles")
        cover(harness, consecutive(harness, harness.transfer(o) & (o.payload.length == n),
                                   3, "full_words"),
              "three full words out in three cycles")
        cover(harness, harness.transfer(o) & o.payload.last, "a frame's last word out")

    return (
        *stream_properties(component),
        Property("frames", "no frame leaves before its last window came in", "bmc",
                 20, _no_frame_created),
        Property("frame-slots", "the k-th frame out has exactly the slots of the k-th "
                 "frame in (M + non-zeros per window), and only its last word is short",
                 "bmc", 20, frame_slots, deep=True),
        Property("frames-leave", f"a frame that came in starts out within {latency + 1} "
                 "cycles of any cycle that owes it, whatever the input does",
                 "bmc", 20, lambda h: _frames_leave(h, latency + 1)),
        Property("covers", "dense windows at the full rate, full words at the full rate, "
                 "a frame's end", "cover", 20, dense_at_full_rate),
    )


def decompressor_properties(component):
    latency = component.latency
    stuck = latency + 2

    def never_hangs(harness):
        i, o = harness.inputs["i"], harness.outputs["o"]
        frames_in, frames_out = _frames_in_and_out(harness)
        no_stall_longer_than(harness, busy=i.valid | (frames_out != frames_in),
                             progress=harness.transfer(i) | o.valid, cycles=stuck,
                             message="the decompressor hung")

    def error_sticky(harness):
        m, error = harness.m, harness.dut.error
        was = Signal(name="error_was")
        m.d.sync += was.eq(error)
        m.d.comb += Assert(~was | error, "error fell")

    def covers(harness):
        o, error = harness.outputs["o"], harness.dut.error
        dense = harness.transfer(o) & _nonzero_lanes(o.payload).all()
        cover(harness, consecutive(harness, dense, 3, "dense_run"),
              "three dense windows out in three cycles")
        cover(harness, harness.transfer(o) & o.payload.last, "a frame's last window out")
        cover(harness, error, "a malformed frame flagged")

    return (
        *stream_properties(component),
        Property("frames", "no frame leaves before its last word came in (one last "
                 "window per frame)", "bmc", 20, _no_frame_created, deep=True),
        Property("never-hangs", f"on any input, malformed included, it takes a word or "
                 f"offers a window within {stuck} cycles of any cycle in which a word is "
                 f"offered or a frame is owed", "bmc", 20, never_hangs),
        Property("error-sticky", "error never falls once raised", "prove", 2, error_sticky),
        Property("covers", "dense windows at the full rate, a frame's end, a malformed "
                 "frame flagged", "cover", 20, covers),
    )


def loopback_properties(component):
    latency = component.latency

    def round_trip(harness):
        i, o = harness.inputs["i"], harness.outputs["o"]
        m = harness.m
        window = Value.cast(i.payload)
        k, seen, recorded, windows_in = track(harness, harness.transfer(i), window,
                                               "window_in")
        windows_out = harness.counter("windows_out", harness.transfer(o),
                                      width=INDEX_BITS + 1)
        stays_within(harness, windows_out, windows_in, "a window came out that never went in")
        with m.If(harness.transfer(o) & (windows_out == k)):
            m.d.comb += [Assert(seen, "the k-th window left before it came in"),
                         Assert(Value.cast(o.payload) == recorded,
                                "the k-th window out differs from the k-th window in")]

    def no_error(harness):
        harness.m.d.comb += Assert(~harness.dut.error, "the round trip raised error")

    def covers(harness):
        o = harness.outputs["o"]
        cover(harness, consecutive(harness, harness.transfer(o), 2, "out_run"),
              "two windows out in two cycles")
        cover(harness, harness.transfer(o) & o.payload.last, "a frame's last window out")

    # A window crosses in `latency` cycles (19 at 4 lanes): depth latency + 6 sees six
    # windows through, in 24 s at 4 lanes; latency + 10 ran 30 minutes without an answer.
    depth = latency + 6
    trip = ("the k-th window out equals the k-th window in, data and last, for every k, "
            "and no window comes out that did not go in")
    return (
        *stream_properties(component),
        Property("round-trip", trip, "bmc", depth, round_trip),
        Property("no-error", "the decompressor never flags what the compressor wrote",
                 "bmc", depth, no_error),
        Property("frames-leave", f"a frame that went in starts out within {latency + 1} "
                 f"cycles of any cycle that owes it", "bmc", depth,
                 lambda h: _frames_leave(h, latency + 1)),
        Property("covers", "windows out at the full rate, a frame's end", "cover", depth,
                 covers),
    )
