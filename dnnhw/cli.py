"""The ``dnnhw`` command: list, generate, sim, lint, synth, prove, flow, report, sweep,
board, bench, and the commands that benchmarks bring (``dnnhw --help`` lists them).

Every subcommand is generic over the catalog (:mod:`dnnhw.catalog`, or another one given
with ``--catalog module:attribute``) and the benchmark registry (:mod:`dnnhw.bench`).
User errors (a bad core, parameter, target, option or file) exit with status 2 and a
message naming what is wrong; anything else is a bug and keeps its traceback.
"""

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from .catalog import ParameterError, get_core


def _parse_params(pairs):
    params = {}
    for pair in pairs or ():
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ParameterError(f"--param takes NAME=VALUE, got {pair!r}")
        params[name] = value
    return params


def _catalog(args):
    from .flow.main import load_catalog
    try:
        return load_catalog(args.catalog)
    except (ImportError, AttributeError, ValueError) as error:
        raise ParameterError(f"--catalog {args.catalog!r} names no catalog: {error}") from None


def _resolve(args):
    core = get_core(args.core, _catalog(args))
    return core, core.resolve(_parse_params(args.param))


def _check_target(target):
    from .synth.build import TARGETS
    if target not in TARGETS:
        raise ParameterError(f"unknown target '{target}'; known targets: {', '.join(TARGETS)}")


def cmd_list(args):
    from .bench import get_benchmark
    for core in _catalog(args):
        print(f"{core.name}: {core.summary}")
        name_w = max(len(p.name) for p in core.params)
        default_w = max(len(str(p.default)) for p in core.params)
        legal_w = max(len(p.legal()) for p in core.params)
        for p in core.params:
            print(f"    {p.name:<{name_w}}  default {p.default!s:<{default_w}}  "
                  f"legal {p.legal():<{legal_w}}  {p.doc}")
        for tier in ("quick", "full"):
            configs = [f"{','.join(f'{k}={v}' for k, v in c.params.items())} "
                       f"[{' '.join(c.targets) or 'sim only'}]"
                       for c in core.flow if c.tier == tier]
            if configs:
                print(f"    flow ({tier}): {'; '.join(configs)}")
        print(f"    golden model: {core.golden}; testbench: {core.testbench}")
        extras = [f"report {core.report}"]
        if core.benchmark:
            extras.append(f"benchmark `dnnhw bench {core.benchmark}` "
                          f"({get_benchmark(core.benchmark).summary})")
        if core.docs:
            extras.append(f"docs {core.docs}")
        extras.append(f"proofs {core.proofs} (`dnnhw prove {core.name}`)")
        print(f"    {'; '.join(extras)}")
    return 0


def cmd_generate(args):
    from .generate import generate
    core, params = _resolve(args)
    v_path, j_path, _ = generate(core, params, args.output)
    print(v_path)
    print(j_path)
    return 0


def cmd_sim(args):
    from .flow.tasks import run_testbench
    from .report import summarize_sim
    from .sim.runner import TestbenchFailure
    from .synth.netlist import NETLISTS
    core, params = _resolve(args)
    if args.netlist is not None and args.netlist not in NETLISTS:
        raise ParameterError(f"--netlist must be one of {', '.join(NETLISTS)}, "
                             f"got {args.netlist!r}")
    try:
        config = json.loads(args.config) if args.config else None
    except ValueError as error:
        raise ParameterError(f"--config must be a JSON object: {error}") from None
    testcase = None
    if args.soak:
        if core.soak is None:
            soaked = ", ".join(c.name for c in _catalog(args) if c.soak is not None)
            raise ParameterError(f"core '{core.name}' has no soak yet; --soak takes "
                                 f"{soaked or 'no core of this catalog'}")
        if args.param or args.config:
            raise ParameterError("--soak runs the catalog's soak parameters and knobs; "
                                 "give it no --param or --config")
        params, config, testcase = (core.resolve(core.soak.params), core.soak.config,
                                    core.soak.testcase)
    try:
        results = run_testbench(core, params, sim=args.sim, waves=args.waves,
                                build_root=args.build_dir, config=config, seed=args.seed,
                                netlist=args.netlist, testcase=testcase)
    except TestbenchFailure as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        return 1
    print(summarize_sim(results, core))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n")
    return 0


