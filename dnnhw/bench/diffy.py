"""Diffy on real photographs through a small denoising-style conv stack (``dnnhw bench diffy``).

Feeds photographs that ship inside installed packages (scikit-image's sample images and
matplotlib's ``grace_hopper.jpg``; nothing is downloaded) through a DnCNN-like stack of
3x3 convolutions with ReLU, in 16-bit fixed point, and measures with the golden models of
:mod:`dnnhw.golden.diffy_published`, per layer and in total: effectual terms per activation raw vs
delta, zero fractions, and the cycles of a value-agnostic bit-parallel engine
(DaDianNao-like), Stripes, Pragmatic and Diffy on the paper's tile (16 lanes x 16 filters
x 16 windows, B = 2), beside the paper's figures (7.1x over value-agnostic, 1.41x over
Pragmatic, 1.9 vs 3.6 terms per activation).

**Images.** ``--resize crop`` (default) takes the central ``size x size`` pixels at
native resolution; ``--resize downscale`` averages ``f x f`` blocks of the largest central
square (``f = min(H, W) // size``) and rounds to whole 8-bit pixels. RGB is 3 channels (a
grey image is repeated three times). ``--noise SIGMA`` adds fixed-seed Gaussian noise of
SIGMA pixel levels (the input a denoiser sees), rounded and clipped to 0..255.

**Fixed point.** Every tensor is signed 16-bit two's complement. A pixel ``p`` in 0..255 is
the real value ``p / 256`` with ``F`` fractional bits (``--frac-bits``, default 8):
``x_int = p << (F - 8)``, so by default ``x_int = p`` (Q7.8). Trailing zero bits cost only
Stripes (its precision trims leading bits); the term-serial engines see the same relative
term offsets for every F, and the later layers are identical for every F. Each layer's
weights get the most fractional bits ``Fw`` (<= 15) that fit its largest weight in 16 bits.
Each layer writes back ``saturate(relu(acc + 2**(s-1)) >> s)`` (round half up; no ReLU on
the last layer) with a per-layer shift ``s`` chosen by calibration (``calibrate``): the
smallest ``s`` that puts the layer's largest output over the calibration inputs (the
benchmarked images) at or below ``2**(15 - headroom) - 1`` (``--headroom``, default 1
bit), i.e. per-layer dynamic fixed point as a profiler would set it. The output then has
``F_out = F_in + Fw - s`` fractional bits; the tables list ``Fw``, ``s`` and ``F_out``.

**The stack** (``stack_weights``; no training, deterministic): conv1 (3 -> C) is a designed
filter bank: Gaussian smoothing of R, G and B; +/- pairs (for ReLU) of Sobel x / y, the
two diagonal gradients and a Laplacian on the luma; colour-opponent R-G (+/-) and B-Y
smoothed; beyond 16 channels, +/- pairs of 3x3 Gabor-like gratings at evenly spaced
orientations. The hidden layers (C -> C) are fixed-seed Gaussian random filters with He
scaling (``--hidden random``, default; standard deviation ``sqrt(2 / (9 C))``) or, as a
bracket for trained imaging nets whose features stay image-like, random channel mixing
times a 3x3 Gaussian (``--hidden smooth``). The last layer (C -> 3, no ReLU: the residual
a DnCNN predicts) is random with standard deviation ``sqrt(1 / (9 C))``. Stride 1,
padding 1 everywhere. Weight scales do not matter beyond rounding: calibration sets the
activation scale.

With ``--out DIR`` it writes ``diffy_bench.md`` and ``diffy_bench.json``.
"""

import argparse
import dataclasses
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from dnnhw.bench import Benchmark
from dnnhw.text import markdown_table
from dnnhw.workloads import (
    DEFAULT_IMAGES, HIDDEN, IMAGES, WIDTH, ConvLayer, StackSpec, add_noise, build_stack,
    calibrate, crop_layers, first_layer_bank, image_input, load_image, prepare_image,
    requantize, run_stack, stack_weights, to_fixed,
)
from dnnhw.golden import diffy_published as golden

__all__ = [
    "IMAGES", "DEFAULT_IMAGES", "PAPER", "HIDDEN", "ConvLayer", "StackSpec", "load_image",
    "prepare_image", "add_noise", "to_fixed", "image_input", "first_layer_bank",
    "stack_weights", "calibrate", "build_stack", "requantize", "run_stack", "crop_layers",
    "paper_tile", "diffy_pallet_cycles", "bench_image", "summarize", "render_markdown", "main",
]

