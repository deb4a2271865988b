"""cocotb testbench for any component that passes stream ``i`` to stream ``o`` unchanged
(FIFOs, register slices, skid buffers): random payloads in, the same payloads out in the
same order, with random idle cycles on the source and random backpressure on the sink.
Built on :class:`dnnhw.sim.bench.StreamBench`.

Config knobs (``run_verilog(..., config=...)``): ``items``, ``idle``, ``backpressure``,
``source_pause``, ``sink_pause`` (stall patterns replacing the two probabilities in the
stalled run), ``seed``, ``timeout_cycles``. Records ``passthrough`` (stall run) and
``passthrough_free`` (no stalls) in results.json: items, cycles, beats per cycle, first-in
to first-out latency.
"""

import random

import cocotb

from .bench import StreamBench
from .stalls import stall_pattern
from .tb import record


DEFAULTS = {"items": 2000, "idle": 0.3, "backpressure": 0.3, "timeout_cycles": 10000}


async def _run(bench, *, src_pat, snk_pat, seed, label):
    rng = random.Random(seed + 2)
    width = int(bench.sidecar["streams"]["i"]["width"])
    items = [rng.getrandbits(width) for _ in range(bench.cfg["items"])]

    def context(k, got):
        hint = ("dropped" if got in items[k + 1:k + 64] else
                "duplicated" if got in items[max(0, k - 64):k] else "")
        return hint, []

    run = await bench.run({"i": items}, items, label=label, seeds={"i": seed, "o": seed + 1},
                          pauses={"i": src_pat, "o": snk_pat}, budget=2 * len(items),
                          noun="item", render=lambda v: f"{v:#x}", context=context,
                          drain_cycles=20)
    si, so = run.sources["i"].stats(), run.sink.stats()
    return {
        "items": len(items), "idle": src_pat.stall_fraction,
        "backpressure": snk_pat.stall_fraction,
        "source_pause": str(src_pat), "sink_pause": str(snk_pat),
        "in": si, "out": so,
        "cycles": so["last_cycle"] - si["first_cycle"] + 1,
        "latency_first": so["first_cycle"] - si["first_cycle"],
    }


@cocotb.test()
async def passthrough_stalls(dut):
    bench = StreamBench(dut, DEFAULTS)
    src, snk = bench.stall_patterns(bench.cfg["idle"], bench.cfg["backpressure"])
    record("passthrough", await _run(bench, src_pat=src, snk_pat=snk, seed=bench.seed,
                                     label="passthrough with stalls"))


@cocotb.test()
async def passthrough_free(dut):
    bench = StreamBench(dut, DEFAULTS)
    full = stall_pattern("full")
    record("passthrough_free", await _run(bench, src_pat=full, snk_pat=full,
                                          seed=bench.seed + 10, label="passthrough"))
