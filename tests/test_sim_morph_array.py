"""cocotb runs of the Morph array (Verilator): whole layers under given mappings and the
optimizer's pick, outputs bit-exact, every counter equal to the model, cycles exact with a
fixed-latency memory and within the stall bound with a random one (the testbench asserts
all of it; see dnnhw/sim/morph_array.py)."""


from dnnhw.flow.tasks import run_testbench


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
