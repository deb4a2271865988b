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
              tamper=None, checked=True):
    """Run one layer: (outputs, expected, counters, model counts, status, memory).
    ``tamper(config)`` may spoil the configuration before it is written; ``checked=False``
    skips the loader's checks."""
    shape = shape_of(array)
    config = configure(layer, mapping, shape, checked=checked)
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
            await ctx.tick()                    # the counters are a block RAM
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


# A single row of 126 or 136 outputs: its columns need 8 or 9 bits of coordinates.
def _row(side):
    return (Layer(C=1, F=1, H=1, W=side, K=1, T=1, R=1, S=3, padding=(0, 0, 1)),
            Mapping("KCFHW", "KCFHW", (1, 1, 1, 1, side), (1, 1, 1, 1, 32), (1, 1, 2),
                    (1, 1, 1), (1, 1, 1)))


def test_narrow_coordinates_are_exact_up_to_the_loader_bound():
    array = small_array(coord_width=8, value_width=16)
    y, expected, counters, model, status, _ = run_array(array, *_row(126))
    assert status["done"] and np.array_equal(y, expected)
    assert counters["macs"] == model.macs
    # Two columns more and the loader refuses; run anyway, the padding is misjudged.
    with pytest.raises(morph.MappingError, match="need 9 bits .* computes them in 8 "
                                                 "\\(coord_width\\)"):
        configure(*_row(136), shape_of(array))
    y, expected, *_ = run_array(array, *_row(136), checked=False)
    assert not np.array_equal(y, expected)
    y, expected, *_ = run_array(small_array(coord_width=9, value_width=16), *_row(136))
    assert np.array_equal(y, expected)


def test_a_bad_order_is_refused_at_start():
    def swap(config):
        config["order1"] = "KKFHW"        # not a permutation
    *_, status, memory = run_array(small_array(), *CASES[0][1:], tamper=swap)
    assert status["error"] and not status["done"]
    assert status["error_code"] == "order"
    assert memory.requests == 0           # nothing started


@pytest.mark.parametrize("name, value", [("S", 7), ("Kp", 6)])
def test_a_kernel_or_block_beyond_the_build_stops_the_layer(name, value):
    # The engines read these in two bits: 7 and 6 have those of 3 and 2, legal values, so
    # only the sequencer's any-higher-bit flag lets the blocks engine see what they are.
    def spoil(config):
        config[name] = value
    *_, status, memory = run_array(small_array(), *CASES[0][1:], tamper=spoil)
    assert status["error"] and not status["done"]
    assert status["error_code"] in ("blocks", "l2_l1")
    memory.check_idle()


def test_an_address_outside_the_memory_stops_the_layer_without_hanging():
    array = small_array()

    def far(config):
        config["x_base"] = (1 << array.addr_width) + 7   # the inputs beyond the memory
    *_, status, memory = run_array(array, *CASES[0][1:], tamper=far)
    assert status["error"] and not status["done"]
    assert status["error_code"] == "dram"
    memory.check_idle()                   # every request it made was completed


@pytest.mark.parametrize("changes, error, message", [
    ({"kp": 0}, ValueError, "kp must be in 1..16, got 0"),
    ({"width": 12}, ValueError, "width must be 8 or 16, got 12"),
    ({"acc_width": 20}, ValueError, "acc_width must be at least 24 for 8 channels of 3\\^3 taps"),
    ({"l2_bank_words": 300}, ValueError, "l2_bank_words must be a power of two, got 300"),
    ({"value_width": 15}, ValueError, "value_width must be in 16..32, got 15"),
    ({"value_width": 16, "l2_banks": 2, "l2_bank_words": 32768}, ValueError,
     "value_width must exceed the L2's 16 address bits \\(65536 words\\), got 16"),
    ({"multiplier": "booth"}, ValueError, "multiplier must be one of dsp, serial, got 'booth'"),
    ({"l2_spram": 1}, TypeError, "l2_spram must be"),
    ({"addr_width": 7}, ValueError, "addr_width must be in 8..30, got 7"),
])
def test_bad_parameters_name_the_range(changes, error, message):
    with pytest.raises(error, match=message):
        small_array(**changes)
