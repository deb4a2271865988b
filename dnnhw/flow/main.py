"""The main job, ``dnnhw flow``: every catalog core at its configurations of a tier,
simulated, synthesized and analysed as cached parallel jobs, then the report.
"""

import sys
import time
from pathlib import Path

from ..catalog import CORES, TIERS, ParameterError
from .executor import Interrupted, run_jobs
from .jobs import Job
from .tasks import import_object


__all__ = ["plan_flow", "run_flow", "load_catalog", "DEFAULT_CATALOG"]

DEFAULT_CATALOG = "dnnhw.catalog:CORES"


def load_catalog(ref):
    """The catalog (a sequence of :class:`~dnnhw.catalog.Core`) named ``"module:attr"``."""
    if ref == DEFAULT_CATALOG:
        return CORES
    return tuple(import_object(ref))


def _check_names(given, known, what):
    for name in given or ():
        if name not in known:
            raise ParameterError(f"unknown {what} '{name}'; known {what}s: {', '.join(known)}")


def plan_flow(catalog, *, tier="quick", cores=None, targets=None, skip_sim=False,
              skip_synth=False, simulator="verilator"):
    """The jobs of a main-job run, in catalog order."""
    from ..synth.build import TARGETS
    if tier not in TIERS:
        raise ParameterError(f"unknown tier '{tier}'; known tiers: {', '.join(TIERS)}")
    _check_names(cores, [c.name for c in catalog], "core")
    _check_names(targets, list(TARGETS), "target")
    jobs = []
    for core in catalog:
        if cores and core.name not in cores:
            continue
        configs = core.configs(tier)
        for config in configs:
            params = Job.freeze(core.resolve(config.params))
            if config.sim and not skip_sim:
                jobs.append(Job("sim", core.name, params, simulator=simulator,
                                testcase=config.testcase))
            # The quick tier is the README's first command: one seed, so that it stays a
            # few minutes; the full tier builds every seed.
            seeds = config.seeds if tier == "full" else config.seeds[:1]
            for target in config.targets:
                if not skip_synth and (not targets or target in targets):
                    jobs += [Job("synth", core.name, params, target=target, seed=seed,
                                 router=config.router, placer=config.placer)
                             for seed in seeds]
        for analysis in core.analyses:
            if TIERS.index(analysis.tier) <= TIERS.index(tier):
                resolved = tuple(Job.freeze(core.resolve(c.params)) for c in configs
                                 if analysis.uses_configs)
                jobs.append(Job("analysis", core.name, (), analysis=analysis.function,
                                configs=tuple(dict.fromkeys(resolved))))
    return jobs


def run_flow(*, output="dnnhw-report", build_root="dnnhw-build", tier="quick", cores=None,
             targets=None, skip_sim=False, skip_synth=False, readme=None, workers=None,
             scheduler=None, force=False, timeout=None, quiet=False,
             catalog=DEFAULT_CATALOG, run=True):
    """Run the main job and write the report (see :mod:`dnnhw.report`) to ``output``.

    Returns the exit code: 0 when every job finished ``ok``, 1 otherwise (the failed jobs
    are named on stderr and in the report). ``run=False`` reports what the store holds
    for this plan and runs nothing.
    """
    rows = load_catalog(catalog)
    jobs = plan_flow(rows, tier=tier, cores=cores, targets=targets, skip_sim=skip_sim,
                     skip_synth=skip_synth)
    started = time.monotonic()
    interrupted = None
    try:
        records = run_jobs(jobs, catalog=rows, catalog_ref=catalog, build_root=build_root,
                           workers=workers, scheduler=scheduler, timeout=timeout, force=force,
                           quiet=quiet, run=run)
    except Interrupted as stop:
        # The report of what finished, so an interrupted run still shows its results;
        # the unfinished jobs are named in it as not run.
        interrupted = stop
        records = [r if r is not None else
                   {"key": None, "label": job.label, "job": job.to_dict(), "status": "not run",
                    "error": "the run was interrupted before this job finished"}
                   for job, r in zip(jobs, stop.records)]
    seconds = time.monotonic() - started
    from ..report import write_report
    paths = write_report(records, catalog=rows, output=Path(output), readme=readme,
                         run={"tier": tier, "seconds": round(seconds, 1), "jobs": len(records),
                              "cached": sum(1 for r in records if r.get("cached")),
                              "interrupted": interrupted is not None})
    if interrupted is not None:
        print(f"report of the jobs finished so far: {paths[0]}", file=sys.stderr)
        raise interrupted
    failed = [r for r in records if r["status"] != "ok"]
    if not quiet:
        print(f"report: {', '.join(str(p) for p in paths)}", file=sys.stderr)
    if failed:
        print(f"{len(failed)} job(s) failed:", file=sys.stderr)
        for record in failed:
            print(f"  {record['label']}: {record['status']}: "
                  f"{(record.get('error') or '').splitlines()[0] if record.get('error') else ''}"
                  f" (log {record.get('log')})", file=sys.stderr)
        return 1
    return 0
