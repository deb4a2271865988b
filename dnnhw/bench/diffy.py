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
import math
import os
import platform
import time
import zlib
from pathlib import Path

import numpy as np

from dnnhw.bench import Benchmark
from dnnhw.golden import conv as golden_conv, diffy_published as golden
from dnnhw.golden._checks import check_int

__all__ = [
    "IMAGES", "DEFAULT_IMAGES", "PAPER", "HIDDEN", "ConvLayer", "StackSpec", "load_image",
    "prepare_image", "add_noise", "to_fixed", "image_input", "first_layer_bank",
    "stack_weights", "calibrate", "build_stack", "requantize", "run_stack", "crop_layers",
    "paper_tile", "diffy_pallet_cycles", "bench_image", "summarize", "render_markdown", "main",
]

WIDTH = 16

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


# -- images ----------------------------------------------------------------------------------

def _skimage(name):
    def load():
        import skimage.data
        return getattr(skimage.data, name)()
    return load


def _motorcycle():
    import skimage.data
    return skimage.data.stereo_motorcycle()[0]


def _grace_hopper():
    import matplotlib.cbook
    import matplotlib.image
    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return matplotlib.image.imread(path)


#: Photographs that ship inside the installed wheels (scikit-image's ``skimage/data``
#: directory, matplotlib's ``mpl-data/sample_data``): name -> (loader, description).
IMAGES = {
    "astronaut": (_skimage("astronaut"), "skimage astronaut (Eileen Collins), 512x512 RGB"),
    "chelsea": (_skimage("chelsea"), "skimage chelsea (a cat), 300x451 RGB"),
    "coffee": (_skimage("coffee"), "skimage coffee cup, 400x600 RGB"),
    "rocket": (_skimage("rocket"), "skimage rocket on the launch pad, 427x640 RGB"),
    "motorcycle": (_motorcycle, "skimage stereo_motorcycle, left view, 500x741 RGB"),
    "ihc": (_skimage("immunohistochemistry"),
            "skimage immunohistochemistry (microscopy), 512x512 RGB"),
    "grace_hopper": (_grace_hopper, "matplotlib sample_data grace_hopper.jpg, 600x512 RGB"),
    "camera": (_skimage("camera"), "skimage cameraman, 512x512 grey (as 3 equal channels)"),
    "hubble": (_skimage("hubble_deep_field"), "skimage Hubble deep field, 872x1000 RGB"),
}
DEFAULT_IMAGES = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle", "ihc",
                  "grace_hopper")


def load_image(name):
    """The named image of :data:`IMAGES` as uint8 ``(H, W, 3)``; grey images repeat.

    Only files inside installed packages are read (no network).
    """
    if name not in IMAGES:
        raise ValueError(f"unknown image {name!r}; known images: {', '.join(IMAGES)}")
    image = np.asarray(IMAGES[name][0]())
    if image.dtype != np.uint8:
        if np.issubdtype(image.dtype, np.floating):     # matplotlib returns floats for PNG
            image = np.clip(np.rint(image * 255), 0, 255)
        image = image.astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3])


