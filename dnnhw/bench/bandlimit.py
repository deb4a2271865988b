"""``dnnhw bench bandlimit``: band-limited training and inference (Dziedzic et al., ICML
2019) on handwritten digits: accuracy against the compression rate, the memory of the
kept spectra, and the error of the band-limited convolution against direct convolution.

**The workload.** scikit-learn's 8 x 8 digits (:func:`dnnhw.workloads.digits`: 1,433
train, 364 test images) and the small CNN of :mod:`dnnhw.golden.cnn` (conv 3 x 3 to 16
channels, conv 3 x 3 stride 2 to 32, dense to 10; 9,930 parameters) whose two conv
layers are band-limited FFT convolutions (:class:`dnnhw.golden.cnn_bandlimit.BandLimitedCNN`)
at the rate ``c`` for training *and* inference: the forward pass keeps the low-frequency
block of :func:`dnnhw.golden.conv_fft.band_limit_keep` of the input and filter spectra,
the backward pass compresses the output gradient's spectrum the same way. Both layers
have 17 x 17 FFT tiles (10 x 10 padded input + 8 stride-1 outputs - 1), a one-sided
spectrum of 17 x 9 = 153 coefficients. Every rate trains with the same schedule (epochs,
batch 32, lr 0.05, momentum 0.9, each tensor's gradient clipped to norm 1, one worker)
from the same initial weights and batch order per seed.

**The figures**, per rate: final test accuracy (mean, min, max and sample std over
seeds, and relative to c = 0 paired by seed), beside the paper's ResNet-18 / CIFAR-10
curve (REFERENCE.md); the accuracy of the c = 0 network inferred at rate c without
retraining (why the paper trains and infers at the same rate); the kept coefficients per
layer and the bytes of the kept spectra (complex64, 8 bytes a coefficient) of all filters
and of one input tile (one image through both layers), against c = 0; and the relative
error ``||y_c - y_direct|| / ||y_direct||`` of :func:`dnnhw.golden.conv.conv2d_fft_bandlimited`
against :func:`dnnhw.golden.conv.conv2d_direct` on the first test digits, with the first
seed's c = 0-trained filters (conv1 on the images, conv2 on that network's conv1 ReLU
outputs), with the kept fraction of the input's spectral energy.

``-o DIR`` writes ``bandlimit.json``, ``bandlimit.md`` and the plots; :func:`render` makes
the markdown again from ``bandlimit.json`` without training.
"""

import argparse
import math
import numbers
import os
import platform
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from . import Benchmark, comma_list, show_study, write_study
from ..golden import cnn
from ..golden.cnn_bandlimit import COMPLEX_BYTES, BandLimitedCNN
from ..golden.conv import conv2d_direct, conv2d_fft_bandlimited
from ..golden.conv_fft import check_compression_rate
from ..text import markdown_table


__all__ = ["PAPER", "PAPER_DENSENET", "Config", "QUICK", "run", "run_rate", "study",
           "summarize", "render", "figures", "write", "main", "flow_quick", "flow_full",
           "accuracy_table", "memory_table", "error_table"]

#: The paper's ResNet-18 / CIFAR-10 top-1 accuracy (%) by compression rate (%)
#: (REFERENCE.md).
PAPER = {0: 93.69, 21: 93.24, 29: 92.89, 39: 92.61, 49: 91.95, 67.5: 89.71, 77.8: 87.97}
#: The paper's DenseNet-121 / CIFAR-100 points, drawn in the normalized panel only.
PAPER_DENSENET = {0: 75.3, 48.9: 71.53, 77.8: 63.95}

RATES = (0.0, 25.0, 50.0, 75.0, 90.0)

#: The last epochs whose mean test accuracy is reported beside the final one (the final
#: epoch alone is noisy at high c).
TAIL = 5


@dataclass(frozen=True)
class Config:
    """Everything a run depends on (``--quick`` is :data:`QUICK`)."""
    rates: tuple = RATES
    seeds: tuple = (0, 1, 2)
    epochs: int = 20
    batch: int = 32
    lr: float = 0.05
    momentum: float = 0.9
    clip: float = 1.0
    channels: tuple = (16, 32)
    pow2: bool = False
    error_images: int = 64
    quick: bool = False


QUICK = Config(seeds=(0,), epochs=3, quick=True)


def _model(config, rate):
    return BandLimitedCNN(channels=tuple(config.channels),
                          strides=(1,) + (2,) * (len(config.channels) - 1),
                          compression_rate=rate, pow2=config.pow2)


