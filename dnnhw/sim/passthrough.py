"""cocotb testbench for any component that passes stream ``i`` to stream ``o`` unchanged
(FIFOs, register slices, skid buffers): random payloads in, the same payloads out in the
same order, with random idle cycles on the source and random backpressure on the sink.

Config knobs (``run_verilog(..., config=...)``): ``items``, ``idle``, ``backpressure``,
``seed``, ``timeout_cycles``. Records ``passthrough`` (stall run) and
``passthrough_free`` (no stalls) in results.json: items, cycles, beats per cycle, first-in
to first-out latency.
"""

import random

import cocotb

from .streams import StreamSink, StreamSource
from .tb import load_config, load_sidecar, record, start


DEFAULTS = {"items": 2000, "idle": 0.3, "backpressure": 0.3, "timeout_cycles": 10000}


async def _run(dut, cfg, *, idle, backpressure, seed):
    sidecar = load_sidecar()
    await start(dut, sidecar)
    src = StreamSource(dut, sidecar, "i", idle=idle, seed=seed)
    snk = StreamSink(dut, sidecar, "o", backpressure=backpressure, seed=seed + 1,
                     unpack=False)
    rng = random.Random(seed + 2)
    width = src.format.width
    items = [rng.getrandbits(width) for _ in range(cfg["items"])]
    src.start()
    snk.start()
    src.send(items)
    await snk.wait_for(len(items), timeout_cycles=cfg["timeout_cycles"] + 4 * len(items))
    got = snk.items
    for k, (a, b) in enumerate(zip(items, got)):
        if a != b:
            extra = (" (dropped)" if b in items[k + 1:k + 64] else
                     " (duplicated)" if b in items[max(0, k - 64):k] else "")
            raise AssertionError(f"item {k}: sent {a:#x}, received {b:#x}{extra}")
    # Nothing extra comes out afterwards.
    await cocotb.triggers.ClockCycles(src.clk, 20)
    assert len(snk.items) == len(items), \
        f"{len(snk.items) - len(items)} item(s) came out that were never sent (duplicates)"
    si, so = src.stats(), snk.stats()
    src.stop()
    snk.stop()
    return {
        "items": len(items), "idle": idle, "backpressure": backpressure,
        "in": si, "out": so,
        "cycles": so["last_cycle"] - si["first_cycle"] + 1,
        "latency_first": so["first_cycle"] - si["first_cycle"],
    }


@cocotb.test()
async def passthrough_stalls(dut):
    cfg = load_config(DEFAULTS)
    record("passthrough", await _run(dut, cfg, idle=cfg["idle"],
                                     backpressure=cfg["backpressure"], seed=cfg["seed"]))


@cocotb.test()
async def passthrough_free(dut):
    cfg = load_config(DEFAULTS)
    record("passthrough_free", await _run(dut, cfg, idle=0.0, backpressure=0.0,
                                          seed=cfg["seed"] + 10))
