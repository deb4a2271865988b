"""``dnnhw bench dgc``: Deep Gradient Compression (Lin et al., ICLR 2018) on handwritten
digits: accuracy against dense SGD, the compression ratio, the ablation of each trick, the
fixed-point hardware rule, and cDMA's compression of the trained CNN's activations.

**The workload.** scikit-learn's 8 x 8 digits (:func:`dnnhw.workloads.digits`: 1,433
train, 364 test images, shipped inside the wheel) and the small CNN of
:mod:`dnnhw.golden.cnn` (conv 3 x 3 to 16 channels, conv 3 x 3 stride 2 to 32, dense to
10; 9,930 parameters in six tensors), trained by K simulated data-parallel workers
(:func:`dnnhw.golden.cnn.train`): a global minibatch of 32 images split into K shards,
lr 0.05, momentum 0.9, no weight decay.

**The arms** (:data:`ARMS`), every one from the same initial weights and batch order per
seed (so the differences between arms are paired):

- ``dense``: all-reduce of float32 gradients, momentum SGD, each tensor's summed
  gradient clipped to norm thr_G;
- ``dgc``: DGC with all its tricks (:mod:`dnnhw.golden.dgc`, the authors' sampled
  threshold): momentum correction, momentum factor masking, local clipping to
  ``thr_G / sqrt(K)``, the warm-up (keep 25 %, 6.25 %, 1.5625 %, 0.4 % over the first four
  epochs, then 0.1 %);
- ``dgc-no-momentum-correction``, ``dgc-no-factor-masking``, ``dgc-no-clipping``,
  ``dgc-no-warmup``: DGC without one trick each (without momentum correction the workers
  accumulate raw gradients and momentum SGD runs on the aggregate);
- ``dgc-fixed``: the fixed-point rule the hardware computes (:mod:`dnnhw.golden.dgc_fixed`,
  ``docs/dgc.md`` section 2) with 16-bit gradients and 24-bit state: each tensor's
  gradients are quantized with a power-of-two scale fixed at its first non-zero step (3
  bits of headroom over that step's peak), the selected values go back to float for the
  SGD step (:class:`dnnhw.golden.cnn.FixedDgcExchange`).

**The figures.** Final test accuracy (mean and sample standard deviation over seeds), its
difference from dense paired by seed (mean and standard deviation of the per-seed
differences; *within noise* when the mean difference is at most twice its standard
error), the accuracy at the end of the warm-up, and the compression ratio, dense bytes
over sparse bytes summed over tensors, steps and workers, over the whole training and
over the epochs after the warm-up (the paper's 270-600x is for the steady state of much
larger models). Bytes are the wire format of ``docs/dgc.md`` (float arms: a 4-byte count
and 8 bytes an element; fixed arm: ``dgc_fixed.sparse_bits``, index and 24-bit value a
beat); dense is 4 bytes an element.

**cDMA.** At a few epochs through the training of the ``dense`` and ``dgc`` arms (first
seed, first worker count), the ReLU outputs of each conv layer on the first 64 test images
(fp32, NCHW) through :func:`dnnhw.golden.zvc.compression_ratios` (ZV, RL, ZL on the paper's
32 x 32-bit window) and their density.

``-o DIR`` writes ``dgc.json``, ``dgc.md`` and the plots; :func:`render` makes the
markdown again from ``dgc.json`` without training.
"""

import argparse
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from . import Benchmark, comma_list, show_study, write_study
from ..golden import cnn, dgc
from ..golden.zvc import compression_ratios
from ..text import markdown_table


__all__ = ["ARMS", "PAPER", "Config", "QUICK", "run_arm", "study", "summarize", "render",
           "figures", "write", "main", "flow_quick", "flow_full", "accuracy_table",
           "cdma_lines", "against_paper"]

#: The paper's figures (REFERENCE.md): gradient exchange 270x-600x smaller, no accuracy
#: loss.
PAPER = {"ratio_low": 270, "ratio_high": 600}