#: The paper's figures (REFERENCE.md, Mahmoud et al., MICRO 2018) on computational-imaging
#: DNNs; the lineage figures come from the Stripes and Pragmatic papers (classification).
PAPER = {
    "diffy_over_bit_parallel": 7.1,
    "diffy_over_pragmatic": 1.41,
    "raw_terms_per_activation": 3.6,
    "delta_terms_per_activation": 1.9,
    "delta_sparsity": 0.48,
    "raw_sparsity": 0.43,
    "stripes_over_bit_parallel": 1.92,
    "pragmatic_over_bit_parallel": 2.6,
}


# -- measurement -----------------------------------------------------------------------------

def paper_tile(sync="windows", tiles=16):
    """The paper's tile: 16 lanes x 16 filters x 16 windows, B = 2 (``tiles`` of them)."""
    return golden.TileConfig(lanes=16, filters=16, windows=16, shifter_bits=2, tiles=tiles,
                             sync=sync)


ENGINES = ("bit_parallel", "stripes", "pragmatic", "diffy")


def _passes(layer, tile):
    return -(-layer.out_channels // (tile.filters * tile.tiles))


def diffy_pallet_cycles(x, layer, tile):
    """Diffy's cycles per pallet of one image's layer, int64 ``(P,)``, pallet lockstep.

    The max over the W columns of the brick steps of each pallet of ``window_deltas``
    (the published ``sync="windows"`` rule without column registers): the sum times the
    filter passes is ``diffy_cycles`` for such a tile.
    """
    d = golden.window_deltas(np.asarray(x)[None], (3, 3), layer.stride, layer.padding)
    values, valid = golden.pallets(d, tile)
    masks = golden.term_masks(values, WIDTH, "best", delta=True)
    steps = golden.brick_steps_masks(masks, tile.shifter_bits, empty_cycles=tile.empty_cycles)
    return np.where(valid[None], steps, 0)[0].max(axis=1)


def bench_image(name, x_int, layers, tile, log=None):
    """Run the stack on one image and measure every layer; a list of record dicts."""
    inputs, _, saturated = run_stack(x_int, layers)
    records = []
    for x, layer, sat in zip(inputs, layers, saturated):
        start = time.perf_counter()
        report = golden.layer_report(x, layer.weights, layer.stride, layer.padding, tile,
                                     width=WIDTH)
        stats = report["stats"]
        pallet_cycles = diffy_pallet_cycles(x, layer, tile)
        passes = _passes(layer, tile)
        record = dict(
            image=name, layer=layer.name, in_channels=layer.in_channels,
            out_channels=layer.out_channels, height=int(x.shape[1]), width=int(x.shape[2]),
            weight_frac_bits=layer.weight_frac_bits, shift=layer.shift,
            in_frac_bits=layer.in_frac_bits, out_frac_bits=layer.out_frac_bits,
            relu=layer.relu, activations=stats["activations"],
            raw_terms=stats["raw_terms_per_activation"] * stats["activations"],
            delta_terms=stats["delta_terms_per_activation"] * stats["activations"],
            raw_terms_per_activation=stats["raw_terms_per_activation"],
            delta_terms_per_activation=stats["delta_terms_per_activation"],
            raw_zero_fraction=stats["raw_zero_fraction"],
            delta_zero_fraction=stats["delta_zero_fraction"],
            window_raw_terms_per_activation=stats["window_raw_terms_per_activation"],
            window_delta_terms_per_activation=stats["window_delta_terms_per_activation"],
            stripes_precision=stats["stripes_layer_precision"],
            input_max=int(x.max()), input_min=int(x.min()), output_saturated=sat,
            pallets=int(pallet_cycles.size) * passes,
            # pallets (times filter passes) taking 0, 1, 2, ... cycles in lockstep
            diffy_pallet_histogram=(np.bincount(pallet_cycles) * passes).tolist(),
            cycles=dict(report["cycles"]), speedup=dict(report["speedup"]),
            seconds=time.perf_counter() - start)
        records.append(record)
        if log:
            log(f"{name:13s} {layer.name:7s} {layer.in_channels:3d}->{layer.out_channels:<3d} "
                f"shift {layer.shift:2d}  terms raw {record['raw_terms_per_activation']:.2f} "
                f"delta {record['delta_terms_per_activation']:.2f}  Diffy over BP "
                f"{record['speedup']['diffy_over_bit_parallel']:.2f}x, Stripes "
                f"{record['speedup']['diffy_over_stripes']:.2f}x, Pragmatic "
                f"{record['speedup']['diffy_over_pragmatic']:.2f}x  ({record['seconds']:.1f} s)")
    return records


def _aggregate(records):
    """Totals of a group of records: summed cycles, ratios of sums, activation-weighted terms."""
    cycles = {e: sum(r["cycles"][e] for r in records) for e in ENGINES}
    n = sum(r["activations"] for r in records)
    pallets = sum(r["pallets"] for r in records)
    histogram = np.zeros(max(len(r["diffy_pallet_histogram"]) for r in records), dtype=np.int64)
    for r in records:
        histogram[:len(r["diffy_pallet_histogram"])] += r["diffy_pallet_histogram"]
    speedup = {f"diffy_over_{e}": cycles[e] / cycles["diffy"] for e in ENGINES[:3]}
    speedup["pragmatic_over_bit_parallel"] = cycles["bit_parallel"] / cycles["pragmatic"]
    speedup["stripes_over_bit_parallel"] = cycles["bit_parallel"] / cycles["stripes"]
    return dict(
        layers=len(records), activations=n, cycles=cycles, pallets=pallets, speedup=speedup,
        raw_terms_per_activation=sum(r["raw_terms"] for r in records) / n,
        delta_terms_per_activation=sum(r["delta_terms"] for r in records) / n,
        raw_zero_fraction=sum(r["raw_zero_fraction"] * r["activations"] for r in records) / n,
        delta_zero_fraction=sum(r["delta_zero_fraction"] * r["activations"] for r in records) / n,
        diffy_cycles_per_pallet=cycles["diffy"] / pallets,
        pragmatic_cycles_per_pallet=cycles["pragmatic"] / pallets,
        diffy_pallet_histogram=histogram.tolist(),
        diffy_one_cycle_pallets=float(histogram[1] / pallets) if len(histogram) > 1 else 0.0,
        diffy_median_pallet_cycles=int(np.searchsorted(np.cumsum(histogram), pallets / 2)))


def summarize(records):
    """Totals per image, per layer (over images), without the first layer and over all."""
    images = list(dict.fromkeys(r["image"] for r in records))
    layer_names = list(dict.fromkeys(r["layer"] for r in records))
    first = layer_names[0] if layer_names else None
    return dict(
        per_image={i: _aggregate([r for r in records if r["image"] == i]) for i in images},
        per_layer={n: _aggregate([r for r in records if r["layer"] == n]) for n in layer_names},
        without_first_layer=(_aggregate([r for r in records if r["layer"] != first])
                             if len(layer_names) > 1 else None),
        total=_aggregate(records))


# -- report ----------------------------------------------------------------------------------

def _x(value):
    return f"{value:.2f}x"


def _pct(value):
    return f"{100 * value:.0f} %"


def render_comparison(total):
    """The paper's figures beside ours (markdown table)."""
    s = total["speedup"]
    rows = [
        ["effectual terms / activation, raw", f"{PAPER['raw_terms_per_activation']}",
         f"{total['raw_terms_per_activation']:.2f}"],
        ["effectual terms / activation, delta", f"{PAPER['delta_terms_per_activation']}",
         f"{total['delta_terms_per_activation']:.2f}"],
        ["zeros raw / delta (ours: zero activations)", "43 % / 48 % (\"sparsity\")",
         f"{_pct(total['raw_zero_fraction'])} / {_pct(total['delta_zero_fraction'])}"],
        ["Diffy over value-agnostic (DaDianNao-like)", _x(PAPER["diffy_over_bit_parallel"]),
         _x(s["diffy_over_bit_parallel"])],
        ["Diffy over Pragmatic", _x(PAPER["diffy_over_pragmatic"]), _x(s["diffy_over_pragmatic"])],
        ["Diffy over Stripes", "not given", _x(s["diffy_over_stripes"])],
        ["Pragmatic over value-agnostic", "5.0x implied (7.1 / 1.41)",
         _x(s["pragmatic_over_bit_parallel"])],
        ["Stripes over value-agnostic", "1.92x (Stripes' paper, classification)",
         _x(s["stripes_over_bit_parallel"])],
        ["Diffy cycles per pallet (16 windows x 16 lanes)", "2.25 implied (16 / 7.1)",
         f"{total['diffy_cycles_per_pallet']:.2f} (median {total['diffy_median_pallet_cycles']}, "
         f"{_pct(total['diffy_one_cycle_pallets'])} take 1 cycle)"],
    ]
    return markdown_table(["", "paper", "measured"], rows)


def _layer_row(name, lay, a, records):
    return [name, f"{lay['in_channels']}->{lay['out_channels']}",
            f"{lay['weight_frac_bits']} / {lay['shift']} / {lay['out_frac_bits']}",
            f"{a['raw_terms_per_activation']:.2f}", f"{a['delta_terms_per_activation']:.2f}",
            _pct(a["raw_zero_fraction"]), _pct(a["delta_zero_fraction"]),
            _precision_range(records, name),
            f"{a['cycles']['bit_parallel'] / 1e6:.3f}", f"{a['cycles']['stripes'] / 1e6:.3f}",
            f"{a['cycles']['pragmatic'] / 1e6:.3f}", f"{a['cycles']['diffy'] / 1e6:.3f}",
            f"{a['diffy_cycles_per_pallet']:.2f}", _pct(a["diffy_one_cycle_pallets"]),
            _x(a["speedup"]["diffy_over_bit_parallel"]), _x(a["speedup"]["diffy_over_stripes"]),
            _x(a["speedup"]["diffy_over_pragmatic"])]


def _summary_cells(a, bold=False):
    cells = [f"{a['raw_terms_per_activation']:.2f}", f"{a['delta_terms_per_activation']:.2f}",
             _pct(a["raw_zero_fraction"]), _pct(a["delta_zero_fraction"]),
             _x(a["speedup"]["diffy_over_bit_parallel"]), _x(a["speedup"]["diffy_over_stripes"]),
             _x(a["speedup"]["diffy_over_pragmatic"]),
             _x(a["speedup"]["pragmatic_over_bit_parallel"])]
    return [f"**{c}**" for c in cells] if bold else cells


def render_markdown(meta, records, summary):
    layers = meta["layers"]
    input_format = f"Q{15 - meta['frac_bits']}.{meta['frac_bits']}"
    noise = f", Gaussian noise sigma {meta['noise']:g} levels" if meta["noise"] else ""
    parts = [
        "# Diffy on photographs: golden-model benchmark",
        "",
        f"{len(meta['images'])} images ({', '.join(meta['images'])}), "
        f"{meta['size']}x{meta['size']} ({meta['resize']}{noise}), 16-bit pixels in "
        f"{input_format}; a {meta['depth']}-layer DnCNN-like stack, {meta['channels']} "
        f"channels, {meta['hidden']} hidden filters (seed {meta['seed']}), per-layer shifts "
        f"calibrated on these images with {meta['headroom']} bit(s) of headroom; tile "
        f"{meta['tile_text']}. Cycles are summed over layers and images; speedups are ratios "
        "of the sums; terms per activation are averaged over every layer input "
        "(activation-weighted), deltas along X as Diffy stores them.",
        "",
        "## Paper vs measured",
        "",
        render_comparison(summary["total"]),
    ]
    if summary["without_first_layer"] is not None:
        rest = summary["without_first_layer"]
        first = summary["per_layer"][layers[0]["name"]]
        parts += ["", f"The first layer alone (pixels in): terms raw "
                  f"{first['raw_terms_per_activation']:.2f} / delta "
                  f"{first['delta_terms_per_activation']:.2f}, Diffy over value-agnostic "
                  f"{_x(first['speedup']['diffy_over_bit_parallel'])}, over Pragmatic "
                  f"{_x(first['speedup']['diffy_over_pragmatic'])}. The other layers: terms "
                  f"{rest['raw_terms_per_activation']:.2f} / "
                  f"{rest['delta_terms_per_activation']:.2f}, "
                  f"{_x(rest['speedup']['diffy_over_bit_parallel'])} and "
                  f"{_x(rest['speedup']['diffy_over_pragmatic'])}."]
    parts += [
        "", "## Per layer (all images)", "",
        "Fw / s / F_out: weight fractional bits, write-back shift, output fractional bits. "
        "Cycles in millions (one 16-tile accelerator). \"pallet\": Diffy's mean cycles per "
        "pallet and the share of pallets taking one cycle.",
        "",
        markdown_table(["layer", "shape", "Fw / s / F_out", "terms raw", "terms delta", "zeros raw",
                "zeros delta", "Stripes bits", "BP Mcyc", "Stripes", "Pragmatic", "Diffy",
                "pallet", "1-cycle", "Diffy/BP", "Diffy/Stripes", "Diffy/Pragmatic"],
               [_layer_row(lay["name"], lay, summary["per_layer"][lay["name"]], records)
                for lay in layers]),
        "", "## Per image (all layers)", "",
        markdown_table(["image", "terms raw", "terms delta", "zeros raw", "zeros delta",
                "Diffy/BP", "Diffy/Stripes", "Diffy/Pragmatic", "Pragmatic/BP"],
               [[name] + _summary_cells(a) for name, a in summary["per_image"].items()]
               + [["**all**"] + _summary_cells(summary["total"], bold=True)]),
        "",
        f"Saturated outputs: {sum(r['output_saturated'] for r in records)} of "
        f"{sum(r['activations'] // r['in_channels'] * r['out_channels'] for r in records)}. "
        f"Largest activation: {max(r['input_max'] for r in records)} "
        f"(of {golden.value_range(WIDTH)[1]}). Run time {meta['seconds']:.0f} s.",
    ]
    return "\n".join(parts)


def _precision_range(records, layer):
    bits = [r["stripes_precision"] for r in records if r["layer"] == layer]
    return str(min(bits)) if min(bits) == max(bits) else f"{min(bits)}-{max(bits)}"


# -- command line ----------------------------------------------------------------------------

# --------------------------------------------------------------------------
# the RTL tile on a crop: the golden speedups confirmed by measured cycle counts

#: Tiles the RTL check builds: every mode at one geometry, plus the DaDianNao-shaped
#: bit-parallel baseline (one window per cycle).
RTL_TILES = (
    ("diffy", 4), ("pragmatic", 4), ("stripes", 4), ("bitparallel", 4), ("bitparallel", 1),
)
RTL_GEOMETRY = {"lanes": 4, "filters": 4}


#: The main job's area comparison: a 32x32 crop of the astronaut through a 3-layer,
#: 16-channel 3x3 + ReLU stack (16-bit, like the ECP5 tiles it is run on).
AREA_WORKLOAD = {"image": "astronaut", "size": 32, "channels": 16, "depth": 3}


def area_workload_cycles(configs):
    """The main job's analysis for the area-normalized table: per ``diffy-tile``
    parameter set of width 16 (narrower builds are not comparable on a 16-bit workload),
    the cycles of :data:`AREA_WORKLOAD` from the golden model the RTL matches step for
    step, plus the tile's pipeline latency per layer."""
    from ..golden.diffy_tile import published_cycles
    from ..rtl.diffy_tile import DiffyTile
    layers = crop_layers(**AREA_WORKLOAD)
    rows = []
    for params in configs:
        if params["width"] != 16:
            continue
        geometry = {k: params[k] for k in ("mode", "lanes", "filters", "windows", "width",
                                            "encoding", "shifter_bits")}
        latency = DiffyTile.latency_of(params["mode"])
        cycles = sum(published_cycles(x, w, stride, padding, **geometry) + latency - 1
                     for x, w, stride, padding in layers)
        rows.append({"params": params, "cycles": int(cycles)})
    return {"workload": AREA_WORKLOAD, "rows": rows}


def rtl_crop(image="astronaut", size=16, channels=4, depth=3, *, build_root="dnnhw-build",
             log=print):
    """Run :func:`crop_layers` through the ``diffy-tile`` RTL in every mode (cocotb,
    Verilator) and return per-tile rows: cycles measured stall-free (first input to last
    output), steps counted and predicted, and the golden published-model cycles of the
    same tile. The testbench itself fails on any output or step-count mismatch."""
    import tempfile
    from ..golden.diffy_tile import published_cycles
    from ..flow.tasks import run_testbench

    layers = crop_layers(image, size, channels, depth)
    rows = []
    with tempfile.TemporaryDirectory(prefix="dnnhw-diffy-crop-") as tmp:
        files = []
        for k, (x, w, stride, padding) in enumerate(layers):
            path = Path(tmp) / f"layer{k}.npz"
            np.savez(path, x=x, w=w, stride=stride, padding=padding)
            files.append(str(path))
        for mode, windows in RTL_TILES:
            params = dict(RTL_GEOMETRY, windows=windows, mode=mode)
            log(f"rtl: {mode} {params['lanes']}x{params['filters']}x{windows} on a "
                f"{size}x{size} crop of {image}, {depth} layers ...")
            res = run_testbench("diffy-tile", params, build_root=build_root,
                                config={"layer_files": files}, testcase="layers")
            if not res.get("passed"):
                raise RuntimeError(f"diffy-tile {params} failed on the crop: {res.get('error')}")
            published = sum(published_cycles(x, w, stride, padding, **params)
                            for x, w, stride, padding in layers)
            runs = res["layers"]
            rows.append({
                "mode": mode, "lanes": params["lanes"], "filters": params["filters"],
                "windows": windows,
                "cycles": sum(r["stall_free"]["cycles"] for r in runs),
                "steps_rtl": sum(r["stall_free"]["steps_measured"] for r in runs),
                "steps_model": sum(r["stall_free"]["steps_model"] for r in runs),
                "published_model": published,
                "cycles_with_stalls": sum(r["random_stalls"]["cycles"] for r in runs),
            })
    return {"image": image, "size": size, "channels": channels, "depth": depth,
            "rows": rows}


def render_rtl(crop):
    """Markdown of :func:`rtl_crop`: RTL cycles and the speedups they give."""
    rows = crop["rows"]
    diffy = next(r for r in rows if r["mode"] == "diffy")
    out = [f"RTL `diffy-tile` on a {crop['size']}x{crop['size']} crop of {crop['image']} "
           f"through {crop['depth']} layers ({crop['channels']} channels), cocotb + "
           f"Verilator, every output bit-exact:", "",
           "| mode | lanes x filters x windows | RTL cycles | RTL steps | model steps "
           "| published model | Diffy speedup (RTL cycles) | (model) |",
           "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['mode']} | {r['lanes']}x{r['filters']}x{r['windows']} | {r['cycles']} "
                   f"| {r['steps_rtl']} | {r['steps_model']} | {r['published_model']} "
                   f"| {r['cycles'] / diffy['cycles']:.2f}x "
                   f"| {r['published_model'] / diffy['published_model']:.2f}x |")
    return "\n".join(out)


def _parser():
    parser = argparse.ArgumentParser(
        prog="dnnhw bench diffy", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="images: " + "; ".join(f"{k}: {v[1]}" for k, v in IMAGES.items()))
    parser.add_argument("--quick", action="store_true",
                        help="2 images, 32x32, 8 channels, 3 layers (a second)")
    parser.add_argument("--images", help="comma-separated image names (default: "
                        f"{','.join(DEFAULT_IMAGES)}; 'all' for every one)")
    parser.add_argument("--size", type=int, help="image side in pixels (default 128, --quick 32)")
    parser.add_argument("--resize", choices=("crop", "downscale"), default="crop",
                        help="central crop at native resolution (default) or block-mean downscale")
    parser.add_argument("--noise", type=float, default=0.0,
                        help="Gaussian noise sigma in pixel levels added to the images (default 0)")
    parser.add_argument("--channels", type=int, help="hidden channels C (default 32, --quick 8)")
    parser.add_argument("--depth", type=int, help="conv layers (default 7, --quick 3)")
    parser.add_argument("--hidden", choices=HIDDEN, default="random",
                        help="hidden filters: random (default) or smooth (random channel mixing "
                        "x 3x3 Gaussian)")
    parser.add_argument("--headroom", type=int, default=1,
                        help="bits left free above each layer's calibrated peak, 0..8 (default 1)")
    parser.add_argument("--frac-bits", type=int, default=8,
                        help="fractional bits of the 16-bit pixels, 8..15 (default 8: x = p)")
    parser.add_argument("--sync", choices=golden.SYNC_MODES, default="windows",
                        help="pallet synchronisation of the term-serial engines (default "
                        "windows: the published lockstep; column: idealised)")
    parser.add_argument("--seed", type=int, default=1,
                        help="seed of the random filters and of the noise (default 1)")
    parser.add_argument("--out", "-o", type=Path, help="directory for diffy_bench.md/.json")
    parser.add_argument("--rtl", action="store_true",
                        help="also run a 16x16 crop through the RTL tile in every mode "
                             "(cocotb + Verilator) and report its measured cycles")
    parser.add_argument("--build-dir", default="dnnhw-build",
                        help="simulation build directory for --rtl (default dnnhw-build)")
    return parser


def main(argv=None):
    """Run the benchmark; ``argv`` as for ``dnnhw bench diffy``. Returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    size = args.size if args.size is not None else (32 if args.quick else 128)
    channels = args.channels if args.channels is not None else (8 if args.quick else 32)
    depth = args.depth if args.depth is not None else (3 if args.quick else 7)
    if args.images is None:
        images = ["astronaut", "chelsea"] if args.quick else list(DEFAULT_IMAGES)
    elif args.images.strip() == "all":
        images = list(IMAGES)
    else:
        images = list(dict.fromkeys(n.strip() for n in args.images.split(",") if n.strip()))
        unknown = [name for name in images if name not in IMAGES]
        if unknown or not images:
            parser.error(f"--images: unknown image(s) {', '.join(map(repr, unknown)) or 'none given'}"
                         f"; known images: {', '.join(IMAGES)}")
    for option, value, lo, hi in (("--size", size, 4, 1024), ("--channels", channels, 1, 256),
                                  ("--depth", depth, 2, 32), ("--headroom", args.headroom, 0, 8),
                                  ("--frac-bits", args.frac_bits, 8, 15),
                                  ("--seed", args.seed, 0, 2**63 - 1)):
        if not lo <= value <= hi:
            parser.error(f"{option} must be in {lo}..{hi}, got {value}")
    if not 0 <= args.noise <= 255:
        parser.error(f"--noise must be in 0..255 pixel levels, got {args.noise:g}")

    start = time.perf_counter()
    inputs = {}
    for name in images:
        try:
            inputs[name] = image_input(name, size, args.resize, args.frac_bits,
                                       noise=args.noise, seed=args.seed)
        except ValueError as error:
            parser.error(f"--size {size} does not fit image {name!r}: {error}")
    spec = StackSpec(channels, depth, args.hidden, args.headroom, args.seed)
    layers = build_stack(spec, list(inputs.values()), args.frac_bits)
    tile = paper_tile(args.sync)
    tile_text = (f"{tile.lanes} lanes x {tile.filters} filters x {tile.windows} windows, "
                 f"B = {tile.shifter_bits}, {tile.tiles} tiles, sync {tile.sync}; value-agnostic "
                 f"baseline {tile.bit_parallel_windows} window / cycle")
    meta = dict(images=images, size=size, resize=args.resize, noise=args.noise,
                channels=channels, depth=depth, hidden=args.hidden, headroom=args.headroom,
                frac_bits=args.frac_bits, seed=args.seed, quick=args.quick,
                tile=dataclasses.asdict(tile), tile_text=tile_text,
                layers=[dict(name=l.name, in_channels=l.in_channels, out_channels=l.out_channels,
                             weight_frac_bits=l.weight_frac_bits, shift=l.shift,
                             in_frac_bits=l.in_frac_bits, out_frac_bits=l.out_frac_bits,
                             relu=l.relu) for l in layers],
                numpy=np.__version__, machine=platform.machine() + " " + platform.system(),
                cpus=os.cpu_count())
    print(f"dnnhw bench diffy: {len(images)} images x {depth} layers, {size}x{size} "
          f"({args.resize}), C={channels}, {args.hidden} hidden filters, shifts "
          f"{[l.shift for l in layers]}; tile {tile_text}", flush=True)
    records = []
    for name, x in inputs.items():
        records += bench_image(name, x, layers, tile, log=lambda line: print(line, flush=True))
    summary = summarize(records)
    meta["seconds"] = time.perf_counter() - start

    markdown = render_markdown(meta, records, summary)
    crop = None
    if args.rtl:
        crop = rtl_crop(build_root=args.build_dir, log=lambda line: print(line, flush=True))
        markdown += "\n\n" + render_rtl(crop)
    print()
    print(markdown)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "diffy_bench.md").write_text(markdown + "\n")
        (args.out / "diffy_bench.json").write_text(json.dumps(
            dict(meta=meta, paper=PAPER, records=records, summary=summary, rtl=crop), indent=1) + "\n")
        print(f"\nwrote {args.out}/diffy_bench.md, diffy_bench.json")
    return 0


BENCHMARK = Benchmark(
    "diffy", f"{__name__}:main",
    "Diffy against Pragmatic, Stripes and a value-agnostic tile on photographs")


if __name__ == "__main__":
    raise SystemExit(main())
