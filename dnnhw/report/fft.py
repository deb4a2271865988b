"""Report sections of the streaming FFT (``fft``): the cocotb runs (frames, samples per
cycle, SQNR), synthesis per ``n`` and target with the published pipelined FFTs drawn in,
the SQNR against width from the golden model (the core's analysis,
:func:`dnnhw.bench.fft.sqnr_by_width`), and our figures beside the published ones
(:data:`PEERS`).

Sections (README keys): ``fft-sim``, ``fft-synth``, ``fft-sqnr``, ``fft-peers``.
"""

import math

from ..spec.fft import TWIDDLE_WIDTHS
from ..text import markdown_table
from . import Section, SummaryRow, fmax_text
from .plots import draw, style


__all__ = ["summary", "sections", "sim_lines", "PEERS", "PEERS_NOTE"]

#: Published pipelined FFTs (``../shared/REFERENCE.md``, *Band-limited training*, and the
#: sources named in each row). ``msps``: samples a second; ``lut4``: an upper bound in
#: LUT4s where the figure is in another unit (a Virtex-4 / Spartan-3 slice holds two, an
#: iCE40 logic cell one), or ``None``; ``short``: the plot's label.
PEERS = (
    {"design": "Zhou, Peng & Hwang, pipeline FFT on FPGAs", "architecture": "R2²SDF",
     "points": 1024, "bits": 16, "device": "Virtex-4", "clock_mhz": 235.6, "msps": 235.6,
     "area": "2,256 slices", "lut4": 4512, "short": "Zhou et al. R2²SDF, Virtex-4",
     "source": "REFERENCE.md (Band-limited training); the paper's abstract"},
    {"design": "Zhou, Peng & Hwang, pipeline FFT on FPGAs", "architecture": "R2²SDF",
     "points": 1024, "bits": 16, "device": "Spartan-3", "clock_mhz": 95.2, "msps": 95.2,
     "area": "2,802 slices", "lut4": 5604, "short": "Zhou et al. R2²SDF, Spartan-3",
     "source": "REFERENCE.md (MHz); the paper's abstract (slices)"},
    {"design": "maia-sdr (maia-hdl, Amaranth 0.5)", "architecture": "R2²SDF",
     "points": 4096, "bits": None, "device": "Zynq-7010", "clock_mhz": None, "msps": 61.44,
     "area": None, "lut4": None, "short": "maia-sdr R2²SDF, Zynq-7010",
     "source": "REFERENCE.md; 61.44 Msps is the AD936x's limit on the ADALM Pluto"},
    {"design": "ZipCPU dblclockfft (fftgen -f 64 -n 12 -m 12 -k 16 -p 6)",
     "architecture": "pipelined radix-2, 16 clocks a sample", "points": 64, "bits": 12,
     "device": "iCE40 UP5K", "clock_mhz": None, "msps": None,
     "area": "3,809 logic cells, 20 EBR, 6 DSP (the whole demo design)", "lut4": 3809,
     "short": "dblclockfft 12-bit, 1/16 rate, UP5K",
     "source": "github.com/mattvenn/fpga-fft README (a demo, not a paper)"},
    {"design": "ZipCPU dblclockfft (fftgen -f 32 -n 12 -m 12 -k 16)",
     "architecture": "pipelined radix-2, 16 clocks a sample", "points": 32, "bits": 12,
     "device": "iCE40 HX8K", "clock_mhz": 32.0, "msps": 2.0,
     "area": "6,053 logic cells, 20 EBR (the whole demo design)", "lut4": 6053,
     "short": "dblclockfft 12-bit, 1/16 rate, HX8K",
     "source": "github.com/mattvenn/fpga-fft README (a demo, not a paper)"},
)

