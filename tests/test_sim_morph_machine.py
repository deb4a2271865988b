"""The sequencer program, run by the Python machine, against the model and a convolution:
every output bit-exact, every counter and the cycle total equal to ``morph.counts`` with
the array's timing constants; and the loader's refusals."""

import dataclasses
import math

import numpy as np
import pytest

from dnnhw.golden import morph
from dnnhw.golden.morph import Layer, Mapping, MappingError
from dnnhw.golden.morph_walk import _reference_conv
from dnnhw.rtl.morph_program import CONFIG, sequencer_program
from dnnhw.sim.morph_loader import (ArrayShape, array_hardware, check, configure, layout,
                                    register_bits)
from dnnhw.sim.morph_machine import Machine

from morph_cases import dram_image, hand_cases, random_array_case

PROGRAM = sequencer_program()


def run_layer(layer, mapping, shape, *, latency=7, seed=0):
    """Run one layer on the machine with random int8 operands: (outputs, expected,
    machine counters, model counts)."""
    config = configure(layer, mapping, shape)
    place = layout(layer)
    x, w, dram = dram_image(layer, seed)
    machine = Machine.for_shape(PROGRAM, shape, memory_latency=latency)
    counters = machine.run(config, dram)
    y = np.array(dram[place["y_base"]:]).reshape(layer.N, layer.K, layer.Fo, layer.Ho,
                                                 layer.Wo)
    model = morph.counts(layer, dataclasses.replace(mapping, l1_banks=(1, 1, 1)),
                         array_hardware(shape, latency))
    return y, _reference_conv(x, w, layer.stride, layer.padding), counters, model


def assert_matches_model(y, expected, counters, model):
    assert np.array_equal(y, expected), "outputs differ from the convolution"
    for level in ("dram", "l2", "l1"):
        for operand in ("inputs", "weights", "psums"):
            assert counters["traffic"][level][operand] == model.traffic[level][operand], (
                level, operand)
    assert counters["macs"] == model.macs
    assert counters["cycles"] == model.cycles["total"]


def shape_for(layer, mapping, l2_banks, l2_bank_words, rng=None):
    """A build that holds ``mapping``: the block at least the mapping's, L1 copies and PE
    banks just big enough (or a little bigger)."""
    kp, hp, wp = mapping.parallel
    words = morph.tile_words(layer, mapping.l1_tile, within=mapping.l2_tile)
    kt, _, ft, ht, wt = mapping.l1_tile
    entries = math.ceil(kt / kp) * ft * math.ceil(ht / hp) * math.ceil(wt / wp)
    spare = (lambda: int(rng.integers(0, 3))) if rng is not None else (lambda: 0)
    return ArrayShape(kp=kp + spare(), hp=hp + spare(), wp=wp + spare(),
                      l2_banks=l2_banks, l2_bank_words=l2_bank_words,
                      l1_input_words=words["inputs"] + spare(),
                      l1_weight_words=words["weights"] + spare(),
                      l1_psum_entries=entries + spare(), mul_cycles=1 + spare())


