"""The RTL study's pieces: the scaled C3D layers, the mapping pairs, energy from counters,
and ``dnnhw morph run`` (one layer on the simulated array, its errors)."""

import pytest

from dnnhw.bench.morph_array import run_main
from dnnhw.sim.morph_study import energy_pj, scaled_c3d, study_mappings
from dnnhw.golden import morph
from dnnhw.sim.morph_loader import ArrayShape, check


def test_scaled_c3d_keeps_the_channel_ratios():
    layers = {l.name: l for l in scaled_c3d()}
    assert list(layers) == ["conv1", "conv2", "conv3a", "conv3b", "conv4a", "conv4b",
                            "conv5a", "conv5b"]
    assert (layers["conv1"].C, layers["conv1"].K) == (3, 4)          # 3 -> 64 / 16
    assert (layers["conv3a"].C, layers["conv3a"].K) == (8, 16)       # 128 -> 256 / 16
    assert (layers["conv4b"].C, layers["conv4b"].K) == (32, 32)
    assert (layers["conv1"].F, layers["conv1"].H) == (4, 16)         # 16 frames / 4
    assert all(l.T == l.R == l.S == 3 and l.padding == (1, 1, 1) for l in layers.values())


def test_study_mappings_are_legal_on_the_build():
    shape = ArrayShape(l2_banks=3, l2_bank_words=1024, l1_input_words=512,
                       l1_weight_words=512, l1_psum_entries=64)
    network = scaled_c3d()[:3]
    pairs = study_mappings(shape, 8, network, max_l2=4)
    assert [layer.name for layer, _, _ in pairs] == ["conv1", "conv2", "conv3a"]
    fixed = {(m.outer_order, m.inner_order) for _, _, m in pairs}
    assert len(fixed) == 1                  # one fixed mapping (its tiles clipped)
    for layer, best, clipped in pairs:
        assert not check(layer, best, shape) and not check(layer, clipped, shape)


def test_energy_from_counters():
    traffic = {level: {op: {"reads": 0, "writes": 0} for op in ("inputs", "weights", "psums")}
               for level in ("dram", "l2", "l1")}
    traffic["dram"]["inputs"]["reads"] = 10
    traffic["l2"]["psums"]["writes"] = 4
    traffic["l1"]["weights"]["reads"] = 100
    energy = energy_pj({"traffic": traffic, "macs": 1000},
                       morph.DEFAULT_HARDWARE.energy_pj)
    # 10 x 640 + 4 x 50 + 100 x 5 + 1000 x 0.9
    assert energy == {"dram": 6400.0, "l2": 200.0, "l1": 500.0, "mac": 900.0,
                      "total": 8000.0}


@pytest.mark.parametrize("argv, message", [
    (["--layer", "c3d:conv9"], "the C3D layers are conv1"),
    (["--layer", "C=2,F=2"], "--layer"),
    (["--layer", "c3d:conv1", "--param", "kp=99"], "parameter 'kp' must be one of 1..16"),
    (["--layer", "c3d:conv1", "--mapping", "/no/such/file.json"], "No such file"),
])
def test_run_refuses_bad_input(argv, message, capsys):
    assert run_main(argv) == 2
    assert message in capsys.readouterr().err


def test_run_one_layer_on_the_array(build_root, capsys):
    code = run_main(["--layer", "C=2,F=2,H=3,W=3,K=3", "--build-root", str(build_root)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "every counter equal to the model" in out
    assert "MACs" in out and "cycles" in out
