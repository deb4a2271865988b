"""Stall patterns: when a stream end holds back, as generators (the idea of
cocotbext-axi's pause generators).

A pattern yields one ``bool`` per decision, ``True`` meaning *stall*: a source
(:class:`~dnnhw.sim.streams.StreamSource`) keeps ``valid`` low that cycle, a sink
(:class:`~dnnhw.sim.streams.StreamSink`) keeps ``ready`` low. A sink asks every cycle; a
source asks only in cycles where it could raise ``valid`` (it holds no beat and has one
queued), so a source's pattern describes the gaps before its beats and the stream rule
(valid holds until the transfer) is never at stake.

Patterns, by name and arguments (what a testbench config names, see :func:`stall_pattern`):

``full``
    Never stall.
``random`` (``probability``)
    Stall with ``probability`` in [0, 1), independently each time. This is what the
    benches' ``idle`` and ``backpressure`` knobs have always meant, drawing from the same
    seeded generator in the same order, so their figures do not change. A probability of 0
    draws nothing.
``bursts`` (``go``, ``stall``)
    Alternating runs of going and stalling, starting with a go run; run lengths uniform in
    ``1 .. 2*go - 1`` and ``1 .. 2*stall - 1`` (means ``go`` and ``stall``).
``periodic`` (``go``, ``stall``)
    ``go`` cycles going, then ``stall`` cycles stalled, repeated; no randomness.
``every`` (``n``)
    Go only every ``n``-th time (``n - 1`` stalls, then one go): a sink that is ready
    only every n-th cycle, a source that offers a beat only every n-th cycle.

Specs: a name (``"full"``), a dict (``{"name": "bursts", "go": 8, "stall": 4}``), a
number (a ``random`` probability) or a :class:`StallPattern`. Random patterns draw from the
``random.Random`` the stream end passes in (seeded per run), nothing else.

Imports nothing from cocotb: the Amaranth-simulator tests use the same patterns.
"""

import itertools
import random as _random


__all__ = ["StallPattern", "stall_pattern", "PATTERNS"]


def _int_at_least(pattern, name, value, low):
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"stall pattern {pattern!r}: {name} must be an integer >= {low}, "
                         f"got {value!r}")
    return value


def _probability(pattern, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"stall pattern {pattern!r}: probability must be a number in "
                         f"[0, 1), got {value!r}")
    return float(value)


#: name -> (argument names, their defaults)
PATTERNS = {
    "full": {},
    "random": {"probability": 0.3},
    "bursts": {"go": 8, "stall": 8},
    "periodic": {"go": 1, "stall": 1},
    "every": {"n": 4},
}


class StallPattern:
    """A named stall pattern with its arguments; :meth:`iterate` makes the generator.

    Members
    -------
    name : str
        One of :data:`PATTERNS`.
    args : dict
        The pattern's arguments, validated (defaults filled in).
    rate : float
        The mean fraction of decisions that go (do not stall): ``1 - probability``,
        ``go / (go + stall)``, ``1 / n``; what a cycle budget divides by.
    stall_fraction : float
        The mean fraction that stalls (``probability`` exactly for ``random``).
    """

    def __init__(self, name, **args):
        if name not in PATTERNS:
            raise ValueError(f"unknown stall pattern {name!r}; known: {', '.join(PATTERNS)}")
        unknown = sorted(set(args) - set(PATTERNS[name]))
        if unknown:
            raise ValueError(f"stall pattern {name!r} takes "
                             f"{', '.join(PATTERNS[name]) or 'no arguments'}; "
                             f"got {', '.join(unknown)}")
        full = {**PATTERNS[name], **args}
        if name == "random":
            full["probability"] = _probability(name, full["probability"])
        elif name in ("bursts", "periodic"):
            _int_at_least(name, "go", full["go"], 1)
            _int_at_least(name, "stall", full["stall"], 0)
        elif name == "every":
            _int_at_least(name, "n", full["n"], 1)
        self.name = name
        self.args = full

    @property
    def rate(self):
        a = self.args
        if self.name == "random":
            return 1.0 - a["probability"]
        if self.name in ("bursts", "periodic"):
            return a["go"] / (a["go"] + a["stall"])
        if self.name == "every":
            return 1.0 / a["n"]
        return 1.0

    @property
    def stall_fraction(self):
        """The mean fraction of decisions that stall (a ``random`` pattern's
        probability, exactly)."""
        a = self.args
        if self.name == "random":
            return a["probability"]
        if self.name in ("bursts", "periodic"):
            return a["stall"] / (a["go"] + a["stall"])
        if self.name == "every":
            return (a["n"] - 1) / a["n"]
        return 0.0

    @property
    def stalls(self):
        """Whether the pattern ever stalls."""
        return self.rate < 1.0

    def iterate(self, rng=None):
        """A fresh (infinite) generator of stall decisions; random patterns draw from
        ``rng`` (a ``random.Random``; a new one seeded 0 if ``None``)."""
        a = self.args
        if not self.stalls:
            return itertools.repeat(False)
        if rng is None:
            rng = _random.Random(0)
        if self.name == "random":
            return _random_stalls(rng.random, a["probability"])
        if self.name == "bursts":
            return _bursts(rng.randint, a["go"], a["stall"])
        if self.name == "periodic":
            return itertools.cycle([False] * a["go"] + [True] * a["stall"])
        return itertools.cycle([True] * (a["n"] - 1) + [False])   # every

    def to_spec(self):
        """The JSON-able spec that :func:`stall_pattern` turns back into this pattern."""
        return {"name": self.name, **self.args}

    def __str__(self):
        if not self.args:
            return self.name
        return f"{self.name}({', '.join(f'{k}={v:g}' for k, v in self.args.items())})"

    __repr__ = __str__

    def __eq__(self, other):
        return isinstance(other, StallPattern) and self.to_spec() == other.to_spec()

    def __hash__(self):
        return hash(str(self))


def _random_stalls(draw, probability):
    while True:
        yield draw() < probability


def _bursts(randint, go, stall):
    while True:
        for _ in range(randint(1, 2 * go - 1)):
            yield False
        if stall:
            for _ in range(randint(1, 2 * stall - 1)):
                yield True


def stall_pattern(spec):
    """A :class:`StallPattern` from a spec: ``None`` or ``"full"`` (never stall), a
    pattern name (default arguments), a dict ``{"name": ..., **args}``, a number (the
    probability of a ``random`` pattern; 0 is ``full``) or a :class:`StallPattern`."""
    if spec is None:
        return StallPattern("full")
    if isinstance(spec, StallPattern):
        return spec
    if isinstance(spec, str):
        return StallPattern(spec)
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return StallPattern("random", probability=spec) if spec else StallPattern("full")
    if isinstance(spec, dict):
        if "name" not in spec:
            raise ValueError(f"a stall pattern spec needs a 'name' ({', '.join(PATTERNS)}), "
                             f"got {spec!r}")
        args = {k: v for k, v in spec.items() if k != "name"}
        return StallPattern(spec["name"], **args)
    raise TypeError(f"a stall pattern is a name, a dict with 'name', a probability or a "
                    f"StallPattern, got {spec!r}")
