"""Design-space sweeps, ``dnnhw sweep``: the cross product of parameter values, targets
and nextpnr seeds as synthesis jobs (the main job's store and executors), written up as
a table, a JSON file and a Pareto plot of LUTs against Fmax, with each point's spread
over seeds (nextpnr's seed noise on the ECP5 is about 10 MHz).
"""

import itertools
import json
import statistics
import sys
from pathlib import Path

from ..catalog import ParameterError, get_core
from ..text import markdown_table
from .executor import run_jobs
from .jobs import Job
from .main import DEFAULT_CATALOG, load_catalog


__all__ = ["parse_values", "plan_sweep", "sweep_points", "pareto_front", "run_sweep"]


def parse_values(pairs):
    """``["lanes=4,8", "width=16"]`` to ``{"lanes": ["4", "8"], "width": ["16"]}``."""
    values = {}
    for pair in pairs or ():
        name, sep, text = pair.partition("=")
        if not sep or not name or not text:
            raise ParameterError(f"--param takes NAME=V1,V2,..., got {pair!r}")
        if name in values:
            raise ParameterError(f"parameter '{name}' is given twice")
        values[name] = [v for v in text.split(",") if v]
    return values


def _seeds(text):
    try:
        seeds = [int(s) for s in str(text).split(",") if s]
    except ValueError:
        raise ParameterError(f"--seeds takes integers like 1,2,3, got {text!r}") from None
    if not seeds or any(not 0 <= s < 2**31 for s in seeds):
        raise ParameterError(f"--seeds must be integers in 0..{2**31 - 1}, got {text!r}")
    return seeds


def plan_sweep(core, values, targets, seeds, router=None):
    """One synthesis job per point of the cross product, target and seed."""
    from ..synth.build import TARGETS
    if not targets:
        raise ParameterError(f"a sweep needs at least one --target; known targets: "
                             f"{', '.join(TARGETS)}")
    for target in targets:
        if target not in TARGETS:
            raise ParameterError(f"unknown target '{target}'; known targets: {', '.join(TARGETS)}")
    names = list(values)
    jobs = []
    for combo in itertools.product(*(values[n] for n in names)):
        params = Job.freeze(core.resolve(dict(zip(names, combo))))
        for target in targets:
            for seed in seeds:
                jobs.append(Job("synth", core.name, params, target=target, seed=seed,
                                router=router))
    return jobs


def sweep_points(core, records):
    """Records grouped by (parameters, target): the QoR of each seed and the spread."""
    points = {}
    for record in records:
        job = record["job"]
        key = (tuple(tuple(p) for p in job["params"]), job["target"])
        point = points.setdefault(key, {"params": dict(key[0]), "target": job["target"],
                                        "seeds": [], "failed": []})
        if record["status"] == "ok":
            point["seeds"].append({"seed": job["seed"], **{k: record["result"][k] for k in
                                   ("lut", "ff", "carry", "bram", "dsp", "fmax_mhz")}})
        else:
            point["failed"].append({"seed": job["seed"], "status": record["status"],
                                    "error": record.get("error")})
    for point in points.values():
        fmax = [s["fmax_mhz"] for s in point["seeds"]]
        if fmax:
            point["fmax_min"], point["fmax_median"], point["fmax_max"] = \
                min(fmax), statistics.median(fmax), max(fmax)
            point["lut"] = statistics.median(s["lut"] for s in point["seeds"])
            if core.peak_rate is not None:
                bits, unit = core.peak_rate(point["params"])
                point["peak_rate"] = {"per_cycle": bits, "unit": unit,
                                      "per_second_median": bits * point["fmax_median"] * 1e6}
    return list(points.values())


def _merit(point):
    """What a point offers for its LUTs: its throughput at the median Fmax where the core
    states a peak rate (a wider core is slower but moves more), else the median Fmax."""
    rate = point.get("peak_rate")
    return rate["per_second_median"] if rate else point["fmax_median"]


def pareto_front(points):
    """The points no other point beats on both LUTs (fewer) and merit (higher): throughput
    where the core states a peak rate, else median Fmax."""
    done = [p for p in points if "fmax_median" in p]
    return [p for p in done if not any(
        q["lut"] <= p["lut"] and _merit(q) >= _merit(p)
        and (q["lut"], _merit(q)) != (p["lut"], _merit(p)) for q in done)]


def _label(point, varied):
    return ",".join(f"{k}={point['params'][k]}" for k in varied) or point["target"]


def _table(points, varied):
    rows = []
    front = {id(p) for p in pareto_front(points)}
    for p in points:
        if "fmax_median" not in p:
            rows.append([_label(p, varied), p["target"], "", "", "", "", "", "",
                         f"failed: {p['failed'][0]['status']}" if p["failed"] else ""])
            continue
        first = p["seeds"][0]
        rate = p.get("peak_rate")
        rows.append([_label(p, varied), p["target"], f"{p['lut']:g}", first["ff"], first["dsp"],
                     f"{p['fmax_min']:.1f} / {p['fmax_median']:.1f} / {p['fmax_max']:.1f}",
                     len(p["seeds"]),
                     f"{rate['per_second_median'] / 1e9:.2f} G{rate['unit']}/s" if rate else "",
                     "yes" if id(p) in front else ""])
    return markdown_table(["point", "target", "LUT (median)", "FF", "DSP",
                           "Fmax min / median / max (MHz)", "seeds", "peak throughput at median Fmax",
                           "Pareto (LUTs against throughput, else Fmax)"], rows,
                          align="llrrrrrrl")