def cmd_lint(args):
    from .flow.tasks import lint_core
    from .sim.lint import WAIVERS, format_findings
    if args.waivers:
        for waiver in WAIVERS:
            print(f"{waiver.rule}: {waiver.why}")
        return 0
    if args.core is None:
        raise ParameterError("dnnhw lint needs a core (see `dnnhw list`), or --waivers")
    core, params = _resolve(args)
    findings = lint_core(core, params, build_root=args.build_dir)
    print(f"{core.module_name(params)}: {format_findings(findings)}")
    return 1 if findings else 0


def cmd_synth(args):
    from .flow.tasks import synthesize_core
    from .synth.build import DoesNotFit, format_qor_table
    core, params = _resolve(args)
    _check_target(args.target)
    try:
        qor = synthesize_core(core, params, args.target, build_root=args.build_dir,
                              seed=args.seed, router=args.router, placer=args.placer)
    except DoesNotFit as error:
        # Not a usage error: the parameters are legal, the device is too small.
        print(f"dnnhw: {error}", file=sys.stderr)
        return 1
    print(format_qor_table([qor]))
    for line in qor.critical_path:
        print(f"  {line}")
    print(f"logs: {qor.yosys_log} {qor.nextpnr_log}")
    if args.json:
        Path(args.json).write_text(json.dumps(qor.to_dict(), indent=2) + "\n")
    return 0


def _jobs_options(args):
    return {"build_root": Path(args.build_dir), "workers": args.jobs,
            "scheduler": args.scheduler, "force": args.force, "timeout": args.timeout,
            "quiet": args.quiet, "catalog": args.catalog}


def cmd_prove(args):
    from .formal.run import SOLVERS, format_verdicts, prove
    core, params = _resolve(args)
    if args.solver not in SOLVERS:
        raise ParameterError(f"--solver must be one of {', '.join(SOLVERS)}, "
                             f"got {args.solver!r}")
    properties = core.properties(params)
    names = [p.name for p in properties]
    unknown = sorted(set(args.only or ()) - set(names))
    if unknown:
        raise ParameterError(f"core '{core.name}' has no property {', '.join(unknown)}; "
                             f"its properties are: {', '.join(names)}")
    if args.only:
        chosen = [p for p in properties if p.name in args.only]
    else:
        chosen = [p for p in properties if args.deep or not p.deep]
    if args.jobs is not None and args.jobs < 1:
        raise ParameterError(f"--jobs must be at least 1, got {args.jobs}")
    build_dir = Path(args.build_dir) / "prove" / core.module_name(params)
    verdicts = prove(lambda: core.build(params), chosen, build_dir, jobs=args.jobs,
                     solver=args.solver,
                     progress=lambda v: print(f"{v.name}: {v.status} ({v.seconds:.1f} s)",
                                              file=sys.stderr, flush=True))
    print(format_verdicts(verdicts))
    failed = [v for v in verdicts if not v.passed]
    for v in failed:
        print(f"{v.name}: {v.status}; log {v.log}" + (f", trace {v.trace}" if v.trace
                                                      else ""), file=sys.stderr)
    skipped = len(properties) - len(chosen)
    print(f"{len(verdicts) - len(failed)} of {len(verdicts)} properties passed"
          + (f" ({skipped} deep ones not run: --deep)" if skipped and not args.only else ""))
    if args.json:
        Path(args.json).write_text(json.dumps([v.to_dict() for v in verdicts], indent=2)
                                   + "\n")
    return 1 if failed else 0


def cmd_flow(args):
    from .flow.main import run_flow
    _catalog(args)
    if args.readme and not Path(args.readme).is_file():
        raise ParameterError(f"--readme {args.readme}: no such file")
    return run_flow(output=Path(args.output), tier="full" if args.full else "quick",
                    cores=args.cores, targets=args.targets, skip_synth=args.skip_synth,
                    skip_sim=args.skip_sim, readme=args.readme, run=not args.no_run,
                    **_jobs_options(args))


def cmd_report(args):
    from .report import write_report
    path = Path(args.report_json)
    try:
        saved = json.loads(path.read_text())
        records, run = saved["records"], saved.get("run", {})
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ParameterError(f"{path} is no report.json of dnnhw flow: {error}") from None
    if args.readme and not Path(args.readme).is_file():
        raise ParameterError(f"--readme {args.readme}: no such file")
    paths = write_report(records, catalog=_catalog(args), output=Path(args.output or path.parent),
                         readme=args.readme, run=run)
    print(f"report: {', '.join(str(p) for p in paths)}")
    return 0


