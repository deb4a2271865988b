"""Report sections of the band-limited convolution engine (``bandlimit-conv``): the
cocotb runs (tiles of random samples and photographs, bit-exact, the tile period against
the core's model), synthesis per build with the filter memory, and the golden model's
figures (the core's analysis, :func:`dnnhw.bench.bandlimit_conv.flow_figures`): filter
memory, error against direct convolution and SQNR, against c and width.

Sections (README keys): ``bandlimit-conv-sim``, ``bandlimit-conv-synth``,
``bandlimit-conv-memory``, ``bandlimit-conv-error``, ``bandlimit-conv-sqnr``.
"""

from ..text import markdown_table
from . import Section, SummaryRow, fmax_text
from .plots import draw, style


__all__ = ["summary", "sections", "sim_lines"]

_RUNS = (("stall_free", "stall-free"), ("random_stalls", "random stalls"),
         ("reload", "filters reloaded, random stalls"))


def _build(params):
    tile = f"{params['n']} x {params['n']}" if params["dims"] == 2 else f"{params['n']}"
    return (f"{params['dims']}D {tile}, {params['taps']} taps, {params['in_channels']} -> "
            f"{params['out_channels']} ch, c {params['compression_rate']:g} %, "
            f"{params['width']}-bit")


def _runs(sim):
    res = sim["results"]
    return [(label, res[key]) for key, label in _RUNS if key in res]


def _db(value):
    return "-" if value is None else f"{value:.1f}"


def _errors(errors):
    """The relative error against direct convolution on the photographs (the worse of
    them) and on the random tiles."""
    images = [v for k, v in errors.items() if k not in ("random", "run") and v is not None]
    photo = f"{100 * max(images):.1f} %" if images else "-"
    noise = errors.get("random")
    return f"{photo} / {'-' if noise is None else f'{100 * noise:.1f} %'}"


def _tiles_text(run):
    return ", ".join(f"{count} {name}" for name, count in run["tiles"].items() if count)


def _filter_words(params):
    """Words of a whole filter set (``docs/bandlimit-conv.md`` section 4)."""
    from ..golden.bandlimit_conv_fixed import band
    return (params["in_channels"] * params["out_channels"]
            * band(params["n"], params["dims"], params["compression_rate"]).words_per_filter)


def _filter_bits(params):
    from ..golden.bandlimit_conv_fixed import filter_memory_bits
    return filter_memory_bits(dims=params["dims"], n=params["n"],
                              in_channels=params["in_channels"],
                              out_channels=params["out_channels"],
                              compression_rate=params["compression_rate"],
                              coefficient_width=params["coefficient_width"])


def _periods(results):
    """The core's ``cycles_per_tile`` as its benches recorded it, by build."""
    return {tuple(sorted(s["params"].items())): run["cycles_per_tile"]
            for s in results.sims() for label, run in _runs(s) if label == "stall-free"}


# --- summary -----------------------------------------------------------------------------

def summary(results):
    rows = []
    for name, core, sims, synths in results.measured():
        verified = throughput = paper = ""
        if sims:
            tiles = sum(sum(run["tiles"].values()) for s in sims for _, run in _runs(s))
            builds = "; ".join(_build(s["params"]) for s in sims)
            verified = (f"cocotb: {tiles} tiles (random and photographs) bit-exact against "
                        f"`{core.golden}`, stall-free, with random stalls on all three "
                        f"streams and after a filter reload ({builds})")
            free = [(s["params"], run) for s in sims for label, run in _runs(s)
                    if label == "stall-free" and run["tile_period"]]
            if free:
                throughput = "; ".join(
                    f"a tile every {run['tile_period']:.0f} cycles (model "
                    f"{run['cycles_per_tile']}), {p['dims']}D n {p['n']}" for p, run in free)
        fmax = results.fmax_against_goals(name) if synths else ""
        study = results.analysis("flow_figures")
        if study:
            at = [r for r in study["memory"] if r["dims"] == 2 and r["n"] == 16
                  and r["c"] in (50, 90)]
            if at:
                paper = "filter memory " + ", ".join(
                    f"{100 * r['fraction']:.0f} % at c = {r['c']:g} %" for r in at) + \
                    " of the full spectrum (2D 16 x 16)"
        rows.append(SummaryRow(core=name, verified=verified, throughput=throughput,
                               fmax=fmax, paper=paper))
    return rows