#: Arm name to (label, the exchange's keyword arguments besides momentum and keep).
ARMS = {
    "dense": ("dense SGD", {}),
    "dgc": ("DGC, all tricks", {}),
    "dgc-no-momentum-correction": ("DGC without momentum correction",
                                   {"momentum_correction": False}),
    "dgc-no-factor-masking": ("DGC without factor masking", {"factor_masking": False}),
    "dgc-no-clipping": ("DGC without local clipping", {"clip": None}),
    "dgc-no-warmup": ("DGC without warm-up", {"warmup": False}),
    "dgc-fixed": ("DGC, fixed-point rule (G 16, S 24)", {}),
}

#: Arms whose activations the cDMA study measures.
CDMA_ARMS = ("dense", "dgc")


@dataclass(frozen=True)
class Config:
    """Everything a run depends on (``--quick`` is :data:`QUICK`)."""
    epochs: int = 20
    seeds: tuple = (0, 1, 2)
    workers: tuple = (4, 8)
    arms: tuple = tuple(ARMS)
    batch: int = 32
    lr: float = 0.05
    momentum: float = 0.9
    thr_g: float = 1.0
    keep: float = dgc.KEEP
    sample_ratio: float = dgc.SAMPLE_RATIO
    channels: tuple = (16, 32)
    grad_width: int = 16
    state_width: int = 24
    headroom: int = 3
    cdma_images: int = 64
    quick: bool = False

    def cdma_epochs(self):
        """The epochs (0-based) after which the activations are measured: the first, a
        quarter, half way and the last."""
        e = self.epochs
        return sorted({0, max(0, e // 4 - 1), max(0, e // 2 - 1), e - 1})


QUICK = Config(epochs=6, seeds=(0,), workers=(4,), quick=True)


def _exchange(arm, config):
    _, options = ARMS[arm]
    common = dict(momentum=config.momentum)
    if arm == "dense":
        return cnn.DenseExchange(clip=config.thr_g, **common)
    options = dict(dict(clip=config.thr_g, keep=config.keep,
                        sample_ratio=config.sample_ratio), **options)
    if arm == "dgc-fixed":
        return cnn.FixedDgcExchange(grad_width=config.grad_width,
                                    state_width=config.state_width,
                                    headroom=config.headroom, **common, **options)
    return cnn.DgcExchange(**common, **options)


def _cdma_hook(model, images, epochs, out):
    """An ``on_epoch`` hook appending, at ``epochs``, one row per conv layer to ``out``."""
    def hook(state):
        if state.epoch not in epochs:
            return
        _, _, activations = model.forward(state.params, images)
        for layer, a in zip(model.conv_names, activations):
            r = compression_ratios(a.astype(np.float32), lanes=32, width=32)
            out.append({"epoch": state.epoch, "layer": layer,
                        "shape": list(a.shape), **r})
    return hook


def run_arm(arm, config, seed, workers, data, *, cdma=False):
    """Train one arm for one seed and worker count; a JSON-ready dict: ``arm``, ``seed``,
    ``workers``, ``history`` (:func:`dnnhw.golden.cnn.train`'s records), ``seconds`` and,
    with ``cdma``, ``cdma`` rows (layer, epoch, density, ZV / RL / ZL ratios)."""
    if arm not in ARMS:
        raise ValueError(f"arm must be one of {', '.join(ARMS)}, got {arm!r}")
    model = cnn.CNN(channels=tuple(config.channels), strides=(1,) + (2,) * (
        len(config.channels) - 1))
    rows = []
    hook = (_cdma_hook(model, data.x_test[:config.cdma_images], set(config.cdma_epochs()),
                       rows) if cdma else None)
    start = time.perf_counter()
    result = cnn.train(model, data, workers=workers, epochs=config.epochs,
                       exchange=_exchange(arm, config), seed=seed, batch=config.batch,
                       lr=config.lr, on_epoch=hook)
    record = {"arm": arm, "seed": seed, "workers": workers, "history": result.history,
              "seconds": time.perf_counter() - start}
    if cdma:
        record["cdma"] = rows
    return record


def _limit_threads():
    """One BLAS thread: the matrices are tiny and a shared machine's other threads make
    more of them much slower, not faster."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:          # pragma: no cover - scikit-learn brings it
        return None
    return threadpool_limits(1)


def study(config=Config(), *, log=print):
    """Train every arm for every seed and worker count; the dict :func:`render` and
    :func:`write` take (``config``, ``meta``, ``tensors``, ``runs``, ``summary``,
    ``cdma``)."""
    from ..workloads import digits
    for arm in config.arms:
        if arm not in ARMS:
            raise ValueError(f"arms must be among {', '.join(ARMS)}, got {arm!r}")
    start = time.perf_counter()
    limiter = _limit_threads()
    try:
        data = digits()
        model = cnn.CNN(channels=tuple(config.channels),
                        strides=(1,) + (2,) * (len(config.channels) - 1))
        runs = []
        for workers in config.workers:
            for seed in config.seeds:
                for arm in config.arms:
                    cdma = (arm in CDMA_ARMS and seed == config.seeds[0]
                            and workers == config.workers[0])
                    run = run_arm(arm, config, seed, workers, data, cdma=cdma)
                    runs.append(run)
                    last = run["history"][-1] if run["history"] else {}
                    log(f"dgc: K={workers} seed {seed} {arm:27s} test accuracy "
                        f"{last.get('test_accuracy', float('nan')):.3f}, ratio "
                        f"{_ratio(run['history']):.1f}x, {run['seconds']:.1f} s")
    finally:
        if limiter is not None:
            limiter.unregister()
    results = {
        "config": asdict(config),
        "meta": {"seconds": time.perf_counter() - start, "numpy": np.__version__,
                 "machine": platform.machine() + " " + platform.system(),
                 "cpus": os.cpu_count(), "train_images": int(len(data.x_train)),
                 "test_images": int(len(data.x_test))},
        "tensors": {name: int(np.prod(shape)) for name, shape in model.shapes().items()},
        "runs": runs,
        "cdma": [dict(row, arm=run["arm"]) for run in runs for row in run.get("cdma", [])],
    }
    results["summary"] = summarize(results)
    return results


# -- summary -------------------------------------------------------------------------------

def _ratio(history, first_epoch=0):
    part = [e for e in history if e["epoch"] >= first_epoch]
    sent = sum(e["sent_bytes"] for e in part)
    return sum(e["dense_bytes"] for e in part) / sent if sent else float("nan")


def _mean_std(values):
    values = np.asarray(values, dtype=np.float64)
    if not values.size:
        return float("nan"), float("nan")
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0


def summarize(results):
    """Per worker count and arm: final accuracy (mean, std over seeds), the paired
    difference from dense, the accuracy at the end of the warm-up, the compression ratios,
    the bytes, the accuracy curve (mean, min, max per epoch) and the elements sent per
    message per tensor after the warm-up."""
    config = results["config"]
    warm = len(dgc.WARMUP)
    runs = results["runs"]
    summary = []
    for workers in config["workers"]:
        dense = {r["seed"]: r for r in runs if r["workers"] == workers
                 and r["arm"] == "dense"}
        for arm in config["arms"]:
            group = [r for r in runs if r["workers"] == workers and r["arm"] == arm]
            if not group or not group[0]["history"]:
                continue
            final = [r["history"][-1]["test_accuracy"] for r in group]
            curves = np.array([[e["test_accuracy"] for e in r["history"]] for r in group])
            row = {"workers": workers, "arm": arm, "label": ARMS[arm][0],
                   "seeds": [r["seed"] for r in group]}
            row["accuracy"], row["accuracy_std"] = _mean_std(final)
            diffs = [r["history"][-1]["test_accuracy"]
                     - dense[r["seed"]]["history"][-1]["test_accuracy"]
                     for r in group if r["seed"] in dense]
            row["difference"], row["difference_std"] = _mean_std(diffs)
            if len(diffs) > 1:
                error = row["difference_std"] / math.sqrt(len(diffs))
                row["within_noise"] = bool(abs(row["difference"]) <= 2 * error + 1e-12)
            else:
                row["within_noise"] = None
            early = min(warm, config["epochs"]) - 1
            row["warmup_end_epoch"] = early
            row["accuracy_warmup_end"], row["accuracy_warmup_end_std"] = _mean_std(
                curves[:, early])
            histories = [e for r in group for e in r["history"]]
            post = [e for e in histories if e["epoch"] >= warm]
            row["ratio"] = _ratio(histories)
            row["ratio_after_warmup"] = _ratio(post) if post else None
            row["dense_bytes"] = sum(e["dense_bytes"] for e in histories) / len(group)
            row["sent_bytes"] = sum(e["sent_bytes"] for e in histories) / len(group)
            row["curve"] = {"mean": curves.mean(axis=0).tolist(),
                            "min": curves.min(axis=0).tolist(),
                            "max": curves.max(axis=0).tolist()}
            row["bytes_per_epoch"] = np.mean(
                [[e["sent_bytes"] for e in r["history"]] for r in group], axis=0).tolist()
            row["ratio_per_epoch"] = np.mean(
                [[e["dense_bytes"] / e["sent_bytes"] for e in r["history"]] for r in group],
                axis=0).tolist()
            if post and "sent_elements" in post[0]:
                messages = sum(e["steps"] for e in post) * workers
                row["elements_per_message"] = {
                    name: sum(e["sent_elements"][name] for e in post) / messages
                    for name in post[0]["sent_elements"]}
            fixed = [e for e in histories if "grad_elements" in e]
            if fixed:
                row["fixed"] = {
                    "grad_clamped": sum(e["grad_clamped"] for e in fixed)
                    / max(1, sum(e["grad_elements"] for e in fixed)),
                    "sent_saturated": sum(e["sent_saturated"] for e in fixed)
                    / max(1, sum(e["sent_values"] for e in fixed)),
                    "scale_bits": group[0]["history"][-1]["scale_bits"]}
            summary.append(row)
    return summary


# -- markdown ------------------------------------------------------------------------------

def _pct(value, std=None, sign=False):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    text = f"{100 * value:+.2f}" if sign else f"{100 * value:.2f}"
    return text + (f" ± {100 * std:.2f}" if std is not None else "") + " %"


def _x(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.0f}x" if value >= 100 else f"{value:.1f}x"


def _image(plots, name):
    return f"![{name}]({plots[name]})" if name in plots else ""


def accuracy_table(results):
    """The markdown table of final accuracy, the difference from dense and the
    compression ratios, a row per worker count and arm."""
    return markdown_table(
        ["K", "arm", "final accuracy", "Δ vs dense", "within noise", "at warm-up end",
         "ratio (all)", "ratio (after warm-up)", "MB sent / run"],
        [[r["workers"], r["label"], _pct(r["accuracy"], r["accuracy_std"]),
          "-" if r["arm"] == "dense" else _pct(r["difference"], r["difference_std"],
                                               sign=True),
          "-" if r["arm"] == "dense" or r["within_noise"] is None
          else ("yes" if r["within_noise"] else "**no**"),
          _pct(r["accuracy_warmup_end"], r["accuracy_warmup_end_std"]),
          _x(r["ratio"]), _x(r["ratio_after_warmup"]),
          f"{r['sent_bytes'] / 1e6:.3g}"] for r in results["summary"]],
        align="rlrrlrrrr")


def cdma_lines(results):
    """The cDMA section's markdown lines without its heading and plot (for a report
    section that has its own)."""
    return _cdma_section(results, {})[2:]


def against_paper(results):
    """The paragraph that sets the figures beside the paper's."""
    return _differences(results)


def render(results):
    """The markdown of a :func:`study` result (as loaded from ``dgc.json``; plots linked
    when ``results["plots"]`` names them)."""
    config, summary = results["config"], results["summary"]
    plots = results.get("plots", {})
    warm = len(dgc.WARMUP)
    seeds = config["seeds"]
    tensors = results["tensors"]
    lines = [
        "# Deep Gradient Compression on handwritten digits", "",
        f"{len(results['runs'])} training runs: {len(config['arms'])} arms x "
        f"{len(seeds)} seed(s) x K = {', '.join(map(str, config['workers']))} workers, "
        f"{config['epochs']} epochs each, global minibatch {config['batch']}, lr "
        f"{config['lr']:g}, momentum {config['momentum']:g}, thr_G {config['thr_g']:g} "
        f"(local clip thr_G / sqrt(K)), final keep ratio {config['keep']:g} after a "
        f"{warm}-epoch warm-up ({', '.join(f'{k:g}' for k in dgc.WARMUP)}), sample ratio "
        f"{config['sample_ratio']:g}. Data: scikit-learn's digits, "
        f"{results['meta']['train_images']} train / {results['meta']['test_images']} test "
        f"images; CNN conv {' -> '.join(map(str, config['channels']))} then dense, "
        f"{sum(tensors.values()):,} parameters in {len(tensors)} tensors. Run time "
        f"{results['meta']['seconds']:.0f} s."
        + (" **Quick run** (`--quick`): one seed, few epochs; not for the paper."
           if config.get("quick") else ""), "",
        "## Accuracy and compression", "",
        f"Final test accuracy: mean ± sample std over seeds; Δ: the difference from dense "
        f"paired by seed (same initial weights and batches), mean ± std of the per-seed "
        f"differences; *within noise*: |Δ| <= 2 standard errors of Δ. Warm-up end: the "
        f"accuracy after epoch {min(warm, config['epochs'])}. Ratio: dense bytes / sent "
        f"bytes over the whole run and after the warm-up (epochs > {warm}); the paper "
        f"reports {PAPER['ratio_low']}-{PAPER['ratio_high']}x.", "",
        accuracy_table(results),
        "", _image(plots, "accuracy"), "", _image(plots, "bytes"), "",
        _image(plots, "ratio"), ""]
    lines += _tensor_section(results)
    fixed = [r for r in summary if "fixed" in r]
    if fixed:
        f = fixed[0]["fixed"]
        lines += [
            "## The fixed-point rule", "",
            f"Gradients quantized to {config['grad_width']} bits with a power-of-two scale "
            f"per tensor fixed at its first non-zero step ({config['headroom']} bits of "
            f"headroom over that step's peak), state {config['state_width']} bits. Scale "
            f"bits (an integer unit is 2^-bits): "
            + ", ".join(f"{name} {bits}" for name, bits in f["scale_bits"].items()) + ". "
            + "; ".join(f"K = {r['workers']}: {100 * r['fixed']['grad_clamped']:.4f} % of "
                        f"the gradient elements clamped to {config['grad_width']} bits, "
                        f"{100 * r['fixed']['sent_saturated']:.4f} % of the sent values at "
                        f"the {config['state_width']}-bit bound" for r in fixed) + ". "
            "The selection is the hardware's log-binned histogram with count feedback "
            "(four bins an octave), not the sampled top-k, so its counts per message "
            "differ from the float rule's (table above).", ""]
    lines += _cdma_section(results, plots)
    lines += ["## Against the paper", "", _differences(results), ""]
    return "\n".join(lines)


def _tensor_section(results):
    config, summary = results["config"], results["summary"]
    tensors = results["tensors"]
    dgc_rows = [r for r in summary if "elements_per_message" in r]
    if not dgc_rows:
        return []
    header = ["tensor", "elements", "k at keep " + f"{config['keep']:g}", "dense B",
              "sparse B at k", "ratio at k"]
    shown = [r for r in dgc_rows if r["arm"] in ("dgc", "dgc-fixed")] or dgc_rows[:1]
    header += [f"sent / message, {r['arm']} K={r['workers']}" for r in shown]
    rows = []
    for name, n in tensors.items():
        k = dgc.selection_target(n, config["keep"])
        row = [name, f"{n:,}", k, f"{dgc.dense_bytes(n):,}", dgc.sparse_bytes(k),
               _x(dgc.dense_bytes(n) / dgc.sparse_bytes(k))]
        row += [f"{r['elements_per_message'][name]:.2f}" for r in shown]
        rows.append(row)
    total_n = sum(tensors.values())
    total_sparse = sum(dgc.sparse_bytes(dgc.selection_target(n, config["keep"]))
                       for n in tensors.values())
    rows.append(["**all**", f"{total_n:,}", "", f"{dgc.dense_bytes(total_n):,}",
                 total_sparse, _x(dgc.dense_bytes(total_n) / total_sparse)]
                + [f"{sum(r['elements_per_message'].values()):.2f}" for r in shown])
    return [
        "## Per tensor", "",
        "After the warm-up every message of a tensor aims at k = max(1, ceil(n keep)) "
        "elements and costs 4 + 8 k bytes (float arms): on tensors this small the one-element "
        "floor and the 4-byte count bound the ratio, whatever the keep ratio. The last "
        "columns are the elements actually sent per message after the warm-up, averaged "
        "over steps, workers and seeds.", "",
        markdown_table(header, rows, align="lrrrrr" + "r" * len(shown)), ""]


def _cdma_section(results, plots):
    rows = results.get("cdma") or []
    if not rows:
        return []
    return [
        "## cDMA on the trained CNN's activations", "",
        f"The ReLU outputs of each conv layer on the first {results['config']['cdma_images']} "
        "test images (fp32, NCHW order), after the given epoch, through the ZV, RL and ZL "
        "models of `dnnhw.golden.zvc` (32 lanes x 32 bits, RL 4-bit runs, zlib level 6); "
        "first seed, first worker count.", "",
        markdown_table(
            ["arm", "epoch", "layer", "elements", "density", "ZV", "RL", "ZL"],
            [[r["arm"], r["epoch"] + 1, r["layer"], f"{r['elements']:,}",
              f"{r['density']:.3f}", f"{r['zv']:.2f}x", f"{r['rl']:.2f}x",
              f"{r['zl']:.2f}x"] for r in rows], align="lrlrrrrr"),
        "", _image(plots, "cdma"), ""]


def _differences(results):
    config, summary, tensors = results["config"], results["summary"], results["tensors"]
    warm = len(dgc.WARMUP)
    ratios = {name: dgc.dense_bytes(n) / dgc.sparse_bytes(dgc.selection_target(n, config["keep"]))
              for name, n in tensors.items()}
    largest = max(tensors, key=tensors.get)
    dense = [r for r in summary if r["arm"] == "dense"]
    lines = [
        f"- **Model and data.** The paper's models (ResNet, AlexNet, LSTMs, DeepSpeech) have "
        f"millions of parameters in tensors of up to millions of elements; ours has "
        f"{sum(tensors.values()):,} in {len(tensors)} tensors. At keep {config['keep']:g} a "
        f"message keeps at least one element and carries a 4-byte count, so the ratio after "
        f"the warm-up is bounded by the per-tensor table above rather than by 1 / keep "
        f"(8 bytes an element: at most 500x); our largest tensor, {largest} "
        f"({tensors[largest]:,} elements), reaches {_x(ratios[largest])}.",
        f"- **Warm-up share.** The warm-up's {warm} epochs are "
        f"{min(1.0, warm / config['epochs']):.0%} of our {config['epochs']} epochs (a few "
        f"percent of the paper's), and the first alone sends a quarter of the elements; the "
        f"whole-run ratio is therefore far below the steady state's, which is the figure "
        f"the paper's {PAPER['ratio_low']}-{PAPER['ratio_high']}x compares with."]
    if dense:
        lines.append(
            f"- **Ablation.** Digits is easy: dense SGD is at "
            f"{_pct(dense[0]['accuracy_warmup_end'])} after {min(warm, config['epochs'])} "
            f"epochs and ends at {_pct(dense[0]['accuracy'])}, and the arms end close to "
            f"it; the tricks matter more on the paper's harder tasks, and here show mostly "
            f"during the warm-up (the warm-up-end column). Momentum factor masking also "
            f"clears the momentum of every element sent, so while the warm-up sends many "
            f"elements it weakens the momentum, and the arm without it learns faster early.")
    lines.append(
        "- **Fixed point.** The hardware rule's threshold is a log-binned histogram with "
        "count feedback (a quarter-octave a move, ten moves at most, from a start set by a "
        "sample of one or two elements on small tensors), so its counts per message miss k "
        "both ways (per-tensor table); its gradients lose precision as they shrink below "
        "the scale fixed at the first step (the scale is not re-chosen, as a fixed-point "
        "datapath would not).")
    return "\n".join(lines)


# -- plots ---------------------------------------------------------------------------------

def figures(results):
    """The study's plots, by name (``accuracy``, ``bytes``, ``ratio``, ``cdma``): each a
    ``figure(path)`` that draws into ``path`` and says whether it drew anything (the
    report's :class:`~dnnhw.report.Section` figures, and :func:`write`'s files)."""
    from ..report.plots import draw, style
    summary = results["summary"]
    workers = results["config"]["workers"]
    arms = results["config"]["arms"]
    look = {arm: style(i) for i, arm in enumerate(ARMS)}
    made = {}

    def per_worker(axes, draw_one):
        from matplotlib.ticker import MaxNLocator
        count = 0
        for ax, k in zip(axes, workers):
            for r in summary:
                if r["workers"] == k:
                    count += draw_one(ax, r)
            ax.set_title(f"K = {k} workers")
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        return count

    def accuracy(axes):
        def one(ax, r):
            mean = np.array(r["curve"]["mean"])
            epochs = np.arange(1, mean.size + 1)
            s = look[r["arm"]]
            ax.plot(epochs, mean, color=s["color"], marker=s["marker"], markersize=4,
                    label=r["label"])
            ax.fill_between(epochs, r["curve"]["min"], r["curve"]["max"], color=s["color"],
                            alpha=0.15)
            lowest = min(min(x["curve"]["min"]) for x in summary)
            ax.set_ylim(max(0.0, lowest - 0.02), 1.0)
            ax.set_ylabel("test accuracy (band: min-max over seeds)")
            return 1
        return per_worker(axes, one)

    made["accuracy"] = lambda path: draw(path, accuracy, panels=len(workers))

    def per_epoch(axes, key, ylabel, *, skip_dense=False, scale=1.0):
        """One series per arm of the per-epoch values ``r[key] * scale``, log scale."""
        def one(ax, r):
            if skip_dense and r["arm"] == "dense":
                return 0
            values = np.array(r[key]) * scale
            s = look[r["arm"]]
            ax.plot(np.arange(1, values.size + 1), values, color=s["color"],
                    marker=s["marker"], markersize=4, label=r["label"])
            ax.set_yscale("log")
            ax.set_ylabel(ylabel)
            return 1
        return per_worker(axes, one)

    def sent(axes):
        return per_epoch(axes, "bytes_per_epoch", "MB exchanged per epoch (all workers)",
                         scale=1e-6)

    made["bytes"] = lambda path: draw(path, sent, panels=len(workers))

    def ratio(axes):
        count = per_epoch(axes, "ratio_per_epoch", "dense bytes / sent bytes, per epoch",
                          skip_dense=True)
        for ax in axes:
            ax.axhspan(PAPER["ratio_low"], PAPER["ratio_high"], color="grey", alpha=0.2,
                       label=f"paper: {PAPER['ratio_low']}-{PAPER['ratio_high']}x")
        return count

    if any(a != "dense" for a in arms):
        made["ratio"] = lambda path: draw(path, ratio, panels=len(workers))

    rows = results.get("cdma") or []

    cdma_arms = list(dict.fromkeys(r["arm"] for r in rows))
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    methods = (("zv", "-", "ZV"), ("rl", "--", "RL"), ("zl", ":", "ZL"))

    def cdma(axes):
        count = 0
        top = max((r[key] for r in rows for key, _, _ in methods), default=1.0)
        for ax, arm in zip(axes, cdma_arms):
            for i, layer in enumerate(layers):
                part = [r for r in rows if r["arm"] == arm and r["layer"] == layer]
                epochs = [r["epoch"] + 1 for r in part]
                for j, (key, dash, label) in enumerate(methods):
                    ax.plot(epochs, [r[key] for r in part], color=style(i)["color"],
                            marker=style(j)["marker"], linestyle=dash,
                            label=f"{label} {layer}")
                    count += 1
            ax.set_ylim(1.0, top * 1.05)
            ax.set_xlabel("epoch")
            ax.set_ylabel("compression ratio (x)")
            ax.set_title(f"cDMA on the ReLU outputs: {arm}")
        right = axes[-1]
        for i, layer in enumerate(layers):
            for j, arm in enumerate(cdma_arms):
                part = [r for r in rows if r["arm"] == arm and r["layer"] == layer]
                right.plot([r["epoch"] + 1 for r in part], [r["density"] for r in part],
                           color=style(i)["color"], marker=style(j + 3)["marker"],
                           linestyle=("-", "--", ":")[j % 3], label=f"{layer} ({arm})")
        right.set_xlabel("epoch")
        right.set_ylabel("density (non-zero fraction)")
        right.set_ylim(0, 1)
        right.set_title("activation density")
        return count

    if rows:
        made["cdma"] = lambda path: draw(path, cdma, panels=len(cdma_arms) + 1,
                                         size=(5.0, 4.0))
    return made


def write(results, out_dir):
    """``dgc.json``, ``dgc.md`` and the plots into ``out_dir``; returns the markdown."""
    return write_study(results, out_dir, "dgc", figures=figures, render=render)


# -- the main job's analyses ----------------------------------------------------------------

def flow_quick(configs=None):
    """The main job's quick tier: :data:`QUICK` (one seed, K = 4, a few epochs). The
    core's configurations (``configs``) do not enter: the training is the same for all."""
    return study(QUICK, log=lambda *a, **k: None)


def flow_full(configs=None):
    """The main job's full tier: the default :class:`Config` (3 seeds, K = 4 and 8)."""
    return study(Config(), log=lambda *a, **k: None)


# -- command line --------------------------------------------------------------------------

def _parser():
    p = argparse.ArgumentParser(prog="dnnhw bench dgc", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="arms: " + ", ".join(ARMS))
    p.add_argument("--quick", action="store_true",
                   help=f"a small version: {QUICK.epochs} epochs, one seed, K = 4 "
                        "(under a minute)")
    p.add_argument("--seeds", type=int,
                   help=f"number of seeds, 1..100 (seeds 0 .. N-1; default "
                        f"{len(Config.seeds)}, --quick 1)")
    p.add_argument("--workers", type=comma_list(int, "integers"),
                   help="comma-separated worker counts K, each 1..32 (default 4,8; "
                        "--quick 4)")
    p.add_argument("--epochs", type=int,
                   help=f"epochs, 1..1000 (default {Config.epochs}, --quick {QUICK.epochs})")
    p.add_argument("--arms", help=f"comma-separated arms (default: all): {', '.join(ARMS)}")
    p.add_argument("-o", "--out", type=Path,
                   help="directory for dgc.json, dgc.md and the plots")
    return p


def main(argv=None):
    """Run the benchmark; ``argv`` as for ``dnnhw bench dgc``. Returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    config = QUICK if args.quick else Config()
    if args.seeds is not None:
        if not 1 <= args.seeds <= 100:
            parser.error(f"--seeds must be in 1..100, got {args.seeds}")
        config = replace(config, seeds=tuple(range(args.seeds)))
    if args.workers is not None:
        bad = [k for k in args.workers if not 1 <= k <= 32]
        if bad:
            parser.error(f"--workers must each be in 1..32, got {bad[0]}")
        config = replace(config, workers=tuple(dict.fromkeys(args.workers)))
    if args.epochs is not None:
        if not 1 <= args.epochs <= 1000:
            parser.error(f"--epochs must be in 1..1000, got {args.epochs}")
        config = replace(config, epochs=args.epochs)
    if args.arms is not None:
        arms = [a.strip() for a in args.arms.split(",") if a.strip()]
        unknown = [a for a in arms if a not in ARMS]
        if unknown or not arms:
            parser.error(f"--arms: unknown arm {unknown[0]!r}; known: {', '.join(ARMS)}"
                         if unknown else f"--arms: none given; known: {', '.join(ARMS)}")
        if "dense" not in arms:
            arms.insert(0, "dense")          # the reference every difference is taken to
        config = replace(config, arms=tuple(dict.fromkeys(arms)))
    print(f"dnnhw bench dgc: {len(config.arms)} arms x {len(config.seeds)} seed(s) x K = "
          f"{', '.join(map(str, config.workers))}, {config.epochs} epochs", flush=True)
    results = study(config, log=lambda line: print(line, flush=True))
    show_study(results, args.out, "dgc", figures=figures, render=render)
    return 0


BENCHMARK = Benchmark(
    "dgc", f"{__name__}:main",
    "Deep Gradient Compression on digits: accuracy vs dense, compression ratio, "
    "ablation, the fixed-point rule, cDMA on the activations")


if __name__ == "__main__":
    raise SystemExit(main())
