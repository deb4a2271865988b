"""Report sections of Deep Gradient Compression (``dgc-sparsify``, ``dgc-aggregate``): the
training study on the digits (accuracy, the exchange's compression against the paper's
270-600x, the ablations, cDMA on the trained CNN's activations), the RTL in cocotb on a
training run's gradients, and synthesis with the elements per second each build streams
against what a 10 or 100 GbE link carries.
"""

from ..text import markdown_table
from . import Section, SummaryRow, fmax_text
from .plots import draw, style


__all__ = ["summary", "sections"]

#: Float32 gradient elements a second a link carries dense (its bits / 32).
LINKS = {"10 GbE": 10e9 / 32, "100 GbE": 100e9 / 32}


def _training(results):
    """The full study when this run made it, else the quick one (or None)."""
    return results.analysis("flow_full") or results.analysis("flow_quick")


#: Passes over the n elements a step makes: the sparsifier's norm (with clipping, as the
#: benches and the training run it), update and emit; the aggregator's update pass (its
#: merge is over the sparse beats, not over n).
PASSES = {"dgc-sparsify": 3, "dgc-aggregate": 1}


def summary(results):
    rows = []
    study = _training(results)
    for name, core, sims, synths in results.measured():
        verified = throughput = fmax = paper = ""
        if sims:
            steps = sum(s["results"]["steps"]["steps"] for s in sims)
            verified = (f"cocotb, {len(sims)} build(s): {steps} training steps of "
                        f"`{sims[0]['results']['steps']['tensor']}` bit-exact against "
                        f"`{core.golden}`, stall-free and with random stalls on every stream")
            rates = [rate for s in sims for rate in _rates(s)]
            if rates:
                throughput = f"{min(rates):.2f} elements / cycle within a pass (II = 1 is 1)"
        if synths:
            fmax = results.fmax_against_goals(name)
        if study and name == "dgc-sparsify":
            full = [r for r in study["summary"] if r["arm"] == "dgc"]
            if full:
                row = full[0]
                after = row["ratio_after_warmup"]      # None: no epoch after the warm-up
                ratio, when = ((after, "after the warm-up") if after is not None
                               else (row["ratio"], "over a run shorter than the warm-up"))
                paper = (f"{ratio:.0f}x {when} (paper 270-600x), accuracy "
                         f"{100 * row['difference']:+.2f} % from dense")
        rows.append(SummaryRow(core=name, verified=verified, throughput=throughput,
                               fmax=fmax, paper=paper))
    return rows


def _rates(sim):
    steps = sim["results"]["steps"]["stall_free"]
    return (steps.get("gradient_beats_per_cycle") or steps.get("weight_beats_per_cycle")
            or [])


def _sim_table(results):
    rows = []
    for s in results.sims():
        r, p = s["results"]["steps"], s["params"]
        free, stalled = r["stall_free"], r["random_stalls"]
        if s["core"] == "dgc-sparsify":
            same = free["selected_rtl"] == free["selected_golden"] == stalled["selected_rtl"]
            rows.append([s["core"], _params_text(p), r["tensor"], r["steps"],
                         " ".join(map(str, free["selected_rtl"])),
                         "yes" if same else "**no**",
                         f"{min(free['gradient_beats_per_cycle']):.3f}",
                         f"{max(free['step_cycles']):,}"])
        else:
            rows.append([s["core"], _params_text(p), r["tensor"], r["steps"],
                         f"{free['sparse_beats']} sparse beats", "-",
                         f"{min(free['weight_beats_per_cycle']):.3f} (merge "
                         f"{min(free['merge_beats_per_cycle']):.3f})", "-"])
    return markdown_table(["core", "build", "tensor", "steps", "selected per step (RTL)",
                           "= golden, both runs", "beats / cycle (no stalls)",
                           "cycles / step (max)"], rows, align="lllrllrr")


def _params_text(params):
    return ", ".join(f"{k} {v}" for k, v in params.items())


