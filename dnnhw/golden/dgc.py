"""Golden model of Deep Gradient Compression's float algorithm, as the authors run it
(Lin et al., ICLR 2018; ``docs/dgc.md`` section 1, the contract).

Per data-parallel worker and per gradient tensor of n elements, one step
(:meth:`Worker.step`)::

    g    = clip_by_norm(g, clip_norm)        # local clipping, clip_norm = thr_G * K ** -0.5
    u    = m * u + g                         # momentum correction
    v    = v + u                             # local accumulation
    thr  = sampled_threshold(|v|, keep, sample_ratio, rng).threshold
    mask = |v| >= thr  (and |v| > 0)
    send encode(indices of mask, v[mask])
    v[mask] = 0; u[mask] = 0                 # momentum factor masking

and on the aggregate (:func:`aggregate`, :func:`sgd_step`): ``w -= lr * sum_k sparse(v_k)``,
plain SGD, the momentum being in the workers' ``u`` already.

Each trick can be switched off for the ablation: ``momentum_correction=False`` (the workers
accumulate the raw gradient, ``v += g``, and the momentum goes on the aggregate, as in
gradient dropping), ``factor_masking=False`` (``u`` is kept where ``v`` was sent),
``clip_norm=None`` (no clipping) and ``keep_ratio(epoch, warmup=False)`` (the final keep
ratio from the first epoch).

The sampled threshold (:func:`sampled_threshold`): ``k = max(1, ceil(n * keep))``; a
strided sample of |v| (``stride = max(1, round(1 / sample_ratio))``, a start drawn
uniformly in ``0 .. stride - 1``); ``k_s = max(1, ceil(len(sample) * keep))``; the
threshold is the smallest of the sample's top ``k_s``. Then up to ``MAX_ROUNDS`` rounds: with
``c`` the count of ``|v| >= thr``, if ``c > 1.3 k`` the threshold becomes the ``k``-th
largest ``|v|`` among the candidates and the rule stops; if ``c < 0.8 k`` it is multiplied
by 0.8 and the rule goes on (after the last round the threshold is the one multiplied
``MAX_ROUNDS`` times); otherwise it stops.

Two points the contract leaves open, settled here:

- **A tensor shorter than the stride.** The stride is capped at n (``stride = min(stride,
  n)``), so the start falls inside the tensor and the sample is never empty (for n <=
  ``1 / sample_ratio`` the sample is a single element).
- **Zeros are never sent.** The mask is ``|v| >= thr`` *and* ``|v| > 0``: a threshold of
  zero (fewer than k non-zero elements) would otherwise send every zero of the tensor. The
  fixed-point rule (``docs/dgc.md`` section 2) never selects a zero either (key 0 is below
  every threshold key).

**The wire format** (:func:`encode`, :func:`decode`): one worker's message for one tensor is
a 4-byte count, then ``count`` 4-byte indices, then ``count`` float32 values, all
little-endian: ``4 + 8 * count`` bytes (:func:`sparse_bytes`). The dense exchange sends
``4 n`` bytes (:func:`dense_bytes`). The compression ratio is dense bytes over sparse bytes,
summed over tensors, steps and workers.
"""

import math
import numbers
from typing import NamedTuple

import numpy as np

from ._checks import check_int


__all__ = [
    "KEEP", "SAMPLE_RATIO", "MAX_ROUNDS", "UPPER", "LOWER", "DECAY", "WARMUP",
    "Threshold", "Worker", "keep_ratio", "local_clip_norm", "clip_by_norm",
    "selection_target", "sample_indices", "sampled_threshold", "encode", "decode",
    "sparse_bytes", "dense_bytes", "aggregate", "sgd_step",
]

#: The authors' default final keep ratio (0.1 % of the elements sent, 99.9 % sparsity).
KEEP = 0.001
#: The authors' default sample ratio of the threshold estimate.
SAMPLE_RATIO = 0.01
#: Rounds of the threshold's count feedback.
MAX_ROUNDS = 10
#: Count feedback bounds: above ``UPPER * k`` take the exact top k; below ``LOWER * k``
#: multiply the threshold by ``DECAY``.
UPPER = 1.3
LOWER = 0.8
DECAY = 0.8
#: The warm-up's keep ratios, one per epoch from the first (sparsity 75 %, 93.75 %,
#: 98.4375 %, 99.6 %); from epoch ``len(WARMUP)`` on the final keep ratio (``KEEP``).
WARMUP = (0.25, 0.0625, 0.015625, 0.004)


