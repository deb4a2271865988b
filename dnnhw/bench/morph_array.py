"""``dnnhw morph run``: one layer on the simulated Morph array (Verilator), its counters
beside the model's. The RTL study's pieces are :mod:`dnnhw.sim.morph_study`.
"""

import argparse
import json
import sys
from pathlib import Path

from ..golden import morph_search
from ..sim.morph_study import scaled_c3d
from .morph import parse_layer


__all__ = ["run_main", "format_run"]


def _parser():
    p = argparse.ArgumentParser(prog="dnnhw morph run",
                                description="one layer on the simulated Morph array "
                                            "(Verilator), its counters beside the model's")
    p.add_argument("--layer", required=True,
                   help="C=..,F=..,H=..,W=..,K=..[,T,R,S,N,stride,padding] (or c3d:NAME, "
                        "scaled as in the RTL study)")
    p.add_argument("--mapping", default="energy",
                   help="a mapping JSON file (Mapping fields), or the optimizer's pick: "
                        "energy (default) or cycles")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="a parameter of the morph-array build (repeatable)")
    p.add_argument("--latency", type=int, default=8, help="the memory's latency (cycles)")
    p.add_argument("--build-root", default="dnnhw-build")
    p.add_argument("--json", type=Path, help="also write the run's record here")
    return p


def _layer(text):
    if text.startswith("c3d:"):
        name = text[4:]
        found = [l for l in scaled_c3d() if l.name == name]
        if not found:
            raise ValueError(f"--layer {text}: the C3D layers are "
                             f"{', '.join(l.name for l in scaled_c3d())}")
        return found[0]
    return parse_layer(text)


def run_main(argv=None):
    args = _parser().parse_args(argv)
    from ..catalog import ParameterError, get_core
    from ..flow.tasks import run_testbench
    try:
        layer = _layer(args.layer)
        overrides = dict(p.split("=", 1) for p in args.param)
        core = get_core("morph-array")
        core.resolve(overrides)
        if args.mapping in morph_search.OBJECTIVES:
            mapping_spec = args.mapping
        else:
            mapping_spec = json.loads(Path(args.mapping).read_text())
        if not isinstance(args.latency, int) or args.latency < 1:
            raise ValueError(f"--latency must be at least 1, got {args.latency}")
        # The mapping is resolved and checked here, so that a refusal names its reason
        # before any simulator starts.
        from ..sim.morph_loader import configure, resolve_mapping, shape_of
        shape = shape_of(core.build(overrides))
        mapping = resolve_mapping(layer, mapping_spec, shape, args.latency, 16)
        configure(layer, mapping, shape)
        mapping_spec = mapping.as_dict()
    except (ValueError, TypeError, ParameterError, OSError) as error:
        print(f"dnnhw morph run: error: {error}", file=sys.stderr)
        return 2
    spec = {"name": layer.name or "layer",
            "layer": {k: getattr(layer, k) for k in ("C", "F", "H", "W", "K", "T", "R", "S",
                                                    "N")}
            | {"stride": list(layer.stride), "padding": list(layer.padding)},
            "mappings": [mapping_spec]}
    result = run_testbench(core, overrides, build_root=args.build_root, testcase="layers",
                           config={"layers": [spec], "latency": args.latency,
                                   "random": None})
    if not result["passed"]:
        print(f"dnnhw morph run: error: {result.get('error')}", file=sys.stderr)
        return 1
    run = result["layers"][0]
    print(format_run(run))
    if args.json:
        args.json.write_text(json.dumps(run, indent=1) + "\n")
    return 0


def format_run(run):
    """The counters of one run beside the model's, as text."""
    measured, model = run["measured"], run["model"]
    lines = [f"layer {run['name']}: {run['layer']}",
             f"mapping {run['mapping']}", "",
             f"{'counter':<24}{'RTL':>14}{'model':>14}"]
    for level in ("dram", "l2", "l1"):
        for operand in ("inputs", "weights", "psums"):
            for d in ("reads", "writes"):
                lines.append(f"{level + ' ' + operand + ' ' + d:<24}"
                             f"{measured['traffic'][level][operand][d]:>14,}"
                             f"{model['traffic'][level][operand][d]:>14,}")
    lines += [f"{'MACs':<24}{measured['macs']:>14,}{model['macs']:>14,}",
              f"{'cycles':<24}{measured['cycles']:>14,}{model['cycles']['total']:>14,}",
              f"{'compute cycles':<24}{measured['compute_cycles']:>14,}"
              f"{model['cycles']['compute']:>14,}",
              f"{'stall cycles':<24}{measured['stall_cycles']:>14,}{'':>14}", "",
              f"PE utilization {run['utilization']:.1%} (compute phase "
              f"{run['compute_utilization']:.1%}); every counter equal to the model"]
    return "\n".join(lines)
