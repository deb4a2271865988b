"""The main job (``dnnhw flow``) and its report: every catalog core at its flow
configurations, generated, verified in simulation, synthesized, written up as markdown,
JSON and plots.
"""

import json
import math
import sys
import time
from pathlib import Path

from .catalog import CORES, ParameterError


__all__ = ["run_flow", "summarize_sim", "throughput_table", "qor_table", "ratio_rows", "flow_sections"]

# The README keeps one section per kind of result, so a synthesis-only or a
# simulation-only run of the flow refreshes just its own part.
README_SECTIONS = ("synth", "sim", "ratios", "diffy-synth", "diffy-sim")


def _progress(text):
    print(text, flush=True)


def summarize_sim(results):
    """A short human summary of a testbench's results dict."""
    lines = [f"{results.get('core')} {results.get('params')}: "
             f"{'PASS' if results.get('passed') else 'FAIL'}"]
    for name, test in results.get("tests", {}).items():
        lines.append(f"  {name}: {test.get('status')} ({test.get('real_time_s', 0):.1f} s)")
    latency = results.get("latency")
    if latency:
        lines.append(f"  latency: {latency.get('measured')} cycles (sidecar {latency.get('sidecar')})")
    for density, r in sorted(results.get("throughput", {}).items(), key=lambda kv: float(kv[0])):
        lines.append(f"  density {density:>5}: {r['windows_per_cycle']:.4f} windows/cycle "
                     f"(bound {min(r['port_bound'], r['frame_bound']):.4f}) over "
                     f"{r['windows']} windows, ratio {r['compression_ratio']:.2f}x")
    stalls = results.get("random_stalls")
    if stalls:
        lines.append(f"  random stalls: {stalls['windows']} windows in {stalls['frames']} frames "
                     f"(lengths {stalls['frame_lengths']['min']}..{stalls['frame_lengths']['max']}), "
                     f"idle {stalls['idle']}, backpressure {stalls['backpressure']}: all matched")
    trip = results.get("round_trip")
    if trip:
        lines.append(f"  round trip: {trip['windows']} windows bit-exact in {trip['cycles']} cycles")
    for run in results.get("layers", []):
        free, stalled = run["stall_free"], run["random_stalls"]
        layer = run["layer"]
        lines.append(
            f"  layer C{layer['channels']} K{layer['filters']} {layer['kernel']}x{layer['kernel']} "
            f"s{layer['stride']}: {free['steps_measured']} steps (model {free['steps_model']}), "
            f"{free['cycles']} cycles stall-free, {stalled['cycles']} with stalls: all matched")
    return "\n".join(lines)


def _geometry(params):
    return f"{params['lanes']}x{params['filters']}x{params['windows']}"


def layer_table(sims):
    """The Diffy tile's cocotb runs: per mode and layer, steps measured against the model."""
    rows = ["| mode | lanes x filters x windows | width | layer | pallets | steps (RTL) "
            "| steps (model) | cycles stall-free | cycles with stalls |",
            "|---|---|---:|---|---:|---:|---:|---:|---:|"]
    for sim in sims:
        p = sim["params"]
        for run in sim["results"].get("layers", []):
            free, stalled, layer = run["stall_free"], run["random_stalls"], run["layer"]
            what = (f"C{layer['channels']} K{layer['filters']} {layer['size'][0]}x{layer['size'][1]} "
                    f"{layer['kernel']}x{layer['kernel']}/{layer['stride']}")
            rows.append(f"| {p['mode']} | {_geometry(p)} | {p['width']} | {what} "
                        f"| {free['pallets']} | {free['steps_measured']} | {free['steps_model']} "
                        f"| {free['cycles']} | {stalled['cycles']} |")
    return "\n".join(rows)


