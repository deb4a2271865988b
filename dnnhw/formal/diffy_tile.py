"""Properties of the Diffy tile (``diffy-tile``), every mode, for any pallets and stalls.

A group (the pallets up to one with ``last``) makes exactly one output beat. ``msb`` and
``msb_signed`` (stripes) are configuration, held for the whole trace at a free value.
"""

import numpy as np

from dnnhw.golden.diffy_published import delta_range, term_count, value_range

from .properties import (Property, cover, no_stall_longer_than, stays_within,
                         stream_properties)


__all__ = ["tile_properties", "longest_pallet_steps"]


def longest_pallet_steps(tile):
    """Steps of a pallet one of whose lanes holds a value with the most terms the mode
    can give (the other lanes zero): a term-serial lane retires one term per step."""
    if tile.mode == "bitparallel":
        return 1
    if tile.mode == "stripes":
        return tile.width
    delta = tile.mode == "diffy"
    lo, hi = (delta_range if delta else value_range)(tile.width)
    values = np.arange(lo, hi + 1)
    return int(term_count(values, tile.width, tile.encoding, delta=delta).max())


def tile_properties(tile):
    latency = tile.latency_of(tile.mode)
    configuration = ("msb", "msb_signed") if tile.mode == "stripes" else ()
    longest = longest_pallet_steps(tile)
    depth = max(20, longest + latency + 4)

    def counts(harness):
        a, o = harness.inputs["a"], harness.outputs["o"]
        # One transfer or step a cycle at most: counters as wide as the depths need.
        bits = (depth + 1).bit_length()
        groups_in = harness.counter("groups_in", harness.transfer(a) & a.payload.last,
                                    width=bits)
        groups_out = harness.counter("groups_out", harness.transfer(o), width=bits)
        pallets_in = harness.counter("pallets_in", harness.transfer(a), width=bits)
        steps = harness.counter("steps", harness.dut.step, width=bits)
        return groups_in, groups_out, pallets_in, steps

    def one_beat_per_group(harness):
        groups_in, groups_out, _, _ = counts(harness)
        stays_within(harness, groups_out, groups_in, "an output beat before its group's "
                     "last pallet came in")

    def groups_leave(harness):
        groups_in, groups_out, _, _ = counts(harness)
        no_stall_longer_than(harness, busy=groups_out != groups_in,
                             progress=harness.outputs["o"].valid | harness.dut.step,
                             cycles=latency + 1, message="a group that came in never left")

    def covers(harness):
        o = harness.outputs["o"]
        groups_in, groups_out, pallets_in, steps = counts(harness)
        cover(harness, harness.transfer(o) & (pallets_in == 1) & (groups_out == 0)
              & (steps == longest),
              f"a one-pallet group of {longest} steps out")
        cover(harness, harness.transfer(o) & (groups_out == 1), "two groups out")

    return (
        *stream_properties(tile, constant_inputs=configuration),
        Property("groups", "one output beat per group at most: none before the group's "
                 "last pallet came in", "bmc", depth, one_beat_per_group, deep=True,
                 constant_inputs=configuration),
        Property("groups-leave", f"a group that came in is stepping or offered within "
                 f"{latency + 1} cycles of any cycle that owes it", "bmc", depth,
                 groups_leave, constant_inputs=configuration),
        Property("covers", f"a pallet with the longest term ({longest} steps) out, two "
                 f"groups out", "cover", depth, covers,
                 constant_inputs=configuration),
    )
