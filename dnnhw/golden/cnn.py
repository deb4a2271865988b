"""A small CNN for 8 x 8 images with its forward and backward passes by hand (NumPy only),
and a simulated data-parallel trainer whose gradient exchange is pluggable: dense
all-reduce, or Deep Gradient Compression per tensor per worker, in float
(:mod:`dnnhw.golden.dgc`) or by the fixed-point hardware rule (:mod:`dnnhw.golden.dgc_fixed`).

**The model** (:class:`CNN`): ``conv1`` (3 x 3, padding 1, stride ``strides[0]``,
``channels[0]`` filters) and ReLU, ``conv2`` (3 x 3, padding 1, stride ``strides[1]``) and
ReLU, ..., then a dense layer ``fc`` to the classes and softmax cross-entropy. With the
defaults (channels 16 and 32, strides 1 and 2) an 8 x 8 image becomes 16 x 8 x 8, then
32 x 4 x 4, then 10 logits: 9,930 parameters in six tensors (``conv1.w`` 144, ``conv1.b``
16, ``conv2.w`` 4,608, ``conv2.b`` 32, ``fc.w`` 5,120, ``fc.b`` 10; :meth:`CNN.shapes`).
Convolutions go through im2col (one matrix product per layer); the stride is the only
down-sampling. Parameters are a dict of named float64 arrays; :meth:`CNN.gradients` (or
:func:`gradients`) returns the loss, the gradient of every parameter and the ReLU outputs
of every conv layer (what cDMA would compress on their way to host memory);
:meth:`CNN.shard_gradients` gives the gradients of equal shards of a batch in one pass.

**The trainer** (:func:`train`): per step a global minibatch of ``batch`` training images
(a fresh permutation every epoch; the incomplete last batch is dropped) is split into K
contiguous shards (``np.array_split``; one :meth:`CNN.shard_gradients` pass when K
divides the batch), one per simulated worker. Worker k computes the
gradient of the *global* batch's mean loss restricted to its shard (its summed loss over
``batch``), so the K gradients add up to the dense minibatch gradient and one learning rate
serves every exchange. The :class:`Exchange` turns the K gradients into one update
(``w -= lr * update``) and says how many bytes crossed the network:

- :class:`DenseExchange`: all-reduce of float32 gradients (``4 n`` bytes per tensor per
  worker), then momentum SGD on the sum (``u = m u + g``, ``update = u``), with optional
  per-tensor clipping of the sum at ``clip`` (thr_G);
- :class:`DgcExchange`: :class:`dnnhw.golden.dgc.Worker` per tensor per worker with the
  warm-up keep ratio of the epoch; the messages are encoded to their wire bytes, decoded
  and summed (:func:`dnnhw.golden.dgc.aggregate`): ``update = sum_k sparse(v_k)``. Its
  switches remove each trick (momentum correction, factor masking, clipping, warm-up);
- :class:`FixedDgcExchange`: the same with the hardware's integer rule
  (``dgc_fixed.SparsifierState`` per tensor per worker, the class's docstring says how the
  gradients are quantized).

Each epoch's record (a dict, JSON-ready) holds ``epoch``, ``keep`` (the exchange's keep
ratio, None for dense), ``lr``, ``loss`` (mean training loss over the epoch's steps),
``test_loss``, ``test_accuracy``, ``steps``, ``dense_bytes`` (what a dense float32 exchange
would have sent), ``sent_bytes`` (what this one sent), ``seconds`` and whatever the
exchange's ``epoch_stats`` and the ``on_epoch`` hook add.

**Reuse.** The conv layers call :meth:`CNN.conv_forward` / :meth:`CNN.conv_backward`: a
study that changes the convolution (band-limited FFT convolution, quantized arithmetic)
subclasses :class:`CNN` and overrides these two (``conv_backward`` returns the filter and
bias gradients with a leading axis of ``groups``, one per shard), and :func:`train` and
every exchange work unchanged. ``lr`` may be a function of the epoch; ``on_step(state)``
and ``on_epoch(state)`` receive a :class:`TrainState` (the model, the live parameters,
the epoch, the step, the workers' gradients and the update; ``state.record`` in
``on_epoch``, which may add entries to it); a new exchange is any object with the two
methods of :class:`Exchange`. :func:`train` does not limit BLAS threads; on tiny
matrices one thread is fastest (``dnnhw bench dgc`` sets it with threadpoolctl).
"""