def prepare_image(rgb, size, mode="crop", origin=None):
    """``(3, size, size)`` float64 whole pixel values (0..255) from a ``(H, W, 3)`` image.

    ``mode="crop"``: the ``size x size`` pixels at ``origin`` ((y, x) of the top-left
    corner; default the centre) at native resolution. ``mode="downscale"``: the mean of
    ``f x f`` blocks of the largest central square, ``f = min(H, W) // size``, rounded to
    whole pixels (half to even).
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"image must have shape (H, W, 3), got {rgb.shape}")
    h, w = rgb.shape[:2]
    if not isinstance(size, int) or size < 1 or size > min(h, w):
        raise ValueError(f"size must be an int in 1..{min(h, w)} for a {h}x{w} image, got {size!r}")
    if mode == "crop":
        y0, x0 = ((h - size) // 2, (w - size) // 2) if origin is None else origin
        if not (0 <= y0 <= h - size and 0 <= x0 <= w - size):
            raise ValueError(f"origin {origin!r} puts a {size}x{size} crop outside the "
                             f"{h}x{w} image")
        block = rgb[y0:y0 + size, x0:x0 + size].astype(np.float64)
    elif mode == "downscale":
        f = min(h, w) // size
        side = f * size
        y0, x0 = (h - side) // 2, (w - side) // 2
        block = rgb[y0:y0 + side, x0:x0 + side].astype(np.float64)
        block = np.rint(block.reshape(size, f, size, f, 3).mean(axis=(1, 3)))
    else:
        raise ValueError(f"mode must be 'crop' or 'downscale', got {mode!r}")
    return np.ascontiguousarray(block.transpose(2, 0, 1))


def to_fixed(pixels, frac_bits=8):
    """Pixel values 0..255 (the real value ``p / 256``) as int64 with ``frac_bits`` F
    fractional bits: ``p * 2**(F - 8)``, rounded half to even (exact for whole pixels)."""
    frac_bits = _check_frac_bits(frac_bits)
    return golden.quantize(np.asarray(pixels, dtype=np.float64) / 256, WIDTH, frac_bits)


def add_noise(pixels, sigma, seed=0):
    """Whole 8-bit pixels plus Gaussian noise of ``sigma`` levels (fixed seed), clipped."""
    if sigma < 0:
        raise ValueError(f"noise must be >= 0, got {sigma!r}")
    pixels = np.asarray(pixels, dtype=np.float64)
    if sigma == 0:
        return pixels
    noise = np.random.default_rng(seed).standard_normal(pixels.shape) * sigma
    return np.clip(np.rint(pixels + noise), 0, 255)


def image_input(name, size, mode="crop", frac_bits=8, origin=None, noise=0.0, seed=0):
    """Load, crop or downscale, optionally add noise, and quantize one image:
    int64 ``(3, size, size)``. The noise seed is ``(seed, crc32(name))``."""
    pixels = prepare_image(load_image(name), size, mode, origin)
    return to_fixed(add_noise(pixels, noise, [seed, zlib.crc32(name.encode())]), frac_bits)


def _check_frac_bits(frac_bits):
    return check_int("frac_bits", frac_bits, 8, 15)


# -- the conv stack --------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ConvLayer:
    """One quantized 3x3 layer.

    ``weights`` int64 (K, C, 3, 3), 16-bit with ``weight_frac_bits`` fractional bits;
    ``shift`` is the write-back shift and ``in_frac_bits`` the input's fractional bits
    (both None until ``calibrate``).
    """

    name: str
    weights: np.ndarray = dataclasses.field(repr=False)
    weight_frac_bits: int
    relu: bool = True
    shift: int | None = None
    in_frac_bits: int | None = None
    stride: int = 1
    padding: int = 1

    @property
    def in_channels(self):
        return self.weights.shape[1]

    @property
    def out_channels(self):
        return self.weights.shape[0]

    @property
    def out_frac_bits(self):
        if self.shift is None:
            return None
        return self.in_frac_bits + self.weight_frac_bits - self.shift


HIDDEN = ("random", "smooth")


@dataclasses.dataclass(frozen=True)
class StackSpec:
    """A DnCNN-like stack: conv1 3 -> C, ``depth - 2`` hidden C -> C, last C -> 3."""

    channels: int = 32
    depth: int = 7
    hidden: str = "random"
    headroom: int = 1
    seed: int = 1

    def __post_init__(self):
        check_int("channels", self.channels, 1, 256)
        check_int("depth", self.depth, 2, 32)
        check_int("headroom", self.headroom, 0, 8)
        check_int("seed", self.seed, 0, 2**63 - 1)
        if self.hidden not in HIDDEN:
            raise ValueError(f"hidden must be one of {HIDDEN}, got {self.hidden!r}")


_LUMA = np.array([0.299, 0.587, 0.114])
_GAUSS = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16
_SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]) / 4      # unit step -> 1
_DIAG = np.array([[0, 1, 2], [-1, 0, 1], [-2, -1, 0]]) / 4
_LAPLACE = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]]) / 2


def _gabor(theta, frequency=0.3, sigma=1.0):
    """3x3 odd (sine-phase) Gabor-like grating, zero mean, sum |g| = 2 like the Sobels."""
    v, u = np.mgrid[-1:2, -1:2].astype(np.float64)
    g = np.exp(-(u * u + v * v) / (2 * sigma * sigma)) * np.sin(
        2 * np.pi * frequency * (u * np.cos(theta) + v * np.sin(theta)))
    g -= g.mean()
    return 2 * g / np.abs(g).sum()


def first_layer_bank(channels):
    """The designed conv1 filters, float64 ``(channels, 3, 3, 3)``.

    In order: Gaussian smoothing of R, G, B; luma +/-Sobel x, +/-Sobel y, +/-diagonal,
    +/-anti-diagonal, +/-Laplacian; smoothed R-G +/-, smoothed B-Y; then +/- pairs of
    Gabor-like gratings at evenly spaced orientations. The first ``channels`` are kept.
    """
    check_int("channels", channels, 1, 256)
    red, green, blue = np.eye(3)
    bank = [(red, _GAUSS), (green, _GAUSS), (blue, _GAUSS)]
    for spatial in (_SOBEL_X, _SOBEL_X.T, _DIAG, _DIAG[:, ::-1], _LAPLACE):
        bank += [(_LUMA, spatial), (_LUMA, -spatial)]
    opponent_rg = np.array([0.5, -0.5, 0.0])
    opponent_by = np.array([-0.25, -0.25, 0.5])
    bank += [(opponent_rg, _GAUSS), (-opponent_rg, _GAUSS), (opponent_by, _GAUSS)]
    extra = max(0, channels - len(bank))
    pairs = -(-extra // 2)
    for p in range(pairs):
        g = _gabor(np.pi * (p + 0.5) / pairs)
        bank += [(_LUMA, g), (_LUMA, -g)]
    return np.stack([colour[:, None, None] * spatial[None] for colour, spatial in bank[:channels]])


def _weight_frac_bits(real):
    """Most fractional bits (<= 15) that fit every weight in 16 bits after rounding."""
    peak = float(np.abs(real).max())
    bits = 15
    while bits > 0 and round(peak * (1 << bits)) > (1 << (WIDTH - 1)) - 1:
        bits -= 1
    return bits


def _quantized_layer(name, real, relu):
    bits = _weight_frac_bits(real)
    return ConvLayer(name, golden.quantize(real, WIDTH, bits), bits, relu)


def stack_weights(spec=StackSpec()):
    """The layers of ``spec`` with 16-bit weights, not yet calibrated (see module docstring)."""
    rng = np.random.default_rng(spec.seed)
    c = spec.channels
    layers = [_quantized_layer("conv1", first_layer_bank(c), True)]
    for i in range(2, spec.depth):
        if spec.hidden == "random":
            real = rng.standard_normal((c, c, 3, 3)) * math.sqrt(2 / (9 * c))
        else:
            real = rng.standard_normal((c, c, 1, 1)) * math.sqrt(2 / c) * _GAUSS
        layers.append(_quantized_layer(f"conv{i}", real, True))
    real = rng.standard_normal((3, c, 3, 3)) * math.sqrt(1 / (9 * c))
    layers.append(_quantized_layer(f"conv{spec.depth}", real, False))
    return layers


def requantize(acc, shift, relu=True, width=WIDTH):
    """What a layer writes back: ``saturate(relu(acc + 2**(shift-1)) >> shift)``.

    ``dnnhw.golden.conv.requantize`` (round half up, saturate to signed ``width`` bits)
    after an optional ReLU. Returns ``(values, saturated)`` with the count of saturated
    outputs.
    """
    acc = np.asarray(acc, dtype=np.int64)
    if relu:
        # The same before the rounding shift as after it: the shift is monotone and
        # rounds 0 to 0.
        acc = np.maximum(acc, 0)
    rounded = golden_conv.requantize(acc, shift=shift, out_bits=64)      # no saturation
    values = golden_conv.requantize(rounded, shift=0, out_bits=width)    # saturation only
    return values, int(np.count_nonzero(values != rounded))


def _accumulate(x, layer):
    return golden.diffy_conv2d(x, layer.weights, layer.stride, layer.padding, width=WIDTH)


def calibrate(layers, inputs, headroom=1, in_frac_bits=8):
    """Set every layer's shift from calibration ``inputs`` (a list of (3, H, W) tensors).

    Layer by layer: the shift is the smallest ``s >= 0`` with
    ``max(relu(acc)) >> s <= 2**(15 - headroom) - 1`` over all inputs (``max |acc|`` on the
    last layer, which has no ReLU); the calibration inputs then move on requantized.
    Returns new layers.
    """
    check_int("headroom", headroom, 0, 8)
    _check_frac_bits(in_frac_bits)
    xs = [np.asarray(x, dtype=np.int64) for x in inputs]
    if not xs:
        raise ValueError("calibrate needs at least one input")
    out, frac = [], in_frac_bits
    limit_bits = WIDTH - 1 - headroom
    for layer in layers:
        accs = [_accumulate(x, layer) for x in xs]
        peak = max(int((np.maximum(a, 0) if layer.relu else np.abs(a)).max()) for a in accs)
        shift = max(0, peak.bit_length() - limit_bits)
        layer = dataclasses.replace(layer, shift=shift, in_frac_bits=frac)
        out.append(layer)
        frac = layer.out_frac_bits
        xs = [requantize(a, shift, layer.relu)[0] for a in accs]
    return out


def build_stack(spec, calibration, in_frac_bits=8):
    """``stack_weights(spec)`` calibrated on ``calibration`` with ``spec.headroom``."""
    return calibrate(stack_weights(spec), calibration, spec.headroom, in_frac_bits)


def run_stack(x_int, layers):
    """Run the stack on ``x_int`` (C, H, W). Returns ``(inputs, output, saturated)``:
    the input of every layer, the last layer's output and per-layer saturation counts."""
    inputs, saturated = [], []
    x = np.asarray(x_int, dtype=np.int64)
    for layer in layers:
        if layer.shift is None:
            raise ValueError(f"layer {layer.name} has no shift: calibrate the stack first")
        inputs.append(x)
        x, sat = requantize(_accumulate(x, layer), layer.shift, layer.relu)
        saturated.append(sat)
    return inputs, x, saturated


