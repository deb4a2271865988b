"""The report: rendered from job records alone, a summary first, each plot beside its
table, no empty plot, distinct series styles, README sections by key."""

import pytest

from dnnhw.catalog import CORES, get_core
from dnnhw.report import render_sections, update_readme, write_report
from dnnhw.report.plots import style


def _record(kind, core, params, result, **job):
    job = {"kind": kind, "core": core, "params": sorted(params.items()), "simulator": None,
           "target": None, "seed": 1, "router": None, "analysis": None, "configs": [], **job}
    return {"key": "0" * 64, "label": f"{kind} {core}", "job": job, "status": "ok",
            "result": result, "cached": False}


DIFFY = {"lanes": 4, "filters": 2, "windows": 2, "width": 16, "shifter_bits": 2,
         "encoding": "best", "max_products": 576}


def _qor(target, lut, fmax, dsp=0, device=None):
    return {"target": target, "lut": lut, "ff": 1, "carry": 0, "bram": 0, "dsp": dsp,
            "fmax_mhz": fmax, "device": device or target}


def test_area_table_sets_each_tile_against_both_bit_parallel_baselines_of_its_device():
    diffy, bp = {**DIFFY, "mode": "diffy"}, {**DIFFY, "mode": "bitparallel"}
    narrow = {**DIFFY, "width": 8, "mode": "diffy"}
    records = [
        _record("synth", "diffy-tile", diffy, _qor("ecp5-85f", 4000, 50.0), target="ecp5-85f"),
        _record("synth", "diffy-tile", bp, _qor("ecp5-85f", 1000, 100.0, dsp=16),
                target="ecp5-85f"),
        _record("synth", "diffy-tile", bp, _qor("ecp5-85f-nodsp", 8000, 40.0,
                                                device="ecp5-85f"), target="ecp5-85f-nodsp"),
        _record("synth", "diffy-tile", narrow, _qor("ice40-up5k", 900, 20.0), target="ice40-up5k"),
        # The analysis gives cycles of the width-16 builds only, as computed by the bench.
        _record("analysis", "diffy-tile", {}, {"workload": {"image": "astronaut", "size": 32,
                                                           "channels": 16, "depth": 3},
                                               "rows": [{"params": diffy, "cycles": 3000},
                                                        {"params": bp, "cycles": 1500}]},
                analysis="dnnhw.bench.diffy:area_workload_cycles"),
    ]
    _, sections = render_sections(records, CORES)
    body = next(s for s in sections if s.key == "diffy-synth").body
    area = body.split("Area-normalized")[1]
    # Against the DSP build: speedup 1500/3000 = 0.50x; LUT ratio 4.00; per LUT 0.12x;
    # at each Fmax 0.25x. Against the LUT-multiplier build: LUT ratio 0.50, per LUT 1.00x,
    # at each Fmax 0.50 * 50 / 40 = 0.62x.
    assert ("| ecp5-85f | diffy | 4x2x2 | 4000 | 0 | 3000 | 4x2x2, multipliers in DSP blocks "
            "| 1000 | 16 | 0.50x | 4.00 | 0.12x | 0.25x |") in area
    assert ("| ecp5-85f | diffy | 4x2x2 | 4000 | 0 | 3000 | 4x2x2, multipliers in LUTs "
            "| 8000 | 0 | 0.50x | 0.50 | 1.00x | 0.62x |") in area
    assert "ice40-up5k" not in area and "| bitparallel |" not in area
    # The goal column comes from the catalog row: 75 MHz for term-serial modes on the ECP5,
    # none for the LUT-multiplier baseline.
    assert "| diffy | 4x2x2 | 16 | ecp5-85f | 4000 | 1 | 0 | 0 | 0 | 50.0 | 75 |" in body
    assert "| bitparallel | 4x2x2 | 16 | ecp5-85f-nodsp | 8000 | 1 | 0 | 0 | 0 | 40.0 |  |" in body


