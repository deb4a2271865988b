"""``dnnhw bench dgc``: the summary's arithmetic on hand-made runs, the markdown rendered
again from ``dgc.json``, a tiny run end to end, ``--quick`` (slow), and the option errors."""

import json

import pytest

from dnnhw.bench import benchmarks
from dnnhw.bench import dgc as B
from dnnhw.cli import main as cli_main


def _history(epochs, accuracy, dense, sent, **extra):
    return [dict({"epoch": e, "test_accuracy": accuracy[e], "dense_bytes": dense,
                  "sent_bytes": sent[e], "steps": 10}, **extra) for e in range(epochs)]


def _results(epochs=6):
    config = B.Config(epochs=epochs, seeds=(0, 1, 2), workers=(4,),
                      arms=("dense", "dgc", "dgc-no-warmup"))
    runs = []
    for seed, base in enumerate((0.95, 0.97, 0.96)):
        runs.append({"arm": "dense", "seed": seed, "workers": 4, "seconds": 1.0,
                     "history": _history(epochs, [base] * epochs, 1000, [1000] * epochs)})
        # DGC: +0.01 on every seed (a real difference), 100 bytes a warm-up epoch, 10 after.
        runs.append({"arm": "dgc", "seed": seed, "workers": 4, "seconds": 1.0,
                     "history": _history(epochs, [base + 0.01] * epochs, 1000,
                                         [100] * 4 + [10] * (epochs - 4))})
        # Without warm-up: -0.01, +0.01, 0: no difference beyond noise.
        runs.append({"arm": "dgc-no-warmup", "seed": seed, "workers": 4, "seconds": 1.0,
                     "history": _history(epochs, [base + (-0.01, 0.01, 0.0)[seed]] * epochs,
                                         1000, [10] * epochs)})
    from dataclasses import asdict
    results = {"config": asdict(config), "runs": runs, "cdma": [],
               "meta": {"seconds": 3.0, "train_images": 1433, "test_images": 364},
               "tensors": {"w": 250}}
    results["summary"] = B.summarize(results)
    return results


def test_summary_arithmetic():
    rows = {r["arm"]: r for r in _results()["summary"]}
    dense, dgc, nowarm = rows["dense"], rows["dgc"], rows["dgc-no-warmup"]
    assert dense["accuracy"] == pytest.approx(0.96)
    assert dense["accuracy_std"] == pytest.approx(0.01)          # sample std of 95, 97, 96
    assert dgc["difference"] == pytest.approx(0.01)
    assert dgc["difference_std"] == pytest.approx(0.0, abs=1e-12)
    assert dgc["within_noise"] is False                          # every seed +1 point
    assert nowarm["difference"] == pytest.approx(0.0, abs=1e-12)
    assert nowarm["within_noise"] is True
    # 6 epochs x 1000 dense bytes over 4 x 100 + 2 x 10 sent; after the warm-up 2000 / 20.
    assert dgc["ratio"] == pytest.approx(6000 / 420)
    assert dgc["ratio_after_warmup"] == pytest.approx(100.0)
    assert nowarm["ratio"] == pytest.approx(100.0)
    assert dgc["warmup_end_epoch"] == 3
    assert dgc["curve"]["min"][0] == pytest.approx(0.96)
    assert dgc["curve"]["max"][0] == pytest.approx(0.98)
    # Without enough epochs to leave the warm-up there is no after-warm-up ratio.
    short = {r["arm"]: r for r in _results(epochs=3)["summary"]}
    assert short["dgc"]["ratio_after_warmup"] is None


def test_render_from_results():
    text = B.render(_results())
    assert "# Deep Gradient Compression on handwritten digits" in text
    assert "| 4 | DGC, all tricks | 97.00 ± 1.00 % | +1.00 ± 0.00 % | **no** |" in text
    assert "| 4 | DGC without warm-up | 96.00 ± 2.00 % | +0.00 ± 1.00 % | yes |" in text
    assert "270-600x" in text
    assert "![" not in text                                       # no plots named


def test_registered():
    bench = benchmarks()["dgc"]
    assert bench.main == "dnnhw.bench.dgc:main"


def test_tiny_run_end_to_end(tmp_path, capsys):
    out = tmp_path / "dgc"
    assert B.main(["--quick", "--epochs", "1", "--arms", "dgc", "--workers", "2",
                   "-o", str(out)]) == 0
    results = json.loads((out / "dgc.json").read_text())
    text = (out / "dgc.md").read_text()
    assert text == B.render(results) + "\n"
    assert [r["arm"] for r in results["runs"]] == ["dense", "dgc"]     # dense always
    rows = {r["arm"]: r for r in results["summary"]}
    assert rows["dgc"]["ratio_after_warmup"] is None
    assert rows["dgc"]["ratio"] > 1.5                       # keep 25 % in epoch 1
    assert 0.1 < rows["dense"]["accuracy"] <= 1
    for plot in results["plots"].values():
        assert (out / plot).stat().st_size > 0 and f"]({plot})" in text
    assert set(results["plots"]) == {"accuracy", "bytes", "ratio", "cdma"}
    assert {r["layer"] for r in results["cdma"]} == {"conv1", "conv2"}
    assert "wrote" in capsys.readouterr().out


@pytest.mark.slow
def test_quick_end_to_end(tmp_path):
    assert cli_main(["bench", "dgc", "--quick", "-o", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "dgc.json").read_text())
    rows = {r["arm"]: r for r in results["summary"]}
    assert set(rows) == set(B.ARMS)
    assert rows["dense"]["accuracy"] > 0.9
    assert rows["dgc"]["accuracy"] > 0.9
    # After the warm-up the float arms send k = max(1, ceil(n / 1000)) a tensor: 276x.
    assert rows["dgc"]["ratio_after_warmup"] == pytest.approx(39720 / 144, rel=0.02)
    assert rows["dgc-fixed"]["ratio_after_warmup"] > 100
    assert all(r["within_noise"] is None for r in rows.values())      # one seed
    for name in ("dgc.json", "dgc.md", "dgc_accuracy.png", "dgc_bytes.png",
                 "dgc_ratio.png", "dgc_cdma.png"):
        assert (tmp_path / name).stat().st_size > 0


@pytest.mark.parametrize("argv,message", [
    (["--seeds", "0"], "--seeds must be in 1..100, got 0"),
    (["--workers", "0"], "--workers must each be in 1..32, got 0"),
    (["--workers", "4,64"], "--workers must each be in 1..32, got 64"),
    (["--workers", "four"], "expected comma-separated integers"),
    (["--epochs", "0"], "--epochs must be in 1..1000, got 0"),
    (["--arms", "dgc,nope"], "--arms: unknown arm 'nope'; known: dense, dgc"),
    (["--arms", ","], "--arms: none given"),
])
def test_option_errors_name_the_option(argv, message, capsys):
    with pytest.raises(SystemExit) as exit:
        B.main(argv)
    assert exit.value.code == 2
    assert message in capsys.readouterr().err


def test_run_arm_rejects_an_unknown_arm():
    with pytest.raises(ValueError, match="arm must be one of dense, dgc"):
        B.run_arm("sgd", B.QUICK, 0, 4, None)
    with pytest.raises(ValueError, match="arms must be among dense, dgc"):
        B.study(B.Config(arms=("sgd",)))
