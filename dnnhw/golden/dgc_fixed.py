"""Golden model of the fixed-point Deep Gradient Compression (Lin et al., ICLR 2018) that
``dnnhw.rtl.dgc_sparsifier`` and ``dnnhw.rtl.dgc_aggregator`` compute, bit for bit.

The contract is section 2 of ``docs/dgc.md``; the constants are in :mod:`dnnhw.spec.dgc`.
:class:`SparsifierState` runs one worker's steps 1-6 on one tensor, :func:`aggregate` and
:func:`apply_update` the aggregator, :func:`plan_command` the host's side; the other
functions are the steps' pieces (:func:`clip_shift`, :func:`key`, :func:`threshold_key`).

Readings of the contract
------------------------
Where ``docs/dgc.md`` leaves a choice, this module (and so the RTL) takes the reading
that is simplest in hardware:

1. *Command check.* Every field is checked whatever ``clip`` says (``clip_limit`` too: it
   is a register of ``2 * G + log2(capacity)`` bits); ``sample_start`` is legal in
   ``0 .. min(stride, length) - 1``; ``sample_target`` in ``1 ..`` :func:`sample_size`.
   Fields are ints (a bool ``clip`` is a TypeError). A bad command raises ValueError
   naming the first bad field and changes no state (the hardware's ``command`` error).
2. *Gradient.* Any value of the port's type, ``-2**(G-1) .. 2**(G-1) - 1``.
3. *State.* ``u`` and ``v`` hold values of the symmetric ``S``-bit range (all the hardware
   ever writes); :meth:`SparsifierState.step` checks this of the public arrays.
4. *Update.* ``v`` adds the *updated* ``u`` (section 1: ``u = m u + g; v = v + u``).
5. *Histograms* count elements ``0 .. n - 1`` only, the sample those of them with
   ``i >= start`` and ``(i - start) % stride == 0``.
6. *Feedback.* Its direction is chosen once from ``c(b0)``; ``rounds`` counts moves of
   ``b``; a step may select nothing (then :meth:`SparsifierState.step` returns empty
   arrays, while the hardware sends its one beat ``(0, 0, last)``, which adds nothing in
   the aggregator; :func:`sparse_bits` counts that beat).
7. *Aggregate.* Values are of the port's type, ``-2**(S-1) .. 2**(S-1) - 1``; an index
   must fit the index field (``0 .. capacity - 1``, else ValueError); an index ``>= n``
   sets the error and adds nothing; repeated indices add up, within a worker's list too.
8. *Update of the weights.* Weights in may use the whole signed ``W``-bit range, the
   result is clamped symmetrically; ``agg`` may be longer than the weights (the first
   ``len(weights)`` entries are used, so :func:`aggregate`'s result passes as it is).
9. *Host.* :func:`plan_command` rounds with Python's ``round`` (half to even) and takes
   ``ceil(round(n * keep, 9))`` (float noise off, so k = 7 for 100 * 0.07) as the float
   model does, and caps the stride at ``length`` as the float model does.
   :func:`clip_limit_for` floors the exact square of the float's value (fractions).
"""

import math
import numbers
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from dnnhw.spec.dgc import (
    ADAPT_ROUNDS, GRAD_WIDTHS, KEY_MANTISSA_BITS, LOWER_BOUND, LR_FRAC,
    MAX_CLIP_SHIFT, MOMENTUM_FRAC, REGISTER_BITS, STATE_WIDTHS, STRIDE_BITS, UPPER_BOUND,
    WEIGHT_WIDTHS, WORKERS, capacity_bits, key_count,
)

from ._checks import check_int


__all__ = ["Command", "Status", "SparsifierState", "sample_size", "plan_command",
           "clip_limit_for", "saturate", "key", "clip_shift", "threshold_key", "aggregate",
           "apply_update", "sparse_bits"]

#: The largest value of the momentum and learning-rate registers (unsigned).
REGISTER_MAX = (1 << REGISTER_BITS) - 1
#: The largest |agg| of a legal aggregator: K values of S bits (so lr_q * agg fits int64).
AGG_MAX = WORKERS.stop - 1 << STATE_WIDTHS.stop - 2