def test_area_workload_cycles_are_the_golden_models_plus_latency(monkeypatch):
    """The analysis itself: published-model cycles plus the tile's latency per layer, on
    a layer list built by hand (the bench's crop replaced)."""
    import numpy as np
    from dnnhw.bench import diffy as bench
    from dnnhw.golden.diffy_tile import published_cycles
    from dnnhw.rtl.diffy_tile import DiffyTile
    rng = np.random.default_rng(0)
    layers = [(rng.integers(0, 4000, (4, 6, 10)), rng.integers(-300, 300, (4, 4, 3, 3)), 1, 1),
              (rng.integers(0, 4000, (4, 5, 5)), rng.integers(-300, 300, (2, 4, 1, 1)), 1, 0)]
    monkeypatch.setattr(bench, "crop_layers", lambda **kw: layers)
    params = {**DIFFY, "mode": "pragmatic"}
    out = bench.area_workload_cycles([params, {**params, "width": 8}])
    assert [r["params"] for r in out["rows"]] == [params]
    geometry = {k: params[k] for k in ("mode", "lanes", "filters", "windows", "width",
                                        "encoding", "shifter_bits")}
    want = sum(published_cycles(x, w, s, p, **geometry) for x, w, s, p in layers)
    assert out["rows"][0]["cycles"] == want + 2 * (DiffyTile.latency_of("pragmatic") - 1)
    # Stripes has neither the term encoding stage nor the multiplier register: one cycle
    # less per layer.
    stripes = {**params, "mode": "stripes"}
    geometry["mode"] = "stripes"
    want = sum(published_cycles(x, w, s, p, **geometry) for x, w, s, p in layers)
    assert bench.area_workload_cycles([stripes])["rows"][0]["cycles"] == want + 2 * (DiffyTile.LATENCY - 1)


def test_a_sim_only_run_writes_no_synthesis_section_and_no_empty_plot(tmp_path):
    thr = {"0.5": {"windows": 100, "windows_per_cycle": 1.0, "port_bound": 1.0,
                   "frame_bound": 1.0, "out_beats_per_cycle": 0.6, "compression_ratio": 1.6}}
    records = [_record("sim", "zvc-compress", {"lanes": 8, "width": 16},
                       {"throughput": thr, "latency": {"measured": 11}}, simulator="verilator")]
    paths = write_report(records, catalog=CORES, output=tmp_path, run={"tier": "quick"})
    report = (tmp_path / "report.md").read_text()
    assert "ZVC synthesis" not in report and not (tmp_path / "zvc-synth.png").exists()
    assert "ZVC throughput" in report and (tmp_path / "zvc-sim.png") in paths
    # Summary first, then the section, then its plot right after its table.
    assert report.index("## Summary") < report.index("## ZVC throughput") < \
        report.index("![ZVC throughput")
    assert "windows/cycle / bound >= 1.0000 at every density" in report
    # Two configurations at the same worst ratio: the summary still picks one.
    twice = records + [_record("sim", "zvc-compress", {"lanes": 4, "width": 16},
                               {"throughput": thr}, simulator="verilator")]
    summary, _ = render_sections(twice, CORES)
    assert "bound >= 1.0000" in summary[0].throughput


def test_the_summary_sets_fmax_against_the_goal():
    records = [_record("synth", "zvc-compress", {"lanes": 8, "width": 16},
                       _qor("ice40-up5k", 1859, 66.9), target="ice40-up5k")]
    summary, _ = render_sections(records, CORES)
    assert summary[0].fmax == "ice40-up5k 66.9 MHz (goal 75, missed)"
    # Several builds are told apart by the parameters that vary among them.
    records.append(_record("synth", "zvc-compress", {"lanes": 4, "width": 16},
                           _qor("ecp5-85f", 720, 210.3), target="ecp5-85f"))
    summary, _ = render_sections(records, CORES)
    assert summary[0].fmax == ("ice40-up5k 8 66.9 MHz (goal 75, missed); "
                               "ecp5-85f 4 210.3 MHz (goal 150)")
    assert get_core("zvc-compress").fmax_goal({}, "ecp5-85f") == 150


