"""The report of the main job: it renders job records, generic over the catalog.

Every catalog row names the module that renders its report (``Core.report``); cores of a
family share one. Such a module defines

``summary(results)``
    a list of :class:`SummaryRow`, one line per core (or configuration) of the summary
    table: verified how and over how much data, throughput against its bound, Fmax
    against its goal, the paper's figure beside ours;
``sections(results)``
    a list of :class:`Section`: a README marker key, a title, a markdown body and, where
    it has one, a plot drawn beside its table.

``results`` is a :class:`CoreResults`: the records of that module's cores. This module
writes ``report.md`` (a summary first, then failures, then each section with its plot),
``report.json`` (every record) and the plots, and rewrites the README's sections between
``<!-- dnnhw-flow:KEY:begin -->`` and ``<!-- dnnhw-flow:KEY:end -->``. It names no core.
"""

import dataclasses
import importlib
import json
from pathlib import Path

from ..catalog import ParameterError
from ..text import markdown_table


__all__ = ["Section", "SummaryRow", "CoreResults", "write_report", "render_sections",
           "update_readme", "summarize_sim", "fmax_text"]


@dataclasses.dataclass
class Section:
    """One section of the report (and of the README).

    Members
    -------
    key : str
        README marker name; a run that produced no data for a section leaves it out, and
        the README keeps what it had.
    title : str
    body : str
        Markdown: the table, and prose that reads it.
    figure : callable or None
        ``figure(path)`` draws the section's plot into ``path`` (a PNG) and returns
        ``True``, or returns ``False`` when there is nothing to draw, so no empty plot is
        written.
    """
    key: str
    title: str
    body: str
    figure: object = None


@dataclasses.dataclass
class SummaryRow:
    """One line of the report's summary table."""
    core: str
    verified: str = ""
    throughput: str = ""
    fmax: str = ""
    paper: str = ""