def cmd_sweep(args):
    from .flow.sweep import parse_values, run_sweep
    _catalog(args)
    for target in args.target or ():
        _check_target(target)
    if args.readme and not Path(args.readme).is_file():
        raise ParameterError(f"--readme {args.readme}: no such file")
    return run_sweep(args.core, parse_values(args.param), targets=args.target or [],
                     seeds=args.seeds, router=args.router, output=Path(args.output),
                     readme=args.readme, **_jobs_options(args))


def cmd_bench(args, rest):
    from .bench import get_benchmark
    from .flow.tasks import import_object
    return import_object(get_benchmark(args.what).main)(rest)


def _positive(text):
    try:
        value = float(text)
    except ValueError:
        value = -1
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _add_job_options(p):
    p.add_argument("--build-dir", default="dnnhw-build",
                   help="build directories, job logs and the result store")
    p.add_argument("-j", "--jobs", type=int, help="jobs at once on this machine "
                   "(default: its cores, bounded by memory)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run the jobs on this Dask scheduler (tcp://host:8786) instead")
    p.add_argument("--force", action="store_true", help="ignore the result store: re-run all")
    p.add_argument("--timeout", type=_positive, metavar="SECONDS",
                   help="stop (and fail) any job that runs longer")
    p.add_argument("--quiet", action="store_true", help="no progress display")


def build_parser():
    from .bench import benchmarks, commands as bench_commands
    from .sim.runner import SIMULATORS
    from .synth.build import PLACERS, ROUTERS
    parser = argparse.ArgumentParser(prog="dnnhw", description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", default="dnnhw.catalog:CORES", metavar="MODULE:NAME",
                        help="the catalog of cores (default: dnnhw's own)")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="cores, parameters, defaults, legal values, configs")

    def core_args(p):
        p.add_argument("core", help="catalog name of the core (see `dnnhw list`)")
        p.add_argument("--param", "-p", action="append", metavar="NAME=VALUE",
                       help="set a core parameter (repeatable)")

    p = sub.add_parser("generate", help="write a core's Verilog and JSON sidecar")
    core_args(p)
    p.add_argument("-o", "--output", default=".", help="output directory")

    p = sub.add_parser("sim", help="run a core's cocotb testbench")
    core_args(p)
    p.add_argument("--sim", default="verilator", choices=SIMULATORS)
    p.add_argument("--waves", action="store_true", help="dump waveforms into the build dir")
    p.add_argument("--build-dir", default="dnnhw-build")
    p.add_argument("--config", help="testbench knobs as JSON, e.g. '{\"densities\": [0.5]}'")
    p.add_argument("--seed", type=int)
    p.add_argument("--json", help="write the measurements to this file")
    p.add_argument("--soak", action="store_true", help="the core's million-beat run "
                   "under random stalls on every stream (its parameters and knobs)")
    p.add_argument("--netlist", metavar="NETLIST", help="simulate what Yosys synthesized: "
                   "generic (Yosys synth) or a target's mapped netlist with Yosys's cell "
                   "models, e.g. ice40-up5k")

    p = sub.add_parser("lint", help="verilator --lint-only -Wall on a core's Verilog, "
                       "under the project's waivers (--waivers lists them, with why)")
    p.add_argument("core", nargs="?", help="catalog name of the core (see `dnnhw list`)")
    p.add_argument("--param", "-p", action="append", metavar="NAME=VALUE",
                   help="set a core parameter (repeatable)")
    p.add_argument("--waivers", action="store_true", help="list the waivers and exit")
    p.add_argument("--build-dir", default="dnnhw-build")

    p = sub.add_parser("synth", help="out-of-context synthesis, place and route: a QoR record")
    core_args(p)
    p.add_argument("--target", default="ice40-up5k")
    p.add_argument("--build-dir", default="dnnhw-build")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--router", choices=ROUTERS, help="nextpnr router (default router1; "
                   "router2 for large congested designs)")
    p.add_argument("--placer", choices=PLACERS, help="nextpnr placer (default: the "
                   "target's; heap legalizes carry chains in a nearly full UP5K)")
    p.add_argument("--json", help="write the QoR record to this file")

    p = sub.add_parser("prove", help="check a core's formal properties (stream rules, "
                       "counting, liveness, covers) with SymbiYosys")
    core_args(p)
    p.add_argument("--deep", action="store_true",
                   help="also the slow properties (deep BMCs of the counting arguments)")
    p.add_argument("--only", action="append", metavar="PROPERTY",
                   help="only this property (repeatable)")
    p.add_argument("--solver", default="boolector", help="boolector (default) or z3")
    p.add_argument("-j", "--jobs", type=int, help="solver runs at once (default: "
                   "the CPU count)")
    p.add_argument("--build-dir", default="dnnhw-build")
    p.add_argument("--json", help="write the verdicts to this file")

    p = sub.add_parser("flow", help="the main job: generate, verify and synthesize every "
                       "core, write the report")
    p.add_argument("--full", action="store_true",
                   help="the paper-scale matrix (default: one small configuration per core)")
    p.add_argument("-o", "--output", default="dnnhw-report")
    p.add_argument("--cores", nargs="*", help="only these cores")
    p.add_argument("--targets", nargs="*", help="only these targets")
    p.add_argument("--skip-synth", action="store_true")
    p.add_argument("--skip-sim", action="store_true")
    p.add_argument("--readme", help="also rewrite the generated sections of this README")
    p.add_argument("--no-run", action="store_true",
                   help="report what the store holds for this run, running nothing")
    _add_job_options(p)

    p = sub.add_parser("report", help="render a flow's report (and README sections) again "
                       "from its report.json, running nothing")
    p.add_argument("report_json", help="the report.json a `dnnhw flow` wrote")
    p.add_argument("-o", "--output", help="where to write (default: beside the report.json)")
    p.add_argument("--readme", help="also rewrite the generated sections of this README")

    p = sub.add_parser("sweep", help="synthesize the cross product of parameter values "
                       "and seeds: table, JSON, Pareto plot")
    p.add_argument("core", help="catalog name of the core")
    p.add_argument("--param", "-p", action="append", metavar="NAME=V1,V2,...",
                   help="values of a parameter (repeatable; others take their defaults)")
    p.add_argument("--target", action="append", help="target (repeatable)")
    p.add_argument("--seeds", default="1", help="nextpnr seeds, e.g. 1,2,3")
    p.add_argument("--router", choices=ROUTERS)
    p.add_argument("-o", "--output", default="dnnhw-sweep")
    p.add_argument("--readme", help="also rewrite this README's sweep-CORE section")
    _add_job_options(p)

    from .boards.cli import add_board_parser
    add_board_parser(sub, core_args)

    for command in bench_commands().values():
        sub.add_parser(command.name, help=command.help, add_help=False)

    p = sub.add_parser("bench", help="benchmarks: " + "; ".join(
        f"`{name}`: {b.summary}" for name, b in benchmarks().items()), add_help=False)
    p.add_argument("what", nargs="?", help=f"the benchmark: {', '.join(benchmarks())}")
    return parser


