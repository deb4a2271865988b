"""Report sections of ``morph-array``: layers run on the RTL against the mapping model
(outputs, every counter, cycles), Morph's per-layer mappings against one fixed mapping on
scaled C3D with the energy measured from the RTL's counters, and synthesis.
"""

import math

from ..text import markdown_table
from . import Section, SummaryRow, fmax_text
from .plots import draw, style


__all__ = ["summary", "sections", "sim_lines", "side_occupancy"]

#: Morph's published energy reduction over its fixed-dataflow baseline (REFERENCE.md).
PAPER = {"average": 2.5, "max": 3.4}
#: The PE utilization the array must reach wherever the mapping keeps the PEs busy.
UTILIZATION_GOAL = 0.9


def _runs(sims):
    return [run for s in sims for run in s["results"].get("layers", [])]


def _study(sims):
    rows = []
    for s in sims:
        study = s["results"].get("study")
        if study:
            rows += [dict(row, params=s["params"]) for row in study["rows"]]
    return rows


def _block(params):
    return f"{params['kp']}x{params['hp']}x{params['wp']}"


def _mapping_text(mapping):
    tile = lambda t: "x".join(map(str, t))
    return (f"L2 {tile(mapping['l2_tile'])} {mapping['outer_order']}, L1 "
            f"{tile(mapping['l1_tile'])} {mapping['inner_order']}, PE "
            f"{tile(mapping['parallel'])}")