def test_the_seeds_of_one_build_merge_into_their_median_with_min_and_max(tmp_path):
    from dnnhw.report import CoreResults, fmax_text
    params = {"lanes": 32, "width": 32}
    records = [_record("synth", "zvc-compress", params,
                       {**_qor("ecp5-85f", lut, fmax), "critical_path": [f"net{seed}"]},
                       target="ecp5-85f", seed=seed)
               for seed, lut, fmax in ((1, 9000, 95.2), (2, 9100, 88.1), (3, 9050, 90.7))]
    # Another build of the same core stays its own.
    records.append(_record("synth", "zvc-compress", {"lanes": 8, "width": 16},
                           _qor("ice40-up5k", 1859, 66.9), target="ice40-up5k"))
    merged, single = CoreResults({c.name: c for c in CORES}, records).synths("zvc-compress")
    qor = merged["qor"]
    # The median seed's whole record, so that its LUTs go with its Fmax.
    assert (qor["fmax_mhz"], qor["lut"], qor["critical_path"]) == (90.7, 9050, ["net3"])
    assert (qor["fmax_min_mhz"], qor["fmax_max_mhz"]) == (88.1, 95.2)
    assert [(s["seed"], s["fmax_mhz"], s["critical_path"]) for s in qor["seeds"]] == [
        (2, 88.1, ["net2"]), (3, 90.7, ["net3"]), (1, 95.2, ["net1"])]
    assert fmax_text(qor) == "90.7 (88.1-95.2, 3 seeds)"
    assert fmax_text(single["qor"], unit=" MHz") == "66.9 MHz"
    summary, sections = render_sections(records, CORES)
    assert "ecp5-85f 32 32 90.7 MHz (88.1-95.2, 3 seeds) (goal 150, missed)" in summary[0].fmax
    assert any("90.7 (88.1-95.2, 3 seeds)" in s.body for s in sections)
    # The report lists every seed with its critical path; a build of one seed is not listed.
    write_report(records, catalog=CORES, output=tmp_path)
    report = (tmp_path / "report.md").read_text()
    seeds = report[report.index("## Placer seeds"):].split("\n## ")[0]
    assert [line.strip(" |").split(" | ")[3:6] for line in seeds.splitlines() if "net" in line] == [
        ["2", "88.1", "net2"], ["3", "90.7", "net3"], ["1", "95.2", "net1"]]
    assert "ice40-up5k" not in seeds
    # An even count takes the lower middle seed.
    two = CoreResults({c.name: c for c in CORES}, records[:2]).synths("zvc-compress")[0]["qor"]
    assert two["fmax_mhz"] == 88.1


def test_series_styles_are_distinct():
    looks = [style(i) for i in range(20)]
    assert len({(tuple(s["color"]), s["marker"]) for s in looks}) == 20
    assert len({tuple(s["color"]) for s in looks}) == 20
    assert len({s["marker"] for s in looks[:12]}) == 12


def test_readme_sections_are_replaced_by_key(tmp_path):
    from dnnhw.report import Section
    readme = tmp_path / "README.md"
    readme.write_text("a\n<!-- dnnhw-flow:k:begin -->\nold\n<!-- dnnhw-flow:k:end -->\nb\n")
    update_readme(readme, [Section("k", "Title", "new body")])
    assert readme.read_text() == ("a\n<!-- dnnhw-flow:k:begin -->\n### Title\n\nnew body\n\n"
                                  "<!-- dnnhw-flow:k:end -->\nb\n")
    with pytest.raises(ValueError, match="has no <!-- dnnhw-flow:other:begin -->"):
        update_readme(readme, [Section("other", "T", "x")])


