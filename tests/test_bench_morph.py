"""``dnnhw morph map`` and ``dnnhw bench morph``: what they print and write, and their
errors."""

import json

import pytest

from dnnhw.bench import morph as bench
from dnnhw.cli import main
from dnnhw.golden import morph


def test_c3d_layers_are_the_published_shapes():
    layers = {layer.name: layer for layer in bench.layers()}
    assert list(layers) == ["conv1", "conv2", "conv3a", "conv3b", "conv4a", "conv4b",
                            "conv5a", "conv5b"]
    assert (layers["conv1"].C, layers["conv1"].F, layers["conv1"].H) == (3, 16, 112)
    assert (layers["conv3b"].C, layers["conv3b"].K, layers["conv3b"].F,
            layers["conv3b"].H) == (256, 256, 8, 28)
    # About 38.5 GMAC per clip (REFERENCE.md).
    assert sum(layer.macs for layer in layers.values()) / 1e9 == pytest.approx(38.5, rel=0.01)


def test_map_prints_mapping_counts_and_energy(capsys, tmp_path):
    out = tmp_path / "map.json"
    assert main(["morph", "map", "--layer", "c3d:conv5a", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "conv5a" in text and "mapping  L2 [" in text and "energy:" in text
    assert "DRAM words" in text and "lower bound" in text
    record = json.loads(out.read_text())
    layer = bench.parse_layer("c3d:conv5a")
    mapping = morph.Mapping(**record["mapping"])
    assert record["counts"]["traffic"] == morph.counts(layer, mapping).traffic


def test_map_takes_a_layer_and_buffers_of_ones_own(capsys):
    assert main(["morph", "map", "--layer", "C=8,F=4,H=8,W=8,K=16",
                 "--buffers", "pes=16,l2=8x2048,l1=8x256"]) == 0
    text = capsys.readouterr().out
    assert "8->16 @4x8x8" in text and "16 PEs; L2 8 x 2048 words; L1 8 x 256 words" in text


@pytest.mark.parametrize("argv,message", [
    (["--layer", "c3d:conv9"], "C3D has no layer 'conv9'; known: conv1, conv2"),
    (["--layer", "C=0,F=4,H=4,W=4,K=4"], "C must be >= 1, got 0"),
    (["--layer", "C=4,F=4,H=4,W=4"], "missing K"),
    (["--layer", "C=4,F=4,H=4,W=4,K=4,Q=1"], "keys C, F, H, W, K"),
    (["--layer", "c3d:conv1", "--buffers", "l2=1x64,l1=1x8"], "no mapping fits"),
    (["--layer", "c3d:conv1", "--buffers", "l3=4x4"], "expected pes=N, l2=BANKSxWORDS"),
    (["--layer", "c3d:conv1", "--buffers", "pes=0"], "pes must be >= 1, got 0"),
    (["--layer", "c3d:conv1", "--max-l2", "0"], "max_l2 must be >= 1, got 0"),
])
def test_map_errors_name_the_parameter(capsys, argv, message):
    assert main(["morph", "map"] + argv) == 2
    assert message in capsys.readouterr().err


def test_quick_study_writes_markdown_json_and_plots(tmp_path, capsys):
    assert main(["bench", "morph", "--quick", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "morph.md").read_text()
    result = json.loads((tmp_path / "morph.json").read_text())
    for plot in ("morph_energy.png", "morph_dram.png", "morph_space.png"):
        assert (tmp_path / plot).stat().st_size > 0 and f"]({plot})" in text
    assert "2.5x on average and 3.4x at most" in text
    rows = result["rows"]
    assert [r["layer"] for r in rows][0] == "conv1" and len(rows) == 8
    for row in rows:
        # Morph's per-layer best is never worse than the single mapping for all layers,
        # and DRAM traffic never beats its lower bound.
        assert row["reduction"] >= 1 - 1e-9
        assert row["morph"]["dram_words"] >= row["morph"]["dram_lower_bound"]
        assert 0 < row["morph"]["compute_utilization"] <= 1
    summary = result["summary"]
    assert summary["max_reduction"] == max(r["reduction"] for r in rows)
    space = result["space"]["inner"]
    assert space["min_pj"] == pytest.approx(space["chosen_pj"])
