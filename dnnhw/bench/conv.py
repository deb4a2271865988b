"""Benchmark of the convolution golden models on real layer shapes (``dnnhw bench conv``).

Runs each method of :mod:`dnnhw.golden.conv` over AlexNet conv1-5, the VGG-16 conv
layers, the ResNet-18 3x3 layers and C3D conv1-5 (published channels, reduced frame
size), batch 1, float32, and reports time, effective GFLOP/s (``2 * dense MACs / time``,
the same yardstick for every method), workspace and the error against im2col. When
PyTorch imports, ``torch.nn.functional.conv2d`` / ``conv3d`` run on the same shapes in
the same process and the ratio is reported; torch stays optional.

A method whose predicted run time on a layer exceeds ``--budget`` seconds is skipped,
and the table says so. The prediction scales the method's last measured seconds per
unit of work (a small calibration layer seeds it).

With ``--out DIR`` it writes ``conv_bench.md``, ``conv_bench.json``,
``conv_bandlimited.png`` (band-limited relative error and kept spectral energy against
the compression rate) and ``conv_mec_memory.md`` (MEC vs im2col lowered sizes).
"""

import argparse
import fnmatch
import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dnnhw.golden import conv as golden
from dnnhw.bench import Benchmark, comma_list
from dnnhw.text import markdown_table
from dnnhw.workloads import Layer, network_layers, quick_layers
from dnnhw.golden.conv_fft import fft_shape_for


__all__ = ["Layer", "main", "network_layers", "quick_layers"]


@dataclass(frozen=True)
class Method:
    """A benchmarked method: one of the golden models, with its parameter if it has one."""

    kind: str                      #: direct, im2col, mec, fft, fft-bl, sparse
    compression_rate: float = 0.0  #: fft-bl only
    sparsity: float = 0.0          #: sparse only, weight sparsity in [0, 1)

    @property
    def name(self):
        if self.kind == "fft-bl":
            return f"fft-bl{self.compression_rate:g}"
        if self.kind == "sparse":
            return f"sparse{100 * self.sparsity:g}%"
        return self.kind

    def run(self, x, w, layer, return_stats=False):
        dim = f"conv{layer.spatial_ndim}d_"
        options = dict(stride=layer.stride, padding=layer.padding, return_stats=return_stats)
        if self.kind == "fft-bl":
            return getattr(golden, dim + "fft_bandlimited")(
                x, w, compression_rate=self.compression_rate, **options)
        function = {"direct": "direct", "im2col": "im2col", "mec": "mec", "fft": "fft",
                    "sparse": "direct_sparse"}[self.kind]
        return getattr(golden, dim + function)(x, w, **options)

    def work(self, layer):
        """Work units for run-time prediction: MACs performed, or for the FFT methods
        transform work plus spectral products."""
        geometry = layer.geometry()
        if self.kind in ("direct", "im2col", "mec"):
            return geometry.macs
        if self.kind == "sparse":
            return geometry.macs * (1 - self.sparsity)
        fft_points = math.prod(fft_shape_for(geometry))
        transforms = (geometry.channels + geometry.filters) * fft_points * math.log2(fft_points)
        kept = 1.0 if self.kind == "fft" else (100 - self.compression_rate) / 100
        products = 4 * fft_points / 2 * kept * geometry.channels * geometry.filters
        return transforms + products


KINDS = ("direct", "im2col", "mec", "fft", "fft-bl", "sparse")

#: Environment variables that set the BLAS thread count or kernels (read when NumPy and
#: torch load). On a busy machine, multi-threaded OpenBLAS spin-waits make GEMM timings
#: erratic; run with OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 for stable figures.
#: OPENBLAS_CORETYPE overrides OpenBLAS's CPU detection: Haswell forces AVX2 kernels, about
#: half the float32 GEMM speed of the AVX-512 ones on a CPU that has AVX-512.
_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                     "OPENBLAS_CORETYPE")


def _calibration_layer(spatial_ndim):
    """A small layer (about 25 MMAC) whose timing seeds the run-time predictions."""
    if spatial_ndim == 2:
        return Layer("calibration", "2d", 64, 64, (28, 28), (3, 3), padding=1)
    return Layer("calibration", "3d", 32, 32, (4, 14, 14), (3, 3, 3), padding=1)