#: What was searched for iCE40 / ECP5 figures, and found.
PEERS_NOTE = (
    "No published iCE40 or ECP5 FFT figure was found in a paper or a vendor guide: "
    "REFERENCE.md says so, and a search of stored documentation and web pages (Lattice's "
    "FFT Compiler guide is for its Radiant families; Xilinx, Intel and Microchip publish "
    "their own parts) found none for the ECP5. The only iCE40 figures found are a demo's "
    "README (mattvenn/fpga-fft): ZipCPU's dblclockfft generator at 12 bits, one sample "
    "every 16 clocks, counted over the whole demo design; they are listed above as such, "
    "not as a like-for-like comparison (our core takes a sample every clock).")

_SOURCES = ("random", "image", "full_scale")
_SOURCE_TEXT = {"random": "random (disc)", "image": "image rows", "full_scale": "full-scale"}


# --- the study (the analysis ``dnnhw.bench.fft:sqnr_by_width``) ---------------------

def _sqnr_value(study, n, width, data, matched=True):
    """The study's SQNR at ``n``, ``width``, ``data``, with twiddles of ``min(width, 18)``
    bits (``matched``) or 16."""
    twiddle_width = min(width, TWIDDLE_WIDTHS[-1]) if matched else 16
    for row in study["rows"]:
        if (row["n"], row["width"], row["twiddle_width"], row["data"]) == \
                (n, width, twiddle_width, data):
            return row
    return None


# --- helpers -----------------------------------------------------------------------------

def _db(value):
    return "-" if value is None else f"{value:.1f}"


def _build(params):
    text = f"n {params['n']}, {params['width']}-bit, twiddles {params['twiddle_width']}"
    return text + (", inverse" if params.get("inverse") else "")


def _frames_text(run):
    frames = run.get("frames", {})
    images = [f"{count} {name}" for name, count in frames.items()
              if name not in ("random", "full_scale") and count]
    parts = [f"{frames.get('random', 0)} random"]
    if images:
        parts.append(" + ".join(images) + " image rows")
    if frames.get("full_scale"):
        parts.append(f"{frames['full_scale']} full-scale")
    return ", ".join(parts)


def _runs(sim):
    """``(label, run)`` of a simulation's records, stall-free first."""
    res = sim["results"]
    return [(label, res[key]) for key, label in (("stall_free", "stall-free"),
                                                ("random_stalls", "random stalls"))
            if key in res]


def _multipliers(params):
    """Products a build computes a cycle: four per stage but the last two, whose twiddles
    are 0 and +-1 (``StreamingFFT.multipliers``, held to this by ``tests/test_rtl_fft``)."""
    return 4 * max(0, int(math.log2(params["n"])) - 2)


def _logic_cells(qor):
    placed = qor.get("placed") or {}
    return placed.get("ICESTORM_LC", placed.get("TRELLIS_COMB"))


def _synths(results):
    return sorted(results.synths(), key=lambda s: (s["qor"]["target"], s["params"]["n"]))


def _misfits(results):
    """Builds that did not fit: ``(params, target, {bel: (used, available)})``."""
    out = []
    for r in results.records:
        job = r["job"]
        if job["kind"] == "synth" and r["status"] != "ok" and \
                isinstance(r.get("result"), dict) and r["result"].get("overused"):
            out.append((dict(job["params"]), job["target"], r["result"]["overused"]))
    return out


# --- summary -----------------------------------------------------------------------------

