"""The FFT's data, NumPy only (no cocotb): random frames, rows of real photographs,
saturating full-scale frames, the float reference and the SQNR. The testbench
(:mod:`dnnhw.sim.fft`) feeds them to the core; the SQNR study
(:func:`dnnhw.bench.fft.sqnr_by_width`) to the golden model. :mod:`dnnhw.sim.fft` says
what each set is for.
"""

import functools

import numpy as np


__all__ = ["IMAGES", "unit_filters", "signed_range", "default_frames", "random_frames", "full_scale_frames",
           "grey_image", "image_frames", "reference", "sqnr_db", "real_sqnr_db",
           "relative_error", "user_frames", "board_job"]

#: The photographs the frames are cut from (names of :data:`dnnhw.workloads.IMAGES`).
IMAGES = ("camera", "astronaut")


def unit_filters(rng, out_channels, in_channels, taps, dims):
    """Random real filters ``(out_channels, in_channels, *(taps,) * dims)``: normal numbers
    divided by each filter's sum of magnitudes, so that no correlation output exceeds
    its input's range (the band-limited engine's test filters)."""
    w = rng.standard_normal((out_channels, in_channels, *(taps,) * dims))
    return w / np.sum(np.abs(w), axis=tuple(range(2, w.ndim)), keepdims=True)


def signed_range(width):
    """``(-M, M - 1)``, ``M = 2 ** (width - 1)``."""
    top = 1 << (width - 1)
    return -top, top - 1