def side_occupancy(layer, mapping):
    """Per PE-block side (K, H, W): the share of the block's PEs along it that hold an
    output, over the layer's L1 tiles (1.0 when the side divides every tile)."""
    from ..golden.morph import Layer, tiles
    layer = Layer(**{k: tuple(v) if isinstance(v, list) else v for k, v in layer.items()
                     if k != "name"})
    out = {}
    for side, dim, per in (("K", 0, mapping["parallel"][0]), ("H", 3, mapping["parallel"][1]),
                           ("W", 4, mapping["parallel"][2])):
        size = layer.size("KCFHW"[dim])
        blocks = sum(-(-n // per)
                     for start, length in tiles(size, mapping["l2_tile"][dim])
                     for _, n in tiles(length, mapping["l1_tile"][dim]))
        out[side] = size / (blocks * per)
    return out


def _reason(run, built):
    """Why a run's compute utilization is below the goal, from its mapping, its layer and
    the ``built`` block ``(kp, hp, wp)``."""
    used = math.prod(run["mapping"]["parallel"])
    pes = math.prod(built)
    parts = []
    if used < pes:
        out = _output_shape(run["layer"])
        sides = [f"{name} {size} < {side}" for name, size, side
                 in (("K", out[1], built[0]), ("Ho", out[3], built[1]), ("Wo", out[4], built[2]))
                 if size < side]
        why = (f" (the layer's {', '.join(sides)})" if sides
               else " (the energy-best block is smaller than the array)")
        parts.append(f"the block uses {used} of {pes} PEs{why}")
    occupancy = side_occupancy(run["layer"], run["mapping"])
    for side, share in occupancy.items():
        if share < 0.999:
            parts.append(f"{side} fills {share:.0%} of its block side")
    return "; ".join(parts) or "pipeline"


def summary(results):
    rows = []
    for name in results.cores:
        sims, synths = results.sims(name), results.synths(name)
        if not sims and not synths:
            continue
        verified = throughput = paper = ""
        runs = _runs(sims)
        study = _study(sims)
        if runs or study:
            outputs = sum(math.prod(_output_shape(r["layer"])) for r in runs)
            outputs += sum(math.prod(_output_shape(row[k]["layer"])) for row in study
                           for k in ("morph", "fixed"))
            verified = (f"cocotb, {len(runs) + 2 * len(study)} layer runs behind the memory "
                        f"model (fixed and random latency): {outputs:,} outputs bit-exact "
                        f"against the convolution, every counter equal to the mapping model")
            throughput = ("cycles = the model's exactly with a fixed-latency memory, within "
                          "its stall bound with a random one")
            busy = [row["morph"]["compute_utilization"] for row in study]
            if busy:
                throughput += (f"; PE utilization in the compute phase {min(busy):.0%} to "
                               f"{max(busy):.0%} on scaled C3D")
        if study:
            reductions = [row["reduction"] for row in study]
            paper = (f"Morph over a fixed dataflow: {PAPER['average']}x average, "
                     f"{PAPER['max']}x max (paper); on our RTL {_mean(reductions):.2f}x "
                     f"average, {max(reductions):.2f}x max (scaled C3D, measured energy)")
        rows.append(SummaryRow(name, verified, throughput, results.fmax_against_goals(name),
                               paper))
    return rows


def _mean(values):
    return sum(values) / len(values)


def _output_shape(layer):
    def out(size, kernel, stride, pad):
        return (size + 2 * pad - kernel) // stride + 1
    stride, pad = layer["stride"], layer["padding"]
    return (layer["N"], layer["K"], out(layer["F"], layer["T"], stride[0], pad[0]),
            out(layer["H"], layer["R"], stride[1], pad[1]),
            out(layer["W"], layer["S"], stride[2], pad[2]))


def sim_lines(results):
    """``dnnhw sim``'s lines: per run, cycles against the model."""
    lines = []
    for run in results.get("layers", []):
        lines.append(f"{run['name']} ({run['memory']} memory) {_mapping_text(run['mapping'])}:"
                     f" {run['measured']['cycles']:,} cycles (model "
                     f"{run['model']['cycles']['total']:,}), every counter equal")
    for row in results.get("study", {}).get("rows", []):
        lines.append(f"study {row['layer']}: Morph {row['morph']['energy_pj']['total'] / 1e6:.3f}"
                     f" uJ, fixed {row['fixed']['energy_pj']['total'] / 1e6:.3f} uJ "
                     f"({row['reduction']:.2f}x)")
    return lines


def _layers_table(sims):
    rows = []
    for s in sims:
        for run in s["results"].get("layers", []):
            model = run["model"]["cycles"]["total"]
            rows.append([_block(s["params"]), run["name"], _mapping_text(run["mapping"]),
                         run["memory"], f"{run['measured']['cycles']:,}", f"{model:,}",
                         f"{run['memory_stall_cycles']:,}", f"{run['compute_utilization']:.0%}"])
    return markdown_table(["PEs", "layer", "mapping", "memory", "cycles (RTL)",
                           "cycles (model)", "memory stalls", "PE utilization (compute)"],
                          rows, align="llllrrrr")


def _cycles_plot(sims):
    def plot(ax):
        drawn, top = 0, 1
        for k, kind in enumerate(("fixed", "random")):
            runs = [r for r in _runs(sims) if r["memory"] == kind]
            if not runs:
                continue
            model = [r["model"]["cycles"]["total"] for r in runs]
            rtl = [r["measured"]["cycles"] for r in runs]
            top = max(top, *model, *rtl)
            ax.scatter(model, rtl, label=f"{kind}-latency memory", color=style(k)["color"],
                       marker=style(k)["marker"])
            drawn += 1
        ax.plot([1, top], [1, top], color="black", linestyle=":", label="RTL = model")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("cycles, mapping model")
        ax.set_ylabel("cycles, RTL (cocotb)")
        return drawn
    return lambda path: draw(path, plot)


def _study_table(study):
    rows = []
    for row in study:
        m, f = row["morph"], row["fixed"]
        util = m["compute_utilization"]
        built = (row["params"]["kp"], row["params"]["hp"], row["params"]["wp"])
        note = "" if util >= UTILIZATION_GOAL else _reason(m, built)
        rows.append([row["layer"], row["shape"], f"{row['macs']:,}",
                     f"{m['energy_pj']['total'] / 1e6:.3f}",
                     f"{f['energy_pj']['total'] / 1e6:.3f}", f"{row['reduction']:.2f}x",
                     f"{m['energy_pj']['dram'] / m['energy_pj']['total']:.0%}",
                     f"{util:.0%}", f"{f['compute_utilization']:.0%}", note])
    return markdown_table(["layer", "shape (scaled)", "MACs", "Morph (uJ)", "fixed (uJ)",
                           "reduction", "Morph's DRAM share", "PE utilization, Morph",
                           "PE utilization, fixed", "below 90 % because"], rows,
                          align="llrrrrrrrl")


def _study_plot(study):
    def plot(axes):
        names = [row["layer"] for row in study]
        x = range(len(names))
        reductions = [row["reduction"] for row in study]
        axes[0].bar(x, reductions, color=style(0)["color"], label="our RTL (measured energy)")
        for value, label, k in ((PAPER["average"], "paper, average", 1),
                                (PAPER["max"], "paper, max", 2)):
            axes[0].axhline(value, color=style(k)["color"], linestyle="--", label=label)
        axes[0].axhline(1, color="black", linewidth=0.8)
        axes[0].set_xticks(list(x), names, rotation=30, fontsize=7)
        axes[0].set_ylabel("energy, fixed mapping / Morph")
        for k, kind in enumerate(("morph", "fixed")):
            axes[1].plot(list(x), [row[kind]["compute_utilization"] for row in study],
                         color=style(k)["color"], marker=style(k)["marker"],
                         label=f"{kind} mapping")
        axes[1].axhline(UTILIZATION_GOAL, color="black", linestyle="--", label="90 % goal")
        axes[1].set_ylim(0, 1.05)
        axes[1].set_xticks(list(x), names, rotation=30, fontsize=7)
        axes[1].set_ylabel("PE utilization in the compute phase (RTL)")
        return len(study)
    return lambda path: draw(path, plot, panels=2)


def _synth_table(results):
    rows = []
    for s in results.synths():
        q, p = s["qor"], s["params"]
        goal = results.cores[s["core"]].fmax_goal(p, q["target"])
        rows.append([_block(p), p["width"], q["target"], q["lut"], q["ff"], q["carry"],
                     q["bram"], q.get("other_cells", {}).get("SB_SPRAM256KA", 0), q["dsp"],
                     fmax_text(q),
                     f"{goal:g}" if goal else ""])
    return markdown_table(["PEs", "width", "target", "LUT", "FF", "carry", "BRAM", "SPRAM",
                           "DSP", "Fmax (MHz)", "goal (MHz)"], rows, align="lrlrrrrrrrr")


def _fmax_plot(results):
    synths = results.synths()

    def plot(ax):
        for k, s in enumerate(synths):
            goal = results.cores[s["core"]].fmax_goal(s["params"], s["qor"]["target"])
            ax.bar(k, s["qor"]["fmax_mhz"], width=0.6, color=style(k)["color"])
            if goal:
                ax.plot([k - 0.4, k + 0.4], [goal, goal], color="black", linestyle="--",
                        label="goal" if k == 0 else None)
        ax.set_xticks(range(len(synths)), [f"{_block(s['params'])}\n{s['qor']['target']}"
                                           for s in synths], fontsize=7)
        ax.set_xlim(-0.6, max(len(synths), 2) - 0.4)
        ax.set_ylabel("Fmax (MHz)")
        return len(synths)
    return lambda path: draw(path, plot)


def sections(results):
    out = []
    sims = [s for s in results.sims() if s["results"].get("layers")]
    if sims:
        out.append(Section("morph-sim", "Morph array in cocotb: layers against the mapping "
                           "model", _layers_table(sims), figure=_cycles_plot(sims)))
    study = _study(results.sims())
    if study:
        reductions = [row["reduction"] for row in study]
        body = [f"C3D conv1 to conv5b scaled down (channels / 16, frames / 4, a 16 x 16 "
                f"first frame), each layer run on the RTL under the optimizer's mapping for "
                f"this build and under the one best fixed mapping; energy = the RTL's "
                f"counters times the energy per access. Morph saves "
                f"{_mean(reductions):.2f}x on average and {max(reductions):.2f}x at most "
                f"(paper: {PAPER['average']}x and {PAPER['max']}x on the full network).", "",
                _study_table(study)]
        out.append(Section("morph-study", "Morph's claim on our RTL: per-layer mappings "
                           "against one fixed mapping", "\n".join(body),
                           figure=_study_plot(study)))
    if results.synths():
        out.append(Section("morph-synth", "Morph array synthesis (out of context)",
                           _synth_table(results), figure=_fmax_plot(results)))
    return out
