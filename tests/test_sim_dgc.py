"""The DGC cores in cocotb on a real training run's gradients (``dnnhw.sim.dgc``): every
beat bit-exact against ``dgc_fixed`` stall-free and under random stalls, the counts the
hardware selects equal to the golden's, II = 1 in every pass, and the sparsifier's cycles
per step equal to its own ``step_cycles``."""

import pytest

from dnnhw.catalog import get_core
from dnnhw.flow.tasks import run_testbench
from dnnhw.rtl.dgc_sparsifier import DgcSparsifier


def check_sparsifier(params, build_root, steps):
    res = run_testbench("dgc-sparsify", params, build_root=build_root,
                        config={"steps": steps})
    assert res["passed"], res.get("error")
    run = res["steps"]
    full = get_core("dgc-sparsify").resolve(params)
    core = DgcSparsifier(**full)
    free, stalled = run["stall_free"], run["random_stalls"]
    assert free["selected_rtl"] == free["selected_golden"] == stalled["selected_rtl"]
    assert len(free["selected_rtl"]) == steps
    # Every frame (norm and update, every step) at one gradient element a cycle.
    assert free["gradient_beats_per_cycle"] == [1.0] * (2 * steps)
    assert min(stalled["gradient_beats_per_cycle"]) < 1.0
    expected = [core.step_cycles(free["elements"], clip=True, shift=shift, rounds=rounds)
                for _, _, rounds, shift in free["status_golden"]]
    # Stall-free, each command is taken the cycle the step before it allows.
    assert free["command_intervals"] == expected[:-1]
    return run


def test_sparsifier_replays_training_steps_bit_exact(build_root):
    # check_sparsifier asserts the run passed, the counts, II = 1 and the step cycles.
    check_sparsifier({}, build_root, steps=3)


@pytest.mark.slow
def test_sparsifier_up5k_build_with_its_single_port_state(build_root):
    # check_sparsifier asserts the run passed, the counts, II = 1 and the step cycles.
    check_sparsifier({"capacity": 32768, "state_width": 16, "spram": True}, build_root, steps=4)


def test_aggregator_merges_the_workers_frames_and_steps_the_weights(build_root):
    res = run_testbench("dgc-aggregate", {}, build_root=build_root, config={"steps": 3})
    assert res["passed"], res.get("error")
    free, stalled = res["steps"]["stall_free"], res["steps"]["random_stalls"]
    assert free["merge_beats_per_cycle"] == [1.0] * 3
    assert free["weight_beats_per_cycle"] == [1.0] * 3
    assert min(stalled["weight_beats_per_cycle"]) < 1.0
    assert free["sparse_beats"] >= 4 * 3      # a frame has a beat, even an empty one


@pytest.mark.parametrize("core", ["dgc-sparsify", "dgc-aggregate"])
def test_the_soak_knob_runs_the_stalled_run_alone(core, build_root):
    res = run_testbench(core, {}, build_root=build_root,
                        config={"steps": 2, "stall_free": False})
    assert res["passed"], res.get("error")
    assert set(res["steps"]) == {"tensor", "steps", "random_stalls"}
    assert res["steps"]["steps"] == 2