import math
import time
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import dgc
from ._checks import check_int


__all__ = [
    "CNN", "Gradients", "gradients", "im2col", "col2im", "Exchange", "DenseExchange",
    "DgcExchange", "FixedDgcExchange", "TrainState", "Training", "train",
]

KERNEL = 3
PADDING = 1


# -- convolution by im2col ---------------------------------------------------------------

def im2col(x, stride, padding=PADDING, kernel=KERNEL):
    """``x`` (N, C, H, W) lowered to ``(N * OH * OW, C * kernel * kernel)`` rows (one per
    output pixel, columns in (c, r, s) order), and ``(OH, OW)``."""
    n, c, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    windows = sliding_window_view(padded, (kernel, kernel), axis=(2, 3))[:, :, ::stride,
                                                                          ::stride]
    oh, ow = windows.shape[2], windows.shape[3]
    cols = windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * kernel * kernel)
    return cols, (oh, ow)


def col2im(dcols, shape, stride, padding=PADDING, kernel=KERNEL):
    """The adjoint of :func:`im2col`: rows ``dcols`` summed back into an array of
    ``shape`` (N, C, H, W)."""
    n, c, h, w = shape
    oh = (h + 2 * padding - kernel) // stride + 1
    ow = (w + 2 * padding - kernel) // stride + 1
    d = dcols.reshape(n, oh, ow, c, kernel, kernel)
    padded = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=dcols.dtype)
    for r in range(kernel):
        for s in range(kernel):
            padded[:, :, r:r + stride * oh:stride, s:s + stride * ow:stride] += \
                d[:, :, :, :, r, s].transpose(0, 3, 1, 2)
    return padded[:, :, padding:padding + h, padding:padding + w]


class Gradients(NamedTuple):
    """:meth:`CNN.gradients`: ``loss`` (float), ``grads`` (dict like the parameters),
    ``activations`` (the ReLU output of each conv layer, ``(N, F, OH, OW)``, in order)."""
    loss: float
    grads: dict
    activations: list


