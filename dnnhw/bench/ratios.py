"""``dnnhw bench ratios`` (also ``dnnhw ratios``): ZV against RL and ZL compression.

On a tensor of yours (``.npy``), or on ReLU-like tensors at AlexNet's published
densities (:mod:`dnnhw.workloads`). :func:`alexnet_rows` is also the main job's
analysis for the ZVC report.
"""

import argparse

import numpy as np

from ..golden.zvc import compression_ratios
from ..text import markdown_table
from . import Benchmark, Command
from ..workloads import ALEXNET_DENSITIES, alexnet_activations


__all__ = ["WINDOWS", "alexnet_rows", "main"]

#: The windows the report compares: the paper's fp32 window and an int16 one.
WINDOWS = ((32, 32), (8, 16))


def alexnet_rows(configs=None, *, seed=0, windows=WINDOWS):
    """ZV / RL / ZL ratios per AlexNet layer and window (``lanes``, ``width``).

    ``configs`` (the main job's parameter sets; it runs with ``uses_configs=False``) is
    not read: the table is the paper's comparison, the same for every configuration.
    """
    rows = []
    for layer, density in ALEXNET_DENSITIES.items():
        for lanes, width in windows:
            r = compression_ratios(alexnet_activations(layer, width, seed), lanes=lanes,
                                   width=width)
            rows.append({"layer": layer, "published_density": density, "lanes": lanes,
                         "width": width, **r})
    return rows


def _parser():
    p = argparse.ArgumentParser(prog="dnnhw bench ratios", description=__doc__.splitlines()[0])
    p.add_argument("tensor", nargs="?", help=".npy file (default: ReLU-like tensors at "
                   "AlexNet's published densities)")
    p.add_argument("--lanes", type=int, default=32)
    p.add_argument("--width", type=int, default=32, choices=(8, 16, 32))
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.tensor:
        r = compression_ratios(np.load(args.tensor), lanes=args.lanes, width=args.width)
        rows = [(args.tensor, r)]
    else:
        rows = [(f"AlexNet {r['layer']} ({r['published_density']:.0%} dense)", r)
                for r in alexnet_rows(seed=args.seed, windows=((args.lanes, args.width),))]
    print(f"lanes={args.lanes}, width={args.width}")
    print(markdown_table(["tensor", "density", "ZV", "RL", "ZL"],
                         [[name, f"{r['density']:.3f}", f"{r['zv']:.2f}x", f"{r['rl']:.2f}x",
                           f"{r['zl']:.2f}x"] for name, r in rows], align="lrrrr"))
    return 0


BENCHMARK = Benchmark(
    "ratios", f"{__name__}:main",
    "ZV against RL and ZL compression ratios, on a tensor or AlexNet's densities",
    commands=(Command("ratios", f"{__name__}:main",
                      "ZV vs RL vs ZL compression ratios (= dnnhw bench ratios; "
                      "`dnnhw ratios --help`)"),))