def test_malformed_rows():
    """The table rows come from the record, not from the bench's code."""
    from dnnhw.report.zvc import malformed_rows
    record = {"malformed": {"cases": [
        {"class": "length 0", "description": "d", "golden": "frame 0: word 1 ...",
         "out_windows": 2, "last_at": [1], "error": 1, "identical_across_patterns": True,
         "matches_golden": True, "recovered": True},
        {"class": "truncated mask", "description": "e", "golden": "frame 0: ends inside",
         "out_windows": 3, "last_at": [0, 2], "error": 0, "identical_across_patterns": False,
         "matches_golden": False, "recovered": False}]}}
    rows = malformed_rows(record)
    assert rows[0] == {"class": "length 0", "description": "d", "golden": "frame 0: word 1 ...",
                       "rtl": "2 window(s), last on 2, error 1"}
    assert rows[1]["rtl"] == ("3 window(s), last on 1, 3, error 0 (differs across stall "
                              "patterns) (differs from the golden model) (the next frame "
                              "did not decode)")
    assert malformed_rows(record["malformed"]) == rows


def test_report_command_renders_a_saved_report_again(tmp_path, capsys):
    """`dnnhw report` re-renders report.md and the README from report.json alone."""
    import json
    from dnnhw.cli import main
    records = [_record("synth", "zvc-compress", {"lanes": 8, "width": 16},
                       _qor("ice40-up5k", 1859, 66.9), target="ice40-up5k")]
    saved = tmp_path / "report.json"
    saved.write_text(json.dumps({"run": {"tier": "full", "jobs": 1}, "records": records}))
    readme = tmp_path / "README.md"
    readme.write_text("<!-- dnnhw-flow:zvc-synth:begin -->\n<!-- dnnhw-flow:zvc-synth:end -->\n")
    assert main(["report", str(saved), "--readme", str(readme)]) == 0
    assert "| zvc-compress | 8 | 16 | ice40-up5k | 1859 |" in readme.read_text()
    assert "Tier `full`: 1 jobs" in (tmp_path / "report.md").read_text()
    assert main(["report", str(tmp_path / "nothing.json")]) == 2
    assert "is no report.json of dnnhw flow" in capsys.readouterr().err


def test_bandlimit_sections_from_a_small_study():
    from dnnhw.bench import bandlimit as bench
    config = bench.Config(rates=(0.0, 50.0), seeds=(0,), epochs=1, channels=(4, 8),
                          error_images=4, quick=True)
    study = bench.study(config, log=lambda *a, **k: None)
    records = [_record("analysis", "fft", {}, study,
                       analysis="dnnhw.bench.bandlimit:flow_quick")]
    _, sections = render_sections(records, CORES)
    body = {s.key: s.body for s in sections}
    assert list(body) == ["bandlimit-training", "bandlimit-memory"]
    assert "`dnnhw bench bandlimit --quick`: a small run" in body["bandlimit-training"]
    # A row per rate in each table; at 50 % the kept block is 11 x 6 of 17 x 9.
    assert "| 0 % | 0.0 % |" in body["bandlimit-training"]
    assert "| 50 % | 56.9 % |" in body["bandlimit-training"]
    assert "| 50 % | 11 x 6 = 66 / 153 | 11 x 6 = 66 / 153 |" in body["bandlimit-memory"]