def summary(results):
    rows = []
    for name, core, sims, synths in results.measured():
        verified = throughput = paper = ""
        if sims:
            frames = sum(sum(run["frames"].values()) for s in sims for _, run in _runs(s))
            samples = sum(run["samples"] for s in sims for _, run in _runs(s))
            simulators = sorted({s["results"].get("sim", "verilator") for s in sims})
            verified = (f"cocotb ({', '.join(simulators)}), n = "
                        f"{', '.join(str(n) for n in sorted({s['params']['n'] for s in sims}))}: "
                        f"{frames} frames "
                        f"({samples:,} samples: random, rows of "
                        f"{' and '.join(s for s in _image_names(sims))}, full-scale) "
                        f"bit-exact against `{core.golden}`, stall-free and with random "
                        f"stalls on both streams; the overflow flag as the golden model's")
            free = [run for s in sims for label, run in _runs(s) if label == "stall-free"]
            if free:
                worst = min(min(r["in_samples_per_cycle"], r["out_samples_per_cycle"])
                            for r in free)
                exact = all(r["latency_first"] == r["latency_sidecar"] for r in free)
                throughput = (f"{worst:.3f} samples / cycle in and out, frames back to back "
                              f"(bound 1)" + ("; latency = the core's `latency`" if exact
                                              else "; **latency differs from the core's**"))
        fmax = results.fmax_against_goals(name) if synths else ""
        big = [s for s in synths if s["params"]["n"] == 1024]
        if big:
            paper = ("R2²SDF, 1024 points, 16-bit: 235.6 MHz on a Virtex-4, 95.2 MHz on a "
                     "Spartan-3 (published); here n = 1024 "
                     + "; ".join(f"{s['qor']['target']} {s['qor']['fmax_mhz']:.1f} MHz"
                                 for s in big))
        study = results.analysis("sqnr_by_width")
        if study:
            row = _sqnr_value(study, 64, 16, "image")
            if row:
                paper += ("; " if paper else "") + \
                    f"SQNR {row['sqnr_db']:.1f} dB at n = 64, 16-bit, image rows (golden)"
        rows.append(SummaryRow(core=name, verified=verified, throughput=throughput,
                               fmax=fmax, paper=paper))
    return rows


def _image_names(sims):
    names = []
    for s in sims:
        for _, run in _runs(s):
            for name in run.get("frames", {}):
                if name not in ("random", "full_scale") and name not in names:
                    names.append(name)
    return names


def sim_lines(results):
    """``dnnhw sim``'s lines: per run the frames, the rate, the latency and the SQNR."""
    lines = []
    for key, label in (("stall_free", "stall-free"), ("random_stalls", "random stalls")):
        run = results.get(key)
        if not run:
            continue
        sqnr = run.get("sqnr_db", {})
        lines.append(
            f"{label} ({run['source_pause']} / {run['sink_pause']}): {_frames_text(run)} "
            f"frames bit-exact; {run['in_samples_per_cycle']:.4f} / "
            f"{run['out_samples_per_cycle']:.4f} samples per cycle in / out; latency "
            f"{run['latency_first']} (core {run['latency_sidecar']}); SQNR "
            f"{_db(sqnr.get('run'))} dB (random {_db(sqnr.get('random'))}, images "
            f"{_db(sqnr.get('image'))}, full-scale {_db(sqnr.get('full_scale'))}); overflow "
            f"{run['overflow']['rtl']} (golden {run['overflow']['golden']})")
    return lines


# --- fft-sim -----------------------------------------------------------------------------

def _sim_table(results):
    rows = []
    for s in sorted(results.sims(), key=lambda s: s["params"]["n"]):
        for label, run in _runs(s):
            sqnr = run["sqnr_db"]
            if label != "stall-free":
                label = f"random stalls (idle {run['idle']:g}, backpressure " \
                        f"{run['backpressure']:g})"
            overflow = run["overflow"]
            rows.append([_build(s["params"]), s["results"].get("sim", ""), label,
                         _frames_text(run), f"{run['samples']:,}", f"{run['cycles']:,}",
                         f"{run['in_samples_per_cycle']:.3f} / "
                         f"{run['out_samples_per_cycle']:.3f}",
                         f"{run['latency_first']} / {run['latency_sidecar']}",
                         _db(sqnr.get("run")), _db(sqnr.get("random")),
                         _db(sqnr.get("image")), _db(sqnr.get("full_scale")),
                         f"{overflow['rtl']} = {overflow['golden']}"
                         if overflow["rtl"] == overflow["golden"]
                         else f"**{overflow['rtl']} != {overflow['golden']}**"])
    return markdown_table(
        ["build", "simulator", "run", "frames", "samples", "cycles",
         "samples / cycle in / out", "latency (first in to first out / core's)",
         "SQNR run (dB)", "random", "image rows", "full-scale", "overflow RTL = golden"],
        rows, align="lllllrrrrrrrl")