def _plot(points, varied, path, core):
    from ..report.plots import draw, style
    done = [p for p in points if "fmax_median" in p]
    with_rate = [p for p in done if p.get("peak_rate")]

    def plot(axes):
        for k, p in enumerate(done):
            look = style(k)
            fmax = [s["fmax_mhz"] for s in p["seeds"]]
            axes[0].scatter([p["lut"]] * len(fmax), fmax, color=look["color"], alpha=0.35,
                            marker=look["marker"], s=18)
            axes[0].errorbar([p["lut"]], [p["fmax_median"]],
                             yerr=[[p["fmax_median"] - p["fmax_min"]],
                                   [p["fmax_max"] - p["fmax_median"]]],
                             color=look["color"], marker=look["marker"], capsize=3,
                             label=f"{_label(p, varied)} {p['target']}")
        front = sorted(pareto_front(points), key=lambda p: p["lut"])
        front_axis = axes[1] if len(axes) > 1 else axes[0]
        scale = 1e-9 if len(axes) > 1 else 1
        if front:
            front_axis.step([p["lut"] for p in front], [_merit(p) * scale for p in front],
                            where="post", color="black", linestyle=":", label="Pareto front")
        axes[0].set_xscale("log")
        axes[0].set_xlabel("LUT4 (median over seeds)")
        axes[0].set_ylabel("Fmax (MHz): seeds, median with min-max")
        axes[0].set_title(f"{core.name}: LUTs against Fmax")
        if len(axes) > 1:
            for k, p in enumerate(with_rate):
                look = style(done.index(p))
                axes[1].scatter(p["lut"], p["peak_rate"]["per_second_median"] / 1e9,
                                color=look["color"], marker=look["marker"],
                                label=_label(p, varied))
            unit = with_rate[0]["peak_rate"]["unit"]
            axes[1].set_xscale("log")
            axes[1].set_xlabel("LUT4 (median over seeds)")
            axes[1].set_ylabel(f"peak throughput at median Fmax (G{unit}/s)")
            axes[1].set_title("throughput against LUTs")
        return len(done)
    return draw(path, plot, panels=2 if with_rate else 1)


def run_sweep(core_name, values, *, targets, seeds="1", router=None, output="dnnhw-sweep",
              build_root="dnnhw-build", workers=None, scheduler=None, force=False,
              timeout=None, quiet=False, catalog=DEFAULT_CATALOG, readme=None):
    """Run a sweep; write ``sweep.md``, ``sweep.json`` and ``pareto.png`` to ``output``
    and, given a ``readme``, its ``sweep-CORE`` section. Returns the exit code (1 if any
    build failed)."""
    rows = load_catalog(catalog)
    core = get_core(core_name, rows)
    seeds = _seeds(seeds)
    jobs = plan_sweep(core, values, targets, seeds, router)
    records = run_jobs(jobs, catalog=rows, catalog_ref=catalog, build_root=build_root,
                       workers=workers, scheduler=scheduler, timeout=timeout, force=force,
                       quiet=quiet)
    points = sweep_points(core, records)
    varied = [k for k, v in values.items() if len(v) > 1]
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    (output / "sweep.json").write_text(json.dumps(
        {"core": core.name, "values": values, "targets": list(targets), "seeds": seeds,
         "router": router, "points": points, "pareto": pareto_front(points)},
        indent=1, default=str) + "\n")
    plotted = _plot(points, varied, output / "pareto.png", core)
    md = [f"# Sweep of {core.name}", "",
          f"{len(points)} points x {len(seeds)} seeds ({', '.join(map(str, seeds))}) on "
          f"{', '.join(targets)}; {sum(1 for r in records if r.get('cached'))} of "
          f"{len(records)} builds from the store.", "", _table(points, varied), ""]
    if plotted:
        md += ["![LUTs against Fmax](pareto.png)", ""]
    (output / "sweep.md").write_text("\n".join(md))
    if readme:
        from ..report import Section, update_readme
        update_readme(Path(readme), [Section(
            f"sweep-{core.name}", f"Sweep of {core.name}",
            "\n".join(md[2:5]) + f"\n\nThe Pareto plot is `{output / 'pareto.png'}`.")])
    if not quiet:
        print("\n".join(md[4:5]))
        print(f"sweep: {output / 'sweep.md'}, {output / 'sweep.json'}", file=sys.stderr)
    failed = [r for r in records if r["status"] != "ok"]
    for record in failed:
        print(f"  FAILED {record['label']}: {record['status']}: {record.get('error')}",
              file=sys.stderr)
    return 1 if failed else 0