def test_dgc_sections_from_a_small_study_and_the_benches_records(tmp_path):
    from dnnhw.bench import dgc as bench
    config = bench.Config(epochs=1, seeds=(0,), workers=(2,), arms=("dense", "dgc"),
                          channels=(4, 8), cdma_images=8, quick=True)
    study = bench.study(config, log=lambda *a: None)
    sparsify = {"capacity": 8192, "grad_width": 16, "state_width": 24, "spram": False}
    run = {"selected_rtl": [3, 1], "selected_golden": [3, 1], "status_golden": [],
           "gradient_beats_per_cycle": [1.0] * 4, "step_cycles": [13950, 13948],
           "command_intervals": [13951], "o_beats": 4, "elements": 4608}
    aggregate = {"workers": 4, "capacity": 8192, "value_width": 24, "weight_width": 16}
    merged = {"sparse_beats": 12, "merge_beats_per_cycle": [1.0, 1.0],
              "weight_beats_per_cycle": [1.0, 1.0], "lr_q": 1638, "elements": 4608,
              "weight_scale_bits": 15}
    records = [
        _record("analysis", "dgc-sparsify", {}, study, analysis="dnnhw.bench.dgc:flow_quick"),
        _record("sim", "dgc-sparsify", sparsify,
                {"steps": {"tensor": "conv2.w", "steps": 2, "stall_free": run,
                           "random_stalls": run}}, simulator="verilator"),
        _record("sim", "dgc-aggregate", aggregate,
                {"steps": {"tensor": "conv2.w", "steps": 2, "stall_free": merged,
                           "random_stalls": merged}}, simulator="verilator"),
        _record("synth", "dgc-sparsify", sparsify, _qor("ecp5-85f", 2336, 30.0),
                target="ecp5-85f"),
    ]
    summary, sections = render_sections(records, CORES)
    keys = [s.key for s in sections]
    assert keys == ["dgc-training", "dgc-ratio", "dgc-cdma", "dgc-sim", "dgc-synth"]
    # One epoch ends inside the warm-up: the summary says which ratio it gives.
    assert "x over a run shorter than the warm-up (paper 270-600x)" in summary[0].paper
    synth = sections[-1].body
    # 30 MHz over the sparsifier's three passes: 10 M elements a second, 1/31.25 of a
    # dense 10 GbE link (312.5 M float32 elements a second).
    assert "| 10.0 M | 0.032 / 0.003 |" in synth
    paths = write_report(records, catalog=CORES, output=tmp_path, run={"tier": "quick"})
    assert {p.name for p in paths} >= {f"{k}.png" for k in keys}


def _fft_run(n, *, stalled, sqnr_run=68.7):
    frames = {"random": 32, "camera": 16, "astronaut": 16, "full_scale": 2}
    latency = {16: 37, 64: 131}[n]
    return {"n": n, "width": 16, "twiddle_width": 16, "inverse": False, "frames": frames,
            "samples": 66 * n, "idle": 0.3 if stalled else 0.0,
            "backpressure": 0.3 if stalled else 0.0,
            "source_pause": "random(probability=0.3)" if stalled else "full",
            "sink_pause": "random(probability=0.3)" if stalled else "full",
            "cycles": 7525 if stalled else 66 * n + latency,
            "in_samples_per_cycle": 0.575 if stalled else 1.0,
            "out_samples_per_cycle": 0.576 if stalled else 1.0,
            "in_frame_rate_min": 0.52 if stalled else 1.0,
            "out_frame_rate_min": 0.57 if stalled else 1.0,
            "latency_first": latency + (55 if stalled else 0), "latency_sidecar": latency,
            "latency_frame_max": latency + (75 if stalled else 0),
            "sqnr_db": {"random": 69.3, "camera": 67.8, "astronaut": 67.9, "image": 67.9,
                        "full_scale": 31.3, "run": sqnr_run},
            "sqnr_reference": "numpy.fft.fft(x) / n",
            "overflow": {"rtl": 1, "golden": 1, "golden_run": 0}}


