"""The workloads every command measures on, defined once.

Photographs and the denoising-style stack (``dnnhw bench diffy``, the Diffy area table)
    :data:`IMAGES` (photographs that ship inside the scikit-image and matplotlib wheels:
    nothing is downloaded), :func:`image_input` (crop or downscale, noise, 16-bit fixed
    point), :class:`StackSpec` / :func:`stack_weights` / :func:`calibrate` /
    :func:`build_stack` / :func:`run_stack` (a DnCNN-like stack of 3x3 convolutions with
    ReLU and calibrated shifts), :func:`crop_layers` (a crop through a small stack, as
    layer tuples an RTL testbench replays).
Convolution layer shapes (``dnnhw bench conv``, ``dnnhw bench morph``)
    :class:`Layer` and :func:`network_layers`: AlexNet conv1-5, VGG-16, ResNet-18 and C3D
    conv1-5 with their published channels.
``ALEXNET_DENSITIES``
    cDMA's published per-layer activation densities of AlexNet (Rhu et al., HPCA 2018),
    and :func:`alexnet_activations`, ReLU-like tensors of one layer at its density, in the
    shape every command uses (``ALEXNET_SHAPE``), so that ``dnnhw ratios``, ``dnnhw bench
    ratios`` and the report print the same figures.
Handwritten digits (``dnnhw bench dgc``)
    :func:`digits`: scikit-learn's 8 x 8 digits (shipped inside its wheel), a fixed
    train / test split.
"""

import dataclasses
import math
import typing
import zlib
from dataclasses import dataclass

import numpy as np

from .golden import conv as golden_conv, diffy_published as golden, morph as golden_morph
from .golden._checks import check_int


__all__ = [
    "ALEXNET_DENSITIES", "ALEXNET_SHAPE", "DTYPE_OF_WIDTH", "alexnet_activations",
    "WIDTH", "IMAGES", "DEFAULT_IMAGES", "HIDDEN", "ConvLayer", "StackSpec", "load_image",
    "prepare_image", "add_noise", "to_fixed", "image_input", "first_layer_bank",
    "stack_weights", "calibrate", "build_stack", "requantize", "run_stack", "crop_layers",
    "Layer", "network_layers", "quick_layers", "c3d_layers", "Digits", "digits",
]

#: Bits of the stack's activations and weights (the paper's 16-bit fixed point).
WIDTH = 16

#: Layer name to the fraction of non-zero activations cDMA measured.
ALEXNET_DENSITIES = {"conv0": 0.49, "conv1": 0.36, "conv4": 0.22, "fc1": 0.31}

#: Channels x height x width of the stand-in tensors (conv1's 96 channels at 27 x 27).
ALEXNET_SHAPE = (96, 27, 27)

#: The element type a ZV window of each width holds: int8 / int16 fixed point, fp32.
DTYPE_OF_WIDTH = {8: np.int8, 16: np.int16, 32: np.float32}


def alexnet_activations(layer, width=32, seed=0):
    """A ReLU-like tensor at ``layer``'s published density, of ``DTYPE_OF_WIDTH[width]``."""
    from .golden.zvc import relu_like
    if layer not in ALEXNET_DENSITIES:
        raise ValueError(f"layer must be one of {', '.join(ALEXNET_DENSITIES)}, got {layer!r}")
    if width not in DTYPE_OF_WIDTH:
        raise ValueError(f"width must be one of {', '.join(map(str, DTYPE_OF_WIDTH))}, "
                         f"got {width!r}")
    return relu_like(ALEXNET_SHAPE, ALEXNET_DENSITIES[layer], dtype=DTYPE_OF_WIDTH[width],
                     rng=seed)


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


# -- convolution layer shapes --------------------------------------------------------------

@dataclass(frozen=True)
class Layer:
    """One convolution layer shape (batch 1)."""

    network: str
    name: str
    in_channels: int
    out_channels: int
    in_size: tuple        #: (H, W) or (D, H, W)
    kernel: tuple
    stride: int = 1
    padding: int = 0
    count: int = 1        #: layers of the network with this shape

    @property
    def key(self):
        return f"{self.network}-{self.name}"

    @property
    def spatial_ndim(self):
        return len(self.in_size)

    @property
    def x_shape(self):
        return (1, self.in_channels) + tuple(self.in_size)

    @property
    def w_shape(self):
        return (self.out_channels, self.in_channels) + tuple(self.kernel)

    def geometry(self):
        return golden_conv.conv_geometry(self.x_shape, self.w_shape, spatial_ndim=self.spatial_ndim,
                                    stride=self.stride, padding=self.padding)

    def describe(self):
        size = "x".join(map(str, self.in_size))
        kernel = "x".join(map(str, self.kernel))
        text = f"{self.in_channels}->{self.out_channels} @{size} k{kernel}"
        return text + (f"/s{self.stride}" if self.stride > 1 else "")