def default_frames(n):
    """``(random frames, frames per image)`` when the config does not say: about 2,048
    random and 1,024 image samples per image, at least 4 and 2 frames."""
    return max(4, 2048 // n), max(2, 1024 // n)


def random_frames(rng, count, n, width):
    """``count`` frames ``(count, n, 2)`` int64 of complex samples uniform over the disc
    ``|x| <= M - 1`` (rounded to integers; drawn from the square and kept inside)."""
    _, hi = signed_range(width)
    need, kept = count * n, []
    while need > 0:
        z = rng.uniform(-1.0, 1.0, size=(2 * need + 16, 2))
        z = z[np.sum(z * z, axis=-1) <= 1.0][:need]
        kept.append(z)
        need -= len(z)
    parts = np.trunc(np.concatenate(kept) * hi).astype(np.int64)   # towards 0: inside
    return parts.reshape(count, n, 2)


def full_scale_frames(rng, count, n, width):
    """``count`` frames ``(count, n, 2)`` int64, both parts uniform over the whole signed
    ``width``-bit range: rotated corners saturate. Each frame holds one pair of opposite
    corners, ``x[1] = (M - 1, M - 1)`` and ``x[1 + n / 2] = (-M, -M)``, so that it
    saturates for certain: their halved difference does, and so does its rotation by
    ``W(1)`` in stage 0."""
    lo, hi = signed_range(width)
    frames = rng.integers(lo, hi + 1, size=(count, n, 2), dtype=np.int64)
    frames[:, 1] = hi
    frames[:, 1 + n // 2] = lo
    return frames


@functools.lru_cache(maxsize=None)
def grey_image(name):
    """Image ``name`` of :data:`dnnhw.workloads.IMAGES` as float grey levels in [0, 1]
    (scikit-image's ``rgb2gray`` luminance; a grey image stays as it is), read-only
    (cached)."""
    from skimage.color import rgb2gray
    from dnnhw.workloads import load_image
    grey = rgb2gray(load_image(name))
    grey.flags.writeable = False
    return grey


def image_frames(name, count, n, width):
    """Frames ``(count, n, 2)`` int64 of image ``name``: its grey levels ``g`` scaled to
    the signed ``width``-bit range symmetrically (``round(g * (2 M - 2)) - (M - 1)``:
    black ``-(M - 1)``, white ``M - 1``) as the real part, the imaginary part 0; the
    image read in raster order and
    cut into rows of ``n`` pixels (a row of a narrower image continues on the next).
    ``count`` rows spread evenly over the image (``None``: all of them)."""
    _, hi = signed_range(width)
    pixels = np.rint(grey_image(name).ravel() * (2 * hi)).astype(np.int64) - hi
    rows = pixels.size // n
    if rows < 1:
        raise ValueError(f"image {name!r} has {pixels.size} pixels, fewer than one frame "
                         f"of {n}")
    pick = np.arange(rows) if count is None or count >= rows else \
        np.linspace(0, rows - 1, count).round().astype(int)
    frames = np.zeros((len(pick), n, 2), dtype=np.int64)
    frames[..., 0] = pixels[:rows * n].reshape(rows, n)[pick]
    return frames


def reference(x, inverse=False):
    """The float transform the fixed-point core approximates with every stage halving:
    ``numpy.fft.fft(x) / n`` (forward) or ``numpy.fft.ifft(x)`` (inverse) of the integer
    frames ``x`` ``(..., n, 2)``, complex ``(..., n)``."""
    z = x[..., 0] + 1j * x[..., 1]
    return np.fft.ifft(z, axis=-1) if inverse else np.fft.fft(z, axis=-1) / z.shape[-1]


def sqnr_db(y, x, inverse=False):
    """``10 log10(sum |X|^2 / sum |Y - X|^2)`` of fixed-point outputs ``y`` ``(..., n, 2)``
    against :func:`reference` of inputs ``x``; ``None`` for an exact (noiseless) result."""
    want = reference(x, inverse)
    got = y[..., 0] + 1j * y[..., 1]
    noise = float(np.sum(np.abs(got - want) ** 2))
    signal = float(np.sum(np.abs(want) ** 2))
    if noise == 0 or signal == 0:
        return None
    return float(10 * np.log10(signal / noise))


def real_sqnr_db(got, want):
    """``10 log10(sum want^2 / sum (got - want)^2)`` of real outputs ``got`` against a
    float reference ``want``; ``None`` for an exact result or a silent reference."""
    noise = float(np.sum((got - want) ** 2))
    signal = float(np.sum(want ** 2))
    if noise == 0 or signal == 0:
        return None
    return float(10 * np.log10(signal / noise))


def relative_error(got, want):
    """``||got - want|| / ||want||`` (L2), ``None`` for a zero reference."""
    scale = float(np.linalg.norm(want))
    return None if scale == 0 else float(np.linalg.norm(got - want) / scale)


# --- the board job (dnnhw board run, dnnhw.host.job) --------------------------------------

def user_frames(x, n, width):
    """The user's frames as ``(frames, n, 2)`` int64: ``x`` is complex ``(..., n)`` or
    integer ``(..., n, 2)`` (real, imaginary), or real integer ``(..., n)`` (imaginary 0),
    every part a signed ``width``-bit integer."""
    x = np.asarray(x)
    lo, hi = signed_range(width)
    if np.iscomplexobj(x):
        parts = np.stack([x.real, x.imag], axis=-1)
    elif x.ndim >= 2 and x.shape[-1] == 2 and x.shape[-2] == n:
        parts = x
    else:
        parts = np.stack([x, np.zeros_like(x)], axis=-1)
    if parts.ndim < 2 or parts.shape[-2] != n or parts.size == 0:
        raise ValueError(f"input x must be frames of n = {n} samples: complex (..., {n}), "
                         f"real (..., {n}) or (real, imaginary) (..., {n}, 2); got shape "
                         f"{x.shape}")
    if not np.array_equal(parts, np.round(parts)):
        raise ValueError(f"input x must hold integer parts (scale to {lo}..{hi} first); "
                         f"got dtype {x.dtype} with fractions")
    if parts.min() < lo or parts.max() > hi:
        raise ValueError(f"input x's parts must be {width}-bit, {lo}..{hi}; got "
                         f"{parts.min()}..{parts.max()}")
    return parts.astype(np.int64).reshape(-1, n, 2)


def board_job(arrays, params, sidecar, rng):
    """fft: the user's frames in (``x``; else 2 random frames and 2 rows of each
    photograph), the golden fixed-point transform out, and its overflow flag."""
    from dnnhw.golden.fft_fixed import fft
    from dnnhw.host.job import BoardJob
    from .payload import PayloadFormat

    n, width = int(params["n"]), int(params["width"])
    unknown = set(arrays) - {"x"}
    if unknown:
        raise ValueError(f"an fft job takes one array, x; got {', '.join(sorted(arrays))}")
    if "x" in arrays:
        x, source = user_frames(arrays["x"], n, width), "x"
    else:
        x = np.concatenate([random_frames(rng, 2, n, width)]
                           + [image_frames(name, 2, n, width) for name in IMAGES])
        source = "2 random frames, 2 rows of each photograph"
    y, overflow = fft(x, n=n, width=width, twiddle_width=int(params["twiddle_width"]),
                      inverse=bool(params["inverse"]), shifts=params.get("shifts"))
    mask = (1 << width) - 1
    i_fmt = PayloadFormat(sidecar["streams"]["input"])
    o_fmt = PayloadFormat(sidecar["streams"]["output"])

    def pack(fmt, frames):
        flat = frames.reshape(-1, 2)
        return [int(v) for v in fmt.pack_many(re=flat[:, 0] & mask, im=flat[:, 1] & mask)]

    def decode(outputs):
        rows = [o_fmt.unpack(beat) for beat in outputs["output"]]
        parts = np.array([[row["re"], row["im"]] for row in rows], dtype=np.int64)
        parts = np.where(parts > mask >> 1, parts - (mask + 1), parts)
        return {"y": (parts[:, 0] + 1j * parts[:, 1]).reshape(-1, n)}

    return BoardJob(
        inputs={"input": pack(i_fmt, x)}, expected={"output": pack(o_fmt, y)},
        describe=(f"{len(x)} frames of n = {n}, {width}-bit parts ({source}); golden "
                  f"overflow {int(overflow)}"),
        core_error=bool(overflow), decode=decode)