def _check_config(config):
    """The config with its rates checked, made floats, sorted, 0 added; seeds checked."""
    rates = []
    for rate in config.rates:
        try:
            rates.append(check_compression_rate(rate))
        except (TypeError, ValueError) as error:
            raise type(error)(f"rates: {error}") from None
    if not rates:
        raise ValueError("rates must hold at least one compression rate in [0, 100)")
    rates = sorted(set(rates) | {0.0})       # c = 0 is the reference of every ratio
    seeds = tuple(config.seeds)
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"seeds must be ints >= 0, got {seed!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {seeds}")
    if not isinstance(config.epochs, numbers.Integral) or not 1 <= config.epochs <= 1000:
        raise ValueError(f"epochs must be in 1..1000, got {config.epochs!r}")
    if not isinstance(config.error_images, numbers.Integral) or \
            not 1 <= config.error_images <= 364:
        raise ValueError(f"error_images must be in 1..364, got {config.error_images!r}")
    return replace(config, rates=tuple(rates), seeds=tuple(int(s) for s in seeds))


def run_rate(rate, config, seed, data):
    """Train at ``rate`` for one seed: ``(record, params)`` with the JSON-ready record
    (``rate``, ``seed``, ``history`` of :func:`dnnhw.golden.cnn.train`, ``accuracy`` (the
    final test accuracy), ``seconds``, ``density``: per conv layer the non-zero fraction of
    its ReLU outputs on the first ``error_images`` test images) and the trained
    parameters."""
    model = _model(config, check_compression_rate(rate))
    start = time.perf_counter()
    result = cnn.train(model, data, workers=1, epochs=config.epochs,
                       exchange=cnn.DenseExchange(momentum=config.momentum, clip=config.clip),
                       seed=seed, batch=config.batch, lr=config.lr)
    seconds = time.perf_counter() - start
    _, _, activations = model.forward(result.params, data.x_test[:config.error_images])
    return ({"rate": float(rate), "seed": int(seed), "history": result.history,
             "accuracy": result.history[-1]["test_accuracy"], "seconds": seconds,
             "density": {name: float(np.count_nonzero(a)) / a.size
                         for name, a in zip(model.conv_names, activations)}},
            result.params)


