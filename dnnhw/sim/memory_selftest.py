"""cocotb testbench of :mod:`dnnhw.sim.memory` itself: a DUT with a memory port
(``mem_req``, ``mem_wdata``, ``mem_rdata``), a ``start`` input, a sticky ``done`` output
and a ``cycles`` output (its busy cycles) is started once per run, with the memory model
behind its port, and runs until ``done``.

Config knobs (``run_verilog(..., config=...)``): ``depth`` (words), ``init_addr`` and
``init_words`` (loaded before each run), ``dump_addr`` and ``dump_words`` (read back
after it), ``runs`` (a list of dicts of :class:`~dnnhw.sim.memory.MemoryModel` timing
knobs: ``latency``, ``jitter``, ``rdata_pause``, ``req_pause``, ``wdata_pause``,
``seed``), ``timeout_cycles``. Records ``memory_selftest``: per run the knobs, the DUT's
``cycles``, the memory's ``stats``, its ``log`` (``[accepted, first_offered, done]`` per
request) and the ``dump``.
"""

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

from .memory import MemoryModel, port_widths, serve_cocotb
from .tb import load_config, load_sidecar, record, reset, start


DEFAULTS = {"depth": 1024, "init_addr": 0, "init_words": [], "dump_addr": 0,
            "dump_words": 0, "runs": [{}], "timeout_cycles": 10000}
RUN_KNOBS = {"latency", "jitter", "rdata_pause", "req_pause", "wdata_pause", "seed"}


async def _until_done(dut, clk, timeout_cycles):
    for _ in range(timeout_cycles):
        await RisingEdge(clk)
        await ReadOnly()
        if dut.done.value == 1:
            return
    raise TimeoutError(f"done not high after {timeout_cycles} cycles")


@cocotb.test()
async def memory_runs(dut):
    sidecar = load_sidecar()
    cfg = load_config(DEFAULTS)
    widths = port_widths(sidecar)
    results = []
    clk = None
    for knobs in cfg["runs"]:
        unknown = sorted(set(knobs) - RUN_KNOBS)
        if unknown:
            raise ValueError(f"unknown run knob(s) {', '.join(unknown)}; known: "
                             f"{', '.join(sorted(RUN_KNOBS))}")
        if clk is None:
            clk = await start(dut, sidecar, idle_inputs=("start",))
        else:
            await reset(dut, sidecar, idle_inputs=("start",))
        memory = MemoryModel(cfg["depth"], **widths, **knobs)
        memory.write_words(cfg["init_addr"], cfg["init_words"])
        server = cocotb.start_soon(serve_cocotb(dut, memory))
        dut.start.value = 1
        await RisingEdge(clk)
        dut.start.value = 0
        await _until_done(dut, clk, cfg["timeout_cycles"])
        cycles = dut.cycles.value.to_unsigned()
        await RisingEdge(clk)
        server.cancel()
        memory.check_idle()
        results.append({
            "knobs": knobs, "cycles": cycles, "stats": memory.stats(),
            "log": [[r.accepted, r.first_offered, r.done] for r in memory.log],
            "dump": [int(w) for w in memory.read_words(cfg["dump_addr"], cfg["dump_words"])],
        })
    record("memory_selftest", results)