def crop_layers(image="astronaut", size=8, channels=4, depth=3, *, origin=None, frac_bits=8,
                seed=1, mode="crop", hidden="random", headroom=1, noise=0.0,
                return_layers=False):
    """Layer inputs of a small crop through a small stack, for an RTL testbench to replay.

    Crops ``size x size`` pixels of ``image`` (one of :data:`IMAGES`; ``origin`` (y, x) of
    the top-left corner, default the centre; ``mode="downscale"`` block-averages instead),
    optionally adds ``noise``, quantizes to 16 bits with ``frac_bits`` fractional bits
    (default 8: ``x_int`` is the 8-bit pixel), and runs the ``depth``-layer stack of
    ``StackSpec(channels, depth, hidden, headroom, seed)`` calibrated on this crop
    (conv1 3 -> channels, hidden channels -> channels, last channels -> 3; all 3x3).

    Returns one ``(x_int, w_int, stride, padding)`` tuple per layer, in order: ``x_int``
    int64 ``(C, size, size)`` is that layer's input (signed 16-bit values; the first is
    the image, every next one the previous layer's requantized output), ``w_int`` int64
    ``(K, C, 3, 3)`` its 16-bit weights, ``stride`` 1, ``padding`` 1. Replay a layer with
    ``dnnhw.golden.diffy_published.diffy_conv2d(x_int, w_int, stride, padding)`` (the raw
    accumulator) or the cycle models (``diffy_cycles(x_int, w_int, stride, padding)``
    etc.). With ``return_layers=True`` it returns ``(tuples, layers)``: the
    :class:`ConvLayer` list carries each layer's ``shift`` and ``relu``, and
    ``requantize(acc, layer.shift, layer.relu)[0]`` is the next layer's ``x_int``.
    """
    spec = StackSpec(channels, depth, hidden, headroom, seed)
    x = image_input(image, size, mode, frac_bits, origin, noise, seed)
    layers = build_stack(spec, [x], frac_bits)
    inputs, _, _ = run_stack(x, layers)
    tuples = [(xi, layer.weights.copy(), layer.stride, layer.padding)
              for xi, layer in zip(inputs, layers)]
    return (tuples, layers) if return_layers else tuples


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

def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


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
    return _table(["", "paper", "measured"], rows)


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
        _table(["layer", "shape", "Fw / s / F_out", "terms raw", "terms delta", "zeros raw",
                "zeros delta", "Stripes bits", "BP Mcyc", "Stripes", "Pragmatic", "Diffy",
                "pallet", "1-cycle", "Diffy/BP", "Diffy/Stripes", "Diffy/Pragmatic"],
               [_layer_row(lay["name"], lay, summary["per_layer"][lay["name"]], records)
                for lay in layers]),
        "", "## Per image (all layers)", "",
        _table(["image", "terms raw", "terms delta", "zeros raw", "zeros delta",
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
        cycles = sum(published_cycles(x, w, stride, padding, **geometry) + DiffyTile.LATENCY - 1
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