def _sim_plot(results):
    free = [(s["params"], run) for s in results.sims() for label, run in _runs(s)
            if label == "stall-free"]
    builds = sorted({(p["width"], p["twiddle_width"], bool(p.get("inverse"))) for p, _ in free})

    def plot(ax):
        drawn = 0
        for b, (width, twiddle, inverse) in enumerate(builds):
            for k, source in enumerate(_SOURCES):
                points = sorted((p["n"], run["sqnr_db"].get(source)) for p, run in free
                                if (p["width"], p["twiddle_width"], bool(p.get("inverse")))
                                == (width, twiddle, inverse)
                                and run["sqnr_db"].get(source) is not None)
                if not points:
                    continue
                xs, ys = zip(*points)
                look = style(b * len(_SOURCES) + k)
                ax.plot(xs, ys, label=f"{_SOURCE_TEXT[source]}, {width}-bit, twiddles "
                        f"{twiddle}{' (inverse)' if inverse else ''}", **look)
                drawn += 1
        ax.set_xscale("log", base=2)
        ax.set_xlabel("n (points)")
        ax.set_ylabel("SQNR against numpy.fft.fft(x) / n (dB)")
        ax.set_title("cocotb, stall-free run (equal under stalls: bit-exact)", fontsize=9)
        return drawn
    return lambda path: draw(path, plot)


# --- fft-synth ---------------------------------------------------------------------------

def _synth_table(results):
    rows, goals = [], []
    for s in _synths(results):
        q, p = s["qor"], s["params"]
        goals.append(results.cores[s["core"]].fmax_goal(p, q["target"]))
        lc = _logic_cells(q)
        rows.append([p["n"], p["width"], p["twiddle_width"], q["target"], q["lut"], q["ff"],
                     q["carry"], q["bram"], f"{q['dsp']} ({_multipliers(p)})",
                     "-" if lc is None else f"{lc:,}", fmax_text(q),
                     f"{p['n'] / q['fmax_mhz']:.2f}"])
    header = ["n", "width", "twiddles", "target", "LUT", "FF", "carry", "BRAM",
              "DSP (products)", "logic cells (placed)", "Fmax = Msps", "us / frame"]
    if any(goals):
        header.append("goal (MHz)")
        rows = [row + [f"{goal:g}" if goal else "-"] for row, goal in zip(rows, goals)]
    return markdown_table(header, rows, align="rrrl" + "r" * (len(header) - 4))


def _synth_text(results):
    lines = ["Out of context, register to register. A sample a cycle, so Fmax is the sample "
             "rate (Msps) and a frame takes n / Fmax. The products are four per stage with "
             "a multiplier (log2 n - 2 of them: the last two stages only swap and negate); "
             "on the UP5K each is an SB_MAC16, on the ECP5 a MULT18X18D. Delay lines of 16 "
             "samples or more are block RAM by construction; Yosys maps the twiddle ROMs "
             "and the two-frame reorder buffer to block RAM or to logic by their size."]
    misfits = _misfits(results)
    for params, target, overused in misfits:
        needs = ", ".join(f"{bel} {used} of {available}"
                          for bel, (used, available) in overused.items())
        lines.append(f"- n = {params['n']} does not fit the {target}: it needs {needs}.")
    up5k = [s for s in results.synths() if s["qor"]["target"] == "ice40-up5k"]
    if up5k:
        largest = max(up5k, key=lambda s: s["params"]["n"])
        p, q = largest["params"], largest["qor"]
        nxt = dict(p, n=2 * p["n"])
        lines.append(f"- The largest n on the UP5K here: {p['n']} ({q['dsp']} of its 8 "
                     f"SB_MAC16, {_logic_cells(q) or 0:,} of 5,280 logic cells, "
                     f"{q['fmax_mhz']:.1f} MHz); n = {nxt['n']} needs {_multipliers(nxt)} "
                     f"products.")
    lines.append("")
    lines.append("The plot draws the published pipelined FFTs in (hollow markers; their area "
                 "as an upper bound in LUT4s: two a slice, one an iCE40 logic cell); see "
                 "*FFT: our figures beside the published ones*.")
    return "\n".join(lines)