def _check_real(name, value, *, lo, hi, lo_open=True, hi_open=True):
    """``value`` as a float after checking it is a real number in the interval between
    ``lo`` and ``hi`` (``hi=None``: unbounded), open or closed at each end."""
    if type(value) is not float and (isinstance(value, bool)
                                     or not isinstance(value, numbers.Real)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    low_ok = value > lo if lo_open else value >= lo
    high_ok = hi is None or (value < hi if hi_open else value <= hi)
    if not (low_ok and high_ok and math.isfinite(value)):
        interval = (("(" if lo_open else "[") + f"{lo:g}, "
                    + ("inf)" if hi is None else f"{hi:g}" + (")" if hi_open else "]")))
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
    return value


def _check_keep(keep):
    return _check_real("keep", keep, lo=0.0, hi=1.0)


def _check_sample_ratio(sample_ratio):
    return _check_real("sample_ratio", sample_ratio, lo=0.0, hi=1.0, hi_open=False)


def _check_momentum(momentum):
    return _check_real("momentum", momentum, lo=0.0, hi=1.0, lo_open=False)


def _check_rng(rng):
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def _as_vector(name, array):
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.floating) and not np.issubdtype(array.dtype,
                                                                         np.integer):
        raise TypeError(f"{name} must hold numbers, got dtype {array.dtype}")
    if array.size == 0:
        raise ValueError(f"{name} must have at least one element, got shape {array.shape}")
    return array.reshape(-1)


# -- schedule and clipping -----------------------------------------------------------------

def keep_ratio(epoch, *, warmup=True, keep=KEEP, schedule=WARMUP):
    """The keep ratio of epoch ``epoch`` (0-based): ``schedule[epoch]`` during the warm-up
    (``warmup=True`` and ``epoch < len(schedule)``), else ``keep``."""
    epoch = check_int("epoch", epoch, 0)
    keep = _check_keep(keep)
    for ratio in schedule:
        _check_real("schedule entries", ratio, lo=0.0, hi=1.0)
    if warmup and epoch < len(schedule):
        return float(schedule[epoch])
    return keep


def local_clip_norm(thr_g, workers):
    """The per-worker clipping norm for a global threshold ``thr_g``: ``thr_g * K ** -0.5``
    (the sum of K independent clipped gradients then has a norm of about ``thr_g``)."""
    thr_g = _check_real("thr_g", thr_g, lo=0.0, hi=None)
    workers = check_int("workers", workers, 1)
    return thr_g / math.sqrt(workers)


def clip_by_norm(g, clip_norm, *, eps=1e-6):
    """``g * min(1, clip_norm / (||g||_2 + eps))``, float64, the shape of ``g``."""
    clip_norm = _check_real("clip_norm", clip_norm, lo=0.0, hi=None)
    eps = _check_real("eps", eps, lo=0.0, hi=None, lo_open=False)
    g = np.asarray(g, dtype=np.float64)
    _as_vector("g", g)
    norm = float(np.sqrt(np.sum(g * g)))
    return g * min(1.0, clip_norm / (norm + eps))


# -- the threshold -------------------------------------------------------------------------

class Threshold(NamedTuple):
    """What :func:`sampled_threshold` found: ``threshold`` (send ``|v| >= threshold``),
    ``target`` (k), ``sample_target`` (k_s), ``sample_size``, ``selected`` (the count at
    ``threshold``, zeros excluded), ``rounds`` (count-feedback rounds run, 1..MAX_ROUNDS),
    ``exit`` (``"accept"``: the count was within bounds; ``"top-k"``: too many, the exact
    top k taken; ``"cap"``: still too few after the last round)."""
    threshold: float
    target: int
    sample_target: int
    sample_size: int
    selected: int
    rounds: int
    exit: str


def selection_target(n, keep):
    """``k = max(1, ceil(n * keep))``: the elements a step aims to send."""
    return _target(check_int("n", n, 1), _check_keep(keep))


def sample_indices(n, sample_ratio, start):
    """The strided sample's indices: ``start, start + stride, ...`` below ``n``, with
    ``stride = min(n, max(1, round(1 / sample_ratio)))``; ``start`` must be in
    ``0 .. stride - 1``."""
    n = check_int("n", n, 1)
    stride = _stride(n, _check_sample_ratio(sample_ratio))
    start = check_int("start", start, 0, stride - 1)
    return np.arange(start, n, stride)