def _selected_plot(results):
    sims = results.sims("dgc-sparsify")

    def plot(ax):
        count = 0
        for k, s in enumerate(sims):
            free = s["results"]["steps"]["stall_free"]
            look = style(k)
            ax.plot(range(1, len(free["selected_rtl"]) + 1), free["selected_rtl"],
                    color=look["color"], marker=look["marker"],
                    label=f"RTL, {_params_text(s['params'])}")
            look = style(k + 4)
            ax.plot(range(1, len(free["selected_golden"]) + 1), free["selected_golden"],
                    color=look["color"], marker=look["marker"], linestyle="none",
                    markersize=10, fillstyle="none", label="golden")
            count += 2
        ax.set_xlabel("training step")
        ax.set_ylabel("elements selected per step")
        return count
    return lambda path: draw(path, plot)


def _synth_table(results):
    rows = []
    for s in results.synths():
        q, p = s["qor"], s["params"]
        per_second = q["fmax_mhz"] * 1e6 / PASSES[s["core"]]
        rows.append([s["core"], q["target"], p["capacity"], q["lut"], q["ff"], q["carry"],
                     q["bram"], q.get("other_cells", {}).get("SB_SPRAM256KA", 0), q["dsp"],
                     fmax_text(q), f"{per_second / 1e6:.1f} M",
                     " / ".join(f"{per_second / rate:.3f}" for rate in LINKS.values())])
    return markdown_table(
        ["core", "target", "elements", "LUT", "FF", "carry", "BRAM", "SPRAM", "DSP",
         "Fmax (MHz)", "elements / s", "of a dense " + " / ".join(LINKS) + " link"],
        rows, align="llrrrrrrrrrr")


def _fmax_plot(results):
    synths = results.synths()

    def plot(ax):
        for k, s in enumerate(synths):
            ax.bar(k, s["qor"]["fmax_mhz"] / PASSES[s["core"]], width=0.6,
                   color=style(k)["color"])
        ax.set_xticks(range(len(synths)), [f"{s['core']}\n{s['qor']['target']}"
                                           for s in synths], fontsize=7)
        ax.set_ylabel("M gradient elements / s at Fmax")
        for (label, rate), dash in zip(LINKS.items(), ("--", ":")):
            ax.axhline(rate / 1e6, color="black", linestyle=dash,
                       label=f"dense {label}: {rate / 1e6:.0f} M / s")
        ax.set_yscale("log")
        return len(synths)
    return lambda path: draw(path, plot)


def sections(results):
    from ..bench import dgc as bench
    out = []
    study = _training(results)
    if study:
        figures = bench.figures(study)
        config = study["config"]
        body = [f"The digits CNN ({sum(study['tensors'].values()):,} parameters) trained "
                f"by K = {', '.join(map(str, config['workers']))} simulated workers over "
                f"{len(config['seeds'])} seed(s), {config['epochs']} epochs, dense SGD "
                f"against DGC and its ablations ("
                + ("`dnnhw bench dgc --quick`: a small run" if config.get("quick")
                   else "`dnnhw bench dgc`") + ").", "",
                bench.accuracy_table(study), "", bench.against_paper(study)]
        out.append(Section("dgc-training", "Deep Gradient Compression on the digits",
                           "\n".join(body), figure=figures.get("accuracy")))
        if "ratio" in figures:
            out.append(Section("dgc-ratio", "The gradient exchange against the paper's "
                               "270-600x", "Dense bytes over sent bytes per epoch (log "
                               "scale); the band is the paper's range.",
                               figure=figures["ratio"]))
        if study.get("cdma"):
            out.append(Section("dgc-cdma", "cDMA on the trained CNN's activations",
                               "\n".join(bench.cdma_lines(study)),
                               figure=figures.get("cdma")))
    if results.sims():
        out.append(Section("dgc-sim", "DGC in cocotb: a training run's gradients",
                           _sim_table(results), figure=_selected_plot(results)))
    if results.synths():
        out.append(Section("dgc-synth", "DGC synthesis (out of context)",
                           "Elements per second: Fmax over the passes a step makes over "
                           "the gradient (the sparsifier: norm, update, emit; the "
                           "aggregator: the update pass). A dense float32 exchange moves "
                           + ", ".join(f"{r / 1e6:.0f} M elements / s on {n}"
                                       for n, r in LINKS.items()) + ".\n\n"
                           + _synth_table(results), figure=_fmax_plot(results)))
    return out
