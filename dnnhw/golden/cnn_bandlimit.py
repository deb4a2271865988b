"""Band-limited FFT convolution as a trainable layer (Dziedzic et al., ICML 2019), and the
:class:`dnnhw.golden.cnn.CNN` whose conv layers use it (NumPy only).

**The forward pass** of :class:`BandLimitedConv2d` is :func:`dnnhw.golden.conv_fft.spectral_conv`'s
rule: the padded input ``xpad`` and the filter ``w`` are zero-padded to the FFT tile ``L``
(:func:`dnnhw.golden.conv_fft.fft_shape_for`: ``padded + max(stride-1 out, kernel) - 1``
per axis, optionally the next power of two), transformed by the real 2D FFT, and only the
low-frequency block ``keep`` of :func:`dnnhw.golden.conv_fft.band_limit_keep` (rate ``c``)
is kept of both spectra; the kept coefficients are multiplied, ``Z = sum_c X . conj(W)``
(a correlation), the rest of the product spectrum is zero, the inverse real FFT and a
crop (subsampled by the stride) give the output. With ``M`` the 0/1 mask of the kept
set (closed under ``k -> -k``) and ``P = IFFT . M . FFT`` (a real, self-adjoint,
idempotent projection), this is the linear map

    ``y = S P corr_L(xpad, w) + b``

where ``corr_L`` is the circular correlation on the tile and ``S`` the crop and stride.
At ``c = 0`` ``P`` is the identity and ``L`` is long enough for no wrap-around to reach a
valid output, so ``y`` is the direct convolution (to float rounding).

**The backward pass** is the exact adjoint of that map, computed in the frequency domain
the way the paper does it: the output gradient ``g`` is scattered onto the tile
(``S^T g``), transformed, and its spectrum is compressed with the same mask
(``G = M . FFT(S^T g)``); then

- the filter gradient is ``dw = crop_taps IFFT(X . conj(G))`` (the correlation of the input
  with the band-limited output gradient),
- the input gradient is ``dx = crop_input IFFT(G . W)`` (its convolution with the
  filter),

both over the kept coefficients only (``M`` is idempotent, so masking ``X`` and ``W``
as well changes nothing). ``tests/test_golden_cnn_bandlimit.py`` checks them against
finite differences and checks the adjoint identity ``<y(x), g> = <x, dx(g)>``.

**The transforms** are evaluated only where they are needed, by small DFT matrices over
the few tile positions a signal occupies (padded input, filter taps, strided outputs)
and at the kept frequencies only: the tile's real FFT restricted to the kept set (and
its inverse, at the wanted positions), which costs in proportion to the kept
coefficients and avoids NumPy's slow prime-length (17-point) FFTs.

**Reuse.** :class:`BandLimitedCNN` is a :class:`dnnhw.golden.cnn.CNN` (same layers,
parameters, initialization, trainer and exchanges) whose ``conv_forward`` and
``conv_backward`` go through a :class:`BandLimitedConv2d` per layer geometry, at one
``compression_rate`` for training and inference. :meth:`BandLimitedCNN.spectra_memory`
counts the kept complex coefficients of every layer's filters and of one input tile.
"""

import functools
import math
import numbers
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from . import cnn
from ._checks import check_int
from .conv_fft import band_limit_keep, check_compression_rate, one_sided_shape


__all__ = ["BandLimitedConv2d", "BandLimitedCNN", "Cache", "plan", "COMPLEX_BYTES"]

#: Bytes of one stored complex coefficient in the memory figures: complex64 (two fp32),
#: the paper's GPU setting. The model itself computes in complex128.
COMPLEX_BYTES = 8


class Cache(NamedTuple):
    """What :meth:`BandLimitedConv2d.forward` keeps for the backward pass: the ``layer``,
    the kept input spectrum ``x_freq`` (F, N, C), the kept filter spectrum ``w_freq``
    (F, K, C) (not conjugated), the input shape and the filter shape."""
    layer: object
    x_freq: np.ndarray
    w_freq: np.ndarray
    x_shape: tuple
    w_shape: tuple


