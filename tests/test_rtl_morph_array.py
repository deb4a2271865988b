"""The whole Morph array in the Amaranth simulator, behind the memory model: small layers,
outputs bit-exact against the convolution, every counter equal to ``morph.counts`` and
the cycles equal with a fixed-latency memory. (The cocotb bench runs the bigger layers.)"""

import dataclasses

import numpy as np
import pytest
from amaranth.sim import Simulator

from dnnhw.golden import morph
from dnnhw.golden.morph import Layer, Mapping
from dnnhw.golden.morph_walk import _reference_conv
from dnnhw.rtl.morph_array import ERRORS, MorphArray
from dnnhw.rtl.morph_program import COUNTERS
from dnnhw.sim.memory import MemoryModel, attach_amaranth
from dnnhw.sim.morph_loader import (array_hardware, config_writes, configure,
                                    counters_by_name, layout, shape_of)

from morph_cases import TINY


def small_array(**changes):
    params = dict(kp=2, hp=2, wp=2, width=8, max_channels=8, l2_banks=3,
                  l2_bank_words=256, l1_input_words=128, l1_weight_words=128,
                  l1_psum_entries=16, addr_width=12)
    params.update(changes)
    return MorphArray(**params)


def run_array(array, layer, mapping, *, latency=4, seed=0, memory_kwargs=None,
              tamper=None):
    """Run one layer: (outputs, expected, counters, model counts, status, memory).
    ``tamper(config)`` may spoil the configuration before it is written."""
    shape = shape_of(array)
    config = configure(layer, mapping, shape)
    if tamper is not None:
        tamper(config)
    place = layout(layer)
    rng = np.random.default_rng(seed)
    top = 1 << (array.width - 1)
    x = rng.integers(-top, top, size=(layer.N, layer.C, layer.F, layer.H, layer.W))
    w = rng.integers(-top, top, size=(layer.K, layer.C, layer.T, layer.R, layer.S))
    mask = (1 << array.acc_width) - 1
    memory = MemoryModel(1 << array.addr_width, data_width=array.acc_width,
                         addr_width=array.addr_width, length_width=array.LENGTH_WIDTH,
                         latency=latency, seed=seed, **(memory_kwargs or {}))
    memory.write_words(place["x_base"], [int(v) & mask for v in x.ravel()])
    memory.write_words(place["w_base"], [int(v) & mask for v in w.ravel()])
    status = {}

    async def host(ctx):
        for addr, data in config_writes(config, array.program):
            ctx.set(array.config.valid, 1)
            ctx.set(array.config.payload, {"addr": addr, "data": data})
            while not ctx.get(array.config.ready):
                await ctx.tick()
            await ctx.tick()
        ctx.set(array.config.valid, 0)
        await ctx.tick()
        cycles = 0
        while not (ctx.get(array.done) or ctx.get(array.error)):
            await ctx.tick()
            cycles += 1
            assert cycles < 2_000_000, "the array hangs"
        values = []
        for i in range(len(COUNTERS)):
            ctx.set(array.counter_addr, i)
            values.append(ctx.get(array.counter_data))
        status.update(done=ctx.get(array.done), error=ctx.get(array.error),
                      error_code=ERRORS[ctx.get(array.error_code)], counters=values)

    sim = Simulator(array)
    sim.add_clock(1e-6)
    attach_amaranth(sim, memory, array.mem_req, array.mem_wdata, array.mem_rdata)
    sim.add_testbench(host)
    sim.run()
    words = memory.read_words(place["y_base"], place["words"] - place["y_base"]).astype(object)
    signed = [(int(v) ^ (1 << (array.acc_width - 1))) - (1 << (array.acc_width - 1))
              for v in words]
    y = np.array(signed).reshape(layer.N, layer.K, layer.Fo, layer.Ho, layer.Wo)
    model = morph.counts(layer, dataclasses.replace(mapping, l1_banks=(1, 1, 1)),
                         array_hardware(shape, latency))
    return (y, _reference_conv(x, w, layer.stride, layer.padding),
            counters_by_name(status["counters"]), model, status, memory)


CASES = [
    ("tiny", *TINY),
    ("3x3x3-ragged", Layer(C=3, F=3, H=4, W=4, K=3, padding=1),
     Mapping("CKFHW", "KCFHW", (2, 2, 2, 3, 4), (2, 1, 1, 2, 3), (2, 2, 2), (1, 1, 1),
             (1, 1, 1))),
]


@pytest.mark.parametrize("l2_spram", [False, True], ids=["dual-port-l2", "single-port-l2"])
@pytest.mark.parametrize("name, layer, mapping", CASES, ids=[c[0] for c in CASES])
def test_layer_matches_convolution_and_model(name, layer, mapping, l2_spram):
    # A single-port L2 bank reads the write address whenever it writes, so a read that met
    # a write in its cycle would come back wrong: the outputs prove they never meet.
    y, expected, counters, model, status, memory = run_array(
        small_array(l2_spram=l2_spram), layer, mapping)
    assert status["done"] and not status["error"], status["error_code"]
    assert np.array_equal(y, expected)
    for level in ("dram", "l2", "l1"):
        for operand in ("inputs", "weights", "psums"):
            assert counters["traffic"][level][operand] == model.traffic[level][operand], (
                level, operand)
    assert counters["macs"] == model.macs
    assert counters["cycles"] == model.cycles["total"]
    assert counters["compute_cycles"] == model.cycles["compute"]
    # Cycles waiting on the memory: inside the DRAM phase (its latencies, at least).
    assert 0 < counters["stall_cycles"] <= model.cycles["dram"]
    memory.check_idle()


def test_a_bad_order_is_refused_at_start():
    def swap(config):
        config["order1"] = "KKFHW"        # not a permutation
    *_, status, memory = run_array(small_array(), *CASES[0][1:], tamper=swap)
    assert status["error"] and not status["done"]
    assert status["error_code"] == "order"
    assert memory.requests == 0           # nothing started


def test_an_address_outside_the_memory_stops_the_layer_without_hanging():
    array = small_array()

    def far(config):
        config["x_base"] = (1 << array.addr_width) + 7   # the inputs beyond the memory
    *_, status, memory = run_array(array, *CASES[0][1:], tamper=far)
    assert status["error"] and not status["done"]
    assert status["error_code"] == "dram"
    memory.check_idle()                   # every request it made was completed