def cmd_board(args):
    from .boards.cli import cmd_board
    return cmd_board(args)


def _terminate(signum, frame):
    # A SIGTERM (kill, a CI timeout) takes the Ctrl-C path: the job processes, each in a
    # process group of its own, are killed, and the store keeps what finished.
    raise KeyboardInterrupt


def main(argv=None):
    """Run the command line ``argv``; return the exit status (argparse's own usage errors
    and ``--help`` included, so that callers get a status, never a ``SystemExit``)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        return _main(argv)
    except SystemExit as exit:
        return exit.code


def _main(argv):
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    # `bench NAME` and the benchmarks' own commands (`ratios`, ...) pass the rest of the
    # line to the benchmark's own parser.
    at = 2 if argv[:1] == ["--catalog"] else 0     # where the command word is
    command = argv[at:at + 1]
    try:
        if command == ["bench"] and len(argv) > at + 1:
            return cmd_bench(parser.parse_args(argv[:at + 2]), argv[at + 2:])
        from .bench import commands as bench_commands
        if command and command[0] in bench_commands():
            from .flow.tasks import import_object
            parser.parse_args(argv[:at + 1])
            return import_object(bench_commands()[command[0]].main)(argv[at + 1:])
        args = parser.parse_args(argv)
        if args.command == "bench":
            from .bench import benchmarks
            raise ParameterError(f"dnnhw bench needs a benchmark name; known: "
                                 f"{', '.join(benchmarks())} (`dnnhw bench NAME --help`)")
        return {
            "list": cmd_list, "generate": cmd_generate, "sim": cmd_sim, "lint": cmd_lint,
            "synth": cmd_synth,
            "prove": cmd_prove,
            "flow": cmd_flow, "sweep": cmd_sweep, "report": cmd_report,
            "board": cmd_board,
        }[args.command](args)
    except ParameterError as error:
        print(f"dnnhw: error: {error}", file=sys.stderr)
        return 2
    except FileNotFoundError as error:
        print(f"dnnhw: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dnnhw: interrupted; every finished job is in the store", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
