"""The ``dnnhw`` command: list, generate, sim, synth, flow, ratios, bench.

Every subcommand is generic over the catalog (:mod:`dnnhw.catalog`).
"""

import argparse
import json
import sys
from pathlib import Path

from .catalog import CORES, ParameterError, get_core


def _parse_params(pairs):
    params = {}
    for pair in pairs or ():
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ParameterError(f"--param takes NAME=VALUE, got {pair!r}")
        params[name] = value
    return params


def _add_core_args(parser):
    parser.add_argument("core", help="catalog name of the core (see `dnnhw list`)")
    parser.add_argument("--param", "-p", action="append", metavar="NAME=VALUE",
                        help="set a core parameter (repeatable)")


def _resolve(args):
    core = get_core(args.core)
    return core, core.resolve(_parse_params(args.param))


def cmd_list(args):
    for core in CORES:
        print(f"{core.name}: {core.summary}")
        name_w = max(len(p.name) for p in core.params)
        default_w = max(len(str(p.default)) for p in core.params)
        legal_w = max(len(p.legal()) for p in core.params)
        for p in core.params:
            print(f"    {p.name:<{name_w}}  default {p.default!s:<{default_w}}  "
                  f"legal {p.legal():<{legal_w}}  {p.doc}")
        configs = []
        for flow in core.flow:
            text = ",".join(f"{k}={v}" for k, v in flow.params.items())
            configs.append(f"{text} [{' '.join(flow.targets) or 'sim only'}]")
        print(f"    flow: {'; '.join(configs)}")
    return 0


def cmd_generate(args):
    from .generate import generate
    core, params = _resolve(args)
    v_path, j_path, _ = generate(core.name, params, args.output)
    print(v_path)
    print(j_path)
    return 0


def cmd_sim(args):
    from .sim.runner import run_testbench, TestbenchFailure
    core, params = _resolve(args)
    config = json.loads(args.config) if args.config else None
    try:
        results = run_testbench(core.name, params, sim=args.sim, waves=args.waves,
                                build_root=args.build_dir, config=config, seed=args.seed)
    except TestbenchFailure as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        return 1
    from .report import summarize_sim
    print(summarize_sim(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n")
    return 0


def cmd_synth(args):
    from .synth.build import TARGETS, DoesNotFit, synthesize, format_qor_table
    core, params = _resolve(args)
    if args.target not in TARGETS:
        raise ParameterError(f"unknown target '{args.target}'; "
                             f"known targets: {', '.join(TARGETS)}")
    module = core.module_name(params)
    build_dir = Path(args.build_dir) / "synth" / f"{module}-{args.target}"
    try:
        qor = synthesize(core.build(params), name=module, target=args.target,
                         build_dir=build_dir, seed=args.seed, router=args.router)
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


def cmd_ratios(args):
    import numpy as np
    from .golden.zvc import compression_ratios, relu_like
    rows = []
    if args.tensor:
        tensor = np.load(args.tensor)
        rows.append((args.tensor, compression_ratios(tensor, lanes=args.lanes, width=args.width)))
    else:
        dtype = {8: np.int8, 16: np.int16, 32: np.float32}[args.width]
        for layer, density in (("conv0", 0.49), ("conv1", 0.36), ("conv4", 0.22), ("fc1", 0.31)):
            tensor = relu_like((64, 27, 27), density, dtype=dtype, rng=args.seed)
            rows.append((f"AlexNet {layer} ({density:.0%} dense)",
                         compression_ratios(tensor, lanes=args.lanes, width=args.width)))
    print(f"| tensor | density | ZV | RL | ZL |  (lanes={args.lanes}, width={args.width})")
    print("|---|---|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['density']:.3f} | {r['zv']:.2f}x | {r['rl']:.2f}x | {r['zl']:.2f}x |")
    return 0


def cmd_flow(args):
    from .report import run_flow
    return run_flow(output=Path(args.output), build_root=Path(args.build_dir),
                    cores=args.cores, targets=args.targets, skip_synth=args.skip_synth,
                    skip_sim=args.skip_sim, readme=args.readme)


def cmd_bench(args, rest):
    if args.what == "conv":
        from .bench.conv import main as bench_conv
        return bench_conv(rest)
    if args.what == "diffy":
        from .bench.diffy import main as bench_diffy
        return bench_diffy(rest)
    raise ParameterError(f"unknown benchmark '{args.what}'; known: conv, diffy")


def build_parser():
    parser = argparse.ArgumentParser(prog="dnnhw", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="cores, parameters, defaults, legal values")

    p = sub.add_parser("generate", help="write a core's Verilog and JSON sidecar")
    _add_core_args(p)
    p.add_argument("-o", "--output", default=".", help="output directory")

    p = sub.add_parser("sim", help="run a core's cocotb testbench")
    _add_core_args(p)
    p.add_argument("--sim", default="verilator", help="verilator (default) or icarus")
    p.add_argument("--waves", action="store_true", help="dump waveforms into the build dir")
    p.add_argument("--build-dir", default="dnnhw-build")
    p.add_argument("--config", help="testbench knobs as JSON, e.g. '{\"densities\": [0.5]}'")
    p.add_argument("--seed", type=int)
    p.add_argument("--json", help="write the measurements to this file")

    p = sub.add_parser("synth", help="out-of-context synthesis, place and route: a QoR record")
    _add_core_args(p)
    p.add_argument("--target", default="ice40-up5k")
    p.add_argument("--build-dir", default="dnnhw-build")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--router", help="nextpnr router: router1 (default) or router2 "
                   "(large congested designs)")
    p.add_argument("--json", help="write the QoR record to this file")

    p = sub.add_parser("flow", help="generate, verify and synthesize every core; write the report")
    p.add_argument("-o", "--output", default="dnnhw-report")
    p.add_argument("--build-dir", default="dnnhw-build")
    p.add_argument("--cores", nargs="*", help="only these cores")
    p.add_argument("--targets", nargs="*", help="only these targets")
    p.add_argument("--skip-synth", action="store_true")
    p.add_argument("--skip-sim", action="store_true")
    p.add_argument("--readme", help="also rewrite the QoR section of this README")

    p = sub.add_parser("ratios", help="ZV vs RL vs ZL compression ratios of a tensor")
    p.add_argument("tensor", nargs="?", help=".npy file (default: ReLU-like tensors at "
                   "AlexNet's published densities)")
    p.add_argument("--lanes", type=int, default=32)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("bench", help="benchmarks: `dnnhw bench conv --help`, "
                       "`dnnhw bench diffy --help`")
    p.add_argument("what", help="conv or diffy")
    return parser


def main(argv=None):
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    # `bench` passes the rest of the line to the benchmark's own parser.
    if argv[:1] == ["bench"] and len(argv) >= 2:
        args, rest = parser.parse_args(argv[:2]), argv[2:]
    else:
        args, rest = parser.parse_args(argv), []
    try:
        if args.command == "bench":
            return cmd_bench(args, rest)
        return {
            "list": cmd_list, "generate": cmd_generate, "sim": cmd_sim, "synth": cmd_synth,
            "flow": cmd_flow, "ratios": cmd_ratios,
        }[args.command](args)
    except ParameterError as error:
        print(f"dnnhw: error: {error}", file=sys.stderr)
        return 2
    except ValueError as error:
        print(f"dnnhw: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