def throughput_table(sims):
    rows = ["| core | lanes | width | density | windows/cycle | bound | out words/cycle | ratio | latency |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for sim in sims:
        results = sim["results"]
        for density, r in sorted(results.get("throughput", {}).items(), key=lambda kv: float(kv[0])):
            rows.append(
                f"| {sim['core']} | {sim['params']['lanes']} | {sim['params']['width']} | {density} "
                f"| {r['windows_per_cycle']:.4f} | {min(r['port_bound'], r['frame_bound']):.4f} "
                f"| {r['out_beats_per_cycle']:.4f} | {r['compression_ratio']:.2f}x "
                f"| {results.get('latency', {}).get('measured', '')} |")
    return "\n".join(rows)


def qor_table(records):
    """ZVC records: one row per build, with LUTs over N log2 N."""
    rows = ["| core | lanes | width | target | LUT | FF | carry | BRAM | DSP | Fmax (MHz) | LUT / (N log2 N) |",
            "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for rec in records:
        if rec["core"] == "diffy-tile":
            continue
        q, n = rec["qor"], rec["params"].get("lanes")
        per = f"{q['lut'] / (n * math.log2(n)):.1f}" if n else ""
        rows.append(f"| {rec['core']} | {n} | {rec['params'].get('width')} | {q['target']} "
                    f"| {q['lut']} | {q['ff']} | {q['carry']} | {q['bram']} | {q['dsp']} "
                    f"| {q['fmax_mhz']:.1f} | {per} |")
    return "\n".join(rows)


def diffy_qor_table(records):
    """Diffy tile records: one row per mode and build."""
    rows = ["| mode | lanes x filters x windows | width | target | LUT | FF | carry | BRAM | DSP "
            "| Fmax (MHz) |",
            "|---|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for rec in records:
        if rec["core"] != "diffy-tile":
            continue
        q, p = rec["qor"], rec["params"]
        rows.append(f"| {p['mode']} | {_geometry(p)} | {p['width']} | {q['target']} | {q['lut']} "
                    f"| {q['ff']} | {q['carry']} | {q['bram']} | {q['dsp']} | {q['fmax_mhz']:.1f} |")
    return "\n".join(rows)


def diffy_workload_cycles(params, layers):
    """Cycles of one ``diffy-tile`` configuration on ``layers`` (``(x, w, stride, padding)``
    tuples), from the golden model the RTL matches step for step (plus its latency per
    layer)."""
    from .golden.diffy_tile import published_cycles
    from .rtl.diffy_tile import DiffyTile
    geometry = {k: params[k] for k in ("mode", "lanes", "filters", "windows", "width",
                                        "encoding", "shifter_bits")}
    return sum(published_cycles(x, w, stride, padding, **geometry) + DiffyTile.LATENCY - 1
               for x, w, stride, padding in layers)


def diffy_area_rows(records, layers):
    """Per ``diffy-tile`` synthesis record: cycles on ``layers``, speedup over the
    bit-parallel record of the same target, LUTs and speedup per LUT."""
    rows = []
    # The workload is 16-bit; narrower builds (the iCE40's 8-bit tile) are not comparable.
    diffy_records = [r for r in records if r["core"] == "diffy-tile"
                     and r["params"]["width"] == 16]
    for rec in diffy_records:
        base = next((b for b in diffy_records if b["params"]["mode"] == "bitparallel"
                     and b["qor"]["target"] == rec["qor"]["target"]), None)
        if base is None:
            continue
        cycles = diffy_workload_cycles(rec["params"], layers)
        base_cycles = diffy_workload_cycles(base["params"], layers)
        speedup = base_cycles / cycles
        lut_ratio = rec["qor"]["lut"] / base["qor"]["lut"]
        rows.append({"mode": rec["params"]["mode"], "geometry": _geometry(rec["params"]),
                     "target": rec["qor"]["target"], "lut": rec["qor"]["lut"],
                     "dsp": rec["qor"]["dsp"], "fmax_mhz": rec["qor"]["fmax_mhz"],
                     "cycles": cycles, "speedup": speedup, "lut_ratio": lut_ratio,
                     "speedup_per_lut": speedup / lut_ratio,
                     "time_speedup": speedup * rec["qor"]["fmax_mhz"] / base["qor"]["fmax_mhz"]})
    return rows


def diffy_area_table(rows):
    out = ["| target | mode | tile | LUT | DSP | cycles | speedup over bit-parallel "
           "| LUT ratio | speedup per LUT | speedup at each Fmax |",
           "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['target']} | {r['mode']} | {r['geometry']} | {r['lut']} | {r['dsp']} "
                   f"| {r['cycles']} | {r['speedup']:.2f}x | {r['lut_ratio']:.2f} "
                   f"| {r['speedup_per_lut']:.2f}x | {r['time_speedup']:.2f}x |")
    return "\n".join(out)


def diffy_workload():
    """The photo workload the area comparison runs: a 32x32 crop of the astronaut through
    a 3-layer, 16-channel 3x3 + ReLU stack (``dnnhw.bench.diffy.crop_layers``)."""
    from .bench.diffy import crop_layers
    return crop_layers("astronaut", size=32, channels=16, depth=3)


def ratio_rows(seed=0):
    """ZV / RL / ZL ratios of ReLU-like tensors at AlexNet's published densities, for the
    paper's fp32 window (32 x 32 bit) and an int16 one (8 x 16 bit)."""
    import numpy as np
    from .golden.zvc import compression_ratios, relu_like
    rows = []
    for layer, density in (("conv0", 0.49), ("conv1", 0.36), ("conv4", 0.22), ("fc1", 0.31)):
        for lanes, width, dtype in ((32, 32, np.float32), (8, 16, np.int16)):
            tensor = relu_like((96, 27, 27), density, dtype=dtype, rng=seed)
            r = compression_ratios(tensor, lanes=lanes, width=width)
            rows.append({"layer": layer, "published_density": density, "lanes": lanes,
                         "width": width, **r})
    return rows


def _ratio_table(rows):
    lines = ["| AlexNet layer | density | window | ZV | RL | ZL |", "|---|---:|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['layer']} | {r['density']:.2f} | {r['lanes']} x {r['width']} bit "
                     f"| {r['zv']:.2f}x | {r['rl']:.2f}x | {r['zl']:.2f}x |")
    return "\n".join(lines)


def _save(fig, ax, path):
    """Grid, legend (when anything is labelled), layout; write ``path`` and close."""
    import matplotlib.pyplot as plt
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _plots(output, sims, records):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    paths = []
    fig, ax = plt.subplots(figsize=(6, 4))
    for sim in sims:
        thr = sim["results"].get("throughput", {})
        if not thr or sim["core"] == "zvc-loopback":
            continue
        xs = sorted(thr, key=float)
        ax.plot([float(x) for x in xs], [thr[x]["windows_per_cycle"] for x in xs], marker="o",
                label=f"{sim['core']} {sim['params']['lanes']}x{sim['params']['width']}")
    ax.set_xlabel("density (fraction of non-zero elements)")
    ax.set_ylabel("windows per cycle (always-ready sink)")
    ax.set_ylim(0, 1.1)
    paths.append(_save(fig, ax, output / "throughput_vs_density.png"))

    fig, ax = plt.subplots(figsize=(6, 4))
    for core in sorted({r["core"] for r in records}):
        points = sorted((r["params"]["lanes"], r["qor"]["lut"]) for r in records
                        if r["core"] == core and r["qor"]["target"] == "ecp5-85f"
                        and r["params"].get("width") == 16)
        if len(points) < 2:
            continue
        xs, ys = zip(*points)
        ax.plot(xs, ys, marker="o", label=f"{core} (width 16, ecp5-85f)")
        scale = ys[-1] / (xs[-1] * math.log2(xs[-1]))
        ax.plot(xs, [scale * x * math.log2(x) for x in xs], linestyle="--", alpha=0.5,
                label=f"N log2 N through {core}'s largest point")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("lanes (N)")
    ax.set_ylabel("LUT4")
    paths.append(_save(fig, ax, output / "luts_vs_lanes.png"))
    return paths


def _selected(cores):
    names = {c.name for c in CORES}
    for name in cores or ():
        if name not in names:
            raise ParameterError(f"unknown core '{name}'; known cores: {', '.join(sorted(names))}")
    return [c for c in CORES if not cores or c.name in cores]


def run_flow(*, output, build_root, cores=None, targets=None, skip_synth=False,
             skip_sim=False, readme=None):
    """Run the main job and write ``report.md``, ``report.json`` and plots to ``output``.

    Returns the process exit code: 0 when every simulation passed and every build ran.
    """
    from .synth.build import TARGETS
    for target in targets or ():
        if target not in TARGETS:
            raise ParameterError(f"unknown target '{target}'; known targets: {', '.join(TARGETS)}")
    selected = _selected(cores)
    output, build_root = Path(output), Path(build_root)
    output.mkdir(parents=True, exist_ok=True)
    jobs = []
    for core in selected:
        for config in core.flow:
            params = core.resolve(config.params)
            if config.sim and not skip_sim:
                jobs.append(("sim", core, params, None, None))
            for target in config.targets:
                if not skip_synth and (not targets or target in targets):
                    jobs.append(("synth", core, params, target, config.router))

    sims, records, failures = [], [], []
    started = time.monotonic()
    for index, (kind, core, params, target, router) in enumerate(jobs, 1):
        label = f"[{index}/{len(jobs)}] {kind} {core.name} " + \
            " ".join(f"{k}={v}" for k, v in params.items()) + (f" {target}" if target else "")
        _progress(f"{label} ...")
        t0 = time.monotonic()
        try:
            if kind == "sim":
                from .sim.runner import run_testbench
                results = run_testbench(core.name, params, build_root=build_root, check=False)
                sims.append({"core": core.name, "params": params, "results": results})
                if not results.get("passed"):
                    failures.append(label)
                status = "PASS" if results.get("passed") else "FAIL"
            else:
                from .synth.build import synthesize
                module = core.module_name(params)
                qor = synthesize(core.build(params), name=module, target=target, router=router,
                                 build_dir=build_root / "synth" / f"{module}-{target}")
                records.append({"core": core.name, "params": params, "qor": qor.to_dict()})
                status = f"{qor.lut} LUT, {qor.ff} FF, {qor.fmax_mhz:.1f} MHz"
        except Exception as error:  # keep going; the report and the exit code say it failed
            failures.append(f"{label}: {type(error).__name__}: {error}")
            status = f"ERROR {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        _progress(f"{label}: {status} ({time.monotonic() - t0:.0f} s)")
        # Keep what is done on disk, so an interrupted run still leaves its records.
        (output / "report.partial.json").write_text(json.dumps(
            {"sims": sims, "synth": records, "failures": failures}, indent=1, default=str) + "\n")

    ratios = ratio_rows()
    plots = _plots(output, sims, records)
    report = {
        "sims": sims, "synth": records, "ratios": ratios, "failures": failures,
        "seconds": round(time.monotonic() - started, 1),
    }
    (output / "report.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    sections = flow_sections(sims, records, ratios)
    body = "\n".join(sections.values())
    md = ["# dnnhw flow report", "",
          f"{len(jobs)} jobs in {report['seconds']:.0f} s; "
          f"{'all passed' if not failures else f'{len(failures)} FAILED'}.", ""]
    md += [f"- FAILED: {f}" for f in failures]
    md += ["", body, ""] + [f"![{p.stem}]({p.name})" for p in plots]
    (output / "report.md").write_text("\n".join(md) + "\n")
    if readme:
        _update_readme(Path(readme), sections)
    _progress(f"report: {output / 'report.md'}, {output / 'report.json'}")
    if failures:
        print(f"{len(failures)} job(s) failed:", file=sys.stderr)
        for failure in failures:
            print(f"  {failure}", file=sys.stderr)
        return 1
    return 0


def flow_sections(sims, records, ratios):
    """Markdown per README section, for the kinds of result this run produced."""
    sections = {}
    zvc_records = [r for r in records if r["core"] != "diffy-tile"]
    diffy_records = [r for r in records if r["core"] == "diffy-tile"]
    zvc_sims = [s for s in sims if s["core"] != "diffy-tile"]
    diffy_sims = [s for s in sims if s["core"] == "diffy-tile"]
    if zvc_records:
        sections["synth"] = "\n".join(
            ["### Synthesis (out of context, register to register)", "", qor_table(zvc_records), ""])
    if zvc_sims:
        sections["sim"] = "\n".join(
            ["### Throughput and latency (cocotb, Verilator, always-ready sink)", "",
             throughput_table(zvc_sims), ""])
    if diffy_records:
        area = diffy_area_rows(diffy_records, diffy_workload())
        sections["diffy-synth"] = "\n".join(
            ["### Diffy tile synthesis (out of context, register to register)", "",
             diffy_qor_table(diffy_records), ""] + ([] if not area else [
             "Area-normalized, on a 32x32 crop of the astronaut photograph through a "
             "3-layer, 16-channel 3x3 + ReLU stack (`dnnhw.bench.diffy.crop_layers`; cycles "
             "from the golden model the RTL matches step for step, plus the pipeline "
             "latency), against the bit-parallel build on the same target "
             "(its multipliers are DSP blocks, not LUTs):", "",
             diffy_area_table(area), ""]))
    if diffy_sims:
        sections["diffy-sim"] = "\n".join(
            ["### Diffy tile in cocotb: steps measured against the golden model", "",
             layer_table(diffy_sims), ""])
    sections["ratios"] = "\n".join(
        ["### ZV vs RL vs ZL on ReLU-like tensors at AlexNet's published densities", "",
         _ratio_table(ratios), ""])
    return sections


def _update_readme(path, sections):
    text = path.read_text()
    for name, body in sections.items():
        begin, end = f"<!-- dnnhw-flow:{name}:begin -->", f"<!-- dnnhw-flow:{name}:end -->"
        if begin not in text or end not in text:
            raise ParameterError(f"{path} has no {begin} ... {end} section to rewrite")
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{begin}\n{body}\n{end}{tail}"
    path.write_text(text)
