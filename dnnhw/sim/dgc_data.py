"""Gradients from a real training run for the DGC benches: the CNN of
:mod:`dnnhw.golden.cnn` trained on the digits (:func:`dnnhw.workloads.digits`) with the
hardware's integer DGC rule, and what each worker's sparsifier saw and sent.

:func:`record_training` trains with :class:`~dnnhw.golden.cnn.FixedDgcExchange` and keeps,
for one tensor and every worker, each step's command and integer gradient, as the
exchange gave them to ``dgc_fixed.SparsifierState.step``, and what it returned. The
sparsifier bench replays one worker's steps into the RTL from reset (its state starts at
zero, like the golden's); the aggregator bench merges the K workers' sparse frames of each
step and applies them to the tensor's weights in fixed point.
"""

import dataclasses

import numpy as np

from dnnhw.golden import cnn
from dnnhw.workloads import digits


__all__ = ["Recorded", "record_training", "weights_fixed"]


@dataclasses.dataclass
class Recorded:
    """One tensor's steps: ``commands[k][s]`` and ``gradients[k][s]`` (int64) what worker
    k's sparsifier was given at step s, ``sent[k][s]`` its ``(indices, values, status)``;
    ``capacity``, ``grad_width``, ``state_width``, ``scale_bits`` (one integer unit is
    ``2 ** -scale_bits``), ``weights`` (the float weights before the first step)."""
    tensor: str
    capacity: int
    grad_width: int
    state_width: int
    scale_bits: int
    weights: np.ndarray
    commands: list
    gradients: list
    sent: list

    @property
    def workers(self):
        return len(self.commands)

    @property
    def steps(self):
        return len(self.commands[0])


class _Spy:
    """A ``SparsifierState`` that writes down every step it takes."""

    def __init__(self, state, log):
        self._state, self._log = state, log

    def step(self, command, gradient):
        out = self._state.step(command, gradient)
        self._log.append((command, np.array(gradient, dtype=np.int64), out))
        return out


class _Recording(cnn.FixedDgcExchange):
    def __init__(self, tensor, **kwargs):
        super().__init__(**kwargs)
        self.tensor = tensor

    def start(self, params, *, workers, rng):
        super().start(params, workers=workers, rng=rng)
        if self.tensor not in self.sizes:
            raise ValueError(f"tensor must be one of {', '.join(self.sizes)}, "
                             f"got {self.tensor!r}")
        self.logs = [[] for _ in range(workers)]
        for state, log in zip(self.state, self.logs):
            state[self.tensor] = _Spy(state[self.tensor], log)


def record_training(*, steps, tensor="conv2.w", workers=4, seed=0, keep=0.001,
                    clip=1.0, grad_width=16, state_width=24):
    """Train until ``steps`` steps of ``tensor`` are recorded (warm-up off, so every step
    runs at ``keep``; local clipping at ``clip`` thr_G, so the norm pass runs too) and
    return the :class:`Recorded` steps of every worker."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    model = cnn.CNN()
    exchange = _Recording(tensor, keep=keep, warmup=False, clip=clip,
                          grad_width=grad_width, state_width=state_width)
    params = model.init(np.random.default_rng(seed))   # train() copies them

    class _Enough(Exception):
        pass

    def on_step(state):
        if len(exchange.logs[0]) >= steps:
            raise _Enough

    try:
        # An epoch has at least one step: `steps` epochs are always enough (on_step ends
        # the training as soon as they are recorded).
        cnn.train(model, digits(), workers=workers, epochs=steps, exchange=exchange,
                  seed=seed, params=params, on_step=on_step)
    except _Enough:
        pass
    logs = [log[:steps] for log in exchange.logs]
    return Recorded(
        tensor=tensor, capacity=exchange.capacity[tensor], grad_width=grad_width,
        state_width=state_width, scale_bits=exchange.scale_bits[tensor],
        weights=params[tensor].reshape(-1).copy(),
        commands=[[c for c, _, _ in log] for log in logs],
        gradients=[[g for _, g, _ in log] for log in logs],
        sent=[[out for _, _, out in log] for log in logs])


def weights_fixed(weights, weight_width):
    """``weights`` (floats) as ``weight_width``-bit integers with a power-of-two scale:
    ``(ints, scale_bits)``, the scale leaving one bit of headroom over the peak."""
    peak = float(np.max(np.abs(weights))) or 1.0
    top = (1 << (weight_width - 1)) - 1
    scale_bits = int(np.floor(np.log2(top / 2 / peak)))
    ints = np.clip(np.rint(np.asarray(weights) * 2.0 ** scale_bits), -top, top)
    return ints.astype(np.int64), scale_bits