class CoreResults:
    """The records of the cores that share one report module.

    Members
    -------
    cores : dict of str to Core
        Those cores' catalog rows, by name.
    records : list of dict
        Their job records (see :mod:`dnnhw.flow.jobs`), in plan order.
    """

    def __init__(self, cores, records):
        self.cores = cores
        self.records = records

    def _ok(self, kind, core):
        return [r for r in self.records if r["job"]["kind"] == kind and r["status"] == "ok"
                and (core is None or r["job"]["core"] == core)]

    def sims(self, core=None):
        """``{"core", "params", "results"}`` of every passing simulation."""
        return [{"core": r["job"]["core"], "params": dict(r["job"]["params"]),
                 "results": r["result"]} for r in self._ok("sim", core)]

    def synths(self, core=None):
        """``{"core", "params", "qor"}`` of every finished build, the builds that differ
        only in their nextpnr seed merged into one: ``qor`` is the record of the seed
        with the median Fmax (the lower middle one of an even count), so its LUTs and
        critical path go with that Fmax, plus ``fmax_min_mhz``, ``fmax_max_mhz`` and
        ``seeds`` (``{"seed", "fmax_mhz", "critical_path"}`` of each, by Fmax)."""
        builds = {}
        for r in self._ok("synth", core):
            job = r["job"]
            key = (job["core"], json.dumps(job["params"], sort_keys=True), job["target"],
                   job.get("router"), job.get("placer"))
            builds.setdefault(key, []).append(r)
        merged = []
        for records in builds.values():
            records = sorted(records, key=lambda r: r["result"]["fmax_mhz"])
            median = records[(len(records) - 1) // 2]
            qor = dict(median["result"],
                       fmax_min_mhz=records[0]["result"]["fmax_mhz"],
                       fmax_max_mhz=records[-1]["result"]["fmax_mhz"],
                       seeds=[{"seed": r["job"]["seed"], "fmax_mhz": r["result"]["fmax_mhz"],
                               "critical_path": r["result"].get("critical_path", [])}
                              for r in records])
            merged.append({"core": median["job"]["core"],
                           "params": dict(median["job"]["params"]), "qor": qor})
        return merged

    def measured(self):
        """``(name, core, sims, synths)`` of each core with a passing simulation or a
        finished build among the records, in catalog order: a summary's rows."""
        for name, core in self.cores.items():
            sims, synths = self.sims(name), self.synths(name)
            if sims or synths:
                yield name, core, sims, synths

    def analysis(self, name, core=None):
        """The value of the analysis whose function is called ``name`` (``module:name``),
        or ``None`` when this run did not compute it."""
        for r in self._ok("analysis", core):
            if r["job"]["analysis"].rpartition(":")[2] == name:
                return r["result"]
        return None

    def fmax_against_goals(self, core):
        """``"target MHz (goal G)"`` for each build of ``core``, joined."""
        row = self.cores[core]
        synths = self.synths(core)
        # Name each build by the parameters that vary among them.
        varying = [k for k in (synths[0]["params"] if synths else {})
                   if len({str(s["params"].get(k)) for s in synths}) > 1]
        parts = []
        for s in synths:
            q = s["qor"]
            goal = row.fmax_goal(s["params"], q["target"])
            what = " ".join(str(s["params"][k]) for k in varying)
            parts.append(f"{q['target']}{' ' + what if what else ''} {fmax_text(q, unit=' MHz')}"
                         + (f" (goal {goal:g}{'' if q['fmax_mhz'] >= goal else ', missed'})"
                            if goal else ""))
        return "; ".join(parts)


def fmax_text(qor, unit=""):
    """A build's Fmax as text: ``"90.7"``, or ``"90.7 (88.1-95.2, 3 seeds)"`` for the
    median of several seeds (:meth:`CoreResults.synths`); ``unit`` follows the median."""
    text = f"{qor['fmax_mhz']:.1f}{unit}"
    seeds = qor.get("seeds", ())
    if len(seeds) > 1:
        text += (f" ({qor['fmax_min_mhz']:.1f}-{qor['fmax_max_mhz']:.1f}, "
                 f"{len(seeds)} seeds)")
    return text


def _groups(records, catalog):
    """``(module name, CoreResults)`` per report module, in catalog order."""
    groups = {}
    for core in catalog:
        groups.setdefault(core.report, {})[core.name] = core
    for module, cores in groups.items():
        mine = [r for r in records if r["job"]["core"] in cores]
        if mine:
            yield module, CoreResults(cores, mine)


def render_sections(records, catalog):
    """``(summary rows, sections)`` of ``records``, from each core's report module."""
    summary, sections = [], []
    for module_name, results in _groups(records, catalog):
        module = importlib.import_module(module_name)
        summary += module.summary(results)
        sections += module.sections(results)
    keys = [s.key for s in sections]
    duplicated = sorted({k for k in keys if keys.count(k) > 1})
    if duplicated:
        raise ValueError(f"two report sections share the key(s) {', '.join(duplicated)}")
    return summary, sections


def _summary_table(rows):
    return markdown_table(["core", "verified", "throughput against its bound",
                           "Fmax against its goal", "paper beside ours"],
                          [[r.core, r.verified, r.throughput, r.fmax, r.paper] for r in rows])


def _seeds_table(records, catalog):
    """A table of every seed of the builds made with several, or ``""``."""
    rows = []
    for _, results in _groups(records, catalog):
        for s in results.synths():
            q = s["qor"]
            if len(q["seeds"]) < 2:
                continue
            what = " ".join(f"{k}={v}" for k, v in s["params"].items())
            for seed in q["seeds"]:
                path = seed["critical_path"]
                rows.append([f"`{s['core']}`", what, q["target"], seed["seed"],
                             f"{seed['fmax_mhz']:.1f}", path[0] if path else "-"])
    return markdown_table(["core", "parameters", "target", "seed", "Fmax (MHz)",
                           "critical path"], rows) if rows else ""


def _run_line(run, records):
    failed = [r for r in records if r["status"] != "ok"]
    tier = run.get("tier", "quick")
    not_run = sum(1 for r in records if r["status"] == "not run")
    parts = []
    if not_run:
        parts.append(f"**{'interrupted: ' if run.get('interrupted') else ''}{not_run} not run**")
    if len(failed) > not_run:
        parts.append(f"**{len(failed) - not_run} failed**")
    return (f"Tier `{tier}`: {run.get('jobs', len(records))} jobs "
            f"({run.get('cached', 0)} from the store) in {run.get('seconds', 0):.0f} s; "
            + (", ".join(parts) + "." if parts else "all finished."))


def write_report(records, *, catalog, output, readme=None, run=None):
    """Write ``report.md``, ``report.json`` and the plots to ``output``; rewrite the
    sections of ``readme`` if given. Returns the paths written."""
    import matplotlib
    matplotlib.use("Agg")
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    run = dict(run or {})
    summary, sections = render_sections(records, catalog)
    md = ["# dnnhw flow report", "", _run_line(run, records), "", "## Summary", "",
          _summary_table(summary), ""]
    failed = [r for r in records if r["status"] != "ok"]
    if failed:
        md += ["## Failed jobs", ""]
        md += [f"- {r['label']}: {r['status']}: {(r.get('error') or '').strip()[:500]} "
               f"(log `{r.get('log')}`)" for r in failed]
        md.append("")
    seeds = _seeds_table(records, catalog)
    if seeds:
        md += ["## Placer seeds", "", "The builds made with several nextpnr seeds: each "
               "seed's Fmax and critical path (the tables give the median seed).", "",
               seeds, ""]
    paths = []
    for section in sections:
        md += [f"## {section.title}", "", section.body.rstrip(), ""]
        if section.figure is not None:
            path = output / f"{section.key}.png"
            path.unlink(missing_ok=True)
            if section.figure(path):
                md += [f"![{section.title}]({path.name})", ""]
                paths.append(path)
    (output / "report.md").write_text("\n".join(md) + "\n")
    (output / "report.json").write_text(json.dumps(
        {"run": run, "records": records}, indent=1, default=str) + "\n")
    if readme:
        # A run of some cores only must not pass for the whole project's summary; a README
        # without a summary section (a catalog of one's own) gets none.
        covered = {r["job"]["core"] for r in records}
        whole = all(core.name in covered for core in catalog)
        has_summary = "<!-- dnnhw-flow:summary:begin -->" in Path(readme).read_text()
        summary_section = [Section("summary", "Summary", _summary_table(summary))] \
            if whole and has_summary else []
        update_readme(Path(readme), summary_section + sections)
    return [output / "report.md", output / "report.json"] + paths


def update_readme(path, sections):
    """Replace each section's marked part of the README at ``path``."""
    text = path.read_text()
    for section in sections:
        begin = f"<!-- dnnhw-flow:{section.key}:begin -->"
        end = f"<!-- dnnhw-flow:{section.key}:end -->"
        if begin not in text or end not in text:
            raise ParameterError(f"{path} has no {begin} ... {end} section to rewrite")
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        body = f"### {section.title}\n\n{section.body.rstrip()}\n"
        text = f"{head}{begin}\n{body}\n{end}{tail}"
    path.write_text(text)


def summarize_sim(results, core):
    """A short human summary of one testbench run of catalog row ``core`` (``dnnhw sim``):
    the verdict, each cocotb test and its time, the latency against the sidecar, and the
    lines the core's report module gives (its optional ``sim_lines(results)``)."""
    lines = [f"{results.get('core')} {results.get('params')}: "
             f"{'PASS' if results.get('passed') else 'FAIL'}"]
    for name, test in results.get("tests", {}).items():
        lines.append(f"  {name}: {test.get('status')} ({test.get('real_time_s', 0):.1f} s)")
    latency = results.get("latency")
    if isinstance(latency, dict):
        lines.append(f"  latency: {latency.get('measured')} cycles "
                     f"(sidecar {latency.get('sidecar')})")
    beats = results.get("stream_beats")
    if isinstance(beats, dict) and beats:
        total, seconds = sum(beats.values()), results.get("test_seconds") or 0
        rate = f", {total / seconds:,.0f} beats/s" if seconds else ""
        lines.append(f"  beats: {total:,} ({', '.join(f'{k} {v:,}' for k, v in beats.items())})"
                     f" in {seconds:.1f} s{rate}")
    module = importlib.import_module(core.report)
    if hasattr(module, "sim_lines"):
        lines += [f"  {line}" for line in module.sim_lines(results)]
    lines.append(f"  measurements: {', '.join(k for k in results if k not in _VERDICT_KEYS)}"
                 f" in {results.get('build_dir')}/results.json")
    return "\n".join(lines)


_VERDICT_KEYS = {"passed", "tests", "seed", "sim", "module", "build_dir", "build_seconds",
                 "test_seconds", "waves", "log", "error", "core", "params", "latency", "config",
                 "stream_beats"}