def sim_lines(results):
    """``dnnhw sim``'s lines: per run the tiles, the period, SQNR and error."""
    lines = []
    for key, label in _RUNS:
        run = results.get(key)
        if not run:
            continue
        period = run["tile_period"]
        lines.append(
            f"{label} ({run['source_pause']} / {run['sink_pause']}): {_tiles_text(run)} "
            f"tiles bit-exact; a tile every "
            f"{'-' if period is None else f'{period:.1f}'} cycles (model "
            f"{run['cycles_per_tile']}); SQNR against float band-limited "
            f"{_db(run['sqnr_db']['run'])} dB; error against direct "
            f"(photographs / random) {_errors(run['error_vs_direct'])}; overflow "
            f"{run['overflow']['rtl']} (golden {run['overflow']['golden']})")
    return lines


# --- bandlimit-conv-sim ------------------------------------------------------------------

def _sim_table(results):
    rows = []
    for s in results.sims():
        for label, run in _runs(s):
            period = run["tile_period"]
            overflow = run["overflow"]
            rows.append([_build(s["params"]), label, _tiles_text(run), f"{run['cycles']:,}",
                         f"{run['in_samples_per_cycle']:.3f}",
                         "-" if period is None else f"{period:.1f}",
                         run["cycles_per_tile"], _db(run["sqnr_db"]["run"]),
                         _errors(run["error_vs_direct"]),
                         f"{overflow['rtl']} = {overflow['golden']}"
                         if overflow["rtl"] == overflow["golden"]
                         else f"**{overflow['rtl']} != {overflow['golden']}**"])
    return markdown_table(["build", "run", "tiles", "cycles", "samples in / cycle",
                           "tile period", "model", "SQNR vs float band-limited (dB)",
                           "error vs direct: photographs / random", "overflow RTL = golden"],
                          rows,
                          align="lllrrrrrrl")


def _sim_plot(results):
    free = [(s["params"], run) for s in results.sims() for label, run in _runs(s)
            if label == "stall-free" and run["tile_period"]]

    def plot(ax):
        for k, (p, run) in enumerate(free):
            look = style(k)
            ax.bar([k - 0.2], [run["tile_period"]], width=0.4, color=look["color"],
                   label=f"{_build(p)}: measured")
            ax.bar([k + 0.2], [run["cycles_per_tile"]], width=0.4, color=look["color"],
                   alpha=0.4, hatch="//", label=f"{_build(p)}: model")
        ax.set_xticks(range(len(free)))
        ax.set_xticklabels([f"{p['dims']}D n {p['n']}" for p, _ in free])
        ax.set_ylabel("cycles a tile (stall-free, steady state)")
        return len(free)
    return lambda path: draw(path, plot)


# --- bandlimit-conv-synth ----------------------------------------------------------------

def _synths(results):
    return sorted(results.synths(), key=lambda s: (s["qor"]["target"], s["params"]["dims"],
                                                   s["params"]["n"],
                                                   s["params"]["compression_rate"]))


def _synth_table(results):
    rows = []
    periods = _periods(results)
    for s in _synths(results):
        q, p = s["qor"], s["params"]
        period = periods.get(tuple(sorted(p.items())))
        samples = p["in_channels"] * p["n"] ** p["dims"]
        rows.append([_build(p), q["target"], f"{q['lut']:,}", f"{q['ff']:,}", q["dsp"],
                     q["bram"], f"{_filter_words(p):,}", f"{_filter_bits(p) / 1024:,.1f}",
                     fmax_text(q), "-" if period is None else f"{period:g}",
                     "-" if period is None else f"{samples * q['fmax_mhz'] / period:.1f}"])
    return markdown_table(["build", "target", "LUT", "FF", "DSP", "BRAM", "filter words",
                           "filter Kibit", "Fmax (MHz)", "cycles / tile (simulated build)",
                           "Msamples / s in"], rows, align="llrrrrrrrrr")


