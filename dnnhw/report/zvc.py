"""Report sections of the ZVC family (``zvc-compress``, ``zvc-decompress``,
``zvc-loopback``): synthesis with the N log2 N growth, throughput against the port bound,
the ZV / RL / ZL ratios at AlexNet's densities, and the decompressor on malformed input.
"""

import math

from ..text import markdown_table
from . import Section, SummaryRow, fmax_text
from .plots import draw, style


__all__ = ["summary", "sections", "sim_lines", "malformed_rows"]

#: cDMA's published average compression ratio (Rhu et al., HPCA 2018).
PAPER_MEAN_RATIO = 2.6


def _bound(r):
    return min(r["port_bound"], r["frame_bound"])


def _by_density(results):
    return sorted(results.get("throughput", {}).items(), key=lambda kv: float(kv[0]))


def _geometry(params):
    return f"{params['lanes']}x{params['width']}"


def _windows_checked(results):
    """Windows (or, for the compressor, the windows behind the words) compared with the
    golden model, over every test of one run."""
    n = sum(r["windows"] for r in results.get("throughput", {}).values())
    for key in ("random_stalls", "round_trip"):
        n += (results.get(key) or {}).get("windows", 0)
    return n


def summary(results):
    rows = []
    ratios = results.analysis("alexnet_rows")
    for name, core, sims, synths in results.measured():
        verified = throughput = ""
        if sims:
            checked = sum(_windows_checked(s["results"]) for s in sims)
            verified = (f"cocotb ({sims[0]['results'].get('sim', 'verilator')}), "
                        f"{', '.join(_geometry(s['params']) for s in sims)}: {checked:,} windows "
                        f"bit-exact against `{core.golden}`, random stalls on both sides")
            malformed = [s["results"]["malformed"] for s in sims if "malformed" in s["results"]]
            if malformed:
                cases = sum(len(m.get("cases", [])) for m in malformed)
                verified += f"; {cases} malformed cases flagged as the golden model says"
            worst = min(((r["windows_per_cycle"] / _bound(r), d, s["params"])
                         for s in sims for d, r in _by_density(s["results"])),
                        key=lambda t: t[0], default=None)
            if worst is not None:
                ratio, density, params = worst
                throughput = (f"windows/cycle / bound >= {ratio:.4f} at every density "
                              f"(lowest: {_geometry(params)}, density {density})")
            trip = [s["results"]["round_trip"] for s in sims
                    if (s["results"].get("round_trip") or {}).get("windows")]
            if trip:
                throughput += f"; round trip {sum(t['windows'] for t in trip):,} windows"
        paper = ""
        if ratios and name == "zvc-compress":
            fp32 = [r["zv"] for r in ratios if r["width"] == 32]
            paper = (f"cDMA: {PAPER_MEAN_RATIO}x mean ZV ratio over its networks; here "
                     f"{min(fp32):.2f}x-{max(fp32):.2f}x on AlexNet's layers (32 x fp32)")
        rows.append(SummaryRow(name, verified, throughput, results.fmax_against_goals(name),
                               paper))
    return rows


def sim_lines(results):
    """``dnnhw sim``'s lines: throughput per density against its bound, the stall runs."""
    lines = [f"density {density:>5}: {r['windows_per_cycle']:.4f} windows/cycle (bound "
             f"{_bound(r):.4f}) over {r['windows']} windows, ratio {r['compression_ratio']:.2f}x"
             for density, r in _by_density(results)]
    stalls = results.get("random_stalls")
    if stalls:
        lines.append(f"random stalls: {stalls['windows']} windows in {stalls['frames']} frames, "
                     f"idle {stalls['idle']}, backpressure {stalls['backpressure']}: all matched")
    trip = results.get("round_trip")
    if trip:
        lines.append(f"round trip: {trip['windows']} windows bit-exact in {trip['cycles']} cycles")
    return lines


# --- synthesis --------------------------------------------------------------------------