def _stride(n, sample_ratio):
    return min(n, max(1, round(1.0 / sample_ratio)))


def _kth_largest(values, k):
    return float(np.partition(values, values.size - k)[values.size - k])


def sampled_threshold(abs_v, keep=KEEP, sample_ratio=SAMPLE_RATIO, rng=None, *,
                      start=None, rounds=MAX_ROUNDS):
    """The authors' threshold for the magnitudes ``abs_v`` (module docstring), a
    :class:`Threshold`.

    The sample's start is drawn from ``rng`` (a ``numpy.random.Generator``) unless
    ``start`` is given (then ``rng`` is not used). ``rounds`` is the cap of the count
    feedback (1..100).
    """
    abs_v = _as_vector("abs_v", abs_v).astype(np.float64)
    if abs_v.min() < 0 or not np.all(np.isfinite(abs_v)):
        raise ValueError("abs_v must hold finite magnitudes (>= 0)")
    keep = _check_keep(keep)
    sample_ratio = _check_sample_ratio(sample_ratio)
    rounds = check_int("rounds", rounds, 1, 100)
    stride = _stride(abs_v.size, sample_ratio)
    if start is None:
        start = int(_check_rng(rng).integers(stride))
    start = check_int("start", start, 0, stride - 1)
    return _threshold(abs_v, keep, stride, start, rounds)


def _target(n, keep):
    # round() first: 100 * 0.07 is 7.000000000000001 in floats, whose ceil is 8.
    return max(1, math.ceil(round(n * keep, 9)))


def _threshold(abs_v, keep, stride, start, rounds=MAX_ROUNDS):
    """:func:`sampled_threshold` on checked arguments."""
    k = _target(abs_v.size, keep)
    sample = abs_v[start::stride]
    k_s = _target(sample.size, keep)
    thr = _kth_largest(sample, k_s)
    for done in range(1, rounds + 1):
        candidates = abs_v[(abs_v >= thr) & (abs_v > 0)]
        count = candidates.size
        if count > UPPER * k:
            thr = _kth_largest(candidates, k)
            return Threshold(thr, k, k_s, sample.size, _count(abs_v, thr), done, "top-k")
        if count < LOWER * k:
            thr *= DECAY
            continue
        return Threshold(thr, k, k_s, sample.size, count, done, "accept")
    return Threshold(thr, k, k_s, sample.size, _count(abs_v, thr), rounds, "cap")


def _count(abs_v, thr):
    return int(np.count_nonzero((abs_v >= thr) & (abs_v > 0)))


# -- one worker ----------------------------------------------------------------------------

class Worker:
    """One worker's DGC state for one gradient tensor of ``n`` elements: ``u`` (momentum)
    and ``v`` (accumulation), float64 vectors, zero at first.

    ``last`` is the :class:`Threshold` of the latest :meth:`step`, ``steps`` the steps taken.
    """

    def __init__(self, n):
        self.n = check_int("n", n, 1)
        self.u = np.zeros(self.n)
        self.v = np.zeros(self.n)
        self.last = None
        self.steps = 0

    def step(self, g, *, momentum=0.9, keep=KEEP, rng=None, sample_ratio=SAMPLE_RATIO,
             clip_norm=None, momentum_correction=True, factor_masking=True, start=None):
        """One step with the local gradient ``g`` (any shape of ``n`` elements).

        Returns ``(indices, values)``: int64 ascending indices into the flattened tensor
        and the float64 accumulated values sent there (the caller rounds them to float32
        for the wire: :func:`encode`). ``momentum`` in [0, 1) (unused without momentum
        correction), ``keep`` in (0, 1), ``sample_ratio`` in (0, 1], ``clip_norm`` > 0 or
        None (no clipping); ``rng`` draws the sample's start (or pass ``start``).
        """
        g = _as_vector("g", g).astype(np.float64)
        if g.size != self.n:
            raise ValueError(f"g must have n = {self.n} elements, got {g.size}")
        if not np.all(np.isfinite(g)):
            raise ValueError("g must be finite (no NaN or infinity)")
        momentum = _check_momentum(momentum)
        keep = _check_keep(keep)
        sample_ratio = _check_sample_ratio(sample_ratio)
        if start is None:
            _check_rng(rng)
        if clip_norm is not None:
            g = clip_by_norm(g, clip_norm)
        if momentum_correction:
            self.u = momentum * self.u + g
            self.v = self.v + self.u
        else:
            self.v = self.v + g
        abs_v = np.abs(self.v)
        stride = _stride(self.n, sample_ratio)
        if start is None:
            start = int(rng.integers(stride))
        start = check_int("start", start, 0, stride - 1)
        self.last = _threshold(abs_v, keep, stride, start)
        indices = np.flatnonzero((abs_v >= self.last.threshold) & (abs_v > 0))
        values = self.v[indices].copy()
        self.v[indices] = 0.0
        if momentum_correction and factor_masking:
            self.u[indices] = 0.0
        self.steps += 1
        return indices, values