def _synth_plot(results):
    synths = [s for s in _synths(results)]
    shapes = list(dict.fromkeys((s["params"]["dims"], s["params"]["n"], s["qor"]["target"])
                                for s in synths))

    def plot(axes):
        area, memory = axes
        drawn = 0
        for k, (dims, n, target) in enumerate(shapes):
            mine = sorted((s["params"]["compression_rate"], s) for s in synths
                          if (s["params"]["dims"], s["params"]["n"], s["qor"]["target"])
                          == (dims, n, target))
            if not mine:
                continue
            look = style(k)
            label = f"{dims}D n {n}, {target}"
            cs = [c for c, _ in mine]
            area.plot(cs, [s["qor"]["lut"] for _, s in mine], label=f"{label}: LUT", **look)
            memory.plot(cs, [s["qor"]["bram"] for _, s in mine], label=f"{label}: BRAM",
                        **look)
            memory.plot(cs, [_filter_bits(s["params"]) / 18432 for _, s in mine],
                        label=f"{label}: filter bits / 18 Kib", linestyle="--",
                        fillstyle="none", **look)
            drawn += 1
        for ax in axes:
            ax.set_xlabel("compression rate c (%)")
        area.set_ylabel("LUT4")
        memory.set_ylabel("block RAMs (DP16KD, 18 Kib)")
        return drawn
    return lambda path: draw(path, plot, panels=2, size=(5.6, 4.2))


# --- the golden model's figures ----------------------------------------------------------

def _figure_sections(study):
    from ..bench import bandlimit_conv as bench
    figures = bench.figures(study)
    quick = " (the quick study; `dnnhw bench bandlimit-conv` runs the whole one)" \
        if study["config"]["quick"] else ""
    return [
        Section("bandlimit-conv-memory", "Band-limited engine: filter memory against c",
                "The words one filter takes in the engine's memory (the stored one-sided "
                "part of the kept block) against c, exact, beside the whole one-sided "
                "spectrum; the line is 100 - c, the share the paper's rule aims at.\n\n"
                + bench.memory_table(study), figure=figures["memory"]),
        Section("bandlimit-conv-error", "Band-limited engine: error against direct "
                "convolution", "Relative L2 error of the outputs on photograph patches, "
                "float band-limiting alone and the engine's 16-bit fixed point (golden, "
                f"bit-exact with the RTL){quick}.\n\n" + bench.error_table(study),
                figure=figures["error"]),
        Section("bandlimit-conv-sqnr", "Band-limited engine: SQNR against width",
                "The engine (golden) against the float band-limited convolution at the "
                f"same n and kept bins{quick}.\n\n" + bench.sqnr_table(study),
                figure=figures["sqnr"]),
    ]


# --- sections ----------------------------------------------------------------------------

def sections(results):
    out = []
    if results.sims():
        out.append(Section(
            "bandlimit-conv-sim", "Band-limited engine in cocotb: bit-exact tiles",
            "Tiles of random samples and of photograph patches, every output sample "
            "checked against the golden model as it arrives; SQNR against the float "
            "band-limited convolution (the same n and kept bins), and the relative error "
            "against direct convolution (band-limiting drops much of white noise's energy, "
            "little of a photograph's). The stall-free "
            "run must keep a tile period within the core's `cycles_per_tile` (the largest "
            "of the forward path, the multiplier and the read-out) plus a small slack.\n\n"
            + _sim_table(results), figure=_sim_plot(results)))
    if results.synths():
        out.append(Section(
            "bandlimit-conv-synth", "Band-limited engine synthesis (out of context)",
            "Four transforms (two in 1D), the multiplier and the memories; the filter "
            "memory shrinks with c, and so do the block RAMs that hold it.\n\n"
            + _synth_table(results), figure=_synth_plot(results)))
    study = results.analysis("flow_figures")
    if study:
        out += _figure_sections(study)
    return out