@dataclass(frozen=True)
class CNN:
    """The network (module docstring). ``channels`` and ``strides``: one entry per conv
    layer; ``image``: the side of the square input; ``in_channels``; ``classes``."""
    channels: tuple = (16, 32)
    strides: tuple = (1, 2)
    image: int = 8
    in_channels: int = 1
    classes: int = 10

    def __post_init__(self):
        if len(self.channels) < 1 or len(self.channels) != len(self.strides):
            raise ValueError(f"channels and strides must have the same length >= 1, got "
                             f"{self.channels} and {self.strides}")
        for c in self.channels:
            check_int("channels entries", c, 1, 1024)
        for s in self.strides:
            check_int("strides entries", s, 1, 4)
        check_int("image", self.image, 1, 1024)
        check_int("in_channels", self.in_channels, 1, 1024)
        check_int("classes", self.classes, 2, 100000)

    @property
    def conv_names(self):
        return [f"conv{i + 1}" for i in range(len(self.channels))]

    def feature_sides(self):
        """The side of each conv layer's output."""
        sides, side = [], self.image
        for s in self.strides:
            side = (side + 2 * PADDING - KERNEL) // s + 1
            sides.append(side)
        return sides

    def shapes(self):
        """Parameter name to shape, in the order of the layers."""
        shapes, c_in = {}, self.in_channels
        for name, c in zip(self.conv_names, self.channels):
            shapes[f"{name}.w"] = (c, c_in, KERNEL, KERNEL)
            shapes[f"{name}.b"] = (c,)
            c_in = c
        side = self.feature_sides()[-1]
        shapes["fc.w"] = (c_in * side * side, self.classes)
        shapes["fc.b"] = (self.classes,)
        return shapes

    def init(self, rng):
        """Fresh parameters: He-normal conv filters, ``N(0, 1 / fan_in)`` dense weights,
        zero biases (float64)."""
        params = {}
        for name, shape in self.shapes().items():
            if name.endswith(".b"):
                params[name] = np.zeros(shape)
            else:
                fan_in = int(np.prod(shape[1:])) if len(shape) == 4 else shape[0]
                gain = 2.0 if len(shape) == 4 else 1.0
                params[name] = rng.standard_normal(shape) * math.sqrt(gain / fan_in)
        return params

    # -- the layers (override points) ----------------------------------------------------

    def conv_forward(self, x, w, b, stride):
        """One 3 x 3 convolution (padding 1) of ``x`` (N, C, H, W) with ``w`` (F, C, 3, 3)
        and ``b`` (F,): ``(out (N, F, OH, OW), cache)``."""
        cols, (oh, ow) = im2col(x, stride)
        out = cols @ w.reshape(w.shape[0], -1).T + b
        return out.reshape(x.shape[0], oh, ow, -1).transpose(0, 3, 1, 2), (cols, x.shape,
                                                                             w, stride)

    def conv_backward(self, dout, cache, need_dx=True, groups=1):
        """Gradients ``(dx or None, dw, db)`` of :meth:`conv_forward` for ``dout``; ``dw``
        and ``db`` have a leading axis of ``groups``: the gradients of each of that many
        equal, contiguous groups of images (the workers' shards)."""
        cols, x_shape, w, stride = cache
        f = w.shape[0]
        d = dout.transpose(0, 2, 3, 1).reshape(-1, f)
        if groups == 1:
            dw = (d.T @ cols).reshape((1,) + w.shape)
            db = d.sum(axis=0)[None]
        else:
            dg = d.reshape(groups, -1, f)
            dw = np.matmul(dg.transpose(0, 2, 1), cols.reshape(groups, -1, cols.shape[1]))
            dw = dw.reshape((groups,) + w.shape)
            db = dg.sum(axis=1)
        dx = col2im(d @ w.reshape(f, -1), x_shape, stride) if need_dx else None
        return dx, dw, db

    # -- the network -----------------------------------------------------------------------

    def _input(self, x):
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 3:
            x = x[:, None]
        expected = (self.in_channels, self.image, self.image)
        if x.ndim != 4 or x.shape[1:] != expected:
            raise ValueError(f"x must have shape (N, {', '.join(map(str, expected))}) or "
                             f"(N, {self.image}, {self.image}) for one channel, got "
                             f"{x.shape}")
        return x

    def forward(self, params, x):
        """``(logits, caches, activations)`` for the images ``x``."""
        a = self._input(x)
        caches, activations = [], []
        for name, stride in zip(self.conv_names, self.strides):
            z, cache = self.conv_forward(a, params[f"{name}.w"], params[f"{name}.b"], stride)
            a = np.maximum(z, 0.0)
            caches.append(cache)
            activations.append(a)
        flat = a.reshape(a.shape[0], -1)
        logits = flat @ params["fc.w"] + params["fc.b"]
        return logits, caches, activations

    def gradients(self, params, x, y, *, normalizer=None):
        """Loss ``sum_i CE(x_i, y_i) / normalizer`` (default ``len(x)``: the mean), its
        gradients and the conv layers' ReLU outputs (:class:`Gradients`)."""
        losses, grads, activations = self._backward(params, x, y, normalizer, 1)
        return Gradients(float(losses[0]), {name: g[0] for name, g in grads.items()},
                         activations)

    def shard_gradients(self, params, x, y, shards, *, normalizer=None):
        """:meth:`gradients` of ``shards`` equal, contiguous groups of the images at once
        (one forward and backward pass): ``(losses, grads, activations)`` with one loss
        and one gradient dict per shard; each shard's loss is its summed cross-entropy
        over ``normalizer`` (default ``len(x)``), so the shards' losses and gradients add
        up to those of the whole batch."""
        shards = check_int("shards", shards, 1)
        if len(x) % shards:
            raise ValueError(f"shards must divide the {len(x)} images, got {shards}")
        losses, grads, activations = self._backward(params, x, y, normalizer, shards)
        return ([float(v) for v in losses],
                [{name: g[k] for name, g in grads.items()} for k in range(shards)],
                activations)

    def _backward(self, params, x, y, normalizer, groups):
        y = np.asarray(y).reshape(-1)
        logits, caches, activations = self.forward(params, x)
        n = logits.shape[0]
        if y.size != n:
            raise ValueError(f"y must have one label per image ({n}), got {y.size}")
        if n and (y.min() < 0 or y.max() >= self.classes):
            raise ValueError(f"y must hold labels in 0..{self.classes - 1}")
        normalizer = n if normalizer is None else normalizer
        if not normalizer > 0:
            raise ValueError(f"normalizer must be > 0, got {normalizer}")
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        losses = -log_p[np.arange(n), y].reshape(groups, -1).sum(axis=1) / normalizer
        dlogits = np.exp(log_p)
        dlogits[np.arange(n), y] -= 1.0
        dlogits /= normalizer
        grads = {}
        last = activations[-1]
        flat = last.reshape(groups, n // groups, -1)
        dg = dlogits.reshape(groups, n // groups, -1)
        grads["fc.w"] = np.matmul(flat.transpose(0, 2, 1), dg)
        grads["fc.b"] = dg.sum(axis=1)
        da = (dlogits @ params["fc.w"].T).reshape(last.shape)
        for i in reversed(range(len(self.channels))):
            name = self.conv_names[i]
            dz = da * (activations[i] > 0)
            da, grads[f"{name}.w"], grads[f"{name}.b"] = self.conv_backward(
                dz, caches[i], need_dx=i > 0, groups=groups)
        return losses, {name: grads[name] for name in self.shapes()}, activations

    def logits(self, params, x, *, chunk=512):
        x = self._input(x)
        return np.concatenate([self.forward(params, x[i:i + chunk])[0]
                               for i in range(0, len(x), chunk)]) if len(x) else \
            np.zeros((0, self.classes))

    def predict(self, params, x):
        """The predicted class of every image."""
        return self.logits(params, x).argmax(axis=1)

    def evaluate(self, params, x, y):
        """``(mean cross-entropy, accuracy)`` on ``(x, y)``."""
        y = np.asarray(y).reshape(-1)
        logits = self.logits(params, x)
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return (float(-log_p[np.arange(y.size), y].mean()),
                float((logits.argmax(axis=1) == y).mean()))


def gradients(params, x, y, *, model=None, normalizer=None):
    """:meth:`CNN.gradients` of ``model`` (default: the default :class:`CNN`)."""
    return (model or CNN()).gradients(params, x, y, normalizer=normalizer)


# -- exchanges -----------------------------------------------------------------------------

class Exchange:
    """The interface of a gradient exchange. :func:`train` calls ``start`` once and then
    the exchange once per step; ``epoch_stats()`` (optional) is merged into each epoch's
    record and may reset its counters."""

    #: The name the records carry.
    name = "exchange"

    def start(self, params, *, workers, rng):
        """Allocate state for ``params`` (the initial parameters, read only) and
        ``workers`` workers; ``rng`` is the exchange's own ``numpy.random.Generator``."""
        raise NotImplementedError

    def __call__(self, worker_grads, *, epoch):
        """``worker_grads``: one dict of gradients per worker. Returns ``(update,
        dense_bytes, sent_bytes)``: the dict of updates (``w -= lr * update``) and the
        bytes a dense float32 exchange would send and this one sent."""
        raise NotImplementedError

    def keep(self, epoch):
        """The keep ratio of ``epoch`` (None: dense)."""
        return None

    def epoch_stats(self):
        return {}


def _check_momentum(momentum):
    return dgc._check_momentum(momentum)


def _check_clip(clip):
    return None if clip is None else dgc._check_real("clip", clip, lo=0.0, hi=None)


def _dense_bytes(params, workers):
    return workers * sum(dgc.dense_bytes(p.size) for p in params.values())


class DenseExchange(Exchange):
    """Dense all-reduce and momentum SGD on the sum: ``g = sum_k g_k``, clipped per tensor
    to norm ``clip`` when given; ``u = m u + g``; ``update = u``."""

    name = "dense"

    def __init__(self, momentum=0.9, clip=None):
        self.momentum = _check_momentum(momentum)
        self.clip = _check_clip(clip)

    def start(self, params, *, workers, rng):
        self.workers = check_int("workers", workers, 1)
        self.u = {name: np.zeros_like(p) for name, p in params.items()}
        self._dense = _dense_bytes(params, self.workers)

    def __call__(self, worker_grads, *, epoch):
        update = {}
        for name in self.u:
            g = sum(grads[name] for grads in worker_grads)
            if self.clip is not None:
                g = dgc.clip_by_norm(g, self.clip)
            self.u[name] = self.momentum * self.u[name] + g
            update[name] = self.u[name]
        return update, self._dense, self._dense


class DgcExchange(Exchange):
    """DGC in float (:class:`dnnhw.golden.dgc.Worker` per tensor per worker).

    ``keep``: the final keep ratio; ``warmup``: the warm-up schedule first
    (:func:`dnnhw.golden.dgc.keep_ratio`); ``clip``: thr_G (each worker clips each tensor at
    ``thr_G / sqrt(K)``) or None; ``momentum_correction`` / ``factor_masking``: the
    tricks (without momentum correction the workers accumulate raw gradients and momentum
    SGD runs on the aggregate). Every message goes through its wire bytes
    (:func:`dnnhw.golden.dgc.encode`, ``decode``), so the update uses float32 values.
    """

    name = "dgc"

    def __init__(self, momentum=0.9, keep=dgc.KEEP, *, warmup=True,
                 sample_ratio=dgc.SAMPLE_RATIO, clip=None, momentum_correction=True,
                 factor_masking=True):
        self.momentum = _check_momentum(momentum)
        self._keep = dgc._check_keep(keep)
        self.warmup = bool(warmup)
        self.sample_ratio = dgc._check_sample_ratio(sample_ratio)
        self.clip = _check_clip(clip)
        self.momentum_correction = bool(momentum_correction)
        self.factor_masking = bool(factor_masking)

    def keep(self, epoch):
        return dgc.keep_ratio(epoch, warmup=self.warmup, keep=self._keep)

    def start(self, params, *, workers, rng):
        self.workers = check_int("workers", workers, 1)
        self.rng = rng
        self.sizes = {name: p.size for name, p in params.items()}
        self.state = [{name: dgc.Worker(n) for name, n in self.sizes.items()}
                      for _ in range(self.workers)]
        self.u = {name: np.zeros(n) for name, n in self.sizes.items()}
        self.clip_norm = (None if self.clip is None
                          else dgc.local_clip_norm(self.clip, self.workers))
        self._dense = _dense_bytes(params, self.workers)
        self._sent = dict.fromkeys(self.sizes, 0)

    def epoch_stats(self):
        """``sent_elements``: per tensor, the elements the workers sent this epoch."""
        stats, self._sent = {"sent_elements": self._sent}, dict.fromkeys(self.sizes, 0)
        return stats

    def __call__(self, worker_grads, *, epoch):
        keep = self.keep(epoch)
        update, sent = {}, 0
        for name, n in self.sizes.items():
            messages = []
            for state, grads in zip(self.state, worker_grads):
                indices, values = state[name].step(
                    grads[name], momentum=self.momentum, keep=keep, rng=self.rng,
                    sample_ratio=self.sample_ratio, clip_norm=self.clip_norm,
                    momentum_correction=self.momentum_correction,
                    factor_masking=self.factor_masking)
                message = dgc.encode(indices, values)
                sent += len(message)
                self._sent[name] += int(indices.size)
                messages.append(message)
            total = dgc.aggregate(n, messages).reshape(worker_grads[0][name].shape)
            if not self.momentum_correction:
                self.u[name] = self.momentum * self.u[name] + total.reshape(-1)
                total = self.u[name].reshape(total.shape)
            update[name] = total
        return update, self._dense, sent


class FixedDgcExchange(Exchange):
    """DGC by the hardware's integer rule: a ``dgc_fixed.SparsifierState`` per tensor per
    worker (capacity the next power of two >= n, at least 16; ``grad_width`` G and
    ``state_width`` S bits), its command from ``dgc_fixed.plan_command`` with the epoch's
    keep ratio.

    **Quantization.** Each tensor has a power-of-two scale ``2 ** scale_bits``, fixed at the
    first step in which its gradient is non-zero (before that its gradients are all zero,
    whatever the scale): the largest integer ``scale_bits`` (at least 0) for which the
    largest ``|g|`` of that step over all workers times ``2 ** scale_bits`` is at most
    ``2 ** (G - 1 - headroom)``, so ``headroom`` bits (default 3) stay free for later,
    larger gradients (the host would learn that peak with one scalar all-reduce, once).
    A worker sends ``round(g * 2 ** scale_bits)``, clamped to
    ``±(2 ** (G - 1) - 1)`` (``epoch_stats`` counts the clamped elements). The sparse
    values come back as ``value / 2 ** scale_bits`` and are summed in float for the SGD step
    (``w -= lr * sum``). With ``clip`` (thr_G) the command carries
    ``dgc_fixed.clip_limit_for(thr_G / sqrt(K), scale_bits)``, capped at the register's
    largest value ``2 ** (2 G + log2(capacity)) - 1`` (a larger bound never clips: no
    sum of squares reaches it): the hardware's power-of-two clip. Sent bytes:
    ``ceil(dgc_fixed.sparse_bits(count, ...) / 8)`` per message.
    """

    name = "dgc-fixed"

    def __init__(self, momentum=0.9, keep=dgc.KEEP, *, warmup=True,
                 sample_ratio=dgc.SAMPLE_RATIO, clip=None, grad_width=16, state_width=24,
                 headroom=3):
        self.momentum = _check_momentum(momentum)
        self._keep = dgc._check_keep(keep)
        self.warmup = bool(warmup)
        self.sample_ratio = dgc._check_sample_ratio(sample_ratio)
        self.clip = _check_clip(clip)
        self.grad_width = check_int("grad_width", grad_width, 2, 64)
        self.state_width = check_int("state_width", state_width, 2, 64)
        self.headroom = check_int("headroom", headroom, 0, self.grad_width - 2)

    def keep(self, epoch):
        return dgc.keep_ratio(epoch, warmup=self.warmup, keep=self._keep)

    def start(self, params, *, workers, rng):
        from . import dgc_fixed
        self.fixed = dgc_fixed
        self.workers = check_int("workers", workers, 1)
        self.rng = rng
        self.sizes = {name: p.size for name, p in params.items()}
        self.capacity = {name: max(16, 1 << (n - 1).bit_length())
                         for name, n in self.sizes.items()}
        self.state = [{name: dgc_fixed.SparsifierState(
            capacity=self.capacity[name], grad_width=self.grad_width,
            state_width=self.state_width) for name in self.sizes}
            for _ in range(self.workers)]
        self.scale_bits = {name: None for name in self.sizes}
        self.clip_norm = (None if self.clip is None
                          else dgc.local_clip_norm(self.clip, self.workers))
        self._dense = _dense_bytes(params, self.workers)
        self._top = (1 << (self.grad_width - 1)) - 1
        self._state_top = (1 << (self.state_width - 1)) - 1
        self._reset_stats()

    def _reset_stats(self):
        self.stats = {"grad_elements": 0, "grad_clamped": 0, "sent_values": 0,
                      "sent_saturated": 0}
        self._sent = dict.fromkeys(self.sizes, 0)

    def epoch_stats(self):
        """This epoch's ``grad_elements`` (quantized), ``grad_clamped`` (of them, clamped to
        G bits), ``sent_values``, ``sent_saturated`` (of them, at the S-bit bound),
        ``sent_elements`` (per tensor) and the tensors' ``scale_bits``."""
        stats = dict(self.stats, sent_elements=self._sent, scale_bits=dict(self.scale_bits))
        self._reset_stats()
        return stats

    def _scale(self, name, worker_grads):
        if self.scale_bits[name] is None:
            peak = max(float(np.abs(grads[name]).max()) for grads in worker_grads)
            if peak > 0:
                self.scale_bits[name] = max(0, math.floor(
                    math.log2(2.0 ** (self.grad_width - 1 - self.headroom) / peak)))
        return self.scale_bits[name]

    def _clip_limit(self, name, bits):
        if self.clip_norm is None or bits is None:
            return None
        register = (1 << 2 * self.grad_width + self.capacity[name].bit_length() - 1) - 1
        return min(self.fixed.clip_limit_for(self.clip_norm, bits), register)

    def __call__(self, worker_grads, *, epoch):
        keep = self.keep(epoch)
        update, sent = {}, 0
        for name, n in self.sizes.items():
            shape = worker_grads[0][name].shape
            bits = self._scale(name, worker_grads)
            total = np.zeros(n)
            clip_limit = self._clip_limit(name, bits)
            for state, grads in zip(self.state, worker_grads):
                if bits is None:
                    q = np.zeros(n, dtype=np.int64)
                else:
                    scaled = np.rint(grads[name].reshape(-1) * 2.0 ** bits)
                    self.stats["grad_clamped"] += int(np.count_nonzero(
                        np.abs(scaled) > self._top))
                    q = np.clip(scaled, -self._top, self._top).astype(np.int64)
                self.stats["grad_elements"] += n
                command = self.fixed.plan_command(
                    n, momentum=self.momentum, keep=keep, sample_ratio=self.sample_ratio,
                    clip_limit=clip_limit, rng=self.rng)
                indices, values, status = state[name].step(command, q)
                indices = np.asarray(indices, dtype=np.int64)
                values = np.asarray(values, dtype=np.int64)
                self.stats["sent_values"] += int(values.size)
                self._sent[name] += int(values.size)
                self.stats["sent_saturated"] += int(np.count_nonzero(
                    np.abs(values) >= self._state_top))
                sent += -(-self.fixed.sparse_bits(int(values.size),
                                                  capacity=self.capacity[name],
                                                  state_width=self.state_width) // 8)
                if values.size and bits is not None:
                    np.add.at(total, indices, values / 2.0 ** bits)
            update[name] = total.reshape(shape)
        return update, self._dense, sent


# -- the trainer ---------------------------------------------------------------------------

@dataclass
class TrainState:
    """What the hooks of :func:`train` see: ``model``, ``params`` (live: a hook that
    changes them changes the training), ``epoch``, ``step`` (within the epoch),
    ``worker_grads`` and ``update`` (of the latest step), ``record`` (``on_epoch`` only:
    the epoch's record, which the hook may extend), ``exchange``."""
    model: CNN
    params: dict
    exchange: object
    epoch: int = 0
    step: int = 0
    worker_grads: list = None
    update: dict = None
    record: dict = None


@dataclass
class Training:
    """:func:`train`'s result: the final ``params``, the per-epoch ``history`` (records,
    module docstring) and the ``exchange`` (with its final state)."""
    params: dict
    history: list = field(default_factory=list)
    exchange: object = None


def _split(data):
    try:
        return data.x_train, data.y_train, data.x_test, data.y_test
    except AttributeError:
        return tuple(data)


def train(model, data, *, workers=4, epochs=20, exchange=None, seed=0, batch=32, lr=0.05,
          params=None, on_step=None, on_epoch=None):
    """Data-parallel training of ``model`` on ``data`` (``x_train``, ``y_train``,
    ``x_test``, ``y_test``, e.g. :func:`dnnhw.workloads.digits`) with ``workers`` simulated
    workers for ``epochs`` epochs; the module docstring says what a step does and what the
    records hold.

    ``exchange``: an :class:`Exchange` (default :class:`DenseExchange`); ``seed`` seeds
    three independent streams (initial parameters, the batches' order, the exchange's
    sampling); ``batch``: the global minibatch (at least ``workers``); ``lr``: a float or
    a function of the epoch; ``params``: starting parameters (copied) instead of fresh
    ones; ``on_step`` / ``on_epoch``: hooks called with a :class:`TrainState`.
    Returns a :class:`Training`.
    """
    workers = check_int("workers", workers, 1)
    epochs = check_int("epochs", epochs, 0)
    batch = check_int("batch", batch, 1)
    seed = check_int("seed", seed, 0)
    if batch < workers:
        raise ValueError(f"batch must be >= workers ({workers}), got {batch}")
    x_train, y_train, x_test, y_test = _split(data)
    x_train = model._input(x_train)
    y_train = np.asarray(y_train).reshape(-1)
    if len(x_train) != len(y_train):
        raise ValueError(f"x_train has {len(x_train)} images but y_train {len(y_train)} "
                         f"labels")
    steps = len(x_train) // batch
    if steps < 1:
        raise ValueError(f"batch must be at most the training set's {len(x_train)} images, "
                         f"got {batch}")
    init_ss, order_ss, exchange_ss = np.random.SeedSequence(seed).spawn(3)
    if params is None:
        params = model.init(np.random.default_rng(init_ss))
    else:
        params = {name: np.array(p, dtype=np.float64) for name, p in params.items()}
    exchange = DenseExchange() if exchange is None else exchange
    exchange.start(params, workers=workers, rng=np.random.default_rng(exchange_ss))
    order_rng = np.random.default_rng(order_ss)
    state = TrainState(model, params, exchange)
    result = Training(params, [], exchange)
    for epoch in range(epochs):
        start = time.perf_counter()
        rate = float(lr(epoch)) if callable(lr) else float(lr)
        order = order_rng.permutation(len(x_train))
        losses, dense_total, sent_total = [], 0, 0
        for step in range(steps):
            chosen = order[step * batch:(step + 1) * batch]
            if batch % workers == 0:
                shard_losses, worker_grads, _ = model.shard_gradients(
                    params, x_train[chosen], y_train[chosen], workers, normalizer=batch)
                loss = sum(shard_losses)
            else:
                worker_grads, loss = [], 0.0
                for shard in np.array_split(chosen, workers):
                    g = model.gradients(params, x_train[shard], y_train[shard],
                                        normalizer=batch)
                    worker_grads.append(g.grads)
                    loss += g.loss
            update, dense_bytes, sent_bytes = exchange(worker_grads, epoch=epoch)
            for name, p in params.items():
                p -= rate * update[name]
            losses.append(loss)
            dense_total += dense_bytes
            sent_total += sent_bytes
            if on_step is not None:
                state.epoch, state.step = epoch, step
                state.worker_grads, state.update = worker_grads, update
                on_step(state)
        test_loss, test_accuracy = model.evaluate(params, x_test, y_test)
        record = {"epoch": epoch, "keep": exchange.keep(epoch), "lr": rate,
                  "loss": float(np.mean(losses)), "test_loss": test_loss,
                  "test_accuracy": test_accuracy, "steps": steps,
                  "dense_bytes": int(dense_total), "sent_bytes": int(sent_total)}
        record.update(exchange.epoch_stats() if hasattr(exchange, "epoch_stats") else {})
        record["seconds"] = time.perf_counter() - start
        if on_epoch is not None:
            state.epoch, state.step, state.record = epoch, steps - 1, record
            on_epoch(state)
            state.record = None
        result.history.append(record)
    return result