def test_fft_sections_from_the_benches_records_and_a_small_sqnr_study(tmp_path, monkeypatch):
    from dnnhw.bench import fft as fft_bench
    # The analysis itself, at one n and three widths (the flow's runs n = 64 and 1024,
    # widths 8..24): a bit more gives about 6 dB more on random and image data, the
    # full-scale data saturates, the random and image data do not.
    monkeypatch.setattr(fft_bench, "SQNR_POINTS", (16,))
    monkeypatch.setattr(fft_bench, "WIDTHS", range(8, 11))
    study = fft_bench.sqnr_by_width([])
    assert study["points"] == [16] and study["widths"] == [8, 9, 10]
    random = [r["sqnr_db"] for r in study["rows"] if r["data"] == "random"
              and r["twiddle_width"] == r["width"]]
    assert all(5.0 < b - a < 7.0 for a, b in zip(random, random[1:]))
    assert all(r["overflow"] == (r["data"] == "full_scale") for r in study["rows"])
    assert all((r["bound_db"] is not None) == (r["data"] == "random") for r in study["rows"])

    params = {"n": 64, "width": 16, "twiddle_width": 16, "inverse": False}
    small = dict(params, n=16)
    sim = {"stall_free": _fft_run(64, stalled=False), "random_stalls": _fft_run(64, stalled=True),
           "sim": "icarus"}
    records = [
        _record("sim", "fft", params, sim, simulator="icarus"),
        _record("sim", "fft", small, {"stall_free": _fft_run(16, stalled=False, sqnr_run=60.2),
                                      "random_stalls": _fft_run(16, stalled=True,
                                                                sqnr_run=60.2),
                                      "sim": "icarus"}, simulator="icarus"),
        _record("synth", "fft", dict(params, n=1024),
                {**_qor("ecp5-85f", 4012, 51.3), "ff": 2950, "bram": 9, "dsp": 32,
                 "placed": {"TRELLIS_COMB": 7100}}, target="ecp5-85f"),
        _record("synth", "fft", small, {**_qor("ice40-up5k", 1424, 25.2), "dsp": 8,
                                        "placed": {"ICESTORM_LC": 2198}}, target="ice40-up5k"),
        {**_record("synth", "fft", dict(params, n=32), {"overused": {"ICESTORM_DSP": [12, 8]}},
                   target="ice40-up5k"), "status": "failed",
         "error": "does not fit ice40-up5k"},
        _record("analysis", "fft", {}, study, analysis="dnnhw.bench.fft:sqnr_by_width"),
    ]
    summary, sections = render_sections(records, CORES)
    keys = [s.key for s in sections if s.key.startswith("fft")]
    assert keys == ["fft-sim", "fft-synth", "fft-sqnr", "fft-peers"]
    row = next(r for r in summary if r.core == "fft")
    assert "n = 16, 64: 264 frames (10,560 samples" in row.verified
    assert "1.000 samples / cycle in and out" in row.throughput and "latency =" in row.throughput
    assert "here n = 1024 ecp5-85f 51.3 MHz" in row.paper and "235.6 MHz" in row.paper
    body = {s.key: s.body for s in sections}
    assert ("| n 64, 16-bit, twiddles 16 | icarus | stall-free | 32 random, 16 camera + 16 "
            "astronaut image rows, 2 full-scale | 4,224 | 4,355 | 1.000 / 1.000 | 131 / 131 "
            "| 68.7 | 69.3 | 67.9 | 31.3 | 1 = 1 |") in body["fft-sim"]
    # 1024 points over 51.3 MHz: 19.96 us a frame; 32 DSPs for 4 x (10 - 2) products.
    assert ("| 1024 | 16 | 16 | ecp5-85f | 4012 | 2950 | 0 | 9 | 32 (32) | 7,100 | 51.3 "
            "| 19.96 |") in body["fft-synth"]
    assert "n = 32 does not fit the ice40-up5k: it needs ICESTORM_DSP 12 of 8" in body["fft-synth"]
    assert "The largest n on the UP5K here: 16 (8 of its 8 SB_MAC16, 2,198" in body["fft-synth"]
    assert "| 8 |" in body["fft-sqnr"] and "n 16: rounding bound" in body["fft-sqnr"]
    peers = body["fft-peers"]
    assert "| Virtex-4 | 235.6 | 235.6 | 2,256 slices |" in peers
    assert "| **dnnhw `fft` (this run)** | R2SDF, natural order out | 1024 | 16 | ecp5-85f" in peers
    assert "No published iCE40 or ECP5 FFT figure was found" in peers
    paths = write_report(records, catalog=CORES, output=tmp_path, run={"tier": "full"})
    assert {p.name for p in paths} >= {"fft-sim.png", "fft-synth.png", "fft-sqnr.png"}
    report = (tmp_path / "report.md").read_text()
    assert report.index("## Summary") < report.index("## The FFT in cocotb") < \
        report.index("![The FFT in cocotb")
    # A quick-tier run (simulation and the study, no synthesis) leaves out the synthesis
    # and peer sections, so the README keeps what a full run wrote there.
    _, quick = render_sections([records[0], records[-1]], CORES)
    assert [s.key for s in quick] == ["fft-sim", "fft-sqnr"]


