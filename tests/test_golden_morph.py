"""Morph's closed-form counts against the element-by-element walk, the legality checks
and their messages, and the optimizer against the mappings of its own space."""

import dataclasses
import random

import numpy as np
import pytest

from dnnhw.golden import morph, morph_search
from dnnhw.golden.morph import Hardware, Layer, Mapping, MappingError
from dnnhw.golden.morph_walk import walk

from morph_cases import hand_cases, random_case

#: The fixed costs of a PE array (docs/morph-array.md), each a different value so that a
#: constant booked in the wrong place or counted the wrong number of times shows.
ARRAY_COSTS = {"dram_write_latency": 3, "l2_latency": 2, "l2_step_overhead": 5,
               "l1_step_overhead": 7, "layer_overhead": 11}


def with_array_costs(rng, hardware):
    """``hardware`` with random fixed costs of a PE array, each 0 now and then."""
    draws = {name: int(rng.integers(0, 12)) * bool(rng.integers(0, 4))
             for name in ARRAY_COSTS}
    return dataclasses.replace(hardware, **draws)


def assert_same_counts(closed, walked):
    assert closed.traffic == walked.traffic
    assert (closed.spills, closed.refills, closed.macs) == \
        (walked.spills, walked.refills, walked.macs)
    assert closed.cycles == walked.cycles


@pytest.mark.parametrize("costs", [{}, ARRAY_COSTS], ids=["study", "array-costs"])
@pytest.mark.parametrize("name,layer,mapping,hardware", hand_cases(),
                         ids=[case[0] for case in hand_cases()])
def test_closed_form_equals_walk_on_hand_cases(name, layer, mapping, hardware, costs):
    hardware = dataclasses.replace(hardware, **costs)
    assert_same_counts(morph.counts(layer, mapping, hardware), walk(layer, mapping, hardware))


@pytest.mark.parametrize("chunk", range(8))
def test_closed_form_equals_walk_on_random_cases(chunk):
    rng = np.random.default_rng(1000 + chunk)
    for _ in range(40):
        layer, mapping, hardware = random_case(rng)
        # random_case draws dram_latency and block_overhead; add the array's fixed costs.
        hardware = with_array_costs(rng, hardware)
        assert_same_counts(morph.counts(layer, mapping, hardware), walk(layer, mapping, hardware))


def test_array_costs_add_per_transfer_and_per_step():
    # Each constant adds its count of events: the difference from the study's hardware is
    # linear in the constants, the events counted by the walk with one constant at 1.
    # c-spilled: spills, refills and L1 partial-sum fills.
    layer, mapping, hardware = {case[0]: case[1:] for case in hand_cases()}["c-spilled"]
    base = walk(layer, mapping, hardware).cycles
    events = {}
    for key in ARRAY_COSTS:
        one = walk(layer, mapping, dataclasses.replace(hardware, **{key: 1})).cycles
        events[key] = {phase: one[phase] - base[phase] for phase in base}
        assert one["compute"] == base["compute"], key
    # Step overheads go to the phase of the level whose step it is; latencies to their
    # transfers' phase.
    assert events["l2_step_overhead"]["l2"] == events["l1_step_overhead"]["dram"] == 0
    assert events["dram_write_latency"]["l2"] == events["l2_latency"]["dram"] == 0
    costs = morph.counts(layer, mapping, dataclasses.replace(hardware, **ARRAY_COSTS)).cycles
    for phase in ("dram", "l2", "compute", "total"):
        assert costs[phase] == base[phase] + sum(
            value * events[key][phase] for key, value in ARRAY_COSTS.items())
    # An L2 step per image and L2 tile: K 4/2, C 3/1, F, H, W whole: 6. An L1 step per L1
    # tile of each: K 2 x 2, C 3, F 2, H 2 (3 + 2), W 1: 48.
    assert events["l2_step_overhead"]["dram"] == 2 * 3
    assert events["l1_step_overhead"]["l2"] == 4 * 3 * 2 * 2


def test_multiplier_ignores_loops_of_one_trip():
    trips = {"K": 4, "C": 1, "F": 1, "H": 2, "W": 1}
    # Inputs (C, F, H, W): K outside H multiplies; with H of one trip nothing does.
    assert morph.multiplier("KCFHW", trips, "CFHW") == 4
    assert morph.multiplier("KCFHW", dict(trips, H=1), "CFHW") == 1
    assert morph.multiplier("HCFWK", trips, "CFHW") == 1


# --- legality: every reason, named --------------------------------------------------

LAYER = Layer(C=8, F=4, H=8, W=8, K=16, name="t")
GOOD = Mapping("KCFHW", "KCFHW", (16, 8, 4, 8, 8), (4, 4, 2, 4, 4), (4, 2, 2), (2, 4, 4),
               (3, 2, 1))
SMALL = Hardware(pes=16, l2_banks=12, l2_bank_words=1024, l1_banks=8, l1_bank_words=256)


def test_good_mapping_fits():
    assert morph.check(LAYER, GOOD, SMALL) == []


