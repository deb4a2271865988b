"""Morph's claim on our own array: per-layer mappings against one fixed mapping, both run
on the RTL, and ``dnnhw morph run``: one layer on the simulated array, its counters
beside the model's.

:func:`scaled_c3d`
    C3D conv1 to conv5b shrunk for RTL simulation, its channel ratios kept.
:func:`study_mappings`
    Per layer, the optimizer's energy-best mapping for a build (Morph) and the best single
    mapping for every layer (the fixed dataflow, as in ``dnnhw bench morph``).
:func:`energy_pj`
    A run's energy from its counters: each level's reads and writes times its energy per
    word, plus the MACs.
:func:`run_main`
    ``dnnhw morph run --layer ... [--mapping ...]``.
"""

import argparse
import json
import sys
from pathlib import Path

from ..golden import morph, morph_search
from ..sim.morph_loader import check, search_hardware
from .morph import _clip, baseline_mapping, layers as c3d_model_layers, parse_layer


__all__ = ["scaled_c3d", "study_mappings", "energy_pj", "run_main"]


def scaled_c3d(*, side=16, channel_scale=16, frame_scale=4):
    """C3D conv1 to conv5b with a ``side x side`` first frame (halving at each pooling),
    channels divided by ``channel_scale`` (conv1 keeps its 3 inputs) and frames by
    ``frame_scale``, at least one of each: the channel ratios of the network, small enough
    to simulate."""
    out = []
    for layer in c3d_model_layers(side):
        c = layer.C if layer.C <= 3 else max(1, layer.C // channel_scale)
        out.append(morph.Layer(C=c, F=max(1, layer.F // frame_scale), H=layer.H, W=layer.W,
                               K=max(1, layer.K // channel_scale), T=layer.T, R=layer.R,
                               S=layer.S, stride=layer.stride, padding=layer.padding,
                               name=layer.name))
    return out


def study_mappings(shape, memory_latency, network=None, *, max_l2=16):
    """``[(layer, morph mapping, fixed mapping), ...]`` for ``network`` (default
    :func:`scaled_c3d`) on the build ``shape``: the energy-best mapping per layer, and the
    best single mapping for all of them (tiles clipped to smaller layers). Both legal on
    the build (the search's L1 is the build's smallest buffer, see
    :func:`~dnnhw.sim.morph_loader.search_hardware`)."""
    network = scaled_c3d() if network is None else network
    hardware = search_hardware(shape, memory_latency)
    optima = [morph_search.best_mapping(layer, hardware, "energy", max_l2=max_l2).mapping
              for layer in network]
    fixed, _, _ = baseline_mapping(network, hardware, optima)
    out = []
    for layer, best in zip(network, optima):
        clipped = _clip(fixed, layer)
        for mapping in (best, clipped):
            problems = check(layer, mapping, shape)
            assert not problems, (layer.name, mapping.describe(), problems)
        out.append((layer, best, clipped))
    return out


def energy_pj(counters, energy_per_word):
    """``{"dram", "l2", "l1", "mac", "total"}`` in pJ from a run's counters
    (:func:`~dnnhw.sim.morph_loader.counters_by_name`) and ``energy_per_word`` (a
    :class:`~dnnhw.golden.morph.Hardware`'s ``energy_pj``)."""
    out = {}
    for level in ("dram", "l2", "l1"):
        words = sum(counters["traffic"][level][op][d] for op in ("inputs", "weights", "psums")
                    for d in ("reads", "writes"))
        out[level] = words * energy_per_word[level]
    out["mac"] = counters["macs"] * energy_per_word["mac"]
    out["total"] = sum(out.values())
    return out


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
