"""``dnnhw bench bandlimit``: the summary's arithmetic on hand-made runs, the markdown
rendered again from ``bandlimit.json``, ``run()``, ``--quick`` through the CLI, and the
option errors."""

import json
from dataclasses import asdict

import pytest

from dnnhw.bench import bandlimit as B
from dnnhw.bench import benchmarks
from dnnhw.cli import main as cli_main
from dnnhw.golden.cnn_bandlimit import BandLimitedCNN


def _results():
    config = B.Config(rates=(0.0, 50.0, 90.0), seeds=(0, 1, 2), epochs=2)
    final = {0.0: (0.96, 0.98, 0.97), 50.0: (0.96, 0.97, 0.95), 90.0: (0.48, 0.50, 0.52)}
    runs = [{"rate": rate, "seed": seed, "seconds": 2.0 * (1 - rate / 100),
             "accuracy": accuracy[seed], "density": {"conv1": 0.6, "conv2": 0.4},
             "history": [{"epoch": e, "test_accuracy": accuracy[seed] - 0.1 * (1 - e)}
                         for e in range(2)]}
            for seed in range(3) for rate, accuracy in final.items()]
    memory = [dict(rate=rate, **BandLimitedCNN(compression_rate=rate).spectra_memory())
              for rate in final]
    errors = [{"rate": rate, "layer": layer, "relative_error": rate / 100,
               "kept_energy_input": 1 - rate / 200, "max_abs_error": 0.0}
              for rate in final for layer in ("conv1", "conv2")]
    transfer = [{"rate": rate, "seed": seed, "accuracy": 0.9 - rate / 100}
                for seed in range(3) for rate in final]
    results = {"config": asdict(config), "runs": runs, "memory": memory, "errors": errors,
               "transfer": transfer,
               "meta": {"seconds": 3.0, "train_images": 1433, "test_images": 364,
                        "parameters": 9930, "complex_bytes": 8}}
    results["summary"] = B.summarize(results)
    return results


def test_summary_arithmetic():
    rows = {r["rate"]: r for r in _results()["summary"]}
    zero, half, top = rows[0.0], rows[50.0], rows[90.0]
    assert zero["accuracy"]["mean"] == pytest.approx(0.97)
    assert zero["accuracy"]["std"] == pytest.approx(0.01)          # sample std
    assert (half["accuracy"]["min"], half["accuracy"]["max"]) == (0.95, 0.97)
    # Paired by seed: 0.96 / 0.96, 0.97 / 0.98, 0.95 / 0.97.
    assert half["relative"]["mean"] == pytest.approx((1 + 0.97 / 0.98 + 0.95 / 0.97) / 3)
    assert zero["relative"]["mean"] == pytest.approx(1.0)
    assert top["transfer"]["mean"] == pytest.approx(0.0)
    assert top["seconds_per_epoch"] == pytest.approx(0.1)
    assert zero["curve"] == pytest.approx([0.87, 0.97])
    assert zero["accuracy_tail"]["mean"] == pytest.approx(0.92)      # the 2 epochs' mean
    # Memory against c = 0 is the kept fraction: 66 / 153 and 6 / 153 on 17 x 17 tiles.
    assert zero["memory_ratio"] == 1.0
    assert half["memory_ratio"] == pytest.approx(66 / 153)
    assert top["memory_ratio"] == pytest.approx(6 / 153)
    assert top["kept_fraction"] == pytest.approx(6 / 153)
    assert top["kept"] == {"conv1": 6, "conv2": 6}
    assert top["errors"]["conv2"]["relative_error"] == pytest.approx(0.9)


def test_render_from_results():
    text = B.render(_results())
    assert "# Band-limited training on handwritten digits" in text
    assert "| 50 % | 56.9 % | 96.00 % ± 1.00 | 95.00 % .. 97.00 % | 91.00 % | 0.9897 |" \
        in text
    assert "| 90 % | 3 x 2 = 6 / 153 | 3 x 2 = 6 / 153 | 25,344 | 816 | 26,160 | 0.039 |" \
        in text
    assert "ResNet-18" in text and "93.69" in text
    assert "![" not in text                                          # no plots named


def test_registered_without_a_catalog_row():
    assert benchmarks()["bandlimit"].main == "dnnhw.bench.bandlimit:main"


def test_run_api_and_checks():
    results = B.run(quick=True, seeds=1, rates=(50,), epochs=1, error_images=8)
    assert list(results["config"]["rates"]) == [0.0, 50.0]           # 0 always added
    assert [r["rate"] for r in results["runs"]] == [0.0, 50.0]
    assert {e["layer"] for e in results["errors"]} == {"conv1", "conv2"}
    assert results["summary"][1]["memory_ratio"] == pytest.approx(66 / 153)
    with pytest.raises(ValueError, match=r"rates: compression_rate must be in \[0, 100\), "
                                         r"got 100"):
        B.run(quick=True, rates=(0, 100))
    with pytest.raises(ValueError, match="seeds must be a count in 1..100"):
        B.run(quick=True, seeds=0)
    with pytest.raises(ValueError, match="epochs must be in 1..1000"):
        B.run(quick=True, epochs=0)
    with pytest.raises(TypeError, match="unknown options"):
        B.run(quick=True, bogus=1)


def test_quick_cli_end_to_end(tmp_path, capsys):
    assert cli_main(["bench", "bandlimit", "--quick", "-o", str(tmp_path)]) == 0
    assert "wrote" in capsys.readouterr().out
    results = json.loads((tmp_path / "bandlimit.json").read_text())
    assert (tmp_path / "bandlimit.md").read_text() == B.render(results) + "\n"
    rows = {r["rate"]: r for r in results["summary"]}
    assert list(rows) == list(B.RATES)
    assert rows[0.0]["accuracy"]["mean"] > 0.85                     # chance is 0.1
    assert rows[25.0]["accuracy"]["mean"] > 0.8
    ratios = [r["memory_ratio"] for r in results["summary"]]
    assert ratios == pytest.approx([1, 91 / 153, 66 / 153, 28 / 153, 6 / 153])
    errors = [r["errors"]["conv1"]["relative_error"] for r in results["summary"]]
    assert errors[0] < 1e-12                                         # c = 0 is exact
    assert all(b > a for a, b in zip(errors, errors[1:]))
    assert set(results["plots"]) == {"accuracy", "memory", "error"}
    for plot in results["plots"].values():
        assert (tmp_path / plot).stat().st_size > 0


@pytest.mark.parametrize("argv,message", [
    (["--rates", "0,100"], "--rates must each be in [0, 100), got 100"),
    (["--rates", "-5"], "--rates must each be in [0, 100), got -5"),
    (["--rates", "half"], "expected comma-separated numbers"),
    (["--seeds", "0"], "--seeds must be in 1..100, got 0"),
    (["--epochs", "0"], "--epochs must be in 1..1000, got 0"),
])
def test_option_errors_name_the_option(argv, message, capsys):
    with pytest.raises(SystemExit) as exit:
        B.main(argv)
    assert exit.value.code == 2
    assert message in capsys.readouterr().err