@pytest.mark.parametrize("name, layer, mapping, hardware",
                         [c for c in hand_cases() if c[0] != "pad-only-tiles"],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_hand_cases(name, layer, mapping, hardware):
    shape = shape_for(layer, mapping, hardware.l2_banks, hardware.l2_bank_words)
    assert_matches_model(*run_layer(layer, mapping, shape))


@pytest.mark.parametrize("chunk", range(6))
def test_random_cases(chunk):
    rng = np.random.default_rng(500 + chunk)
    done = 0
    while done < 12:
        layer, mapping, hardware = random_array_case(rng, max_macs=3000)
        shape = shape_for(layer, mapping, hardware.l2_banks, hardware.l2_bank_words, rng)
        latency = int(rng.integers(1, 30))
        assert_matches_model(*run_layer(layer, mapping, shape, latency=latency,
                                        seed=done))
        done += 1


def test_a_c3d_shaped_layer_under_the_optimizers_mapping():
    """conv3a's channel ratio scaled down, the energy-optimal mapping for this build."""
    from dnnhw.golden.morph_search import best_mapping
    layer = Layer(C=8, F=4, H=6, W=6, K=16, padding=1, name="c3d-3a-scaled")
    shape = ArrayShape(kp=2, hp=2, wp=2, l2_banks=4, l2_bank_words=1024,
                       l1_input_words=512, l1_weight_words=512, l1_psum_entries=64)
    hardware = array_hardware(shape, 10)
    result = best_mapping(layer, dataclasses.replace(
        hardware, pes=shape.pes, l1_banks=6, l1_bank_words=128), objective="energy")
    mapping = dataclasses.replace(result.mapping, parallel=tuple(
        min(p, b) for p, b in zip(result.mapping.parallel, (2, 2, 2))))
    if check(layer, mapping, shape):
        pytest.skip(f"the optimizer's pick does not fit this build: {check(layer, mapping, shape)}")
    assert_matches_model(*run_layer(layer, mapping, shape, latency=10))


def _mapping(**changes):
    base = dict(outer_order="KCFHW", inner_order="KCFHW", l2_tile=(2, 2, 2, 3, 3),
                l1_tile=(2, 1, 1, 3, 3), parallel=(2, 2, 2), l2_banks=(1, 1, 1),
                l1_banks=(1, 1, 1))
    base.update(changes)
    return Mapping(**base)


LAYER = Layer(C=2, F=3, H=5, W=5, K=2, padding=1)
ROOMY = ArrayShape(l2_banks=3, l2_bank_words=1024)


@pytest.mark.parametrize("shape, mapping, layer, message", [
    (ROOMY, _mapping(parallel=(4, 2, 2)), LAYER, r"parallel Kp must be in 1\.\.2"),
    (ROOMY, _mapping(), Layer(C=2, F=3, H=5, W=5, K=2, R=1, padding=1),
     "padding along H must be below the kernel's 1 taps"),
    (dataclasses.replace(ROOMY, l1_input_words=20), _mapping(), LAYER,
     # 1 channel x 3 frames x 4 rows x 4 columns: the middle tile's clipped halo box.
     r"l1 inputs: the tile needs 48 words per copy, the array has 20 \(28 over\)"),
    (dataclasses.replace(ROOMY, l1_psum_entries=1), _mapping(), LAYER,
     r"l1 psums: the tile needs 4 entries per PE bank, the array has 1 \(3 over\)"),
    (dataclasses.replace(ROOMY, addr_width=6), _mapping(), LAYER,
     "the layer's tensors take 408 words, the memory port addresses 64"),
    (dataclasses.replace(ROOMY, max_trips=1), _mapping(), LAYER,
     r"the tiles along F take 2 steps, the sequencer counts at most 1 \(index_width\)"),
    (dataclasses.replace(ROOMY, max_trips=2), _mapping(), dataclasses.replace(LAYER, N=3),
     "the images take 3 steps, the sequencer counts at most 2"),
    (dataclasses.replace(ROOMY, max_row=4), _mapping(), LAYER,
     "a DRAM row of 27 words is longer than the memory port's bursts \\(4 words\\)"),
    (dataclasses.replace(ROOMY, l2_bank_words=16), _mapping(), LAYER,
     r"L2 inputs: the tile needs 96 words, its 1 bank\(s\) hold 16 \(80 words over\)"),
])
def test_loader_refuses_what_does_not_fit(shape, mapping, layer, message):
    """Each refusal names what does not fit and by how much."""
    assert check(layer, mapping, shape)
    with pytest.raises(MappingError, match=message):
        configure(layer, mapping, shape)



def test_register_width_check_is_tight():
    """The loader's register check: at the bits it finds the layer runs exactly as with
    32-bit registers; a bit fewer is refused, naming both widths."""
    layer = Layer(C=3, F=4, H=40, W=40, K=4, padding=1)
    mapping = _mapping(l2_tile=(4, 3, 4, 10, 40), l1_tile=(2, 1, 1, 5, 10))
    shape = dataclasses.replace(ROOMY, l2_bank_words=8192, l1_input_words=1024,
                                l1_psum_entries=64)
    bits = register_bits(layer, mapping, shape)
    assert bits == 17             # 45,124 words of tensors, positive in two's complement
    assert_matches_model(*run_layer(layer, mapping,
                                    dataclasses.replace(shape, value_width=bits)))
    with pytest.raises(MappingError, match="the layer needs 17-bit registers \\(its 45124 "
                                           "words .*, the array's are 16 bits"):
        configure(layer, mapping, dataclasses.replace(shape, value_width=16))


def test_machine_reports_the_widest_register_value():
    config = configure(LAYER, _mapping(), ROOMY)
    machine = Machine.for_shape(PROGRAM, ROOMY, value_width=64)
    machine.run(config, None)
    # At least the configuration's largest register (the partial sums' L2 region, 2048).
    assert config["l2_psums"] == max(config[name] for name in CONFIG) == 2048
    assert machine.widest >= 13
