"""The main job as cached, parallel jobs: the store, keys, executors (threads and a Dask
LocalCluster), failures, timeouts, Ctrl-C, progress, sweeps, and a core added to a
catalog of its own getting every command with no edit anywhere in dnnhw."""

import json
import textwrap
import threading
import time
from pathlib import Path

import pytest

from dnnhw.catalog import Core, FlowConfig, Param
from dnnhw.cli import main
from dnnhw.flow import executor
from dnnhw.flow.jobs import Job, execute, stop_all
from dnnhw.flow.main import plan_flow, run_flow
from dnnhw.flow.store import ResultStore
from dnnhw.flow.sweep import pareto_front, run_sweep

TESTS = Path(__file__).resolve().parent

SLICE = '''
from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


class Slice(wiring.Component):
    def __init__(self, *, width=8):
        super().__init__({"i": In(stream.Signature(width)), "o": Out(stream.Signature(width))})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.i.ready):
            m.d.sync += [self.o.valid.eq(self.i.valid), self.o.payload.eq(self.i.payload{op})]
        return m
'''

CATALOG = '''
import time
from dnnhw.catalog import Analysis, Core, FlowConfig, Param
from dnnhw.report import Section, SummaryRow


def _row(name, module, **extra):
    return Core(name=name, component=f"{module}:Slice",
                params=(Param("width", 8, (8, 16)),), summary=name, golden="none:none",
                testbench="dnnhw.sim.passthrough", report="flowcat",
                flow=(FlowConfig({"width": 8}, ("ice40-hx8k",), sim=False, tier="quick"),),
                **extra)


def nap(configs):
    time.sleep({nap})
    return {"slept": True}


CATALOG = (_row("core-a", "flowcat_a"), _row("core-b", "flowcat_b"))
BROKEN = CATALOG + (_row("core-broken", "flowcat_broken"),)
SLEEPY = (_row("core-a", "flowcat_a", analyses=(Analysis("nap", "flowcat:nap"),)),)


def summary(results):
    return [SummaryRow(name, fmax=results.fmax_against_goals(name)) for name in results.cores]


def sections(results):
    lines = [f"{s['core']} {s['qor']['lut']} LUT" for s in results.synths()]
    return [Section("flowcat", "flowcat builds", "\\n".join(lines) or "none")]
'''