def _in_range(name, value, legal):
    return check_int(name, value, legal.start, legal.stop - 1)


def _int_array(name, values, lo=None, hi=None, ndim=None):
    """``values`` as an int64 array after checking its dtype, ``ndim`` and ``lo..hi``."""
    array = np.asarray(values)
    if array.size == 0 and np.issubdtype(array.dtype, np.number):
        array = array.astype(np.int64)      # np.asarray([]) is float64
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, got dtype {array.dtype}")
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got shape {array.shape}")
    if array.size and ((lo is not None and array.min() < lo)
                       or (hi is not None and array.max() > hi)):
        legal = f">= {lo}" if hi is None else f"in {lo}..{hi}"
        raise ValueError(f"{name} must hold values {legal}, "
                         f"got {array.min()}..{array.max()}")
    return array.astype(np.int64)


def _real(name, value, interval, inside):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if not inside(float(value)):
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
    return float(value)


def _round_shift(x, s):
    """``x / 2**s`` rounded half up: ``(x + 2**(s-1)) >> s`` (``x`` itself when s = 0)."""
    return (x + (1 << (s - 1))) >> s if s > 0 else x


def sample_size(length, start, stride):
    """Elements ``start, start + stride, ...`` below ``length`` (0 when start >= length)."""
    length = check_int("length", length, 1)
    start = check_int("start", start, 0)
    stride = check_int("stride", stride, 1)
    return max(0, -(-(length - start) // stride))


@dataclass(frozen=True)
class Command:
    """One step's command (``docs/dgc.md`` section 2); :meth:`check` says if it is legal."""
    length: int
    momentum: int
    clip: int
    clip_limit: int
    sample_start: int
    sample_stride: int
    target: int
    sample_target: int

    @property
    def sample_size(self):
        """Elements of the step's sample."""
        return sample_size(self.length, self.sample_start, self.sample_stride)

    def check(self, *, capacity, grad_width):
        """Raise ValueError (TypeError for a non-int) naming the first field out of its
        legal range: the hardware's ``command`` error rule."""
        bits = capacity_bits(capacity)
        grad_width = _in_range("grad_width", grad_width, GRAD_WIDTHS)
        length = check_int("length", self.length, 1, capacity)
        check_int("momentum", self.momentum, 0, REGISTER_MAX)
        check_int("clip", self.clip, 0, 1)
        check_int("clip_limit", self.clip_limit, 0, (1 << 2 * grad_width + bits) - 1)
        stride = check_int("sample_stride", self.sample_stride, 1, (1 << STRIDE_BITS) - 1)
        start = check_int("sample_start", self.sample_start, 0, min(stride, length) - 1)
        check_int("target", self.target, 1, length)
        check_int("sample_target", self.sample_target, 1, sample_size(length, start, stride))


@dataclass(frozen=True)
class Status:
    """A step's status beat: ``selected = c(b)``, ``threshold = b``, ``rounds``, ``shift = s``."""
    selected: int
    threshold: int
    rounds: int
    shift: int


def plan_command(length, *, momentum, keep, sample_ratio=0.01, clip_limit=None, rng):
    """The host's command for ``length`` (>= 1) elements from the float parameters.

    ``momentum`` m in [0, 1) gives ``round(m * 2**MOMENTUM_FRAC)`` (at most 2**16 - 1);
    ``keep`` in (0, 1) the targets ``max(1, ceil(size * keep))``; ``sample_ratio`` in
    (0, 1] the stride ``max(1, round(1 / sample_ratio))``, at most ``length`` (as the
    float model caps it: a short tensor's sample is one element at a uniform start) and
    the register's largest; ``rng`` (a numpy Generator) the start in ``0 .. stride - 1``;
    ``clip_limit`` (:func:`clip_limit_for`) None means no clipping.
    """
    length = check_int("length", length, 1)
    momentum = _real("momentum", momentum, "[0, 1)", lambda x: 0 <= x < 1)
    keep = _real("keep", keep, "(0, 1)", lambda x: 0 < x < 1)
    sample_ratio = _real("sample_ratio", sample_ratio, "(0, 1]", lambda x: 0 < x <= 1)
    if clip_limit is not None:
        clip_limit = check_int("clip_limit", clip_limit, 0)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    stride = min(max(1, round(1 / sample_ratio)), length, (1 << STRIDE_BITS) - 1)
    start = int(rng.integers(stride))
    size = sample_size(length, start, stride)
    return Command(
        length=length, momentum=min(round(momentum * (1 << MOMENTUM_FRAC)), REGISTER_MAX),
        clip=int(clip_limit is not None), clip_limit=clip_limit or 0,
        sample_start=start, sample_stride=stride,
        target=min(_ceil_share(length, keep), length),
        sample_target=min(_ceil_share(size, keep), size))


def _ceil_share(n, keep):
    # round() first, as the float model does: 100 * 0.07 is 7.000000000000001 in floats.
    return max(1, math.ceil(round(n * keep, 9)))


def clip_limit_for(norm, scale_bits):
    """The sum-of-squares bound ``floor((norm * 2**scale_bits) ** 2)`` of an L2-norm limit
    ``norm`` (a float >= 0) when an integer unit is ``2**-scale_bits``; exact."""
    norm = _real("norm", norm, "[0, inf)", lambda x: 0 <= x < math.inf)
    scale_bits = check_int("scale_bits", scale_bits, 0)
    return math.floor((Fraction(norm) * (1 << scale_bits)) ** 2)


def saturate(x, width):
    """``x`` (integers) clamped to the symmetric ``[-(2**(width-1) - 1), 2**(width-1) - 1]``,
    int64; ``width`` in 2..63."""
    width = check_int("width", width, 2, 63)
    top = (1 << width - 1) - 1
    return np.clip(_int_array("x", x), -top, top)


def _key(a):
    # The exponent frexp gives a positive integer below 2**53 is exactly its bit length.
    e = np.maximum(np.frexp(a.astype(np.float64))[1].astype(np.int64) - 1, 0)
    f = ((a << KEY_MANTISSA_BITS) >> e) & ((1 << KEY_MANTISSA_BITS) - 1)
    return np.where(a == 0, 0, 1 + (e << KEY_MANTISSA_BITS) + f).astype(np.int64)


def key(magnitude, state_width):
    """The histogram key (step 3) of each magnitude in ``0 .. 2**(state_width-1) - 1``:
    0 for 0, else ``1 + e * 2**KEY_MANTISSA_BITS + f``, int64, the input's shape."""
    state_width = _in_range("state_width", state_width, STATE_WIDTHS)
    return _key(_int_array("magnitude", magnitude, 0, (1 << state_width - 1) - 1))


def _sum_squares(g):
    top = max(-int(g.min()), int(g.max())) if g.size else 0
    if top * top * g.size < 1 << 63:     # then no partial sum overflows int64
        return int(np.dot(g, g))
    return sum(x * x for x in g.tolist())


def clip_shift(gradient, clip_limit):
    """Step 1's ``s``: the smallest in ``0..MAX_CLIP_SHIFT`` with ``sum g**2 <= clip_limit *
    4**s`` (the sum exact), else ``MAX_CLIP_SHIFT``."""
    g = _int_array("gradient", gradient, ndim=1)
    clip_limit = check_int("clip_limit", clip_limit, 0)
    sumsq = _sum_squares(g)
    return next((s for s in range(MAX_CLIP_SHIFT + 1) if sumsq <= clip_limit << 2 * s),
                MAX_CLIP_SHIFT)


def threshold_key(h_all, h_sample, *, target, sample_target):
    """Step 5: ``(b, rounds)``, the threshold key and the feedback's moves.

    ``h_all``, ``h_sample`` are ``H_all``, ``H_s`` (counts >= 0 a key, the same length, at
    least 2); ``target`` k in ``1 .. sum(h_all)``, ``sample_target`` k_s in
    ``1 .. sum(h_sample)``. ``b`` is in ``1 .. len(h_all) - 1``.
    """
    h_all = _int_array("h_all", h_all, lo=0, ndim=1)
    if len(h_all) < 2:
        raise ValueError(f"h_all must have at least 2 keys, got {len(h_all)}")
    h_sample = _int_array("h_sample", h_sample, lo=0, ndim=1)
    if h_sample.shape != h_all.shape:
        raise ValueError(f"h_sample must have {len(h_all)} keys like h_all, "
                         f"got {len(h_sample)}")
    k = check_int("target", target, 1, int(h_all.sum()))
    k_s = check_int("sample_target", sample_target, 1, int(h_sample.sum()))
    c = np.cumsum(h_all[::-1])[::-1].tolist()         # c[b]: elements with a key >= b
    cs = np.cumsum(h_sample[::-1])[::-1].tolist()
    b = max((j for j in range(1, len(c)) if cs[j] >= k_s), default=1)

    def above(j):
        return c[j] * UPPER_BOUND[1] > UPPER_BOUND[0] * k

    def below(j):
        return c[j] * LOWER_BOUND[1] < LOWER_BOUND[0] * k

    rounds = 0
    if above(b):
        while rounds < ADAPT_ROUNDS and b < len(c) - 1 and above(b):
            b, rounds = b + 1, rounds + 1
    elif below(b):
        while rounds < ADAPT_ROUNDS and b > 1 and below(b):
            b, rounds = b - 1, rounds + 1
    return b, rounds


class SparsifierState:
    """``u`` and ``v`` of one tensor (``capacity`` elements, int64), both zero at first.

    ``capacity`` is a power of two in ``2**CAPACITY_BITS``, ``grad_width`` G in
    ``GRAD_WIDTHS``, ``state_width`` S in ``STATE_WIDTHS``. ``u``, ``v`` are public
    (symmetric S-bit values); ``last_h_all``, ``last_h_sample`` are ``H_all`` and ``H_s``
    of the last step (int64, ``key_count(S)`` entries; None before the first).
    """

    def __init__(self, *, capacity, grad_width, state_width):
        self.capacity_bits = capacity_bits(capacity)
        self.capacity = int(capacity)
        self.grad_width = _in_range("grad_width", grad_width, GRAD_WIDTHS)
        self.state_width = _in_range("state_width", state_width, STATE_WIDTHS)
        self.key_count = key_count(self.state_width)
        self.u = np.zeros(self.capacity, dtype=np.int64)
        self.v = np.zeros(self.capacity, dtype=np.int64)
        self.last_h_all = self.last_h_sample = None

    def _state(self, name):
        array = getattr(self, name)
        if not isinstance(array, np.ndarray) or array.dtype != np.int64 \
                or array.shape != (self.capacity,):
            raise TypeError(f"{name} must be an int64 array of {self.capacity} elements")
        top = (1 << self.state_width - 1) - 1
        return _int_array(name, array, -top, top)

    def step(self, command, gradient):
        """Run steps 1-6 on elements ``0 .. command.length - 1`` (the others keep their state).

        Returns
        -------
        (ndarray, ndarray, Status)
            The selected indices (ascending) and their values of ``v`` before masking,
            both int64, and the step's status.
        """
        if not isinstance(command, Command):
            raise TypeError(f"command must be a Command, got {type(command).__name__}")
        command.check(capacity=self.capacity, grad_width=self.grad_width)
        n, half = command.length, 1 << self.grad_width - 1
        g = _int_array("gradient", gradient, -half, half - 1, ndim=1)
        if len(g) != n:
            raise ValueError(f"gradient must have length {n} (the command's), got {len(g)}")
        u, v = self._state("u"), self._state("v")
        shift = clip_shift(g, command.clip_limit) if command.clip else 0
        g = _round_shift(g, shift)
        mu = _round_shift(int(command.momentum) * u[:n], MOMENTUM_FRAC)
        u_n = saturate(mu + g, self.state_width)
        v_n = saturate(v[:n] + u_n, self.state_width)
        keys = _key(np.abs(v_n))
        h_all = np.bincount(keys, minlength=self.key_count).astype(np.int64)
        h_sample = np.bincount(keys[command.sample_start::command.sample_stride],
                               minlength=self.key_count).astype(np.int64)
        b, rounds = threshold_key(h_all, h_sample, target=command.target,
                                  sample_target=command.sample_target)
        chosen = keys >= b
        indices = np.flatnonzero(chosen).astype(np.int64)
        values = v_n[indices]
        u_n[chosen] = 0         # momentum factor masking
        v_n[chosen] = 0
        self.u[:n], self.v[:n] = u_n, v_n
        self.last_h_all, self.last_h_sample = h_all, h_sample
        return indices, values, Status(len(indices), b, rounds, shift)


def aggregate(length, sparse, *, capacity, value_width, workers):
    """The aggregator's dense sum: ``(agg, error)``.

    ``sparse`` holds one ``(indices, values)`` pair a worker (``workers`` in ``WORKERS``),
    indices in ``0 .. capacity - 1``, values signed ``value_width`` bits. ``agg`` is int64,
    ``capacity`` entries, zero at and past ``length`` (``1 .. capacity``); ``error`` says
    an index was ``>= length`` (such entries add nothing).
    """
    capacity_bits(capacity)
    length = check_int("length", length, 1, capacity)
    value_width = _in_range("value_width", value_width, STATE_WIDTHS)
    workers = _in_range("workers", workers, WORKERS)
    if isinstance(sparse, (str, bytes)) or not hasattr(sparse, "__len__") \
            or len(sparse) != workers:
        raise ValueError(f"sparse must hold {workers} (indices, values) pairs, one a worker")
    agg, error, half = np.zeros(capacity, dtype=np.int64), False, 1 << value_width - 1
    for k, pair in enumerate(sparse):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"sparse[{k}] must be an (indices, values) pair")
        indices = _int_array(f"sparse[{k}] indices", pair[0], 0, capacity - 1, ndim=1)
        values = _int_array(f"sparse[{k}] values", pair[1], -half, half - 1, ndim=1)
        if len(indices) != len(values):
            raise ValueError(f"sparse[{k}] has {len(indices)} indices and "
                             f"{len(values)} values")
        inside = indices < length
        error = error or not inside.all()
        np.add.at(agg, indices[inside], values[inside])
    return agg, bool(error)


def apply_update(weights, agg, *, lr_q, weight_width):
    """``satW(w - ((lr_q * agg + 2**(LR_FRAC-1)) >> LR_FRAC))``, int64.

    ``weights`` are signed ``weight_width`` (in ``WEIGHT_WIDTHS``) bits; ``agg`` has at
    least ``len(weights)`` entries in ``-AGG_MAX .. AGG_MAX`` (the first are used);
    ``lr_q`` in ``0 .. 2**16 - 1``.
    """
    weight_width = _in_range("weight_width", weight_width, WEIGHT_WIDTHS)
    half = 1 << weight_width - 1
    w = _int_array("weights", weights, -half, half - 1, ndim=1)
    agg = _int_array("agg", agg, -AGG_MAX, AGG_MAX, ndim=1)
    if len(agg) < len(w):
        raise ValueError(f"agg must have at least {len(w)} entries (one a weight), "
                         f"got {len(agg)}")
    lr_q = check_int("lr_q", lr_q, 0, REGISTER_MAX)
    return saturate(w - _round_shift(lr_q * agg[:len(w)], LR_FRAC), weight_width)


def sparse_bits(count, *, capacity, state_width):
    """Bits of a step's sparse stream for ``count`` (``0 .. capacity``) selected: index and
    value a beat, ``max(count, 1)`` beats (a step selecting nothing sends one)."""
    bits = capacity_bits(capacity)
    state_width = _in_range("state_width", state_width, STATE_WIDTHS)
    count = check_int("count", count, 0, capacity)
    return max(count, 1) * (bits + state_width)
