"""cocotb runs of the Diffy tile in every mode: whole small conv layers (3x3 and 1x1
kernels, stride 1 and 2, several channel counts) bit-exact against the golden
convolution, stall-free and under random stalls, and the step count equal to the golden
model's on every run (the testbench asserts both; see dnnhw/sim/diffy_tile.py).

Default run: every mode at the catalog defaults plus odd geometries, widths, shifter
reaches and encodings. ``pytest -m slow``: the ECP5 tiles of the flow, a 16-window row,
and larger layers.
"""


import pytest

from dnnhw.flow.tasks import run_testbench
from dnnhw.report.diffy import sim_lines
from dnnhw.rtl.diffy_tile import DiffyTile


MODES = ["diffy", "pragmatic", "stripes", "bitparallel"]

POINTS = [{"mode": mode} for mode in MODES] + [
    {"mode": "diffy", "lanes": 1, "filters": 1, "windows": 1, "max_products": 64},
    {"mode": "pragmatic", "lanes": 5, "filters": 3, "windows": 7, "width": 8,
     "shifter_bits": 0, "encoding": "plain"},
    {"mode": "diffy", "lanes": 3, "filters": 2, "windows": 5, "width": 12,
     "shifter_bits": 4, "encoding": "csd"},
    {"mode": "stripes", "lanes": 2, "filters": 5, "windows": 3, "width": 8},
    {"mode": "bitparallel", "lanes": 6, "filters": 2, "windows": 1, "width": 9},
]

# The paper's 16 lanes with 2 filters x 4 windows, and a wide row of windows, on the
# larger layers. Tiles of 16 x 4 x 8 on every layer took 13 to
# 18 minutes each, most of the slow tier's time, without reaching logic these do not.
SLOW_POINTS = [{"mode": mode, "lanes": 16, "filters": 2, "windows": 4} for mode in MODES] + [
    {"mode": "diffy", "lanes": 4, "filters": 2, "windows": 16, "shifter_bits": 1},
]

SLOW_LAYERS = [
    {"channels": 19, "filters": 9, "size": [12, 20], "kernel": 3, "stride": 1, "padding": 1,
     "images": 1, "data": "image"},
    {"channels": 16, "filters": 5, "size": [9, 13], "kernel": 3, "stride": 2, "padding": 0,
     "images": 2, "data": "signed"},
    {"channels": 33, "filters": 4, "size": [6, 17], "kernel": 1, "stride": 1, "padding": 0,
     "images": 1, "data": "image"},
]


def _id(params):
    return "-".join(f"{k}{v}" for k, v in params.items())


def check(res, mode="diffy"):
    assert res["passed"], res.get("error")
    latency = DiffyTile.latency_of(mode)  # the component's own figure; the sidecar agrees
    assert res["latency"]["measured"] == res["latency"]["sidecar"] == latency
    kernels, strides = set(), set()
    for run in res["layers"]:
        kernels.add(run["layer"]["kernel"])
        strides.add(run["layer"]["stride"])
        free, stalled = run["stall_free"], run["random_stalls"]
        assert free["steps_measured"] == free["steps_model"] == stalled["steps_measured"]
        assert free["span"] == free["steps_model"] + latency - 1
        assert stalled["idle"] > 0 and stalled["backpressure"] > 0
        assert stalled["cycles"] >= free["cycles"]
    assert kernels == {1, 3} and strides == {1, 2}


@pytest.mark.parametrize("params", POINTS, ids=_id)
def test_tile_layers(params, build_root):
    check(run_testbench("diffy-tile", params, build_root=build_root),
          params.get("mode", "diffy"))


@pytest.mark.slow
@pytest.mark.parametrize("params", SLOW_POINTS, ids=_id)
def test_tile_larger_layers(params, build_root):
    # The larger layers only: the default tier runs the default ones on every mode.
    res = run_testbench("diffy-tile", params, build_root=build_root,
                        config={"layers": SLOW_LAYERS})
    check(res, params["mode"])


def test_mode_changes_the_step_count_not_the_result(build_root):
    # Smooth image rows: the deltas have fewer terms than the raw values, so Diffy must
    # take fewer steps than Pragmatic on the same layer; Stripes more than both.
    layer = [{"channels": 8, "filters": 4, "size": [6, 16], "kernel": 3, "stride": 1,
              "padding": 1, "images": 1, "data": "image"}]
    steps = {}
    for mode in MODES:
        res = run_testbench("diffy-tile", {"mode": mode}, build_root=build_root,
                            config={"layers": layer}, testcase="layers")
        assert res["passed"], res.get("error")
        steps[mode] = res["layers"][0]["stall_free"]["steps_measured"]
    assert steps["bitparallel"] < steps["diffy"] < steps["pragmatic"] < steps["stripes"]


def test_the_soak_knob_runs_the_stalled_runs_alone(build_root):
    layer = [{"channels": 5, "filters": 3, "size": [4, 5], "kernel": 3, "stride": 1,
              "padding": 1, "images": 1, "data": "image"}]
    res = run_testbench("diffy-tile", {}, build_root=build_root, testcase="layers",
                        config={"layers": layer, "stall_free": False})
    assert res["passed"], res.get("error")
    (run,) = res["layers"]
    assert set(run) == {"layer", "random_stalls"}
    assert run["random_stalls"]["steps_measured"] == run["random_stalls"]["steps_model"]
    # Each stalled run moves both inputs' pallets and the output's groups, no more.
    stalled = run["random_stalls"]
    assert res["stream_beats"] == {"a": stalled["pallets"], "w": stalled["pallets"],
                                   "o": stalled["groups"]}
    (line,) = sim_lines(res)      # what `dnnhw sim diffy-tile --soak` prints
    assert f"{stalled['pallets']} pallets" in line and "with stalls: all matched" in line
    assert "stall-free" not in line
