"""The child process of one job: ``python -m dnnhw.flow.worker SPEC RESULT``.

Reads the job spec (see :func:`dnnhw.flow.jobs.execute`), runs the job through
:mod:`dnnhw.flow.tasks` and writes ``{"status", "result", "error"}`` to ``RESULT``
(to a temporary file first, renamed, so a killed job leaves none).
"""

import json
import os
import resource
import sys
import traceback
from pathlib import Path


def _run(spec):
    sys.path[:0] = [p for p in spec.get("pythonpath", ()) if p not in sys.path]
    from ..catalog import get_core
    from .jobs import Job
    from .tasks import design_digest, import_object, run_analysis, run_testbench, synthesize_core
    job = Job.from_dict(spec["job"])
    core = get_core(job.core, import_object(spec["catalog"]))
    build_root = spec["build_root"]
    if job.kind == "design":
        sha, size = design_digest(core, job.param_dict)
        return "ok", {"rtl_sha256": sha, "rtlil_bytes": size}, None
    if job.kind == "sim":
        results = run_testbench(core, job.param_dict, sim=job.simulator, seed=job.seed,
                                testcase=job.testcase, build_root=build_root, check=False)
        if results.get("passed"):
            return "ok", results, None
        failed = [f"{name}: {t.get('message')}" for name, t in results.get("tests", {}).items()
                  if t.get("status") == "fail"]
        return "failed", results, "; ".join(failed) or results.get("error", "testbench failed")
    if job.kind == "synth":
        from ..synth.build import DoesNotFit
        try:
            qor = synthesize_core(core, job.param_dict, job.target, build_root=build_root,
                                  seed=job.seed, router=job.router, placer=job.placer)
        except DoesNotFit as error:
            return "failed", {"overused": error.overused}, str(error)
        return "ok", qor.to_dict(), None
    value, _ = run_analysis(job.analysis, [dict(c) for c in job.configs])
    return "ok", value, None


def main(spec_path, result_path):
    spec = json.loads(Path(spec_path).read_text())
    try:
        status, result, error = _run(spec)
    except Exception as exc:   # the record carries it; the main job goes on with the rest
        traceback.print_exc()
        status, result, error = "error", None, f"{type(exc).__name__}: {exc}"
    # Linux reports ru_maxrss in KiB. Children: the largest tool process (nextpnr, make).
    peak_kib = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                   resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    tmp = Path(f"{result_path}.tmp{os.getpid()}")
    tmp.write_text(json.dumps({"status": status, "result": result, "error": error,
                               "peak_rss_mb": round(peak_kib / 1024)}, default=str) + "\n")
    os.replace(tmp, result_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
