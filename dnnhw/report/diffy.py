"""Report sections of ``diffy-tile``: steps measured in RTL against the golden model,
synthesis in every mode against its Fmax goal, and the area-normalized comparison with
the bit-parallel baseline on a photo workload (cycles from the ``area_workload_cycles``
analysis, which the RTL matches step for step).
"""

from ..text import markdown_table
from . import Section, SummaryRow, fmax_text
from .plots import draw, style


__all__ = ["summary", "sections", "sim_lines"]

#: Diffy's published speedup over Pragmatic on computational-imaging DNNs (MICRO 2018).
PAPER_OVER_PRAGMATIC = 1.41


def _geometry(params):
    return f"{params['lanes']}x{params['filters']}x{params['windows']}"


def _layer_name(layer):
    return (f"C{layer['channels']} K{layer['filters']} {layer['size'][0]}x{layer['size'][1]} "
            f"{layer['kernel']}x{layer['kernel']}/{layer['stride']}")


def _steps(sim, key):
    return sum(run["stall_free"][key] for run in sim["results"].get("layers", []))


def summary(results):
    rows = []
    for name, core, sims, synths in results.measured():
        verified = throughput = paper = ""
        if sims:
            runs = [run for s in sims for run in s["results"].get("layers", [])]
            beats = sum(run["stall_free"].get("groups", 0) + run["random_stalls"].get("groups", 0)
                        for run in runs)
            equal = all(run["stall_free"]["steps_measured"] == run["stall_free"]["steps_model"]
                        for run in runs)
            modes = sorted({s["params"]["mode"] for s in sims})
            verified = (f"cocotb, {len(runs)} layer runs in {', '.join(modes)}, each stall-free "
                        f"and with random stalls"
                        + (f": {beats:,} output beats" if beats else "")
                        + " bit-exact against the integer convolution")
            throughput = ("steps = the golden model's on every run" if equal
                          else "**steps differ from the model**")
            by_mode = {s["params"]["mode"]: _steps(s, "steps_measured") for s in sims}
            if "diffy" in by_mode and "pragmatic" in by_mode:
                paper = (f"Diffy over Pragmatic: {PAPER_OVER_PRAGMATIC}x (paper); "
                         f"{by_mode['pragmatic'] / by_mode['diffy']:.2f}x in RTL steps on these "
                         f"layers (`dnnhw bench diffy` for photographs)")
        rows.append(SummaryRow(name, verified, throughput, results.fmax_against_goals(name),
                               paper))
    return rows


def sim_lines(results):
    """``dnnhw sim``'s lines: per layer, steps against the model and cycles."""
    lines = []
    for run in results.get("layers", []):
        # Without its stall-free run (the soak's ``stall_free: false``) a layer has one.
        stalled, free = run["random_stalls"], run.get("stall_free")
        cycles = ((f"{free['cycles']:,} cycles stall-free, " if free else "")
                  + f"{stalled['cycles']:,} with stalls")
        lines.append(f"layer {_layer_name(run['layer'])}: {stalled['pallets']:,} pallets, "
                     f"{stalled['steps_measured']:,} steps (model {stalled['steps_model']:,}), "
                     f"{cycles}: all matched")
    return lines


def _layer_table(sims):
    rows = []
    for s in sims:
        p = s["params"]
        for run in s["results"].get("layers", []):
            free, stalled = run["stall_free"], run["random_stalls"]
            rows.append([p["mode"], _geometry(p), p["width"], _layer_name(run["layer"]),
                         free["pallets"], free["steps_measured"], free["steps_model"],
                         free["cycles"], stalled["cycles"]])
    return markdown_table(["mode", "lanes x filters x windows", "width", "layer", "pallets",
                           "steps (RTL)", "steps (model)", "cycles stall-free",
                           "cycles with stalls"], rows, align="llrlrrrrr")


def _steps_plot(sims):
    def plot(ax):
        top = 1
        for k, s in enumerate(sims):
            runs = s["results"].get("layers", [])
            if not runs:
                continue
            model = [run["stall_free"]["steps_model"] for run in runs]
            rtl = [run["stall_free"]["steps_measured"] for run in runs]
            top = max(top, *model, *rtl)
            ax.scatter(model, rtl, label=f"{s['params']['mode']} {_geometry(s['params'])}",
                       color=style(k)["color"], marker=style(k)["marker"])
        ax.plot([1, top], [1, top], color="black", linestyle=":", label="RTL = model")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("steps, golden model")
        ax.set_ylabel("steps, RTL (cocotb)")
        return sum(1 for s in sims if s["results"].get("layers"))
    return lambda path: draw(path, plot)