def _best_time(function, repeat, min_total=0.2):
    """Best wall time over up to ``repeat`` runs; stops early once the runs so far took
    ``min_total * repeat`` seconds (a slow layer is not worth many repeats)."""
    times = []
    while len(times) < repeat and (not times or sum(times) < min_total * repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def _load_torch():
    try:
        import torch
        import torch.nn.functional as functional
    except Exception:    # torch is optional; any import failure means "no torch column"
        return None, None
    return torch, functional


def _torch_seconds(torch, functional, x, w, layer, repeat):
    conv = functional.conv2d if layer.spatial_ndim == 2 else functional.conv3d
    tx, tw = torch.from_numpy(x), torch.from_numpy(w)
    with torch.no_grad():
        return _best_time(lambda: conv(tx, tw, stride=layer.stride, padding=layer.padding), repeat)


def _relative_error(result, reference):
    norm = float(np.linalg.norm(reference))
    return float(np.linalg.norm(result - reference)) / norm if norm else 0.0


def bench_layers(layers, methods, *, budget, repeat, seed, torch_modules, log):
    """Time every method on every layer; returns a list of record dicts."""
    torch, functional = torch_modules
    rng = np.random.default_rng(seed)
    seconds_per_work = {}
    for ndim in sorted({layer.spatial_ndim for layer in layers}):
        calibration = _calibration_layer(ndim)
        x = rng.standard_normal(calibration.x_shape, dtype=np.float32)
        w = rng.standard_normal(calibration.w_shape, dtype=np.float32)
        for method in methods:
            weights = (golden.prune_by_magnitude(w, method.sparsity) if method.kind == "sparse"
                       else w)
            # Best of two: the first call also pays one-off costs (BLAS thread start-up).
            elapsed = _best_time(lambda: method.run(x, weights, calibration), 2, min_total=0)
            seconds_per_work[method.name, ndim] = elapsed / method.work(calibration)

    records = []
    for layer in layers:
        geometry = layer.geometry()
        x = rng.standard_normal(layer.x_shape, dtype=np.float32)
        w = rng.standard_normal(layer.w_shape, dtype=np.float32) * np.float32(
            1 / math.sqrt(geometry.channels_per_group * geometry.taps))
        reference = golden.conv2d_im2col if layer.spatial_ndim == 2 else golden.conv3d_im2col
        dense_reference = reference(x, w, stride=layer.stride, padding=layer.padding)
        torch_time = (_torch_seconds(torch, functional, x, w, layer, repeat)
                      if torch is not None else None)
        for method in methods:
            record = dict(layer=layer.key, network=layer.network, shape=layer.describe(),
                          count=layer.count, macs=geometry.macs, method=method.name,
                          torch_seconds=torch_time)
            predicted = method.work(layer) * seconds_per_work[method.name, layer.spatial_ndim]
            if predicted > budget:
                record.update(skipped=f"est. {predicted:.0f} s > budget {budget:g} s")
                records.append(record)
                log(f"{layer.key:24s} {method.name:12s} skipped ({record['skipped']})")
                continue
            weights, expected = w, dense_reference
            if method.kind == "sparse":
                weights = golden.prune_by_magnitude(w, method.sparsity)
                expected = reference(x, weights, stride=layer.stride, padding=layer.padding)
            start = time.perf_counter()
            result, stats = method.run(x, weights, layer, return_stats=True)
            seconds = time.perf_counter() - start
            if repeat > 1 and seconds * repeat < budget:    # the first run counts as one repeat
                seconds = min(seconds, _best_time(lambda: method.run(x, weights, layer),
                                                  repeat - 1))
            seconds_per_work[method.name, layer.spatial_ndim] = seconds / method.work(layer)
            record.update(
                seconds=seconds, gflops=2 * geometry.macs / seconds / 1e9,
                workspace_bytes=stats.workspace_bytes, macs_performed=stats.macs,
                relative_error=_relative_error(result, expected),
                lowered_elements=stats.lowered_elements,
                kept_energy_input=stats.kept_energy_input,
                ratio_to_torch=(seconds / torch_time) if torch_time else None)
            records.append(record)
            log(f"{layer.key:24s} {method.name:12s} {1e3 * seconds:10.1f} ms "
                f"{record['gflops']:7.1f} GFLOP/s  ws {stats.workspace_bytes / 2**20:8.1f} MiB  "
                f"err {record['relative_error']:.1e}")
    return records


def _pink_noise(shape, rng):
    """Random images with a 1/f amplitude spectrum, like natural images."""
    white = rng.standard_normal(shape)
    spectrum = np.fft.rfft2(white)
    fy = np.fft.fftfreq(shape[-2])[:, None]
    fx = np.fft.rfftfreq(shape[-1])[None, :]
    radius = np.hypot(fy, fx)
    radius[0, 0] = 1 / max(shape[-2:])
    image = np.fft.irfft2(spectrum / radius, s=shape[-2:])
    return image / image.std()


def bandlimited_sweep(rates, *, channels, size, seed):
    """Relative error and kept spectral energy of band-limited conv vs compression rate.

    One CIFAR-like layer (``channels -> channels``, 3x3, pad 1), float64, for white-noise
    inputs and for 1/f ("natural-image-like") inputs.
    """
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((channels, channels, 3, 3))
    inputs = {"white": rng.standard_normal((1, channels, size, size)),
              "1/f": _pink_noise((1, channels, size, size), rng)}
    rows = []
    for rate in rates:
        row = dict(compression_rate=rate)
        for label, x in inputs.items():
            exact = golden.conv2d_direct(x, w, padding=1)
            result, stats = golden.conv2d_fft_bandlimited(x, w, compression_rate=rate, padding=1,
                                                          return_stats=True)
            row[f"relative_error_{label}"] = _relative_error(result, exact)
            row[f"kept_energy_{label}"] = stats.kept_energy_input
            row["kept_energy_filter"] = stats.kept_energy_filter
            row["kept_fraction"] = stats.kept_coefficients / stats.spectrum_coefficients
        rows.append(row)
    return rows


def plot_bandlimited(rows, path):
    """Two panels: relative error and kept energy against the compression rate (PNG)."""
    from matplotlib.figure import Figure   # no pyplot: no global backend state

    rates = [row["compression_rate"] for row in rows]
    figure = Figure(figsize=(9, 3.6), layout="constrained")
    error_axes, energy_axes = figure.subplots(1, 2)
    for label, style in (("white", "o-"), ("1/f", "s-")):
        error_axes.plot(rates, [row[f"relative_error_{label}"] for row in rows], style,
                        label=f"{label} input")
        energy_axes.plot(rates, [100 * row[f"kept_energy_{label}"] for row in rows], style,
                         label=f"input energy, {label}")
    energy_axes.plot(rates, [100 * row["kept_energy_filter"] for row in rows], "^--",
                     label="filter energy")
    energy_axes.plot(rates, [100 * row["kept_fraction"] for row in rows], ":", color="gray",
                     label="coefficients kept")
    error_axes.set(xlabel="compression rate c (%)", ylabel="relative error vs exact",
                   title="Band-limited FFT conv: output error")
    energy_axes.set(xlabel="compression rate c (%)", ylabel="kept (%)",
                    title="Spectral energy kept", ylim=(0, 102))
    for axes in (error_axes, energy_axes):
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    figure.savefig(path, dpi=110)


def mec_memory_rows(layers):
    rows = []
    for layer in layers:
        sizes = golden.lowering_sizes(layer.x_shape, layer.w_shape, stride=layer.stride,
                                      padding=layer.padding)
        # MEC keeps the whole height (and depth) instead of one window per output row, so
        # it saves about prod(kernel / stride) over the leading axes (R/s in 2D, T*R/s^2 in 3D).
        leading = math.prod(k / layer.stride for k in layer.kernel[:-1])
        rows.append(dict(layer=layer.key, shape=layer.describe(), im2col_elements=sizes.im2col,
                         mec_elements=sizes.mec, mec_to_im2col=sizes.mec_to_im2col,
                         expected_saving=leading))
    return rows


# -- reports ---------------------------------------------------------------------------------

def _by_layer(records, layers, method_names, cell):
    """Rows ``layer, shape, GMAC, <cell per method>`` for a table."""
    lookup = {(r["layer"], r["method"]): r for r in records}
    rows = []
    for layer in layers:
        row = [layer.key, layer.describe(), f"{layer.geometry().macs / 1e9:.3f}"]
        for name in method_names:
            record = lookup.get((layer.key, name))
            if record is None:
                row.append("")
            elif "skipped" in record:
                row.append(f"skip ({record['skipped']})")
            else:
                row.append(cell(record))
        rows.append(row)
    return rows


def render_markdown(meta, layers, methods, records, sweep, mec_rows):
    names = [m.name for m in methods]
    header = ["layer", "shape", "GMAC"] + names
    parts = [
        "# Convolution golden models: benchmark",
        "",
        f"Batch 1, float32, NumPy {meta['numpy']} on {meta['machine']} "
        f"({meta['cpus']} CPUs, load average {meta['load_before']:.1f} before / "
        f"{meta['load_after']:.1f} after the run; BLAS environment: "
        f"{_describe_threads(meta['thread_env'])}). Effective GFLOP/s = 2 x dense MACs / time "
        "for every method. Times are the best of the repeats.",
        "",
        "## Time in ms (effective GFLOP/s)",
        "",
        markdown_table(header, _by_layer(records, layers, names,
                                 lambda r: f"{1e3 * r['seconds']:.1f} ({r['gflops']:.1f})")),
        "",
        "## Workspace (MiB)",
        "",
        markdown_table(header, _by_layer(records, layers, names,
                                 lambda r: f"{r['workspace_bytes'] / 2**20:.1f}")),
        "",
        "## Relative error against im2col (sparse: against im2col on the pruned weights)",
        "",
        markdown_table(header, _by_layer(records, layers, names,
                                 lambda r: f"{r['relative_error']:.1e}")),
        "",
        "## Against PyTorch",
        "",
    ]
    if meta["torch"] is None:
        parts.append("torch is not installed, so there is no PyTorch column "
                     "(`pip install dnnhw[torch]` adds it: the ratio of each method's time to "
                     "`torch.nn.functional.conv2d`/`conv3d` on the same shapes in the same run).")
    else:
        parts.append(f"torch {meta['torch']}: time ratio method / torch (below 1 is faster).")
        parts.append("")
        parts.append(markdown_table(header + ["torch ms"], [
            row + [f"{1e3 * ts:.1f}" if ts else ""] for row, ts in zip(
                _by_layer(records, layers, names, lambda r: f"{r['ratio_to_torch']:.2f}"),
                [next((r["torch_seconds"] for r in records if r["layer"] == layer.key), None)
                 for layer in layers])]))
    parts += ["", "## Band-limited FFT convolution against the compression rate", "",
              f"Layer {meta['sweep_layer']}, float64; the 1/f inputs have a natural-image-like "
              "spectrum. See `conv_bandlimited.png`.", "", render_sweep(sweep), "",
              "## MEC vs im2col lowered memory", "", render_mec(mec_rows), ""]
    return "\n".join(parts)


def _describe_threads(thread_env):
    if not thread_env:
        return "library default"
    return ", ".join(f"{name}={value}" for name, value in thread_env.items())


def render_sweep(rows):
    return markdown_table(
        ["c (%)", "coefficients kept", "energy kept (white)", "rel. error (white)",
         "energy kept (1/f)", "rel. error (1/f)", "filter energy kept"],
        [[f"{r['compression_rate']:g}", f"{100 * r['kept_fraction']:.1f}%",
          f"{100 * r['kept_energy_white']:.1f}%", f"{r['relative_error_white']:.3f}",
          f"{100 * r['kept_energy_1/f']:.1f}%", f"{r['relative_error_1/f']:.3f}",
          f"{100 * r['kept_energy_filter']:.1f}%"] for r in rows])


def render_mec(rows):
    return markdown_table(
        ["layer", "shape", "im2col elements", "MEC elements", "MEC / im2col",
         "im2col / MEC", "kernel / stride (leading axes)"],
        [[r["layer"], r["shape"], f"{r['im2col_elements']:,}", f"{r['mec_elements']:,}",
          f"{r['mec_to_im2col']:.3f}", f"{1 / r['mec_to_im2col']:.2f}",
          f"{r['expected_saving']:g}"] for r in rows])


def _select(items, patterns, key):
    if not patterns:
        return items
    wanted = [p.strip() for p in patterns.split(",") if p.strip()]
    return [item for item in items
            if any(fnmatch.fnmatch(key(item), p) or p in key(item) for p in wanted)]


def _parse_percentages(text, name, upper):
    values = comma_list(float, "numbers", name=name)(text)
    if not all(0 <= v < upper for v in values):
        raise argparse.ArgumentTypeError(f"{name} values must be in [0, {upper:g}), got {text!r}")
    return values


def _parser():
    parser = argparse.ArgumentParser(
        prog="dnnhw bench conv", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="a few small layers and a short budget (under a minute)")
    parser.add_argument("--layers", help="comma-separated layer names or globs, e.g. "
                        "'vgg16-*,alexnet-conv1' (substrings match too)")
    parser.add_argument("--methods", help=f"comma-separated subset of {','.join(KINDS)}")
    parser.add_argument("--compression", default=[50.0],
                        type=lambda t: _parse_percentages(t, "--compression", 100),
                        help="band-limited compression rates in %% (default 50)")
    parser.add_argument("--sparsity", type=lambda t: _parse_percentages(t, "--sparsity", 100),
                        help="weight sparsity levels in %% for direct sparse "
                             "(default 0,50,90; --quick 50,90)")
    parser.add_argument("--budget", type=float, help="skip a method on a layer when its predicted "
                        "time exceeds this many seconds (default 30, --quick 2)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per cell (best kept)")
    parser.add_argument("--c3d-frame", type=int, default=56,
                        help="C3D conv1 frame side (published: 112; default 56)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, help="directory for conv_bench.md/.json and plots")
    return parser


def main(argv=None):
    """Run the benchmark; ``argv`` as for ``dnnhw bench conv``. Returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    budget = args.budget if args.budget is not None else (2.0 if args.quick else 30.0)
    layers = quick_layers() if args.quick else network_layers(args.c3d_frame)
    layers = _select(layers, args.layers, lambda layer: layer.key)
    kinds = _select(list(KINDS), args.methods, lambda kind: kind)
    if not layers or not kinds:
        parser.error("--layers / --methods selected nothing")
    sparsities = args.sparsity or ([50.0, 90.0] if args.quick else [0.0, 50.0, 90.0])
    methods = []
    for kind in kinds:
        if kind == "fft-bl":
            methods += [Method(kind, compression_rate=c) for c in args.compression]
        elif kind == "sparse":
            methods += [Method(kind, sparsity=s / 100) for s in sparsities]
        else:
            methods.append(Method(kind))

    torch_modules = _load_torch()
    meta = dict(numpy=np.__version__, machine=platform.machine() + " " + platform.system(),
                cpus=os.cpu_count(), load_before=os.getloadavg()[0],
                torch=getattr(torch_modules[0], "__version__", None), budget_seconds=budget,
                quick=args.quick, thread_env={name: os.environ[name] for name in _THREAD_VARIABLES
                                              if name in os.environ})
    print(f"dnnhw bench conv: {len(layers)} layers x {len(methods)} methods, budget {budget:g} s, "
          f"torch {'absent' if meta['torch'] is None else meta['torch']}", flush=True)
    records = bench_layers(layers, methods, budget=budget, repeat=args.repeat, seed=args.seed,
                           torch_modules=torch_modules, log=lambda line: print(line, flush=True))
    sweep_channels, sweep_size = (8, 16) if args.quick else (32, 32)
    meta["sweep_layer"] = (f"{sweep_channels}->{sweep_channels} @{sweep_size}x{sweep_size} "
                           "k3x3 pad 1")
    rates = [0, 10, 20, 30, 40, 50, 60, 70, 80, 90] if args.quick else list(range(0, 100, 5))
    sweep = bandlimited_sweep(rates, channels=sweep_channels, size=sweep_size, seed=args.seed)
    mec_rows = mec_memory_rows(layers)
    meta["load_after"] = os.getloadavg()[0]

    markdown = render_markdown(meta, layers, methods, records, sweep, mec_rows)
    print()
    print(markdown)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "conv_bench.md").write_text(markdown + "\n")
        (args.out / "conv_mec_memory.md").write_text(
            "# MEC vs im2col lowered memory (elements per image)\n\n" + render_mec(mec_rows) + "\n")
        (args.out / "conv_bench.json").write_text(json.dumps(dict(
            meta=meta, layers=[dict(asdict(layer), key=layer.key) for layer in layers],
            records=records, bandlimited_sweep=sweep, mec_memory=mec_rows), indent=1) + "\n")
        plot_bandlimited(sweep, args.out / "conv_bandlimited.png")
        print(f"\nwrote {args.out}/conv_bench.md, conv_bench.json, conv_bandlimited.png, "
              f"conv_mec_memory.md")
    return 0


BENCHMARK = Benchmark(
    "conv", f"{__name__}:main",
    "convolution golden models (direct, im2col, MEC, FFT, sparse) timed on AlexNet, VGG-16, "
    "ResNet-18 and C3D shapes, against PyTorch when installed")


if __name__ == "__main__":
    raise SystemExit(main())