def _synth_table(results):
    rows = []
    for s in results.synths():
        q, p = s["qor"], s["params"]
        n = p["lanes"]
        goal = results.cores[s["core"]].fmax_goal(p, q["target"])
        rows.append([s["core"], n, p["width"], q["target"], q["lut"], q["ff"], q["carry"],
                     q["bram"], q["dsp"], fmax_text(q), f"{goal:g}" if goal else "",
                     f"{q['lut'] / (n * math.log2(n)):.1f}"])
    return markdown_table(["core", "lanes", "width", "target", "LUT", "FF", "carry", "BRAM",
                           "DSP", "Fmax (MHz)", "goal (MHz)", "LUT / (N log2 N)"], rows,
                          align="lrrlrrrrrrrr")


def _lut_plot(results):
    def plot(ax):
        drawn = 0
        for k, name in enumerate(results.cores):
            points = sorted((s["params"]["lanes"], s["qor"]["lut"]) for s in results.synths(name)
                            if s["qor"]["target"] == "ecp5-85f" and s["params"]["width"] == 16)
            if len(points) < 2:
                continue
            xs, ys = zip(*points)
            look = style(k)
            ax.plot(xs, ys, label=f"{name} (width 16, ecp5-85f)", **look)
            scale = ys[-1] / (xs[-1] * math.log2(xs[-1]))
            ax.plot(xs, [scale * x * math.log2(x) for x in xs], linestyle="--",
                    color=look["color"], alpha=0.6, label=f"N log2 N through {name}'s largest")
            drawn += 1
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("lanes (N)")
        ax.set_ylabel("LUT4")
        return drawn
    return lambda path: draw(path, plot)


# --- throughput -------------------------------------------------------------------------

def _throughput_table(results):
    rows = []
    for s in results.sims():
        res = s["results"]
        latency = (res.get("latency") or {}).get("measured", "")
        for density, r in _by_density(res):
            rows.append([s["core"], s["params"]["lanes"], s["params"]["width"], density,
                         f"{r['windows_per_cycle']:.4f}", f"{_bound(r):.4f}",
                         f"{r['out_beats_per_cycle']:.4f}", f"{r['compression_ratio']:.2f}x",
                         latency])
    return markdown_table(["core", "lanes", "width", "density", "windows/cycle", "bound",
                           "out words/cycle", "ratio", "latency"], rows, align="lrrrrrrrr")


def _throughput_plot(results):
    names = [n for n in results.cores if any(s["results"].get("throughput")
                                             for s in results.sims(n))]

    def plot(axes):
        drawn = 0
        for ax, name in zip(axes, names):
            for k, s in enumerate(results.sims(name)):
                thr = _by_density(s["results"])
                xs = [float(d) for d, _ in thr]
                look = style(k)
                # The bound as a wide pale band underneath: the measured rate sits on it.
                ax.plot(xs, [_bound(r) for _, r in thr], color=look["color"], linewidth=7,
                        alpha=0.25, solid_capstyle="round",
                        label=f"{_geometry(s['params'])} bound (port, frame padding)")
                ax.plot(xs, [r["windows_per_cycle"] for _, r in thr], linewidth=1,
                        label=f"{_geometry(s['params'])} measured", **look)
                drawn += 1
            ax.set_title(name)
            ax.set_xlabel("density (fraction of non-zero elements)")
            ax.set_ylabel("windows per cycle (always-ready sink)")
            ax.set_ylim(0.7, 1.02)
        return drawn
    return lambda path: bool(names) and draw(path, plot, panels=len(names), size=(5.2, 4.2))


# --- ratios -----------------------------------------------------------------------------

def _ratio_table(rows):
    return markdown_table(
        ["AlexNet layer", "density", "window", "ZV", "RL", "ZL"],
        [[r["layer"], f"{r['density']:.2f}", f"{r['lanes']} x {r['width']} bit",
          f"{r['zv']:.2f}x", f"{r['rl']:.2f}x", f"{r['zl']:.2f}x"] for r in rows],
        align="lrlrrr")