# -- the wire ------------------------------------------------------------------------------

def sparse_bytes(count):
    """Bytes of one sparse message of ``count`` elements: ``4 + 8 * count``."""
    return 4 + 8 * check_int("count", count, 0)


def dense_bytes(n):
    """Bytes of one dense float32 tensor of ``n`` elements: ``4 * n``."""
    return 4 * check_int("n", n, 1)


def encode(indices, values):
    """The wire bytes of one message: count (uint32), the indices (uint32), the values
    (float32), little-endian."""
    indices = np.asarray(indices).reshape(-1)
    values = np.asarray(values).reshape(-1)
    if indices.size != values.size:
        raise ValueError(f"indices and values must have the same length, got "
                         f"{indices.size} and {values.size}")
    if indices.size and not np.issubdtype(indices.dtype, np.integer):
        raise TypeError(f"indices must hold integers, got dtype {indices.dtype}")
    if indices.size and (indices.min() < 0 or indices.max() > 0xFFFFFFFF):
        raise ValueError("indices must be in 0..2**32 - 1")
    if indices.size > 0xFFFFFFFF:
        raise ValueError("count must fit 32 bits")
    return (np.array([indices.size], dtype="<u4").tobytes()
            + indices.astype("<u4").tobytes() + values.astype("<f4").tobytes())


def decode(data):
    """``(indices, values)`` (int64, float32) of one message; a ``ValueError`` when the
    length does not match its count."""
    data = bytes(data)
    if len(data) < 4:
        raise ValueError(f"data must hold at least the 4-byte count, got {len(data)} bytes")
    count = int(np.frombuffer(data[:4], dtype="<u4")[0])
    if len(data) != sparse_bytes(count):
        raise ValueError(f"data has {len(data)} bytes; a count of {count} needs "
                         f"{sparse_bytes(count)}")
    indices = np.frombuffer(data[4:4 + 4 * count], dtype="<u4").astype(np.int64)
    values = np.frombuffer(data[4 + 4 * count:], dtype="<f4").copy()
    return indices, values


# -- the aggregate -------------------------------------------------------------------------

def aggregate(n, messages):
    """The dense sum (float64, ``n`` elements) of the workers' sparse messages, each an
    ``(indices, values)`` pair or its wire bytes; an index ``>= n`` is an error."""
    n = check_int("n", n, 1)
    total = np.zeros(n)
    for k, message in enumerate(messages):
        if isinstance(message, (bytes, bytearray, memoryview)):
            message = decode(message)
        indices, values = (np.asarray(a).reshape(-1) for a in message)
        if indices.size != values.size:
            raise ValueError(f"message {k}: indices and values must have the same length, "
                             f"got {indices.size} and {values.size}")
        if indices.size and (indices.min() < 0 or indices.max() >= n):
            raise ValueError(f"message {k}: indices must be in 0..{n - 1}, got "
                             f"{indices.min()}..{indices.max()}")
        np.add.at(total, indices.astype(np.int64), values.astype(np.float64))
    return total


def sgd_step(weights, update, lr):
    """Plain SGD: ``weights - lr * update`` (a new array, the shape of ``weights``)."""
    lr = _check_real("lr", lr, lo=0.0, hi=None, lo_open=False)
    weights = np.asarray(weights)
    update = np.asarray(update)
    if update.size != weights.size:
        raise ValueError(f"update must have {weights.size} elements (the weights'), got "
                         f"{update.size}")
    return weights - lr * update.reshape(weights.shape)
