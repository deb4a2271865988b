"""cocotb testbench of ``morph-array``: whole 3D convolution layers through the array, the
memory model behind its memory port, every output bit-exact against the convolution and
every counter equal to the mapping model's.

For each layer of the config, under each of its mappings (given, or part 1's optimizer
pick for the build), the bench loads the inputs and weights into the memory model, writes
the configuration (:func:`dnnhw.sim.morph_loader.config_writes`), waits for ``done`` and
reads the counters. Two runs per mapping:

``fixed``
    A memory of fixed latency ``latency``: the outputs equal
    :func:`dnnhw.golden.morph_walk._reference_conv`, every traffic counter, the MACs, the
    cycles and the compute cycles equal :func:`dnnhw.golden.morph.counts` on the build's
    hardware (:func:`~dnnhw.sim.morph_loader.array_hardware`).
``random``
    Random extra latency, gaps between read beats and backpressure on requests and write
    data (``random``: :class:`~dnnhw.sim.memory.MemoryModel` knobs): the outputs and the
    traffic counters are still exact, and the cycles lie between the model's and the
    model's plus the memory's counted ``stall_cycles`` (the bound of
    :mod:`dnnhw.sim.memory`: each cycle the memory holds the array back adds at most one).

``study`` (a second test) runs C3D conv1 to conv5b scaled down
(:func:`dnnhw.sim.morph_study.scaled_c3d`), each layer under the optimizer's
energy-best mapping for this build and under the best single mapping for all layers, with
the fixed-latency memory and the same checks, and records each run's energy from its
counters (:func:`dnnhw.sim.morph_study.energy_pj`): Morph's claim measured on the RTL.

Config: ``layers`` (a list of ``{"name", "layer": Layer keyword arguments, "mappings":
[Mapping dicts or "energy" / "cycles" (the optimizer's pick)]}``; a hand mapping this
build cannot run is replaced by the optimizer's pick, so that every build runs the
default layers), ``latency``,
``random`` (memory knobs, or ``None`` to skip the random runs), ``fixed`` (``False``
skips the fixed-latency runs of ``layers``: the soak's), ``study`` (the
:func:`~dnnhw.sim.morph_study.scaled_c3d` arguments, or ``None`` to skip it),
``max_l2`` (the optimizer's expansions), ``timeout_cycles``. Records ``layers``: per run the layer, the
mapping, the measured counters, the model's, and the stall bound.
"""

import dataclasses

import cocotb
import numpy as np
from cocotb.triggers import First, ReadOnly, RisingEdge, Timer

from dnnhw.golden import morph
from dnnhw.golden.morph import Layer
from dnnhw.golden.morph_walk import _reference_conv

from .bench import tally_beats
from .memory import MemoryModel, port_widths, serve_cocotb
from .morph_loader import (array_hardware, check, config_writes, configure,
                           counters_by_name, layout, resolve_mapping, shape_of)
from .morph_study import energy_pj, scaled_c3d, study_mappings
from .tb import CLOCK_PERIOD_NS, load_config, load_sidecar, record, reset, start


__all__ = ["DEFAULT_LAYERS"]

#: Small layers of every kind the issue names: 3x3x3 kernels, stride 1 and 2, padding 1,
#: ragged tiles, C and K not multiples of the block, a batch of two.
DEFAULT_LAYERS = [
    {"name": "3x3x3-ragged", "layer": {"C": 3, "F": 3, "H": 5, "W": 5, "K": 3},
     "mappings": [{"outer_order": "KCFHW", "inner_order": "CKFHW",
                   "l2_tile": [3, 2, 2, 5, 3], "l1_tile": [2, 1, 1, 3, 2],
                   "parallel": [2, 2, 2], "l2_banks": [1, 1, 1], "l1_banks": [1, 1, 1]},
                  "energy"]},
    {"name": "stride-2", "layer": {"C": 2, "F": 5, "H": 7, "W": 7, "K": 3, "stride": 2},
     "mappings": [{"outer_order": "CKFHW", "inner_order": "HWKCF",
                   "l2_tile": [3, 1, 3, 4, 4], "l1_tile": [2, 1, 2, 3, 2],
                   "parallel": [2, 2, 2], "l2_banks": [1, 1, 1], "l1_banks": [1, 1, 1]}]},
    {"name": "batch", "layer": {"C": 2, "F": 2, "H": 4, "W": 3, "K": 5, "N": 2,
                                "T": 2, "R": 3, "S": 1, "padding": [1, 1, 0]},
     "mappings": ["energy"]},
]

DEFAULTS = {
    "layers": DEFAULT_LAYERS,
    # The RTL study (test ``study``): scaled C3D under Morph's and the fixed mapping.
    "study": {"side": 16, "channel_scale": 16, "frame_scale": 4},
    "latency": 8,
    "random": {"jitter": 6, "rdata_pause": 0.2, "req_pause": 0.2, "wdata_pause": 0.2},
    "max_l2": 16,
    "timeout_cycles": 5_000_000,
    "fixed": True,            # False: the random-memory runs alone (the soak's)
}


