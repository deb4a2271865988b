"""``dnnhw.bench.morph_zigzag``: Morph's layers through ZigZag (the optional ``zigzag``
extra). The descriptions are checked everywhere; the ZigZag run only where it is installed."""

import os
import subprocess
import sys

import pytest

from dnnhw.bench import morph_zigzag as Z
from dnnhw.golden.morph import DEFAULT_HARDWARE, Layer


def test_import_does_not_need_zigzag():
    code = ("import sys, dnnhw.bench.morph_zigzag; "
            "assert not any(m == 'zigzag' or m.startswith('zigzag.') for m in sys.modules)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    # The assert runs in the child: check=True turns its failure into this test's.
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_workload_is_the_3d_convolution():
    layer = Layer(C=3, F=16, H=112, W=112, K=64, stride=(1, 2, 2), padding=(1, 0, 1))
    (spec,) = Z.workload_spec(layer)
    sizes = dict(zip(spec["loop_dims"], spec["loop_sizes"]))
    assert sizes == {"B": 1, "K": 64, "C": 3, "OZ": layer.Fo, "OY": layer.Ho, "OX": layer.Wo,
                     "FZ": 3, "FY": 3, "FX": 3}
    assert spec["dimension_relations"] == ["iz=1*oz+1*fz", "iy=2*oy+1*fy", "ix=2*ox+1*fx"]
    assert spec["pr_loop_sizes"] == [16, 112, 112]
    assert spec["padding"] == [[1, 1], [0, 0], [1, 1]]


def test_every_word_costs_our_energy():
    spec = Z.accelerator_spec(DEFAULT_HARDWARE)
    words = {"reg_O": 1, "l1": 16 * 1024, "l2": 16 * 32 * 1024}
    per_word = {"reg_O": 0.0, **DEFAULT_HARDWARE.energy_pj}
    for name, memory in spec["memories"].items():
        if name in words:
            assert memory["size"] == words[name] * Z.WORD_BITS
        for port in memory["ports"]:
            assert port["bandwidth_min"] == Z.WORD_BITS
            width = port["bandwidth_max"] // Z.WORD_BITS
            for cost in (memory["r_cost"], memory["w_cost"]):
                assert cost == pytest.approx(per_word[name] * width)
    assert spec["operational_array"]["sizes"] == [16, 16]
    assert spec["operational_array"]["unit_energy"] == 0.9


@pytest.mark.slow   # 5 s idle, minutes under load: ZigZag's imports and search
def test_zigzag_run_is_sane(tmp_path):
    pytest.importorskip("zigzag.api")
    layer = Layer(C=4, F=2, H=6, W=6, K=16, name="tiny")
    r = Z.run_zigzag(layer, DEFAULT_HARDWARE, workdir=tmp_path, lpf_limit=8,
                     spatial_mappings=1)
    e = DEFAULT_HARDWARE.energy_pj
    macs = layer.K * layer.C * layer.T * layer.R * layer.S * layer.Fo * layer.Ho * layer.Wo
    assert r["macs"] == macs == layer.macs
    d = r["dram_words"]
    assert d["inputs"] >= layer.C * layer.F * layer.H * layer.W
    assert d["weights"] >= layer.K * layer.C * layer.taps
    assert d["outputs"] >= layer.K * layer.Fo * layer.Ho * layer.Wo
    assert d["total"] == d["inputs"] + d["weights"] + d["outputs"]
    assert r["energy_pj"] > 0 and r["energy_pj"] >= macs * e["mac"]
    levels = r["energy_by_level"]
    assert sum(levels.values()) == pytest.approx(r["energy_pj"])
    assert levels["mac"] == pytest.approx(macs * e["mac"])
    # Each level's energy is its words times our energy per word, but for ZigZag rounding
    # each count of accesses of a port down to whole accesses (a port is many words wide;
    # at most one access per operand and direction) and pricing a zero partial-sum fill
    # per output tile that the words do not count.
    memories = Z.accelerator_spec(DEFAULT_HARDWARE)["memories"]
    exact = macs * e["mac"]
    for level in ("dram", "l2", "l1"):
        words = sum(n["reads"] + n["writes"] for n in r["traffic"][level].values())
        width = max(p["bandwidth_max"] for p in memories[level]["ports"]) // Z.WORD_BITS
        assert levels[level] == pytest.approx(words * e[level], rel=0.01,
                                              abs=12 * width * e[level])
        exact += words * e[level]
    assert r["energy_pj_exact"] == pytest.approx(exact)
    assert d["total"] * e["dram"] == pytest.approx(levels["dram"])
    assert r["latency_cycles"] >= macs / DEFAULT_HARDWARE.pes
    assert r["mapping"].startswith("spatial ") and r["zigzag_version"]