def _synth_plot(results):
    synths = _synths(results)
    targets = list(dict.fromkeys(s["qor"]["target"] for s in synths))

    def plot(axes):
        area, speed = axes
        drawn = 0
        for k, target in enumerate(targets):
            mine = sorted((s["params"]["n"], s["qor"]) for s in synths
                          if s["qor"]["target"] == target)
            xs = [n for n, _ in mine]
            look = style(k)
            area.plot(xs, [q["lut"] for _, q in mine], label=f"{target}: LUT4 (core)", **look)
            speed.plot(xs, [q["fmax_mhz"] for _, q in mine], label=f"{target}: Fmax", **look)
            drawn += 1
        for j, peer in enumerate(PEERS):
            look = style(len(targets) + j)
            label = peer["short"]
            common = {"color": look["color"], "marker": look["marker"], "markersize": 9,
                      "fillstyle": "none", "linestyle": "none"}
            if peer["lut4"]:
                area.plot([peer["points"]], [peer["lut4"]],
                          label=f"{label}: <= {peer['lut4']:,}", **common)
            if peer["msps"]:
                speed.plot([peer["points"]], [peer["msps"]],
                           label=f"{label}: {peer['msps']:g}", **common)
        for ax in axes:
            ax.set_xscale("log", base=2)
            ax.set_xlabel("n (points)")
        area.set_yscale("log")
        area.set_ylabel("LUT4 (published: an upper bound from slices / logic cells)")
        area.set_title("area", fontsize=9)
        speed.set_yscale("log")
        speed.set_ylabel("Fmax (MHz) = Msamples / s at a sample a cycle")
        speed.set_title("speed", fontsize=9)
        return drawn
    return lambda path: draw(path, plot, panels=2, size=(5.6, 4.4))


# --- fft-sqnr ----------------------------------------------------------------------------

def _sqnr_table(study):
    header = ["width"]
    columns = []
    for n in study["points"]:
        for data, matched, title in (("random", True, "random"), ("image", True, "image rows"),
                                     ("random", False, "random, twiddles 16"),
                                     ("full_scale", True, "full-scale"),
                                     ("random", None, "rounding bound")):
            header.append(f"n {n}: {title}")
            columns.append((n, data, matched))
    rows = []
    for width in study["widths"]:
        row = [width]
        for n, data, matched in columns:
            if matched is None:
                found = _sqnr_value(study, n, width, data)
                row.append(_db(found and found["bound_db"]))
            else:
                found = _sqnr_value(study, n, width, data, matched)
                row.append("-" if found is None else
                           _db(found["sqnr_db"]) + ("*" if found["overflow"] else ""))
        rows.append(row)
    return markdown_table(header, rows, align="r" * len(header))


def _slope(study, n, data, lo=8, hi=14):
    """dB per bit of the study's SQNR between widths ``lo`` and ``hi``."""
    a, b = _sqnr_value(study, n, lo, data), _sqnr_value(study, n, hi, data)
    if not a or not b or a["sqnr_db"] is None or b["sqnr_db"] is None:
        return None
    return (b["sqnr_db"] - a["sqnr_db"]) / (hi - lo)