def _synth_table(results):
    rows = []
    for s in results.synths():
        q, p = s["qor"], s["params"]
        goal = results.cores[s["core"]].fmax_goal(p, q["target"])
        rows.append([p["mode"], _geometry(p), p["width"], q["target"], q["lut"], q["ff"],
                     q["carry"], q["bram"], q["dsp"], fmax_text(q),
                     f"{goal:g}" if goal else ""])
    return markdown_table(["mode", "lanes x filters x windows", "width", "target", "LUT", "FF",
                           "carry", "BRAM", "DSP", "Fmax (MHz)", "goal (MHz)"], rows,
                          align="llrlrrrrrrr")


def _fmax_plot(results):
    synths = results.synths()

    def plot(ax):
        labels = [f"{s['params']['mode']}\n{s['qor']['target']}" for s in synths]
        for k, s in enumerate(synths):
            goal = results.cores[s["core"]].fmax_goal(s["params"], s["qor"]["target"])
            ax.bar(k, s["qor"]["fmax_mhz"], width=0.6, color=style(k % 4)["color"])
            if goal:
                ax.plot([k - 0.4, k + 0.4], [goal, goal], color="black", linestyle="--",
                        label="goal" if k == 0 else None)
        ax.set_xticks(range(len(labels)), labels, fontsize=7)
        ax.set_xlim(-0.6, max(len(labels), 2) - 0.4)
        ax.set_ylabel("Fmax (MHz)")
        return len(synths)
    return lambda path: draw(path, plot, size=(7.5, 4.2))


def _device(qor):
    # Records from before QoR.device was kept name the device as their target.
    return qor.get("device") or qor["target"]


def _area_rows(results):
    """Per width-16 term-serial build, against each bit-parallel build on the same device
    (its multipliers in DSP blocks, on the same target, and in LUTs, on a ``-nodsp``
    target): the workload's cycles, speedup, LUT ratio, speedup per LUT and speedup in
    time at each build's Fmax."""
    workload = results.analysis("area_workload_cycles")
    if not workload:
        return [], None
    def key(params):
        return tuple(sorted(params.items()))
    cycles = {key(r["params"]): r["cycles"] for r in workload["rows"]}
    builds = [s for s in results.synths() if key(s["params"]) in cycles]
    baselines = [b for b in builds if b["params"]["mode"] == "bitparallel"]
    rows = []
    for s in builds:
        if s["params"]["mode"] == "bitparallel":
            continue
        q = s["qor"]
        mine = cycles[key(s["params"])]
        for base in baselines:
            b = base["qor"]
            in_dsp = b["target"] == q["target"] and b["dsp"] > 0
            in_luts = _device(b) == _device(q) and b["dsp"] == 0
            if not (in_dsp or in_luts):
                continue
            speedup = cycles[key(base["params"])] / mine
            lut_ratio = q["lut"] / b["lut"]
            rows.append([q["target"], s["params"]["mode"], _geometry(s["params"]), q["lut"],
                         q["dsp"], mine,
                         f"{_geometry(base['params'])}, multipliers in "
                         f"{'DSP blocks' if in_dsp else 'LUTs'}", b["lut"], b["dsp"],
                         f"{speedup:.2f}x", f"{lut_ratio:.2f}", f"{speedup / lut_ratio:.2f}x",
                         f"{speedup * q['fmax_mhz'] / b['fmax_mhz']:.2f}x"])
    return rows, workload["workload"]


def sections(results):
    out = []
    sims = [s for s in results.sims() if s["results"].get("layers")]
    if sims:
        out.append(Section("diffy-sim", "Diffy tile in cocotb: steps measured against the "
                           "golden model", _layer_table(sims), figure=_steps_plot(sims)))
    if results.synths():
        body = [_synth_table(results)]
        rows, workload = _area_rows(results)
        if rows:
            body += ["", f"Area-normalized, on a {workload['size']}x{workload['size']} crop of "
                     f"the {workload['image']} photograph through a {workload['depth']}-layer, "
                     f"{workload['channels']}-channel 3x3 + ReLU stack "
                     "(`dnnhw.bench.diffy.area_workload_cycles`: cycles from the golden model "
                     "the RTL matches step for step, plus the pipeline latency), against two "
                     "bit-parallel baselines on the same device: its multipliers in DSP "
                     "blocks, which the LUT count does not see, and in LUTs (synthesized "
                     "without DSPs), closer to the paper's ASIC comparison of a bit-serial "
                     "lane with a multiplier built from gates:", "",
                     markdown_table(["target", "mode", "tile", "LUT", "DSP", "cycles",
                                     "bit-parallel baseline", "its LUT", "its DSP",
                                     "speedup over it", "LUT ratio", "speedup per LUT",
                                     "speedup at each Fmax"], rows,
                                    align="lllrrrlrrrrrr")]
        out.append(Section("diffy-synth", "Diffy tile synthesis (out of context, register "
                           "to register)", "\n".join(body), figure=_fmax_plot(results)))
    return out