def _limit_threads():
    """One BLAS thread: the matrices are tiny and on a shared machine more threads are
    slower, not faster."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:          # pragma: no cover - scikit-learn brings it
        return None
    return threadpool_limits(1)


def conv_errors(config, params, images):
    """Per rate, the relative error of the band-limited conv against direct conv on
    ``images`` with ``params`` (c = 0-trained): a list of dicts (``rate``, ``layer``,
    ``relative_error``, ``max_abs_error``, ``kept_energy_input``,
    ``kept_energy_filter``, ``kept``, ``spectrum``)."""
    reference = _model(config, 0.0)
    _, _, activations = reference.forward(params, images)
    inputs = [reference._input(images)] + activations[:-1]
    rows = []
    for rate in config.rates:
        for (name, layer, _, _), x, stride in zip(_model(config, rate).layers(), inputs,
                                                  reference.strides):
            w = params[f"{name}.w"]
            direct = conv2d_direct(x, w, stride=stride, padding=1)
            banded, stats = conv2d_fft_bandlimited(x, w, stride=stride, padding=1,
                                                   compression_rate=rate, pow2=config.pow2,
                                                   return_stats=True)
            norm = float(np.linalg.norm(direct))
            rows.append({"rate": float(rate), "layer": name,
                         "relative_error": float(np.linalg.norm(banded - direct)) / norm
                         if norm else 0.0,
                         "max_abs_error": float(np.abs(banded - direct).max()),
                         "kept_energy_input": stats.kept_energy_input,
                         "kept_energy_filter": stats.kept_energy_filter,
                         "kept": stats.kept_coefficients,
                         "spectrum": stats.spectrum_coefficients,
                         "fft_shape": list(stats.fft_shape)})
    return rows


def study(config=Config(), *, log=print):
    """Train at every rate for every seed, infer the c = 0 networks at every rate, measure
    the spectra's memory and the convolution's error: the dict :func:`render` and
    :func:`write` take (``config``, ``meta``, ``runs``, ``transfer``, ``memory``,
    ``errors``, ``summary``)."""
    from ..workloads import digits
    config = _check_config(config)
    start = time.perf_counter()
    limiter = _limit_threads()
    try:
        data = digits()
        runs, transfer, reference = [], [], {}
        for seed in config.seeds:
            for rate in config.rates:
                record, params = run_rate(rate, config, seed, data)
                runs.append(record)
                if rate == 0.0:
                    reference[seed] = params
                log(f"bandlimit: seed {seed} c = {rate:4.1f} % test accuracy "
                    f"{record['accuracy']:.3f}, {record['seconds']:.1f} s")
            for rate in config.rates:
                _, accuracy = _model(config, rate).evaluate(reference[seed], data.x_test,
                                                            data.y_test)
                transfer.append({"rate": float(rate), "seed": seed, "accuracy": accuracy})
        errors = conv_errors(config, reference[config.seeds[0]],
                             data.x_test[:config.error_images])
    finally:
        if limiter is not None:
            limiter.unregister()
    memory = [dict(rate=float(rate), **_model(config, rate).spectra_memory())
              for rate in config.rates]
    model = _model(config, 0.0)
    results = {
        "config": asdict(config),
        "meta": {"seconds": time.perf_counter() - start, "numpy": np.__version__,
                 "machine": platform.machine() + " " + platform.system(),
                 "cpus": os.cpu_count(), "train_images": int(len(data.x_train)),
                 "test_images": int(len(data.x_test)),
                 "parameters": int(sum(math.prod(s) for s in model.shapes().values())),
                 "complex_bytes": COMPLEX_BYTES},
        "runs": runs, "transfer": transfer, "memory": memory, "errors": errors,
    }
    results["summary"] = summarize(results)
    return results


def run(quick=False, seeds=None, rates=None, epochs=None, *, log=None, **options):
    """The study with :data:`QUICK` (``quick``) or the default :class:`Config`, changed by
    ``seeds`` (a count, for seeds 0..N-1, or the seeds themselves), ``rates`` (percent),
    ``epochs`` and any other :class:`Config` field in ``options``; returns the results
    dict of :func:`study`. ``log``: a ``print``-like function (default: silent)."""
    config = QUICK if quick else Config()
    if seeds is not None:
        if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
            if not 1 <= seeds <= 100:
                raise ValueError(f"seeds must be a count in 1..100 or a list of seeds, "
                                 f"got {seeds}")
            seeds = tuple(range(seeds))
        config = replace(config, seeds=tuple(seeds))
    if rates is not None:
        config = replace(config, rates=tuple(rates))
    if epochs is not None:
        config = replace(config, epochs=epochs)
    known = set(Config.__dataclass_fields__)
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"run() got unknown options {unknown}; known: {', '.join(sorted(known))}")
    config = replace(config, **options)
    return study(config, log=log or (lambda *a, **k: None))


# -- summary -------------------------------------------------------------------------------

def _stats(values):
    values = np.asarray(values, dtype=np.float64)
    return {"mean": float(values.mean()), "min": float(values.min()),
            "max": float(values.max()),
            "std": float(values.std(ddof=1)) if values.size > 1 else 0.0}


def summarize(results):
    """A row per rate: ``rate``, ``seeds``, ``accuracy`` and ``relative`` (accuracy over
    the same seed's c = 0 accuracy) as ``{mean, min, max, std}``, ``accuracy_tail`` (each
    seed's mean test accuracy over the last :data:`TAIL` epochs, same stats), ``curve``
    (the mean test accuracy per epoch), ``transfer`` (the c =
    0-trained network inferred at the rate, same stats), ``seconds_per_epoch`` and
    ``density`` (per conv layer, the ReLU outputs' non-zero fraction; means over seeds),
    ``kept`` (per layer), ``kept_fraction`` (all layers' filter coefficients
    over c = 0's), ``memory`` (filter, input and total bytes) and ``memory_ratio``
    (total over c = 0's), ``errors`` (per layer: relative error and kept input energy)."""
    runs, config = results["runs"], results["config"]
    zero = {r["seed"]: r["accuracy"] for r in runs if r["rate"] == 0.0}
    memory = {m["rate"]: m for m in results["memory"]}
    base = memory[0.0]["total"]
    summary = []
    for rate in config["rates"]:
        group = [r for r in runs if r["rate"] == rate]
        if not group:
            continue
        m = memory[rate]
        row = {"rate": rate, "seeds": [r["seed"] for r in group],
               "accuracy": _stats([r["accuracy"] for r in group]),
               "relative": _stats([r["accuracy"] / zero[r["seed"]] for r in group
                                   if zero.get(r["seed"])] or [float("nan")]),
               "curve": np.mean([[e["test_accuracy"] for e in r["history"]] for r in group],
                                axis=0).tolist(),
               "accuracy_tail": _stats([np.mean([e["test_accuracy"]
                                                 for e in r["history"][-TAIL:]])
                                        for r in group]),
               "seconds_per_epoch": float(np.mean([r["seconds"] / len(r["history"])
                                                   for r in group])),
               "density": {name: float(np.mean([r["density"][name] for r in group]))
                           for name in group[0].get("density", {})},
               "kept": {layer["layer"]: layer["kept"] for layer in m["layers"]},
               "kept_shape": {layer["layer"]: layer["kept_shape"] for layer in m["layers"]},
               "spectrum": {layer["layer"]: layer["spectrum"] for layer in m["layers"]},
               "memory": dict(m["total"]),
               "memory_ratio": m["total"]["bytes"] / base["bytes"],
               "kept_fraction": m["total"]["filter_coefficients"]
               / base["filter_coefficients"]}
        transfer = [t["accuracy"] for t in results.get("transfer", []) if t["rate"] == rate]
        row["transfer"] = _stats(transfer) if transfer else None
        row["errors"] = {e["layer"]: {"relative_error": e["relative_error"],
                                      "kept_energy_input": e["kept_energy_input"]}
                         for e in results.get("errors", []) if e["rate"] == rate}
        summary.append(row)
    return summary


# -- markdown ------------------------------------------------------------------------------

def _pct(value, digits=2):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{100 * value:.{digits}f} %"


def _rate(rate):
    return f"{rate:g} %"


def _image(plots, name):
    return f"![{name}]({plots[name]})" if name in plots else ""


def accuracy_table(results):
    """Accuracy per rate: mean ± std [min, max] over seeds, relative to c = 0, the c =
    0-trained network inferred at c, seconds per epoch."""
    rows = []
    for r in results["summary"]:
        a, rel, t = r["accuracy"], r["relative"], r["transfer"]
        rows.append([
            _rate(r["rate"]), f"{100 * (1 - r['kept_fraction']):.1f} %",
            f"{_pct(a['mean'])} ± {100 * a['std']:.2f}",
            f"{_pct(a['min'])} .. {_pct(a['max'])}",
            f"{_pct(r['accuracy_tail']['mean'])}",
            f"{rel['mean']:.4f}",
            "n/a" if t is None else f"{_pct(t['mean'])} ({_pct(t['min'], 1)} .. "
                                    f"{_pct(t['max'], 1)})",
            " / ".join(f"{v:.2f}" for v in r.get("density", {}).values()) or "n/a",
            f"{r['seconds_per_epoch']:.2f}"])
    return markdown_table(
        ["c", "coefficients dropped", "test accuracy (mean ± std)", "min .. max",
         f"last {min(TAIL, results['config']['epochs'])} epochs", "vs c = 0", "c = 0-trained, inferred at c",
         "ReLU density (per layer)", "s / epoch"],
        rows, align="rrrrrrrrr")


def memory_table(results):
    """Kept coefficients per layer and the bytes of the kept spectra against c = 0."""
    summary = results["summary"]
    layers = list(summary[0]["kept"]) if summary else []
    rows = []
    for r in summary:
        m = r["memory"]
        rows.append([_rate(r["rate"])]
                    + [f"{' x '.join(map(str, r['kept_shape'][n]))} = {r['kept'][n]} / "
                       f"{r['spectrum'][n]}" for n in layers]
                    + [f"{m['filter_bytes']:,}", f"{m['input_bytes']:,}", f"{m['bytes']:,}",
                       f"{r['memory_ratio']:.3f}", f"{1 - r['rate'] / 100:.3f}"])
    return markdown_table(
        ["c"] + [f"{n} kept (rows x cols)" for n in layers]
        + ["filter spectra B", "input tile B", "total B", "vs c = 0", "1 - c / 100"],
        rows, align="r" + "r" * len(layers) + "rrrrr")


def error_table(results):
    """The band-limited conv's relative error against direct conv per rate and layer."""
    summary = results["summary"]
    layers = list(summary[0]["errors"]) if summary else []
    rows = [[_rate(r["rate"])]
            + [f"{r['errors'][n]['relative_error']:.3g}" for n in layers]
            + [f"{r['errors'][n]['kept_energy_input']:.4f}" for n in layers]
            for r in summary]
    return markdown_table(
        ["c"] + [f"{n} relative error" for n in layers]
        + [f"{n} input energy kept" for n in layers], rows, align="r" * (1 + 2 * len(layers)))


def render(results):
    """The markdown of a :func:`study` result (as loaded from ``bandlimit.json``; plots
    linked when ``results["plots"]`` names them)."""
    config, meta = results["config"], results["meta"]
    plots = results.get("plots", {})
    first = results["memory"][0]["layers"]
    tiles = ", ".join(f"{l['layer']} {' x '.join(map(str, l['fft_shape']))}" for l in first)
    lines = [
        "# Band-limited training on handwritten digits", "",
        f"{len(results['runs'])} training runs: {len(config['rates'])} compression rates "
        f"({', '.join(_rate(c) for c in config['rates'])}) x {len(config['seeds'])} seed(s), "
        f"{config['epochs']} epochs each at every rate (batch {config['batch']}, lr "
        f"{config['lr']:g}, momentum {config['momentum']:g}, gradient clip "
        f"{config['clip']:g} per tensor), training and inferring at the same rate. Data: "
        f"scikit-learn's digits, {meta['train_images']} train / {meta['test_images']} test "
        f"images; CNN conv {' -> '.join(map(str, config['channels']))} (3 x 3, padding 1, "
        f"strides 1, 2) then dense, {meta['parameters']:,} parameters; both conv layers "
        f"band-limited FFT convolutions (FFT tiles {tiles}"
        f"{', powers of two' if config['pow2'] else ''}). Run time {meta['seconds']:.0f} s."
        + (" **Quick run** (`--quick`): one seed, few epochs; not for the paper."
           if config.get("quick") else ""), "",
        "## Accuracy against the compression rate", "",
        f"Final test accuracy over seeds, and the mean over each seed's last "
        f"{min(TAIL, config['epochs'])} epochs (the final epoch alone is noisy at high c); *coefficients dropped*: 1 - "
        "kept / all of the one-sided spectrum (the rule's rounding on a small tile drops "
        "more than c); "
        "*vs c = 0*: the accuracy over the same seed's c = 0 accuracy (mean); *c = "
        "0-trained, inferred at c*: the c = 0 networks evaluated with band-limited "
        "convolutions at c, without retraining; *ReLU density*: the non-zero fraction of "
        "each conv layer's ReLU outputs on the first test images after training. Seconds "
        "per epoch are wall time on a shared machine (one BLAS thread).", "",
        accuracy_table(results), "",
        _image(plots, "accuracy"), "",
        "## Memory of the spectra", "",
        f"Kept complex coefficients per channel plane (of the one-sided spectrum), and the "
        f"bytes of the kept spectra at {meta['complex_bytes']} bytes a coefficient "
        f"(complex64): all filters of both layers, and one input tile (one image's planes "
        f"into each layer). Both are proportional to the kept coefficients.", "",
        memory_table(results), "",
        _image(plots, "memory"), "",
        "## Error of the band-limited convolution", "",
        f"`conv2d_fft_bandlimited` against `conv2d_direct` on the first "
        f"{config['error_images']} test digits with the first seed's c = 0-trained filters "
        f"(conv1 on the images, conv2 on that network's conv1 ReLU outputs): "
        f"||y_c - y_direct|| / ||y_direct||, and the fraction of the input's spectral "
        f"energy in the kept band.", "",
        error_table(results), "",
        _image(plots, "error"), "",
        "## Against the paper", "", against_paper(results), ""]
    return "\n".join(lines)


def _paper_at(rate, points=PAPER):
    """The paper's relative accuracy at ``rate``, interpolated linearly between its points
    (None beyond the last)."""
    rates = sorted(points)
    if rate > rates[-1]:
        return None
    return float(np.interp(rate, rates, [points[c] / points[0] for c in rates]))


def against_paper(results):
    summary = results["summary"]
    lines = []
    paper_rel = {c: a / PAPER[0] for c, a in PAPER.items()}
    lines.append(
        f"- **The paper's curve.** ResNet-18 on CIFAR-10 falls smoothly from "
        f"{PAPER[0]:.2f} % at c = 0 to {PAPER[49]:.2f} % at 49 % and {PAPER[77.8]:.2f} % "
        f"at 77.8 % (relative {paper_rel[49]:.3f} and {paper_rel[77.8]:.3f}); DenseNet-121 "
        f"on CIFAR-100 from {PAPER_DENSENET[0]:.1f} to {PAPER_DENSENET[77.8]:.2f} % at "
        f"77.8 % (relative {PAPER_DENSENET[77.8] / PAPER_DENSENET[0]:.3f}).")
    if not summary:
        return "\n".join(lines)
    ours = "; ".join(f"c = {_rate(r['rate'])}: {_pct(r['accuracy']['mean'])} "
                     f"(relative {r['relative']['mean']:.3f}"
                     + (f", paper {_paper_at(r['rate']):.3f}"
                        if _paper_at(r["rate"]) is not None else "") + ")"
                     for r in summary)
    rises = [(a["rate"], b["rate"]) for a, b in zip(summary, summary[1:])
             if b["accuracy"]["mean"] > a["accuracy"]["mean"] + 0.005]
    shape = ("declines with c at every step (no rise above half a point)" if not rises
             else "rises between " + ", ".join(f"c = {_rate(a)} and {_rate(b)}"
                                                for a, b in rises))
    lines.append(f"- **Ours.** {ours}. The mean accuracy {shape}.")
    worse = [r for r in summary if _paper_at(r["rate"]) is not None
             and r["relative"]["mean"] < _paper_at(r["rate"]) - 0.01]
    top = summary[-1]
    kept = ", ".join(f"{' x '.join(map(str, shape))} ({name})"
                     for name, shape in top["kept_shape"].items())
    layers = results["memory"][0]["layers"]
    sides = sorted({side for layer in layers for side in layer["fft_shape"]})
    spectra = sorted({layer["spectrum"] for layer in layers})
    lines.append(
        f"- **The tile's rounding.** Our FFT tiles are {' or '.join(map(str, sides))} "
        f"points a side (ResNet-18's 32 x 32 stage has 65), so the rule's `int()` rounds "
        f"the kept block down coarsely: at c = {_rate(top['rate'])} it keeps {kept} of "
        f"{' or '.join(map(str, spectra))} coefficients, "
        f"{100 * top['kept_fraction']:.1f} % of them (not {100 - top['rate']:g} %); the "
        f"*coefficients dropped* column gives every rate's true compression, and the "
        f"normalized plot draws our curve against it too."
        + (" Below the paper's curve (by more than 0.01 relative) at c = "
           + ", ".join(_rate(r["rate"]) for r in worse) + ": an 8 x 8 digit has little "
           "spectrum to spare, our CNN has no batch normalization or residual paths, and "
           "every rate gets the same short schedule." if worse else ""))
    dead = [r for r in summary if r.get("density") and min(r["density"].values()) < 0.15]
    if dead:
        r = dead[0]
        lines.append(
            f"- **Dead units at high c.** From c = {_rate(r['rate'])} on, "
            + ", ".join(f"{name} keeps {100 * v:.0f} %" for name, v in r["density"].items())
            + " of its ReLU outputs non-zero (c = 0: "
            + ", ".join(f"{100 * v:.0f} %" for v in summary[0]["density"].values())
            + "): with so few coefficients every output plane is a very smooth surface, "
            "most units are off for the whole test image, and what is left learns slowly "
            "at the shared schedule.")
    transfer = [r for r in summary if r["transfer"] is not None and r["rate"] > 0]
    if transfer:
        lines.append(
            "- **Same rate for training and inference.** The c = 0 networks inferred at c "
            "without retraining score "
            + ", ".join(f"{_pct(r['transfer']['mean'])} at {_rate(r['rate'])} (trained "
                        f"there: {_pct(r['accuracy']['mean'])})" for r in transfer)
            + ": training at the rate adapts the filters to the band, as the paper argues.")
    lines.append(
        "- **Memory.** The kept spectra shrink exactly with the kept coefficients (the "
        "memory table); the paper reports GPU memory and epoch time falling roughly in "
        "proportion to c. Our seconds per epoch fall too, as the products and transforms "
        "are evaluated at the kept coefficients only, but they are wall times on a shared "
        "machine.")
    return "\n".join(lines)


# -- plots ---------------------------------------------------------------------------------

def figures(results):
    """The study's plots, by name (``accuracy``, ``memory``, ``error``): each a
    ``figure(path)`` that draws into ``path`` and says whether it drew anything."""
    from ..report.plots import draw, style
    summary = results["summary"]
    made = {}
    rates = np.array([r["rate"] for r in summary])
    ours, paper, densenet = style(0), style(1), style(2)

    def accuracy(axes):
        if not summary:
            return 0
        left, right = axes
        mean = np.array([r["accuracy"]["mean"] for r in summary]) * 100
        low = np.array([r["accuracy"]["min"] for r in summary]) * 100
        high = np.array([r["accuracy"]["max"] for r in summary]) * 100
        seeds = len(summary[0]["seeds"])
        label = f"ours: CNN / digits, mean, min-max over {seeds} seed(s) (left axis)"
        left.errorbar(rates, mean, yerr=[mean - low, high - mean], color=ours["color"],
                      marker=ours["marker"], capsize=3, label=label)
        transfer = [r for r in summary if r["transfer"] is not None]
        if transfer:
            left.plot([r["rate"] for r in transfer],
                      [100 * r["transfer"]["mean"] for r in transfer], color=ours["color"],
                      linestyle=":", marker="x", label="ours: c = 0-trained, inferred at c")
        left.set_xlabel("compression rate c (%)")
        left.set_ylabel("test accuracy, digits (%)")
        twin = left.twinx()
        twin.plot(list(PAPER), list(PAPER.values()), color=paper["color"],
                  marker=paper["marker"], linestyle="--")
        # Scale the right axis so that both c = 0 points sit at the same height and equal
        # relative drops look equal: the two curves' shapes compare directly.
        lo, hi = left.get_ylim()
        lo = min(lo, mean[0] * min(PAPER.values()) / PAPER[0] - 1)
        left.set_ylim(lo, hi)
        if mean[0] > 0:
            scale = PAPER[0] / mean[0]
            twin.set_ylim(lo * scale, hi * scale)
        twin.set_ylabel("paper: ResNet-18 / CIFAR-10 top-1 (%)", color=paper["color"])
        left.set_title("accuracy against c (axes scaled so the c = 0 points meet)",
                       fontsize=10)
        # The twin's series in the left axis's legend (draw() builds that one).
        left.plot([], [], color=paper["color"], marker=paper["marker"], linestyle="--",
                  label="paper: ResNet-18 / CIFAR-10 (right axis)")
        right.plot(rates, [r["relative"]["mean"] for r in summary], color=ours["color"],
                   marker=ours["marker"], label="ours, at c")
        right.plot([100 * (1 - r["kept_fraction"]) for r in summary],
                   [r["relative"]["mean"] for r in summary], color=ours["color"],
                   marker=ours["marker"], linestyle=":", alpha=0.6,
                   label="ours, at the coefficients actually dropped")
        right.plot(list(PAPER), [a / PAPER[0] for a in PAPER.values()],
                   color=paper["color"], marker=paper["marker"], linestyle="--",
                   label="paper: ResNet-18 / CIFAR-10")
        right.plot(list(PAPER_DENSENET), [a / PAPER_DENSENET[0] for a in
                                          PAPER_DENSENET.values()],
                   color=densenet["color"], marker=densenet["marker"], linestyle="--",
                   label="paper: DenseNet-121 / CIFAR-100")
        right.set_xlabel("compression rate c (%)")
        right.set_ylabel("accuracy / accuracy at c = 0")
        right.set_title("normalized to c = 0")
        return 1

    made["accuracy"] = lambda path: draw(path, accuracy, panels=2)

    def memory(axes):
        if not summary:
            return 0
        left, right = axes
        for i, (key, label) in enumerate((("filter_bytes", "filter spectra"),
                                          ("input_bytes", "one input tile"),
                                          ("bytes", "total"))):
            s = style(i)
            left.plot(rates, [r["memory"][key] for r in summary], color=s["color"],
                      marker=s["marker"], label=label)
        left.set_yscale("log")
        left.set_xlabel("compression rate c (%)")
        left.set_ylabel(f"bytes of kept spectra ({results['meta']['complex_bytes']} B a "
                        f"coefficient)")
        left.set_title("memory of the spectra")
        right.plot(rates, [r["memory_ratio"] for r in summary], color=ours["color"],
                   marker=ours["marker"], label="ours: kept spectra / c = 0")
        grid = np.linspace(0, max(rates.max(), 1), 50)
        right.plot(grid, 1 - grid / 100, color="grey", linestyle="--",
                   label="1 - c / 100 (the paper: roughly in proportion)")
        right.set_ylim(0, 1.05)
        right.set_xlabel("compression rate c (%)")
        right.set_ylabel("relative to c = 0")
        right.set_title("memory relative to c = 0")
        return 1

    made["memory"] = lambda path: draw(path, memory, panels=2)

    def error(ax):
        layers = list(summary[0]["errors"]) if summary else []
        count = 0
        for i, layer in enumerate(layers):
            pairs = [(r["rate"], r["errors"][layer]["relative_error"]) for r in summary
                     if layer in r["errors"]]
            if pairs:
                s = style(i)
                ax.plot(*zip(*pairs), color=s["color"], marker=s["marker"],
                        label=f"{layer} (c = 0-trained filters)")
                count += 1
        ax.set_ylim(0, 1.05)
        ax.set_xlim(0, 100)
        ax.set_xlabel("compression rate c (%)")
        ax.set_ylabel("||y_c - y_direct|| / ||y_direct||")
        ax.set_title("band-limited conv against direct conv, digits")
        return count

    made["error"] = lambda path: draw(path, error)
    return made


def write(results, out_dir):
    """``bandlimit.json``, ``bandlimit.md`` and the plots into ``out_dir``; returns the markdown."""
    return write_study(results, out_dir, "bandlimit", figures=figures, render=render)


# -- the main job's analyses ----------------------------------------------------------------

def flow_quick(configs=None):
    """The main job's quick tier: :data:`QUICK` (one seed, a few epochs). The core's
    configurations (``configs``) do not enter."""
    return study(QUICK, log=lambda *a, **k: None)


def flow_full(configs=None):
    """The main job's full tier: the default :class:`Config` (3 seeds, 20 epochs)."""
    return study(Config(), log=lambda *a, **k: None)


# -- command line --------------------------------------------------------------------------

def _parser():
    p = argparse.ArgumentParser(prog="dnnhw bench bandlimit",
                                description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help=f"a small version: {QUICK.epochs} epochs, one seed (seconds)")
    p.add_argument("--seeds", type=int,
                   help=f"number of seeds, 1..100 (seeds 0 .. N-1; default "
                        f"{len(Config.seeds)}, --quick 1)")
    p.add_argument("--epochs", type=int,
                   help=f"epochs, 1..1000 (default {Config.epochs}, --quick {QUICK.epochs})")
    p.add_argument("--rates", type=comma_list(float, "numbers"),
                   help="comma-separated compression rates c in percent, each in [0, 100) "
                        f"(default {','.join(f'{c:g}' for c in RATES)}; 0 is always added)")
    p.add_argument("--pow2", action="store_true",
                   help="round the FFT tiles up to powers of two (32 x 32)")
    p.add_argument("-o", "--out", type=Path,
                   help="directory for bandlimit.json, bandlimit.md and the plots")
    return p


def main(argv=None):
    """Run the benchmark; ``argv`` as for ``dnnhw bench bandlimit``. Returns the exit
    status."""
    parser = _parser()
    args = parser.parse_args(argv)
    config = QUICK if args.quick else Config()
    if args.seeds is not None:
        if not 1 <= args.seeds <= 100:
            parser.error(f"--seeds must be in 1..100, got {args.seeds}")
        config = replace(config, seeds=tuple(range(args.seeds)))
    if args.epochs is not None:
        if not 1 <= args.epochs <= 1000:
            parser.error(f"--epochs must be in 1..1000, got {args.epochs}")
        config = replace(config, epochs=args.epochs)
    if args.rates is not None:
        bad = [c for c in args.rates if not 0 <= c < 100]
        if bad:
            parser.error(f"--rates must each be in [0, 100), got {bad[0]:g}")
        config = replace(config, rates=tuple(args.rates))
    if args.pow2:
        config = replace(config, pow2=True)
    config = _check_config(config)
    print(f"dnnhw bench bandlimit: c = {', '.join(_rate(c) for c in config.rates)} x "
          f"{len(config.seeds)} seed(s), {config.epochs} epochs", flush=True)
    results = study(config, log=lambda line: print(line, flush=True))
    show_study(results, args.out, "bandlimit", figures=figures, render=render)
    return 0


BENCHMARK = Benchmark(
    "bandlimit", f"{__name__}:main",
    "band-limited FFT training on digits: accuracy and spectra memory against the "
    "compression rate, error against direct convolution")


if __name__ == "__main__":
    raise SystemExit(main())