def _sqnr_text(study, results):
    frames = {}
    for row in study["rows"]:
        frames.setdefault((row["n"], row["data"]), row["frames"])
    what = "; ".join(f"n = {n}: {frames.get((n, 'random'))} random, "
                     f"{frames.get((n, 'image'))} image rows, "
                     f"{frames.get((n, 'full_scale'))} full-scale frames"
                     for n in study["points"])
    lines = [f"The golden model (bit-exact with the RTL) against `{study['reference']}`, "
             f"every stage halving, twiddles of min(width, 18) bits unless the column says "
             f"16. Data as in the testbench: random samples in the disc |x| <= M - 1, "
             f"rows of {' and '.join(study['images'])} (grey, real part, spread over each "
             f"image), full-scale samples "
             f"over the square ({what}). `*`: some value saturated (the overflow flag). The "
             f"rounding bound is the exact transform rounded to integers, the best a "
             f"width-bit output can do.", ""]
    slopes = [f"n = {n}: {_slope(study, n, 'random'):.2f} dB per bit"
              for n in study["points"] if _slope(study, n, "random") is not None]
    if slopes:
        text = "- Random data gains " + ", ".join(slopes) + " from 8 to 14 bits (6.02 is a " \
               "bit's worth)"
        small, large = study["points"][0], study["points"][-1]
        a, b = _sqnr_value(study, small, 16, "random"), _sqnr_value(study, large, 16, "random")
        if small != large and a and b and a["sqnr_db"] is not None and b["sqnr_db"] is not None:
            doublings = math.log2(large / small)
            loss = a["sqnr_db"] - b["sqnr_db"]
            text += (f"; {large // small} times the points cost {loss:.1f} dB at 16 bits "
                     f"({loss / doublings:.1f} dB per doubling: each added stage halves the "
                     f"signal and adds its rounding)")
        lines.append(text + ".")
    tw16 = [(n, _sqnr_value(study, n, 24, "random", False)) for n in study["points"]]
    tw16 = [(n, r["sqnr_db"]) for n, r in tw16 if r and r["sqnr_db"] is not None]
    if tw16:
        lines.append("- Twiddles of 16 bits cap it near " + ", ".join(
            f"{v:.0f} dB (n = {n})" for n, v in tw16) + " at 24-bit data.")
    full = [(n, _sqnr_value(study, n, 16, "full_scale")) for n in study["points"]]
    full = [(n, r["sqnr_db"]) for n, r in full if r and r["sqnr_db"] is not None]
    if full:
        clean = [r for r in study["rows"] if r["data"] != "full_scale"]
        saturated = sum(r["overflow"] for r in clean)
        lines.append("- Full-scale (square) data saturates in the rotations whatever the "
                     "width: " + ", ".join(f"{v:.0f} dB at n = {n}" for n, v in full)
                     + " at 16 bits. " + (
                         f"The random (disc) and image data saturated nowhere here ({len(clean)}"
                         " runs of the golden model): keep complex inputs within radius M - 1."
                         if not saturated else
                         f"The random and image data saturated in {saturated} of "
                         f"{len(clean)} runs (`*`)."))
    return "\n".join(lines)


def _sqnr_plot(study, results):
    measured = [(s["params"], run) for s in results.sims() for label, run in _runs(s)
                if label == "stall-free"]

    def plot(axes):
        drawn = 0
        for ax, n in zip(axes, study["points"]):
            series = [("random", True, "random (disc)"), ("image", True, "image rows"),
                      ("random", False, "random, twiddles 16"),
                      ("image", False, "image rows, twiddles 16"),
                      ("full_scale", True, "full-scale (saturates)")]
            for k, (data, matched, title) in enumerate(series):
                points = [(w, _sqnr_value(study, n, w, data, matched)) for w in study["widths"]]
                points = [(w, r["sqnr_db"]) for w, r in points if r and r["sqnr_db"] is not None]
                if not points:
                    continue
                xs, ys = zip(*points)
                look = style(k)
                ax.plot(xs, ys, label=title, linestyle="--" if not matched else "-", **look)
                drawn += 1
            bound = [(w, _sqnr_value(study, n, w, "random")) for w in study["widths"]]
            bound = [(w, r["bound_db"]) for w, r in bound if r and r["bound_db"] is not None]
            if bound:
                xs, ys = zip(*bound)
                ax.plot(xs, ys, color="black", linestyle=":", label="rounding bound (random)")
            for j, (p, run) in enumerate(m for m in measured if m[0]["n"] == n):
                look = style(len(series) + j)
                ax.plot([p["width"]], [run["sqnr_db"]["run"]], linestyle="none",
                        color=look["color"], marker=look["marker"], markersize=14,
                        markeredgewidth=2, fillstyle="none",
                        label=f"cocotb run (random + images), {_build(p)}")
            ax.set_title(f"n = {n}", fontsize=9)
            ax.set_xlabel("width (bits of each part)")
            ax.set_ylabel("SQNR (dB)")
        return drawn
    return lambda path: draw(path, plot, panels=len(study["points"]), size=(5.6, 4.4))