def _ratio_plot(rows):
    def plot(ax):
        windows = sorted({(r["lanes"], r["width"]) for r in rows}, reverse=True)
        layers = list(dict.fromkeys(r["layer"] for r in rows))
        series = [(w, kind) for w in windows for kind in ("zv", "rl", "zl")]
        width = 0.8 / len(series)
        for k, ((lanes, bits), kind) in enumerate(series):
            values = [next(r[kind] for r in rows if r["layer"] == layer
                           and (r["lanes"], r["width"]) == (lanes, bits)) for layer in layers]
            look = style(k)
            ax.bar([i + (k - len(series) / 2 + 0.5) * width for i in range(len(layers))],
                   values, width, color=look["color"],
                   label=f"{kind.upper()} {lanes} x {bits} bit",
                   hatch=None if kind == "zv" else ("//" if kind == "rl" else ".."))
        ax.axhline(PAPER_MEAN_RATIO, color="black", linestyle=":",
                   label=f"cDMA's mean ratio ({PAPER_MEAN_RATIO}x, its networks)")
        ax.set_xticks(range(len(layers)), layers)
        ax.set_ylabel("compression ratio")
        return len(series)
    return lambda path: draw(path, plot)


# --- malformed input --------------------------------------------------------------------

def _emits(case):
    last = ", ".join(str(k + 1) for k in case["last_at"]) or "none"
    text = f"{case['out_windows']} window(s), last on {last}, error {case['error']}"
    if not case["identical_across_patterns"]:
        text += " (differs across stall patterns)"
    if not case["matches_golden"]:
        text += " (differs from the golden model)"
    if not case.get("recovered", True):
        text += " (the next frame did not decode)"
    return text


def malformed_rows(results):
    """Rows of the malformed-input table from a decompressor run's results (the
    ``malformed`` record, or the dict holding it): per case, ``class``, ``description``,
    ``golden`` (the golden model's verdict) and ``rtl`` (what the decompressor emitted:
    windows, which carry last, error; flagged when it differed across stall patterns,
    from the golden model's hardware mode, or did not recover)."""
    record = results.get("malformed", results)
    return [{"class": case["class"], "description": case["description"],
             "golden": case["golden"], "rtl": _emits(case)}
            for case in record.get("cases", [])]


def _malformed_table(sims):
    out = []
    for s in sims:
        m = s["results"].get("malformed")
        if not m:
            continue
        out += [f"{_geometry(s['params'])}, under the stall patterns "
                f"{', '.join(m.get('patterns', []))}; {m.get('configs_note', '')}"
                + (f" (on {m['simulator']})" if m.get("simulator") else ""), "",
                markdown_table(["class", "input", "golden model (default mode)",
                                "the decompressor emits (windows numbered from 1)"],
                               [[r["class"], r["description"], r["golden"], r["rtl"]]
                                for r in malformed_rows(m)])]
        rnd = m.get("random")
        if rnd:
            out += ["", f"Random corruptions of valid frames: {rnd.get('streams')} streams, "
                    f"{rnd.get('frames')} frames ({rnd.get('malformed_frames')} malformed), "
                    f"{rnd.get('words')} words, under each pattern: identical across patterns "
                    f"{'yes' if rnd.get('all_identical') else '**no**'}, equal to the golden "
                    f"model's hardware mode {'yes' if rnd.get('all_match_golden') else '**no**'}."]
        out.append("")
    return "\n".join(out)


def sections(results):
    out = []
    if results.synths():
        out.append(Section("zvc-synth", "ZVC synthesis (out of context, register to register)",
                           _synth_table(results), figure=_lut_plot(results)))
    if any(s["results"].get("throughput") for s in results.sims()):
        out.append(Section("zvc-sim", "ZVC throughput and latency (cocotb, always-ready sink)",
                           _throughput_table(results), figure=_throughput_plot(results)))
    ratios = results.analysis("alexnet_rows")
    if ratios:
        out.append(Section("zvc-ratios",
                           "ZV vs RL vs ZL on ReLU-like tensors at AlexNet's published densities",
                           _ratio_table(ratios), figure=_ratio_plot(ratios)))
    malformed = _malformed_table(results.sims())
    if malformed:
        out.append(Section("zvc-malformed", "The decompressor on malformed input", malformed))
    return out
