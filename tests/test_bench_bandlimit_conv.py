"""``dnnhw bench bandlimit-conv``: the engine's figures from its golden model. The memory
table against the kept-bin rule counted here by hand, the error growing with c, the SQNR
growing with the width, and the command's files."""

import json

import pytest

from dnnhw.bench import bandlimit_conv as bench
from dnnhw.bench import get_benchmark


@pytest.fixture(scope="module")
def quick():
    return bench.study(quick=True)


def test_memory_rows_count_the_stored_one_sided_block():
    rows = {(r["dims"], r["n"], r["c"]): r for r in bench.memory_rows()}
    # 2D 16 x 16 at c = 50: m + 1 = int(9 * sqrt(0.5)) = 6, so m = 5: 11 kept rows, 6
    # stored columns; 11 ** 2 kept bins of 256; 66 of the full 16 x 9 = 144 words.
    r = rows[(2, 16, 50)]
    assert (r["m"], r["kept_bins"], r["words_per_filter"], r["full_words"]) == (5, 121, 66, 144)
    assert r["layer_bits"] == 64 * 64 * 66 * 2 * 16
    # 1D 64 at c = 50: of 33 one-sided, int(33 * 0.5) + 1 = 17 dropped, 16 kept.
    assert rows[(1, 64, 50)]["words_per_filter"] == 16
    assert rows[(1, 64, 0)]["fraction"] == 1.0
    for dims, n, _ in bench.SHAPES:
        fractions = [rows[(dims, n, c)]["fraction"] for c in bench.RATES]
        assert fractions == sorted(fractions, reverse=True)


def test_the_error_against_direct_grows_with_c_and_the_engine_tracks_float(quick):
    for dims, n, taps in {(r["dims"], r["n"], r["taps"]) for r in quick["error"]}:
        rows = sorted((r for r in quick["error"] if (r["dims"], r["n"]) == (dims, n)),
                      key=lambda r: r["c"])
        assert rows[0]["c"] == 0 and rows[0]["float_error"] < 1e-9
        errors = [r["float_error"] for r in rows]
        assert errors == sorted(errors)
        for r in rows:
            assert not r["overflow"]
            # The fixed point adds little to band-limiting: within 0.5 % of the output.
            assert abs(r["fixed_error"] - r["float_error"]) < 5e-3


def test_the_sqnr_grows_with_width(quick):
    for c in bench.SQNR_RATES:
        for data in ("image", "random"):
            values = [r["sqnr_db"] for r in sorted(quick["sqnr"], key=lambda r: r["width"])
                      if (r["c"], r["data"]) == (c, data)]
            assert len(values) == 3
            assert all(b - a > 8 for a, b in zip(values, values[1:]))


def test_the_command_writes_its_tables_and_plots(tmp_path, capsys):
    bench_entry = get_benchmark("bandlimit-conv")
    assert bench_entry.main == "dnnhw.bench.bandlimit_conv:main"
    assert bench.main(["--quick", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "bandlimit_conv.json").read_text())
    assert set(results["plots"]) == {"memory", "error", "sqnr"}
    for name in results["plots"].values():
        assert (tmp_path / name).stat().st_size > 1000
    text = (tmp_path / "bandlimit_conv.md").read_text()
    assert "**Filter memory against c**" in text and "| 2D | 16 x 16 | 3 | 50 % |" in text
    assert "**Filter memory against c**" in capsys.readouterr().out