# --- fft-peers ---------------------------------------------------------------------------

def _peers_table(results):
    rows = []
    for peer in PEERS:
        rows.append([peer["design"], peer["architecture"], peer["points"],
                     peer["bits"] or "-", peer["device"],
                     f"{peer['clock_mhz']:g}" if peer["clock_mhz"] else "-",
                     f"{peer['msps']:g}" if peer["msps"] else "-", peer["area"] or "-",
                     peer["source"]])
    for s in _synths(results):
        q, p = s["qor"], s["params"]
        lc = _logic_cells(q)
        rows.append([f"**dnnhw `{s['core']}` (this run)**", "R2SDF, natural order out",
                     p["n"], p["width"], q["target"], fmax_text(q),
                     f"{q['fmax_mhz']:.1f}",
                     f"{q['lut']:,} LUT4, {q['ff']:,} FF, {q['dsp']} DSP, {q['bram']} BRAM"
                     + (f" ({lc:,} logic cells with the harness)" if lc else ""),
                     "out of context, nextpnr"])
    return markdown_table(["design", "architecture", "points", "bits", "device",
                           "clock (MHz)", "Msamples / s", "area", "source"], rows,
                          align="llrrlrrll")


# --- sections ----------------------------------------------------------------------------

def _training(results):
    """The band-limited training study: the full one when this run made it, else the
    quick one (or None)."""
    return results.analysis("flow_full") or results.analysis("flow_quick")


def _training_sections(study):
    from ..bench import bandlimit as bench
    figures = bench.figures(study)
    config = study["config"]
    intro = (f"The digits CNN with both conv layers band-limited FFT convolutions, trained "
             f"and inferred at one rate, {len(config['seeds'])} seed(s) x "
             f"{config['epochs']} epochs per rate ("
             + ("`dnnhw bench bandlimit --quick`: a small run" if config.get("quick")
                else "`dnnhw bench bandlimit`") + ").")
    return [
        Section("bandlimit-training", "Band-limited training on the digits",
                "\n".join([intro, "", bench.accuracy_table(study), "",
                           bench.against_paper(study)]),
                figure=figures.get("accuracy")),
        Section("bandlimit-memory", "Band-limited spectra: memory and error against c",
                "\n".join(["Kept spectra (all filters and one input tile) against c, and "
                           "the band-limited convolution's error against direct "
                           "convolution on real digits.", "", bench.memory_table(study),
                           "", bench.error_table(study)]),
                figure=figures.get("memory")),
    ]


def sections(results):
    out = []
    study = _training(results)
    if study:
        out += _training_sections(study)
    if results.sims():
        out.append(Section(
            "fft-sim", "The FFT in cocotb: random frames and photographs, bit-exact",
            "Every output sample checked against the golden model as it arrives; the "
            "stall-free run must take and give a sample every cycle, frames back to back, "
            "with the first out `latency` cycles after the first in. SQNR against "
            "`numpy.fft.fft(x) / n`: the run's over the random and image frames; the "
            "full-scale frames saturate by design and are shown apart.\n\n"
            + _sim_table(results), figure=_sim_plot(results)))
    if results.synths():
        out.append(Section("fft-synth", "FFT synthesis per n (out of context)",
                           _synth_text(results) + "\n\n" + _synth_table(results),
                           figure=_synth_plot(results)))
    study = results.analysis("sqnr_by_width")
    if study:
        out.append(Section("fft-sqnr", "FFT SQNR against width (golden model)",
                           _sqnr_text(study, results) + "\n\n" + _sqnr_table(study),
                           figure=_sqnr_plot(study, results)))
    if results.synths():
        out.append(Section("fft-peers", "FFT: our figures beside the published ones",
                           _peers_table(results) + "\n\n" + PEERS_NOTE))
    return out
