"""Testbench-side plumbing shared by every cocotb test module: the sidecar, the config
knobs and the results file that :mod:`dnnhw.sim.runner` passes through the environment,
plus clock and reset.

Imported inside the simulator process only (it imports cocotb).
"""

import json
import os
from pathlib import Path

from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from .runner import ENV_CONFIG, ENV_RESULTS, ENV_SIDECAR


__all__ = ["load_sidecar", "load_config", "record", "start", "reset", "DEFAULT_SEED",
           "CLOCK_PERIOD_NS"]

DEFAULT_SEED = 1


def load_sidecar():
    """The sidecar dict of the design under test (``DNNHW_SIDECAR``)."""
    path = os.environ.get(ENV_SIDECAR)
    if not path:
        raise RuntimeError(f"{ENV_SIDECAR} is not set: run this testbench through "
                           f"dnnhw.sim.runner.run_testbench / run_verilog")
    return json.loads(Path(path).read_text())


def load_config(defaults):
    """``defaults`` updated with the runner's ``config`` (``DNNHW_TB_CONFIG``).

    Unknown keys are an error (a typo would otherwise silently test the default). A
    ``seed`` key is always accepted.
    """
    given = json.loads(os.environ.get(ENV_CONFIG) or "{}")
    defaults = dict(defaults)
    defaults.setdefault("seed", DEFAULT_SEED)
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(f"unknown testbench config key(s) {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(defaults))}")
    defaults.update(given)
    return defaults


def record(key, value):
    """Store ``value`` (JSON-able) under ``key`` in ``results.json`` (read-modify-write,
    so every cocotb test of a run adds its own section)."""
    path = os.environ.get(ENV_RESULTS)
    if not path:
        return
    path = Path(path)
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[key] = value
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def _idle(dut, sidecar, idle_inputs):
    for stream in sidecar["streams"].values():
        if stream["role"] == "sink":
            getattr(dut, stream["valid"]).value = 0
            getattr(dut, stream["payload"]).value = 0
        else:
            getattr(dut, stream["ready"]).value = 0
    for name in idle_inputs:
        getattr(dut, name).value = 0


async def _hold_reset(dut, sidecar, cycles):
    clk = getattr(dut, sidecar["clock"])
    rst = getattr(dut, sidecar["reset"])
    for _ in range(cycles):
        await RisingEdge(clk)
    rst.value = 0
    await RisingEdge(clk)
    return clk


#: The clock period :func:`start` gives by default (ns).
CLOCK_PERIOD_NS = 10


async def start(dut, sidecar, *, period_ns=CLOCK_PERIOD_NS, reset_cycles=3, idle_inputs=()):
    """Start the clock, hold reset for ``reset_cycles`` edges with every stream input
    idle, release it. Returns the clock signal.

    Every sink's ``valid`` and source's ``ready`` are driven low, and so are the signals
    named in ``idle_inputs``, before the first edge.
    """
    _idle(dut, sidecar, idle_inputs)
    getattr(dut, sidecar["reset"]).value = 1
    Clock(getattr(dut, sidecar["clock"]), period_ns, unit="ns").start()
    return await _hold_reset(dut, sidecar, reset_cycles)


async def reset(dut, sidecar, *, reset_cycles=3, idle_inputs=()):
    """Reset again, the clock running (after :func:`start`): every stream input idle and
    reset high for ``reset_cycles`` edges, then one edge out of reset. Stop the stream
    drivers first."""
    _idle(dut, sidecar, idle_inputs)
    getattr(dut, sidecar["reset"]).value = 1
    return await _hold_reset(dut, sidecar, reset_cycles)