@pytest.fixture
def flowcat(tmp_path, monkeypatch):
    """A catalog of two one-register cores in modules of their own, importable here and in
    the job processes; returns a function writing core b's module with ``op``."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "flowcat_a.py").write_text(SLICE.replace("{op}", ""))
    (src / "flowcat_b.py").write_text(SLICE.replace("{op}", ""))
    (src / "flowcat_broken.py").write_text(SLICE.replace("{op}", ".no_such_attribute"))
    (src / "flowcat.py").write_text(CATALOG.replace("{nap}", "60"))
    monkeypatch.syspath_prepend(str(src))

    def write_b(text):
        (src / "flowcat_b.py").write_text(text)
        from dnnhw.flow import sources
        sources.module_sources.cache_clear()
    return write_b


def _flow(tmp_path, catalog="flowcat:CATALOG", **kwargs):
    code = run_flow(output=tmp_path / "report", build_root=tmp_path / "build", catalog=catalog,
                    quiet=True, **kwargs)
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    by_label = {r["label"]: r for r in report["records"]}
    return code, by_label, report


def test_second_run_comes_from_the_store_and_a_change_reruns_only_its_core(flowcat, tmp_path):
    code, first, _ = _flow(tmp_path)
    assert code == 0 and len(first) == 2
    assert not any(r["cached"] for r in first.values())
    started = time.monotonic()
    code, second, report = _flow(tmp_path)
    assert code == 0 and all(r["cached"] for r in second.values())
    assert report["run"]["cached"] == 2 and time.monotonic() - started < 30
    assert {k: r["result"] for k, r in second.items()} == {k: r["result"] for k, r in first.items()}

    # A comment changes core b's sources but not its RTL: its build is still the same job.
    flowcat(SLICE.replace("{op}", "") + "\n# a comment\n")
    _, third, _ = _flow(tmp_path)
    assert all(r["cached"] for r in third.values())

    # A change to its logic re-runs core b's build, and only it.
    flowcat(SLICE.replace("{op}", " ^ 1"))
    _, fourth, _ = _flow(tmp_path)
    a, b = (fourth[f"synth core-{x} width=8 ice40-hx8k"] for x in "ab")
    assert a["cached"] and not b["cached"]
    assert b["key"] != first["synth core-b width=8 ice40-hx8k"]["key"]

    # --no-run reports what the store holds and runs nothing.
    flowcat(SLICE.replace("{op}", " ^ 3"))
    code, sixth, report = _flow(tmp_path, run=False)
    assert code == 1 and sixth["synth core-a width=8 ice40-hx8k"]["cached"]
    assert sixth["synth core-b width=8 ice40-hx8k"]["status"] == "not run"
    assert "its design is not in the store" in sixth["synth core-b width=8 ice40-hx8k"]["error"]
    flowcat(SLICE.replace("{op}", " ^ 1"))

    # --force ignores the store.
    _, fifth, _ = _flow(tmp_path, force=True)
    assert not any(r["cached"] for r in fifth.values())


def test_a_failing_job_is_recorded_and_the_rest_go_on(flowcat, tmp_path, capsys):
    code, records, _ = _flow(tmp_path, catalog="flowcat:BROKEN")
    assert code == 1
    broken = records["synth core-broken width=8 ice40-hx8k"]
    assert broken["status"] == "error" and "no_such_attribute" in broken["error"]
    assert Path(broken["log"]).is_file()
    assert records["synth core-a width=8 ice40-hx8k"]["status"] == "ok"
    err = capsys.readouterr().err
    assert "1 job(s) failed" in err and "core-broken" in err
    report = (tmp_path / "report" / "report.md").read_text()
    assert "## Failed jobs" in report and "core-broken" in report
    # A failure is not stored: the next run tries it again.
    _, again, _ = _flow(tmp_path, catalog="flowcat:BROKEN")
    assert not again["synth core-broken width=8 ice40-hx8k"]["cached"]
    assert again["synth core-a width=8 ice40-hx8k"]["cached"]


def test_a_job_past_its_timeout_is_stopped_and_recorded(flowcat, tmp_path):
    started = time.monotonic()
    code, records, _ = _flow(tmp_path, catalog="flowcat:SLEEPY", timeout=3, skip_synth=True)
    assert code == 1 and time.monotonic() - started < 40
    nap = records["analysis core-a nap"]
    assert nap["status"] == "timeout" and nap["error"] == "timed out after 3 s"


def test_stop_all_kills_the_running_job_processes(flowcat, tmp_path):
    job = Job("analysis", "core-a", analysis="flowcat:nap")
    spec = {"job": job.to_dict(), "key": "ab" * 32, "label": job.label,
            "catalog": "flowcat:SLEEPY", "build_root": str(tmp_path), "pythonpath": []}
    import sys
    spec["pythonpath"] = list(sys.path)
    out = {}
    thread = threading.Thread(target=lambda: out.update(execute(spec)))
    started = time.monotonic()
    thread.start()
    while not executor.stop_all.__globals__["_running"] and time.monotonic() - started < 20:
        time.sleep(0.05)
    time.sleep(0.5)
    stop_all()
    thread.join(30)
    assert out["status"] == "error" and "killed by signal 9" in out["error"]
    assert time.monotonic() - started < 30


def test_progress_is_plain_lines_off_a_terminal_and_silent_when_quiet(flowcat, tmp_path, capsys):
    run_flow(output=tmp_path / "r", build_root=tmp_path / "b", catalog="flowcat:CATALOG")
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("[")]
    assert len(lines) == 4   # two designs, two builds
    assert all("running" in line and "queued" in line and "elapsed" in line for line in lines)
    assert "[4/4] ok synth core-" in err
    run_flow(output=tmp_path / "r", build_root=tmp_path / "b", catalog="flowcat:CATALOG",
             quiet=True)
    assert capsys.readouterr().err == ""


def test_store_writes_atomically_and_ignores_a_damaged_record(tmp_path):
    store = ResultStore(tmp_path)
    key = "0f" * 32
    store.put(key, {"status": "ok", "n": 1})
    assert store.get(key) == {"status": "ok", "n": 1} and key in store and len(store) == 1
    assert not list(tmp_path.glob("**/*.tmp*"))
    (tmp_path / key[:2] / f"{key}.json").write_text('{"status": "ok", "n"')   # cut short
    assert store.get(key) is None
    with pytest.raises(ValueError, match="a store key is a hex digest"):
        store.get("../../etc/passwd")


def test_job_keys_follow_what_decides_the_result():
    core = Core(name="x", component="flowcat_a:Slice", params=(Param("width", 8, (8, 16)),),
                summary="", golden="", testbench="dnnhw.sim.passthrough", report="flowcat")
    synth = Job("synth", "x", (("width", 8),), target="ice40-hx8k", seed=1)
    assert synth.key(core, "d1") == synth.key(core, "d1")
    others = [Job("synth", "x", (("width", 8),), target="ice40-hx8k", seed=2),
              Job("synth", "x", (("width", 8),), target="ice40-up5k", seed=1),
              Job("synth", "x", (("width", 8),), target="ice40-hx8k", seed=1, router="router2"),
              Job("synth", "x", (("width", 8),), target="ice40-hx8k", seed=1, placer="heap")]
    keys = {synth.key(core, "d1"), synth.key(core, "d2")} | {j.key(core, "d1") for j in others}
    assert len(keys) == 6
    # A job that sets no placer keeps the key it had before jobs could set one.
    assert "placer" not in synth.to_dict() and others[-1].to_dict()["placer"] == "heap"
    with pytest.raises(ValueError, match="needs the design digest"):
        synth.key(core)
    with pytest.raises(ValueError, match="job kind must be one of"):
        Job("place", "x")


def test_a_flow_config_placer_reaches_its_synth_job_and_build_dir():
    from dnnhw.flow.tasks import synth_build_dir
    core = Core(name="x", component="flowcat_a:Slice", params=(Param("width", 8, (8, 16)),),
                summary="", golden="", testbench="dnnhw.sim.passthrough", report="flowcat",
                flow=(FlowConfig({}, ("ice40-up5k",), sim=False, placer="heap", tier="quick"),))
    (job,) = plan_flow((core,))
    assert job.kind == "synth" and job.placer == "heap" and job.label.endswith("heap")
    assert synth_build_dir(core, {"width": 8}, "ice40-up5k", placer="heap").name.endswith(
        "-ice40-up5k-heap")


def test_a_flow_config_with_seeds_gets_one_synth_job_and_build_dir_per_seed():
    from dnnhw.flow.tasks import synth_build_dir
    core = Core(name="x", component="flowcat_a:Slice", params=(Param("width", 8, (8, 16)),),
                summary="", golden="", testbench="dnnhw.sim.passthrough", report="flowcat",
                flow=(FlowConfig({}, ("ice40-up5k", "ecp5-85f"), sim=False, tier="quick",
                                 seeds=(1, 2, 3)),))
    # The quick tier, the README's first command, builds the first seed only.
    assert [(j.target, j.seed) for j in plan_flow((core,))] == [("ice40-up5k", 1),
                                                                ("ecp5-85f", 1)]
    jobs = plan_flow((core,), tier="full")
    assert [(j.target, j.seed) for j in jobs] == [(t, s) for t in ("ice40-up5k", "ecp5-85f")
                                                  for s in (1, 2, 3)]
    assert len({j.key(core, "d") for j in jobs}) == len({j.label for j in jobs}) == 6
    dirs = {synth_build_dir(core, {"width": 8}, j.target, seed=j.seed) for j in jobs}
    assert len(dirs) == 6


@pytest.mark.parametrize("seeds", [(), [1, 2], (1, 1), (1, -1), (1, 2 ** 31), (1.0,)])
def test_flow_config_seeds_must_be_distinct_integers(seeds):
    with pytest.raises(ValueError, match=r"FlowConfig seeds must be a tuple of distinct "
                                         r"integers in 0\.\.2147483647, got "):
        FlowConfig({}, ("ice40-up5k",), seeds=seeds)


def test_workers_are_bounded_by_cores_and_memory(monkeypatch):
    monkeypatch.setattr(executor.os, "cpu_count", lambda: 16)
    pages = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 12 * 2**30 // 4096}
    monkeypatch.setattr(executor.os, "sysconf", lambda name: pages[name])
    assert executor.default_workers() == 12 // executor.JOB_MEMORY_GB
    monkeypatch.setattr(executor.os, "cpu_count", lambda: 1)
    assert executor.default_workers() == 1


def test_tiers_quick_is_a_subset_of_full():
    from dnnhw.catalog import CORES
    quick, full = set(plan_flow(CORES)), set(plan_flow(CORES, tier="full"))
    assert quick < full
    # One small configuration per core in the quick tier, built for one iCE40 target.
    for core in CORES:
        configs = core.configs("quick")
        assert len(configs) == 1
        assert all(t.startswith("ice40") for t in configs[0].targets)
    with pytest.raises(ValueError, match="unknown tier 'huge'; known tiers: quick, full"):
        plan_flow(CORES, tier="huge")


def test_a_new_core_gets_every_command_and_its_report_section(tmp_path, capsys, monkeypatch):
    """The register slice of tests/passthrough_core.py: a row and one file, nothing else."""
    monkeypatch.syspath_prepend(str(TESTS))
    cat = ["--catalog", "passthrough_core:CATALOG"]
    build = str(tmp_path / "build")
    assert main(cat + ["list"]) == 0
    assert "slice: a registered stream slice" in capsys.readouterr().out
    assert main(cat + ["generate", "slice", "-p", "width=16", "-o", str(tmp_path / "gen")]) == 0
    sidecar = json.loads((tmp_path / "gen" / "dnnhw_slice_width16.json").read_text())
    assert sidecar["latency"] == 1 and set(sidecar["streams"]) == {"i", "o"}
    assert main(cat + ["generate", "slice", "-p", "width=12"]) == 2
    assert "parameter 'width' must be one of 8, 16, got 12" in capsys.readouterr().err
    assert main(cat + ["sim", "slice", "--build-dir", build]) == 0
    assert "PASS" in capsys.readouterr().out
    assert main(cat + ["synth", "slice", "--target", "ice40-hx8k", "--build-dir", build]) == 0
    assert "dnnhw_slice_width8" in capsys.readouterr().out
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- dnnhw-flow:slice-results:begin -->\nold\n"
                      "<!-- dnnhw-flow:slice-results:end -->\nend\n")
    assert main(cat + ["flow", "--quiet", "--build-dir", build, "-o", str(tmp_path / "rep"),
                       "--readme", str(readme)]) == 0
    report = (tmp_path / "rep" / "report.md").read_text()
    assert report.index("## Summary") < report.index("## Register slice")
    assert "| slice | 2000 items in order |" in report
    assert "ice40-hx8k" in report and "analysis: {'widths': [8], 'doubled': [16]}" in report
    text = readme.read_text()
    assert "old" not in text and "### Register slice" in text and text.endswith("end\n")


def test_flow_and_sweep_through_a_dask_local_cluster(flowcat, tmp_path):
    from distributed import LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        code, records, _ = _flow(tmp_path, scheduler=cluster.scheduler_address)
        assert code == 0 and all(r["status"] == "ok" for r in records.values())
        assert run_sweep("core-a", {"width": ["8", "16"]}, targets=["ice40-hx8k"], seeds="1,2",
                         output=tmp_path / "sweep", build_root=tmp_path / "build",
                         catalog="flowcat:CATALOG", scheduler=cluster.scheduler_address,
                         quiet=True) == 0
    sweep = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert len(sweep["points"]) == 2
    for point in sweep["points"]:
        assert [s["seed"] for s in sorted(point["seeds"], key=lambda s: s["seed"])] == [1, 2]
        assert point["fmax_min"] <= point["fmax_median"] <= point["fmax_max"]
    assert sweep["pareto"] and (tmp_path / "sweep" / "pareto.png").stat().st_size > 1000
    assert "Fmax min / median / max" in (tmp_path / "sweep" / "sweep.md").read_text()


def test_pareto_front_keeps_the_points_nothing_beats():
    pts = [{"lut": 10, "fmax_median": 100}, {"lut": 20, "fmax_median": 150},
           {"lut": 30, "fmax_median": 120}, {"lut": 10, "fmax_median": 90}, {"failed": []}]
    assert pareto_front(pts) == pts[:2]
    # With a peak rate the merit is throughput: the wide, slow point is on the front too.
    rated = [{"lut": 10, "fmax_median": 200, "peak_rate": {"per_second_median": 1e9}},
             {"lut": 40, "fmax_median": 100, "peak_rate": {"per_second_median": 3e9}},
             {"lut": 50, "fmax_median": 150, "peak_rate": {"per_second_median": 2e9}}]
    assert pareto_front(rated) == rated[:2]


@pytest.mark.parametrize("argv,message", [
    (["sweep", "zvc-compress", "-p", "lanes=4,8"], "a sweep needs at least one --target"),
    (["sweep", "zvc-compress", "-p", "lanes=4,7", "--target", "ecp5-85f"],
     "parameter 'lanes' must be one of 4, 8, 16, 32, got 7"),
    (["sweep", "zvc-compress", "-p", "lanes", "--target", "ecp5-85f"], "--param takes NAME=V1,V2"),
    (["sweep", "zvc-compress", "--target", "ecp5-85f", "--seeds", "a"], "--seeds takes integers"),
    (["sweep", "zvc-compress", "--target", "xc7"], "unknown target 'xc7'"),
    (["flow", "--timeout", "-1"], "must be a positive number"),
    (["--catalog", "nowhere:CATALOG", "list"], "--catalog 'nowhere:CATALOG' names no catalog"),
])
def test_bad_flow_and_sweep_input_exits_2(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_jobs_start_largest_first(flowcat, tmp_path, monkeypatch):
    """With one worker, the builds start in order of their cost: ECP5 before iCE40."""
    started = []
    real = executor.execute

    def spy(spec, timeout=None):
        started.append(spec["label"])
        return real(spec, timeout)
    monkeypatch.setattr(executor, "execute", spy)
    jobs = [Job("synth", "core-a", (("width", 8),), target="ice40-hx8k", seed=1),
            Job("synth", "core-a", (("width", 8),), target="ecp5-85f", seed=1)]
    from flowcat import CATALOG as rows
    records = executor.run_jobs(jobs, catalog=rows, catalog_ref="flowcat:CATALOG",
                                build_root=tmp_path, workers=1, quiet=True)
    assert [r["status"] for r in records] == ["ok", "ok"]
    assert started == ["design core-a width=8", "synth core-a width=8 ecp5-85f",
                       "synth core-a width=8 ice40-hx8k"]
    assert executor.job_cost(jobs[1], 100) > executor.job_cost(jobs[0], 100) > \
        executor.job_cost(Job("sim", "core-a", simulator="verilator"), 100)


def test_sigterm_stops_the_flow_and_its_job_processes(flowcat, tmp_path):
    """kill (SIGTERM) of a running flow takes the Ctrl-C path: no job process outlives it."""
    import os
    import signal
    import subprocess
    import sys
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    flow = subprocess.Popen([sys.executable, "-m", "dnnhw.cli", "--catalog", "flowcat:SLEEPY",
                             "flow", "--skip-synth", "--quiet", "--build-dir", str(tmp_path / "b"),
                             "-o", str(tmp_path / "r")], env=env, stderr=subprocess.PIPE, text=True)
    spec = tmp_path / "b" / "jobs"
    started = time.monotonic()
    while not list(spec.glob("*/spec.json")) and time.monotonic() - started < 60:
        time.sleep(0.1)
    time.sleep(1.0)
    mine = f"dnnhw.flow.worker {tmp_path}"     # this flow's job processes, by their spec path
    children = subprocess.run(["pgrep", "-f", mine], capture_output=True, text=True).stdout.split()
    assert children, "the job process did not start"
    flow.send_signal(signal.SIGTERM)
    assert flow.wait(30) == 130
    err = flow.stderr.read()
    assert "interrupted" in err and "report of the jobs finished so far" in err
    # The report of the interrupted run names the job that did not finish.
    report = (tmp_path / "r" / "report.md").read_text()
    assert "interrupted: 1 not run" in report and "analysis core-a nap: not run" in report
    time.sleep(0.5)
    alive = subprocess.run(["pgrep", "-f", mine], capture_output=True, text=True).stdout.split()
    assert not alive