def test_violation_names_level_operand_and_words_over():
    tight = Hardware(pes=16, l2_banks=12, l2_bank_words=1024, l1_banks=8, l1_bank_words=64)
    problems = morph.check(LAYER, GOOD, tight)
    l1_inputs = [p for p in problems if (p.level, p.operand) == ("l1", "inputs")]
    assert len(l1_inputs) == 1
    p = l1_inputs[0]
    # An L1 input tile: 4 channels x 3 frames x 5 x 5. Two output frames need 4 input
    # frames and four outputs 6 inputs, but every tile touches an edge, where the padding
    # is clipped away.
    assert p.needed == 4 * 3 * 5 * 5 and p.available == 3 * 64 and p.over == p.needed - 192
    assert "L1 inputs" in str(p) and f"{p.over} words over" in str(p)


def test_bank_partition_over_the_level():
    mapping = Mapping("KCFHW", "KCFHW", GOOD.l2_tile, GOOD.l1_tile, GOOD.parallel,
                      (8, 4, 4), GOOD.l1_banks)
    (problem,) = morph.check(LAYER, mapping, SMALL)
    assert problem.level == "l2" and "uses 16 of 12" in str(problem)


@pytest.mark.parametrize("change,message", [
    ({"outer_order": "KCFHH"}, "outer_order must be a permutation of 'KCFHW'"),
    ({"inner_order": "KCF"}, "inner_order must be a permutation"),
    ({"l2_tile": (17, 8, 4, 8, 8)}, "l2_tile Kt must be in 1..16"),
    ({"l2_tile": (16, 8, 4, 8, 0)}, "l2_tile Wt must be in 1..8"),
    ({"l1_tile": (4, 4, 2, 4, 9)}, "l1_tile Wt must be in 1..8"),
    ({"parallel": (8, 2, 2)}, "parallel Kp must be in 1..4"),
    ({"parallel": (4, 4, 4), "l1_tile": (4, 4, 2, 4, 4)}, "uses 64 PEs, the array has 16"),
    ({"l1_banks": (3, 0, 1)}, "L1 weights: needs at least 1 bank"),
    ({"l2_tile": (16, 8, 4)}, "l2_tile must be 5 ints"),
])
def test_bad_mappings_are_named(change, message):
    fields = {f: getattr(GOOD, f) for f in ("outer_order", "inner_order", "l2_tile",
                                            "l1_tile", "parallel", "l2_banks", "l1_banks")}
    mapping = Mapping(**{**fields, **change})
    with pytest.raises(MappingError, match=message.replace("(", r"\(").replace(")", r"\)")):
        morph.validate(LAYER, mapping, SMALL)


@pytest.mark.parametrize("kwargs,error,message", [
    ({"C": 0}, ValueError, "C must be >= 1, got 0"),
    ({"K": -2}, ValueError, "K must be >= 1, got -2"),
    ({"H": 2.5}, TypeError, "H must be an int"),
    ({"stride": 0}, ValueError, "stride must be >= 1"),
    ({"padding": (1, -1, 1)}, ValueError, r"padding\[1\] must be >= 0"),
    ({"stride": (1, 2)}, ValueError, "stride must be one int or three"),
    ({"R": 5, "H": 2, "padding": 1}, ValueError, "5 taps along H exceed the padded input"),
])
def test_bad_layers_are_named(kwargs, error, message):
    base = dict(C=4, F=4, H=4, W=4, K=4)
    with pytest.raises(error, match=message):
        Layer(**{**base, **kwargs})


@pytest.mark.parametrize("kwargs,message", [
    ({"pes": 0}, "pes must be >= 1"),
    ({"l1_bank_words": 0}, "l1_bank_words must be >= 1"),
    ({"energy_pj": {"dram": 1}}, "missing l1, l2, mac"),
])
def test_bad_hardware_is_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Hardware(**kwargs)


TIMING = ("dram_latency", "dram_write_latency", "l2_latency", "l2_step_overhead",
          "l1_step_overhead", "block_overhead", "layer_overhead")


@pytest.mark.parametrize("name", TIMING)
@pytest.mark.parametrize("value,error,message", [
    (-1, ValueError, "{name} must be >= 0, got -1"),
    (1.5, TypeError, "{name} must be an int, got float 1.5"),
    (True, TypeError, "{name} must be an int, got bool True"),
    ("2", TypeError, "{name} must be an int, got str '2'"),
])
def test_bad_timing_constants_are_named(name, value, error, message):
    with pytest.raises(error, match=message.format(name=name)):
        Hardware(**{name: value})


@pytest.mark.parametrize("name", TIMING)
def test_timing_constants_may_be_zero(name):
    assert getattr(Hardware(**{name: 0}), name) == 0


def test_buffers_too_small_for_any_mapping():
    tiny = Hardware(pes=4, l2_banks=3, l2_bank_words=8, l1_banks=3, l1_bank_words=8)
    with pytest.raises(MappingError, match="no mapping fits"):
        morph_search.best_mapping(LAYER, tiny)