def c3d_layers(frame=112):
    """C3D conv1-5 (REFERENCE.md) with a ``frame x frame`` first-layer frame instead of 112.

    Frame counts and channels are the published ones; the frame side halves at each
    pooling like the original (112, 56, 28, 14, 7), rounded up.
    """
    def side(level):
        return max(1, -(-frame // (1 << level)))
    spec = [("conv1", 3, 64, 16, 0), ("conv2", 64, 128, 16, 1), ("conv3a", 128, 256, 8, 2),
            ("conv3b", 256, 256, 8, 2), ("conv4a", 256, 512, 4, 3), ("conv4b", 512, 512, 4, 3),
            ("conv5a", 512, 512, 2, 4), ("conv5b", 512, 512, 2, 4)]
    return [Layer("c3d", name, c, k, (frames, side(level), side(level)), (3, 3, 3), padding=1)
            for name, c, k, frames, level in spec]


def c3d_morph_layers(frame=112):
    """C3D conv1 to conv5b (REFERENCE.md) as model layers, at a ``frame x frame`` clip."""
    out = []
    for layer in c3d_layers(frame):
        frames, height, width = layer.in_size
        out.append(golden_morph.Layer(C=layer.in_channels, F=frames, H=height, W=width,
                               K=layer.out_channels, T=layer.kernel[0], R=layer.kernel[1],
                               S=layer.kernel[2], stride=layer.stride, padding=layer.padding,
                               name=layer.name))
    return out


def network_layers(c3d_frame=56):
    """Every benchmark layer: AlexNet, VGG-16 (distinct shapes), ResNet-18 3x3, C3D."""
    alexnet = [  # torchvision / "one weird trick" shapes, no channel groups
        Layer("alexnet", "conv1", 3, 64, (224, 224), (11, 11), stride=4, padding=2),
        Layer("alexnet", "conv2", 64, 192, (27, 27), (5, 5), padding=2),
        Layer("alexnet", "conv3", 192, 384, (13, 13), (3, 3), padding=1),
        Layer("alexnet", "conv4", 384, 256, (13, 13), (3, 3), padding=1),
        Layer("alexnet", "conv5", 256, 256, (13, 13), (3, 3), padding=1),
    ]
    vgg = [Layer("vgg16", name, c, k, (s, s), (3, 3), padding=1, count=n) for name, c, k, s, n in [
        ("conv1_1", 3, 64, 224, 1), ("conv1_2", 64, 64, 224, 1),
        ("conv2_1", 64, 128, 112, 1), ("conv2_2", 128, 128, 112, 1),
        ("conv3_1", 128, 256, 56, 1), ("conv3_2-3", 256, 256, 56, 2),
        ("conv4_1", 256, 512, 28, 1), ("conv4_2-3", 512, 512, 28, 2),
        ("conv5_1-3", 512, 512, 14, 3)]]
    resnet = [Layer("resnet18", name, c, k, (s, s), (3, 3), stride=st, padding=1, count=n)
              for name, c, k, s, st, n in [
                  ("layer1", 64, 64, 56, 1, 4),
                  ("layer2.0.conv1", 64, 128, 56, 2, 1), ("layer2", 128, 128, 28, 1, 3),
                  ("layer3.0.conv1", 128, 256, 28, 2, 1), ("layer3", 256, 256, 14, 1, 3),
                  ("layer4.0.conv1", 256, 512, 14, 2, 1), ("layer4", 512, 512, 7, 1, 3)]]
    return alexnet + vgg + resnet + c3d_layers(c3d_frame)


def quick_layers():
    """A few small real layers for ``--quick``: one per family, C3D at a 28-pixel frame."""
    wanted = {"alexnet-conv5", "resnet18-layer1", "resnet18-layer4"}
    layers = [layer for layer in network_layers() if layer.key in wanted]
    return layers + [layer for layer in c3d_layers(28) if layer.name == "conv1"]


# -- handwritten digits ----------------------------------------------------------------------

class Digits(typing.NamedTuple):
    """:func:`digits`: ``x_train`` / ``x_test`` float32 ``(N, 8, 8)`` images in [0, 1],
    ``y_train`` / ``y_test`` int64 labels 0..9."""
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def digits(test_every=5):
    """scikit-learn's handwritten digits (1,797 images of 8 x 8 pixels, 16 grey levels,
    shipped inside the scikit-learn wheel: nothing is downloaded), pixels scaled by 1 / 16
    to [0, 1].

    The split is fixed and uses no random numbers: within each class, in the dataset's
    order, every ``test_every``-th image (the 1st, the 6th, ... for 5) is a test image, the
    rest train (for 5: 1,433 train and 364 test images, every class in both in proportion).
    """
    from sklearn.datasets import load_digits
    test_every = check_int("test_every", test_every, 2, 100)
    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)
    labels = bunch.target.astype(np.int64)
    test = np.zeros(labels.size, dtype=bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        test[members[::test_every]] = True
    return Digits(images[~test], labels[~test], images[test], labels[test])