def _layer(spec):
    spec = dict(spec)
    for key in ("stride", "padding"):
        if isinstance(spec.get(key), list):
            spec[key] = tuple(spec[key])
    return Layer(**spec)


class _Host:
    def __init__(self, dut, clk, sidecar):
        self.dut, self.clk = dut, clk
        fields = sidecar["streams"]["config"]["fields"]
        self.addr_field, self.data_field = fields["addr"], fields["data"]

    async def write(self, addr, data):
        dut = self.dut
        mask = (1 << self.data_field["width"]) - 1
        dut.config__payload.value = ((addr << self.addr_field["offset"])
                                     | ((data & mask) << self.data_field["offset"]))
        dut.config__valid.value = 1
        while True:
            await RisingEdge(self.clk)
            await ReadOnly()
            if dut.config__ready.value == 1:
                break
        await RisingEdge(self.clk)
        dut.config__valid.value = 0

    async def run_layer(self, writes, timeout):
        for addr, data in writes[:-1]:
            await self.write(addr, data)
        await self.write(*writes[-1])           # START
        await ReadOnly()
        if self.dut.done.value != 1 and self.dut.error.value != 1:
            # Woken by the flags' edges, not by every clock edge: a layer runs for hundreds
            # of thousands of cycles, and a Python wake-up a cycle was a fifth of the
            # bench's time.
            await First(RisingEdge(self.dut.done), RisingEdge(self.dut.error),
                        Timer(timeout * CLOCK_PERIOD_NS, unit="ns"))
            await ReadOnly()
        if self.dut.done.value != 1 and self.dut.error.value != 1:
            raise TimeoutError(f"no done after {timeout} cycles")
        return bool(self.dut.error.value)

    async def counters(self, count):
        values = []
        for i in range(count):
            await RisingEdge(self.clk)
            self.dut.counter_addr.value = i
            await RisingEdge(self.clk)          # the counters are a block RAM
            await ReadOnly()
            values.append(self.dut.counter_data.value.to_unsigned())
        await RisingEdge(self.clk)      # out of the read-only phase
        return values


async def _setup(dut):
    from dnnhw.rtl.morph_array import MorphArray
    sidecar = load_sidecar()
    cfg = load_config(DEFAULTS)
    array = MorphArray(**sidecar["params"])
    clk = await start(dut, sidecar, idle_inputs=("config__valid",))
    return sidecar, cfg, array, clk


async def _run(dut, sidecar, host, array, layer, mapping, x, w, memory_knobs, latency,
               timeout, name):
    """One layer under one mapping: (outputs, measured counters, model, memory)."""
    from dnnhw.rtl.morph_array import ERRORS
    from dnnhw.rtl.morph_program import COUNTERS
    shape = shape_of(array)
    place = layout(layer)
    mask = (1 << array.acc_width) - 1
    sign = 1 << (array.acc_width - 1)
    writes = config_writes(configure(layer, mapping, shape), array.program)
    model = morph.counts(layer, dataclasses.replace(mapping, l1_banks=(1, 1, 1)),
                         array_hardware(shape, latency))
    await reset(dut, sidecar, idle_inputs=("config__valid",))
    memory = MemoryModel(place["words"], **port_widths(sidecar), **memory_knobs)
    memory.write_words(place["x_base"], [int(v) & mask for v in x.ravel()])
    memory.write_words(place["w_base"], [int(v) & mask for v in w.ravel()])
    server = cocotb.start_soon(serve_cocotb(dut, memory))
    if await host.run_layer(writes, timeout):
        code = ERRORS[dut.error_code.value.to_unsigned()]
        raise AssertionError(f"{name}: the array stopped with error {code!r} under "
                             f"{mapping.describe()}")
    measured = counters_by_name(await host.counters(len(COUNTERS)))
    server.cancel()
    memory.check_idle()
    tally_beats({"mem_req": memory.requests, "mem_rdata": memory.reads,
                 "mem_wdata": memory.writes})
    words = memory.read_words(place["y_base"], place["words"] - place["y_base"])
    y = np.array([(int(v) ^ sign) - sign for v in words])
    return y, measured, model, memory


def _operands(rng, layer, width):
    top = 1 << (width - 1)
    x = rng.integers(-top, top, size=(layer.N, layer.C, layer.F, layer.H, layer.W))
    w = rng.integers(-top, top, size=(layer.K, layer.C, layer.T, layer.R, layer.S))
    return x, w, _reference_conv(x, w, layer.stride, layer.padding)