def _pair(name, value, lo):
    """``value`` (an int or a pair of ints) as a pair, each checked >= ``lo``."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    try:
        values = tuple(value)
    except TypeError:
        raise TypeError(f"{name} must be an int or a pair of ints >= {lo}, got {value!r}") \
            from None
    if len(values) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints >= {lo}, got {value!r}")
    return tuple(check_int(f"{name} entries", v, lo) for v in values)


class BandLimitedConv2d:
    """One 2D band-limited FFT convolution geometry: its FFT tile, kept set and passes.

    Parameters
    ----------
    in_shape : (H, W) or int
        Spatial size of the input (before padding).
    kernel : (R, S) or int
        Filter taps per axis (default 3).
    stride, padding : int or pair
        ``padding`` zeros on each side of each axis (default 1); ``stride`` >= 1.
    compression_rate : float
        ``c`` in percent, 0 <= c < 100 (:func:`~dnnhw.golden.conv_fft.band_limit_keep`).
    pow2 : bool
        Round the FFT tile up to a power of two per axis.
    fft_shape : (L_H, L_W) or None
        The FFT tile instead of the default ``padded + max(out, kernel) - 1``; each entry
        must be at least the padded input's side (then no wrap-around reaches a valid
        output and the filter fits the tile).

    The filter and input may have any number of channels; only the spatial geometry is
    fixed here.
    """

    def __init__(self, in_shape, kernel=cnn.KERNEL, *, stride=1, padding=cnn.PADDING,
                 compression_rate=0.0, pow2=False, fft_shape=None):
        self.in_shape = _pair("in_shape", in_shape, 1)
        self.kernel = _pair("kernel", kernel, 1)
        self.stride = _pair("stride", stride, 1)
        self.padding = _pair("padding", padding, 0)
        self.compression_rate = check_compression_rate(compression_rate)
        self.padded = tuple(i + 2 * p for i, p in zip(self.in_shape, self.padding))
        for axis, (side, taps) in enumerate(zip(self.padded, self.kernel)):
            if taps > side:
                raise ValueError(
                    f"kernel {self.kernel[0]} x {self.kernel[1]} is larger than the padded "
                    f"input {self.padded[0]} x {self.padded[1]} (axis {axis}): kernel entries "
                    f"must be in 1..{side} here")
        self.stride1_out = tuple(p - k + 1 for p, k in zip(self.padded, self.kernel))
        self.out_shape = tuple((o - 1) // s + 1 for o, s in zip(self.stride1_out, self.stride))
        if fft_shape is None:
            shape = tuple(p + max(o, k) - 1
                          for p, o, k in zip(self.padded, self.stride1_out, self.kernel))
            if pow2:
                shape = tuple(1 << (n - 1).bit_length() for n in shape)
        else:
            shape = _pair("fft_shape", fft_shape, 1)
            for axis, (length, side, taps) in enumerate(zip(shape, self.padded, self.kernel)):
                if length < taps:
                    raise ValueError(
                        f"the filter ({self.kernel[0]} x {self.kernel[1]}) is larger than "
                        f"the FFT tile fft_shape={shape} on axis {axis}; fft_shape entries "
                        f"must be >= the padded input's sides {self.padded} (legal: "
                        f"{side} or more on axis {axis})")
                if length < side:
                    raise ValueError(
                        f"fft_shape={shape} is smaller than the padded input "
                        f"{self.padded} on axis {axis}: the circular correlation would wrap "
                        f"onto valid outputs; fft_shape entries must be >= {self.padded} "
                        f"(legal: {side} or more on axis {axis})")
        self.fft_shape = shape
        self.pow2 = bool(pow2)
        self.keep = band_limit_keep(self.fft_shape, self.compression_rate)
        self.kept_shape = tuple(len(k) for k in self.keep)
        self.kept = math.prod(self.kept_shape)
        self.spectrum_shape = one_sided_shape(self.fft_shape)
        self.spectrum_coefficients = math.prod(self.spectrum_shape)
        self._matrices = {}

    def __repr__(self):
        return (f"BandLimitedConv2d(in_shape={self.in_shape}, kernel={self.kernel}, "
                f"stride={self.stride}, padding={self.padding}, "
                f"compression_rate={self.compression_rate:g}, fft_shape={self.fft_shape}, "
                f"kept={self.kept_shape})")

    @property
    def kept_fraction(self):
        """Kept coefficients over the one-sided spectrum's."""
        return self.kept / self.spectrum_coefficients

    # -- spectra -----------------------------------------------------------------------------
    #
    # Analysis at the kept frequencies of a signal given at a few positions of the tile
    # (the padded input, the filter taps, the strided outputs); synthesis at the few
    # positions wanted (the valid outputs, the filter taps, the unpadded input).

    @functools.cached_property
    def _column_weights(self):
        """Parseval weights of the kept one-sided columns over the tile size: 2 where the
        conjugate twin is not stored, 1 for the DC (and Nyquist) column."""
        cols, last = self.keep[1], self.fft_shape[1]
        twin = (cols > 0) & (2 * cols != last)
        return np.where(twin, 2.0, 1.0) / math.prod(self.fft_shape)

    def _dft(self, axis, positions, sign):
        """``exp(sign 2 pi i k p / L)``: (kept frequencies, positions) along ``axis``."""
        length = self.fft_shape[axis]
        phase = (self.keep[axis][:, None] * np.asarray(positions)[None, :]) % length
        return np.exp(sign * 2j * np.pi * phase / length)

    def _analysis(self, rows, cols):
        """The analysis matrices for a signal at ``rows`` x ``cols`` (tuples of tile
        positions): ``(E_r (kr, P), E_c^T (Q, kc))``, made once per layer."""
        key = ("analysis", rows, cols)
        if key not in self._matrices:
            self._matrices[key] = (self._dft(0, rows, -1),
                                   np.ascontiguousarray(self._dft(1, cols, -1).T))
        return self._matrices[key]

    def _synthesis(self, rows, cols):
        """The synthesis matrices for the values at ``rows`` x ``cols``:
        ``(D_r (P, kr), D_c^T (kc, Q))``, the column weights folded into ``D_c``."""
        key = ("synthesis", rows, cols)
        if key not in self._matrices:
            self._matrices[key] = (np.ascontiguousarray(self._dft(0, rows, +1).T),
                                   self._dft(1, cols, +1) * self._column_weights[:, None])
        return self._matrices[key]

    def _kept_spectrum(self, a, rows, cols):
        """The tile's real FFT at the kept coefficients of ``a`` (..., P, Q) placed at tile
        positions ``rows`` x ``cols`` (zero elsewhere), frequency-major: ``(F, *lead)``."""
        lead = a.shape[:-2]
        m, (p, q) = math.prod(lead), a.shape[-2:]
        e_r, e_c = self._analysis(tuple(rows), tuple(cols))
        kr, kc = self.kept_shape
        t = (a.reshape(m * p, q) @ e_c).reshape(m, p, kc)              # (M, P, kc)
        t = e_r @ t.transpose(1, 0, 2).reshape(p, m * kc)              # (kr, M * kc)
        t = t.reshape(kr, m, kc).transpose(0, 2, 1)                    # (kr, kc, M)
        return np.ascontiguousarray(t).reshape((self.kept,) + lead)

    def _real(self, freq, lead, rows, cols):
        """The inverse real FFT of a (Hermitian) spectrum given at the kept coefficients
        only (zero elsewhere), at tile positions ``rows`` x ``cols``: ``freq`` is
        ``(F, *lead)``, the result ``(*lead, P, Q)`` float64."""
        d_r, d_c = self._synthesis(tuple(rows), tuple(cols))
        kr, kc = self.kept_shape
        m, p, q = math.prod(lead), d_r.shape[0], d_c.shape[1]
        t = d_r @ freq.reshape(kr, kc * m)                             # (P, kc * M)
        t = t.reshape(p, kc, m).transpose(2, 0, 1)                     # (M, P, kc)
        out = t.reshape(m * p, kc) @ d_c                               # (M * P, Q)
        return np.ascontiguousarray(out.real).reshape(tuple(lead) + (p, q))

    @functools.cached_property
    def _positions(self):
        """Tile positions: the padded input, the filter taps, the outputs (strided) and
        the unpadded input, as ``(rows, cols)`` tuples."""
        (ph, pw), (h, w) = self.padding, self.in_shape
        (sh, sw), (oh, ow) = self.stride, self.out_shape
        r, s = self.kernel
        return {"padded": (tuple(range(self.padded[0])), tuple(range(self.padded[1]))),
                "taps": (tuple(range(r)), tuple(range(s))),
                "out": (tuple(range(0, oh * sh, sh)), tuple(range(0, ow * sw, sw))),
                "input": (tuple(range(ph, ph + h)), tuple(range(pw, pw + w)))}

    def _check(self, x, w):
        x = np.asarray(x, dtype=np.float64)
        w = np.asarray(w, dtype=np.float64)
        if x.ndim != 4 or x.shape[2:] != self.in_shape:
            raise ValueError(f"x must have shape (N, C, {self.in_shape[0]}, "
                             f"{self.in_shape[1]}), got {x.shape}")
        if w.ndim != 4 or w.shape[2:] != self.kernel or w.shape[1] != x.shape[1]:
            raise ValueError(f"w must have shape (K, {x.shape[1]}, {self.kernel[0]}, "
                             f"{self.kernel[1]}), got {w.shape}")
        return x, w

    # -- passes ------------------------------------------------------------------------------

    def input_spectrum(self, x):
        """The kept spectrum of the zero-padded input ``x`` (N, C, H, W): (F, N, C)."""
        (ph, pw), pos = self.padding, self._positions
        xpad = np.pad(np.asarray(x, dtype=np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        return self._kept_spectrum(xpad, *pos["padded"])

    def filter_spectrum(self, w):
        """The kept spectrum (not conjugated) of the filters ``w`` (K, C, R, S): (F, K, C)."""
        return self._kept_spectrum(np.asarray(w, dtype=np.float64), *self._positions["taps"])

    def forward(self, x, w, b=None):
        """``x`` (N, C, H, W), ``w`` (K, C, R, S), ``b`` (K,) or None: ``(out, cache)``
        with ``out`` (N, K, OH, OW) float64."""
        x, w = self._check(x, w)
        n, k = x.shape[0], w.shape[0]
        x_freq = self.input_spectrum(x)                          # (F, N, C)
        w_freq = self.filter_spectrum(w)                         # (F, K, C)
        products = np.matmul(x_freq, w_freq.conj().transpose(0, 2, 1))   # (F, N, K)
        out = self._real(products, (n, k), *self._positions["out"])
        if b is not None:
            out += np.asarray(b, dtype=np.float64).reshape(1, k, 1, 1)
        return out, Cache(self, x_freq, w_freq, x.shape, w.shape)

    def output_gradient_spectrum(self, dout):
        """``M . FFT(S^T dout)`` at the kept coefficients: ``(F, N, K)``."""
        return self._kept_spectrum(np.asarray(dout, dtype=np.float64), *self._positions["out"])

    def backward(self, dout, cache, need_dx=True, groups=1):
        """Gradients ``(dx or None, dw, db)`` for the output gradient ``dout``
        (N, K, OH, OW); ``dw`` (groups, K, C, R, S) and ``db`` (groups, K) hold the
        gradients of ``groups`` equal, contiguous groups of the images (as
        :meth:`dnnhw.golden.cnn.CNN.conv_backward`)."""
        _, x_freq, w_freq, x_shape, w_shape = cache
        n, c = x_shape[:2]
        k = w_shape[0]
        dout = np.asarray(dout, dtype=np.float64)
        if dout.shape != (n, k) + self.out_shape:
            raise ValueError(f"dout must have shape {(n, k) + self.out_shape}, got "
                             f"{dout.shape}")
        groups = check_int("groups", groups, 1)
        if n % groups:
            raise ValueError(f"groups must divide the {n} images, got {groups}")
        g_freq = self.output_gradient_spectrum(dout)            # (F, N, K)
        f, per = self.kept, n // groups
        # dw: X . conj(G), summed over each group's images: (F, groups, K, C).
        dw_freq = np.matmul(g_freq.conj().reshape(f, groups, per, k).transpose(0, 1, 3, 2),
                            x_freq.reshape(f, groups, per, c))
        dw = self._real(dw_freq, (groups, k, c), *self._positions["taps"])
        db = dout.reshape(groups, per, k, -1).sum(axis=(1, 3))
        dx = None
        if need_dx:
            dx_freq = np.matmul(g_freq, w_freq)                 # G . W: (F, N, C)
            dx = self._real(dx_freq, (n, c), *self._positions["input"])
        return dx, dw, db

    # -- memory ------------------------------------------------------------------------------

    def spectra_memory(self, channels, filters, itemsize=COMPLEX_BYTES):
        """Kept complex coefficients and their bytes (``itemsize`` each) of the spectra of
        ``filters`` x ``channels`` filters and of one input tile (``channels`` planes):
        a dict with ``filter_coefficients``, ``input_coefficients``, ``filter_bytes``,
        ``input_bytes``, ``kept`` (per plane) and ``spectrum`` (per plane, c = 0)."""
        channels = check_int("channels", channels, 1)
        filters = check_int("filters", filters, 1)
        itemsize = check_int("itemsize", itemsize, 1)
        fc, ic = filters * channels * self.kept, channels * self.kept
        return {"kept": self.kept, "spectrum": self.spectrum_coefficients,
                "filter_coefficients": fc, "input_coefficients": ic,
                "filter_bytes": fc * itemsize, "input_bytes": ic * itemsize}


@functools.lru_cache(maxsize=256)
def plan(in_shape, kernel=cnn.KERNEL, stride=1, padding=cnn.PADDING, compression_rate=0.0,
         pow2=False):
    """A cached :class:`BandLimitedConv2d` (hashable arguments: ints or pairs)."""
    return BandLimitedConv2d(in_shape, kernel, stride=stride, padding=padding,
                             compression_rate=compression_rate, pow2=pow2)


@dataclass(frozen=True)
class BandLimitedCNN(cnn.CNN):
    """:class:`dnnhw.golden.cnn.CNN` with band-limited FFT conv layers at
    ``compression_rate`` (percent, 0 <= c < 100), the same in training and inference;
    ``pow2`` rounds every FFT tile up to a power of two."""
    compression_rate: float = 0.0
    pow2: bool = False

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "compression_rate",
                           check_compression_rate(self.compression_rate))
        if not isinstance(self.pow2, (bool, np.bool_)):
            raise TypeError(f"pow2 must be True or False, got {self.pow2!r}")
        object.__setattr__(self, "pow2", bool(self.pow2))

    def layer(self, in_shape, stride):
        """The :class:`BandLimitedConv2d` of an input of spatial shape ``in_shape``."""
        return plan(tuple(int(v) for v in in_shape), cnn.KERNEL, int(stride), cnn.PADDING,
                    self.compression_rate, self.pow2)

    def layers(self):
        """``(name, layer, channels, filters)`` of every conv layer, in order."""
        found, side, c_in = [], self.image, self.in_channels
        for name, c, s in zip(self.conv_names, self.channels, self.strides):
            layer = self.layer((side, side), s)
            found.append((name, layer, c_in, c))
            side, c_in = layer.out_shape[0], c
        return found

    def conv_forward(self, x, w, b, stride):
        return self.layer(x.shape[2:], stride).forward(x, w, b)

    def conv_backward(self, dout, cache, need_dx=True, groups=1):
        return cache.layer.backward(dout, cache, need_dx=need_dx, groups=groups)

    def spectra_memory(self, itemsize=COMPLEX_BYTES):
        """Per conv layer (a list of dicts: ``layer``, ``fft_shape``, ``kept_shape`` and
        :meth:`BandLimitedConv2d.spectra_memory`'s entries) and their ``total``
        (``filter_bytes``, ``input_bytes``, ``bytes``): the kept spectra of all filters
        and of one input tile (one image through every layer)."""
        rows = []
        for name, layer, c_in, c_out in self.layers():
            rows.append(dict(layer=name, fft_shape=list(layer.fft_shape),
                             kept_shape=list(layer.kept_shape),
                             **layer.spectra_memory(c_in, c_out, itemsize)))
        total = {key: sum(r[key] for r in rows) for key in
                 ("filter_coefficients", "input_coefficients", "filter_bytes", "input_bytes")}
        total["bytes"] = total["filter_bytes"] + total["input_bytes"]
        return {"layers": rows, "total": total}