def test_bad_objective_is_named():
    with pytest.raises(ValueError, match="objective must be one of energy, cycles, edp"):
        morph_search.best_mapping(LAYER, SMALL, "power")


# --- the optimizer ------------------------------------------------------------------

def _space_sample(layer, hardware, count, seed):
    """Random legal mappings from the optimizer's own space."""
    rng = random.Random(seed)
    orders = morph_search.all_orders()
    found = []
    while len(found) < count:
        l2 = tuple(rng.choice(morph_search.tile_candidates(layer.size(d))) for d in morph.DIMS)
        l1 = tuple(rng.choice(morph_search.tile_candidates(t)) for t in l2)
        options = morph_search.parallel_candidates(hardware.pes, l1[0], l1[3], l1[4])
        need2 = morph.tile_words(layer, l2)
        need1 = morph.tile_words(layer, l1, within=l2)
        mapping = Mapping(
            rng.choice(orders), rng.choice(orders), l2, l1, rng.choice(options),
            tuple(morph_search.minimal_banks(need2[op], hardware.l2_bank_words)
                  for op in morph.OPERANDS),
            tuple(morph_search.minimal_banks(need1[op], hardware.l1_bank_words)
                  for op in morph.OPERANDS))
        if not morph.check(layer, mapping, hardware):
            found.append(mapping)
    return found


@pytest.mark.parametrize("objective", morph_search.OBJECTIVES)
def test_optimizer_beats_every_sampled_mapping(objective):
    layer = Layer(C=6, F=4, H=6, W=6, K=12, name="small")
    result = morph_search.best_mapping(layer, SMALL, objective)
    assert result.proven and result.gap == 0
    for mapping in _space_sample(layer, SMALL, 150, seed=3):
        counts = morph.counts(layer, mapping, SMALL)
        energy = counts.energy_pj(SMALL)["total"]
        cost = {"energy": energy, "cycles": counts.cycles["total"],
                "edp": energy * counts.cycles["total"]}[objective]
        # Cycles are ranked with words / width (docs): allow that rounding for cycles.
        slack = 1.0 if objective == "energy" else 1.02
        assert result.cost <= cost * slack, mapping.describe()


def test_optimizer_reports_its_exact_counts():
    layer = Layer(C=6, F=4, H=6, W=6, K=12, name="small")
    result = morph_search.best_mapping(layer, SMALL)
    assert result.counts == morph.counts(layer, result.mapping, SMALL)
    assert result.cost == pytest.approx(result.energy_pj["total"])
    assert_same_counts(result.counts, walk(layer, result.mapping, SMALL))


def test_capped_search_states_its_gap():
    layer = Layer(C=16, F=4, H=8, W=8, K=32, name="capped")
    capped = morph_search.best_mapping(layer, SMALL, max_l2=1)
    full = morph_search.best_mapping(layer, SMALL)
    assert capped.l2_expanded == 1
    assert full.cost <= capped.cost
    if not capped.proven:
        # The optimum is within the stated gap of the capped result.
        assert full.cost >= capped.cost * (1 - capped.gap) - 1e-6


def test_parallel_candidates_are_maximal_and_fit():
    options = morph_search.parallel_candidates(16, 8, 7, 7)
    assert (1, 4, 4) in options and (2, 7, 1) in options     # nothing can double
    assert (2, 2, 2) not in options and (1, 2, 7) in options  # (2, 2, 2) can grow
    for kp, hp, wp in options:
        assert kp * hp * wp <= 16 and kp <= 8 and hp <= 7 and wp <= 7


def test_tile_candidates():
    assert morph_search.tile_candidates(12) == [1, 2, 3, 4, 6, 8, 12]
    assert morph_search.tile_candidates(1) == [1]


def test_a_built_block_bounds_each_side():
    layer = Layer(C=4, F=2, H=4, W=4, K=8, padding=1)
    hardware = Hardware(pes=8, max_block=(2, 2, 2))
    mapping = Mapping("KCFHW", "KCFHW", (8, 4, 2, 4, 4), (8, 4, 2, 4, 4), (4, 2, 1),
                      (1, 1, 1), (1, 1, 1))
    messages = [str(v) for v in morph.check(layer, mapping, hardware)]
    assert "parallel Kp must be in 1..2 (the built block), got 4" in messages
    # The optimizer keeps to it.
    result = morph_search.best_mapping(layer, hardware, max_l2=4)
    assert all(p <= b for p, b in zip(result.mapping.parallel, (2, 2, 2)))


@pytest.mark.parametrize("value, error, message", [
    ((2, 2), ValueError, r"max_block must be None or 3 ints"),
    ([2, 2, 2], ValueError, r"max_block must be None or 3 ints"),
    ((2, 0, 2), ValueError, r"max_block Hp must be >= 1, got 0"),
    ((2, 2, 1.5), TypeError, r"max_block Wp must be an int"),
])
def test_bad_max_block_is_named(value, error, message):
    with pytest.raises(error, match=message):
        Hardware(max_block=value)