@cocotb.test()
async def study(dut):
    """Scaled C3D, each layer under the optimizer's mapping for this build (Morph) and
    under the one best fixed mapping, fixed-latency memory; records ``study``."""
    sidecar, cfg, array, clk = await _setup(dut)
    if cfg["study"] is None:
        return
    shape = shape_of(array)
    host = _Host(dut, clk, sidecar)
    rng = np.random.default_rng(cfg["seed"])
    network = scaled_c3d(**cfg["study"])
    energies = array_hardware(shape, cfg["latency"]).energy_pj
    rows = []
    for layer, best, fixed in study_mappings(shape, cfg["latency"], network,
                                             max_l2=cfg["max_l2"]):
        x, w, expected = _operands(rng, layer, array.width)
        row = {"layer": layer.name, "shape": layer.describe(), "macs": layer.macs}
        for kind, mapping in (("morph", best), ("fixed", fixed)):
            y, measured, model, memory = await _run(
                dut, sidecar, host, array, layer, mapping, x, w,
                {"latency": cfg["latency"]}, cfg["latency"], cfg["timeout_cycles"],
                layer.name)
            run = _check(layer.name, "fixed", layer, mapping, expected, y.reshape(expected.shape),
                         measured, model, memory.stall_cycles, array.pes)
            run["energy_pj"] = energy_pj(measured, energies)
            row[kind] = run
        row["reduction"] = row["fixed"]["energy_pj"]["total"] / row["morph"]["energy_pj"]["total"]
        rows.append(row)
    record("study", {"rows": rows, "side": cfg["study"], "pes": array.pes,
                     "energy_per_word_pj": energies})


@cocotb.test()
async def layers(dut):
    """Every layer of ``layers`` under each of its mappings, with the fixed-latency and
    the random memory; records ``layers``."""
    sidecar, cfg, array, clk = await _setup(dut)
    if not cfg["fixed"] and cfg["random"] is None:
        raise ValueError("config: fixed is false and random is None, so the layers test "
                         "would run nothing; keep one memory")
    shape = shape_of(array)
    host = _Host(dut, clk, sidecar)
    rng = np.random.default_rng(cfg["seed"])
    runs = []
    for entry in cfg["layers"]:
        layer = _layer(entry["layer"])
        x, w, expected = _operands(rng, layer, array.width)
        tried = []
        for spec in entry["mappings"]:
            mapping = resolve_mapping(layer, spec, shape, cfg["latency"], cfg["max_l2"])
            if check(layer, mapping, shape):
                # A hand mapping written for the default build (its block, its L2 banks)
                # that this build cannot run: the optimizer's pick for this build instead.
                mapping = resolve_mapping(layer, "energy", shape, cfg["latency"],
                                          cfg["max_l2"])
            if mapping in tried:
                continue
            tried.append(mapping)
            knobs = {"fixed": {"latency": cfg["latency"]}} if cfg["fixed"] else {}
            if cfg["random"] is not None:
                knobs["random"] = dict(cfg["random"], latency=cfg["latency"],
                                       seed=int(rng.integers(1 << 30)))
            for kind, memory_knobs in knobs.items():
                y, measured, model, memory = await _run(
                    dut, sidecar, host, array, layer, mapping, x, w, memory_knobs,
                    cfg["latency"], cfg["timeout_cycles"], entry["name"])
                runs.append(_check(entry["name"], kind, layer, mapping, expected,
                                   y.reshape(expected.shape), measured, model,
                                   memory.stall_cycles, array.pes))
    record("layers", runs)


def _check(name, kind, layer, mapping, expected, y, measured, model, stalls, pes):
    where = f"{name} ({kind} memory) under {mapping.describe()}"
    if not np.array_equal(y, expected):
        bad = np.argwhere(y != expected)
        first = tuple(int(i) for i in bad[0])
        raise AssertionError(f"{where}: {len(bad)} outputs differ from the convolution, "
                             f"the first at {first}: {y[first]} for {expected[first]}")
    for level in ("dram", "l2", "l1"):
        for operand in ("inputs", "weights", "psums"):
            got, want = measured["traffic"][level][operand], model.traffic[level][operand]
            if got != want:
                raise AssertionError(f"{where}: {level} {operand} {got} != model {want}")
    if measured["macs"] != model.macs:
        raise AssertionError(f"{where}: {measured['macs']} MACs != model {model.macs}")
    if measured["compute_cycles"] != model.cycles["compute"]:
        raise AssertionError(f"{where}: compute cycles {measured['compute_cycles']} != "
                             f"model {model.cycles['compute']}")
    cycles, predicted = measured["cycles"], model.cycles["total"]
    if kind == "fixed" and cycles != predicted:
        raise AssertionError(f"{where}: {cycles} cycles != model {predicted}")
    if kind == "random" and not predicted <= cycles <= predicted + stalls:
        raise AssertionError(f"{where}: {cycles} cycles outside the model's {predicted} "
                             f"plus the memory's {stalls} stall cycles")
    return {"name": name, "memory": kind, "layer": dataclasses.asdict(layer),
            "mapping": mapping.as_dict(), "measured": measured,
            "model": {"traffic": model.traffic, "macs": model.macs,
                      "cycles": model.cycles},
            "memory_stall_cycles": stalls,
            "utilization": model.macs / (cycles * pes),
            "compute_utilization": model.macs / (measured["compute_cycles"] * pes)}