def _bandlimit_run(*, stalled, period=512.0, sqnr=61.7):
    return {"dims": 2, "n": 16, "taps": 3, "in_channels": 2, "out_channels": 2,
            "compression_rate": 50.0, "width": 16,
            "tiles": {"random": 3, "camera": 2, "astronaut": 2},
            "idle": 0.3 if stalled else 0.0, "backpressure": 0.3 if stalled else 0.0,
            "source_pause": "random(probability=0.3)" if stalled else "full",
            "sink_pause": "random(probability=0.3)" if stalled else "full",
            "cycles": 9000 if stalled else 4700, "in_samples_per_cycle": 0.4 if stalled else 0.76,
            "out_samples_per_cycle": 0.3 if stalled else 0.58,
            "tile_period": period, "cycles_per_tile": 512,
            "sqnr_db": {"random": 61.0, "camera": 62.0, "astronaut": 62.5, "run": sqnr},
            "error_vs_direct": {"random": 0.5, "camera": 0.2, "astronaut": 0.21, "run": 0.45},
            "overflow": {"rtl": 0, "golden": 0}}


def test_bandlimit_conv_sections_from_the_benches_records_and_the_quick_study(tmp_path):
    from dnnhw.bench import bandlimit_conv as bench
    core = get_core("bandlimit-conv")
    params = core.resolve({})
    sim = {"stall_free": _bandlimit_run(stalled=False),
           "random_stalls": _bandlimit_run(stalled=True, period=900.0),
           "reload": _bandlimit_run(stalled=True, period=910.0, sqnr=58.0)}
    qor = {**_qor("ecp5-85f", 9000, 60.5), "dsp": 52, "bram": 12}
    records = [
        _record("sim", "bandlimit-conv", params, sim, simulator="icarus"),
        _record("synth", "bandlimit-conv", params, qor, target="ecp5-85f"),
        _record("synth", "bandlimit-conv", dict(params, compression_rate=90),
                {**qor, "bram": 8}, target="ecp5-85f"),
        _record("analysis", "bandlimit-conv", {}, bench.study(quick=True),
                analysis="dnnhw.bench.bandlimit_conv:flow_figures"),
    ]
    summary, sections = render_sections(records, CORES)
    keys = [s.key for s in sections]
    assert keys == ["bandlimit-conv-sim", "bandlimit-conv-synth", "bandlimit-conv-memory",
                    "bandlimit-conv-error", "bandlimit-conv-sqnr"]
    row = next(r for r in summary if r.core == "bandlimit-conv")
    assert "21 tiles (random and photographs) bit-exact" in row.verified
    assert "a tile every 512 cycles (model 512), 2D n 16" in row.throughput
    assert "ecp5-85f 50 60.5 MHz; ecp5-85f 90 60.5 MHz" == row.fmax
    # 2D 16 x 16 at c = 90 %: m + 1 = int(9 sqrt(0.1)) = 2, 3 x 2 = 6 of 144 words.
    assert "filter memory 46 % at c = 50 %, 4 % at c = 90 %" in row.paper
    body = {s.key: s.body for s in sections}
    assert ("| 2D 16 x 16, 3 taps, 2 -> 2 ch, c 50 %, 16-bit | filters reloaded, random "
            "stalls | 3 random, 2 camera, 2 astronaut | 9,000 | 0.400 | 910.0 | 512 | 58.0 "
            "| 21.0 % / 50.0 % | 0 = 0 |") in body["bandlimit-conv-sim"]
    # The filter memory column is the core's own: 2 x 2 filters of 66 words, 32 bits each.
    assert "| 2D 16 x 16, 3 taps, 2 -> 2 ch, c 50 %, 16-bit | ecp5-85f | 9,000 | 1 | 52 | 12 " \
           "| 264 | 8.2 | 60.5 |" in body["bandlimit-conv-synth"]
    assert "| 2D | 16 x 16 | 50 % | 5 | 121 of 256 | 66 of 144 | 45.8 % |" \
        in body["bandlimit-conv-memory"]
    paths = write_report(records, catalog=CORES, output=tmp_path, run={"tier": "quick"})
    assert {p.name for p in paths} >= {f"{k}.png" for k in keys}
