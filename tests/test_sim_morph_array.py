"""cocotb runs of the Morph array (Verilator): whole layers under given mappings and the
optimizer's pick, outputs bit-exact, every counter equal to the model, cycles exact with a
fixed-latency memory and within the stall bound with a random one (the testbench asserts
all of it; see dnnhw/sim/morph_array.py)."""

import pytest

from dnnhw.flow.tasks import run_testbench
from dnnhw.sim.runner import TestbenchFailure


def check(res):
    assert res["passed"], res.get("error")
    runs = res["layers"]
    assert {r["memory"] for r in runs} == {"fixed", "random"}
    for run in runs:
        assert run["measured"]["macs"] == run["model"]["macs"]
        if run["memory"] == "fixed":
            assert run["measured"]["cycles"] == run["model"]["cycles"]["total"]
    return runs


def test_default_layers(build_root):
    runs = check(run_testbench("morph-array", build_root=build_root, testcase="layers"))
    strides = {tuple(r["layer"]["stride"]) for r in runs}
    assert {(1, 1, 1), (2, 2, 2)} <= strides


def test_a_config_that_runs_no_memory_is_refused(build_root):
    with pytest.raises(TestbenchFailure, match="fixed is false and random is None, so the "
                                               "layers test would run nothing"):
        run_testbench("morph-array", build_root=build_root, testcase="layers",
                      config={"fixed": False, "random": None})


def test_the_soak_knob_runs_the_random_memory_alone(build_root):
    one = {"layers": [{"name": "ragged", "layer": {"C": 3, "F": 3, "H": 5, "W": 5, "K": 3},
                       "mappings": ["energy"]}], "fixed": False}
    res = run_testbench("morph-array", build_root=build_root, testcase="layers", config=one)
    assert res["passed"] and [r["memory"] for r in res["layers"]] == ["random"]
