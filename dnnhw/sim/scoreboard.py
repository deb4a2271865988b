"""The scoreboard: every output item checked against the expected one as it arrives, through
a comparator, with one mismatch report for every bench.

:class:`Scoreboard`
    Holds the expected items; :meth:`~Scoreboard.check` sees each received item (fails at
    the first wrong or extra one, at its simulation time, so the waves show it; or
    collects mismatches with ``fail_fast=False``), :meth:`~Scoreboard.finish` checks the
    count and the comparator's run-level verdict.
:class:`Exact`
    Equality (integer cores: bit for bit).
:class:`Tolerance`
    Numbers within ``atol + rtol * |expected|`` element by element and, optionally, a
    signal-to-quantization-noise ratio over the whole run of at least ``min_sqnr_db``:
    for fixed-point approximations of a float reference (the FFT path).

A comparator is any object with ``compare(got, expected)`` (``None`` when they match,
else a short reason), ``finish()`` (``None`` or the reason the run as a whole fails) and
``summary()`` (a JSON-able dict of what it measured). Pure Python: no cocotb, so it is
tested on its own.
"""

import math


__all__ = ["Scoreboard", "Comparator", "Exact", "Tolerance", "MismatchError"]


class MismatchError(AssertionError):
    """An output item differs from the expected one, or the counts differ."""


class Comparator:
    """The comparator interface (and a base class)."""
    name = "comparator"

    def compare(self, got, expected):
        raise NotImplementedError

    def finish(self):
        return None

    def summary(self):
        return {"comparator": self.name}


class Exact(Comparator):
    """``got == expected``: packed integers, ints, lists, dicts."""
    name = "exact"

    def compare(self, got, expected):
        return None if got == expected else "differs"


def _numbers(value):
    if isinstance(value, dict):
        out = []
        for key in sorted(value):
            out.extend(_numbers(value[key]))
        return out
    if isinstance(value, (list, tuple)):
        out = []
        for v in value:
            out.extend(_numbers(v))
        return out
    if hasattr(value, "tolist"):          # NumPy arrays and scalars
        return _numbers(value.tolist())
    if isinstance(value, complex):
        return [value.real, value.imag]
    return [float(value)]


class Tolerance(Comparator):
    """Numbers equal within ``|got - expected| <= atol + rtol * |expected|`` each, and
    (if ``min_sqnr_db`` is given) ``10 log10(sum expected**2 / sum (got - expected)**2)``
    over the whole run at least ``min_sqnr_db``.

    ``decode(item)`` turns an item into its numbers (for example: unpack a payload and
    read its fields as signed fixed point); by default an item is a number, a sequence or
    a dict of them (complex numbers count as two).
    """
    name = "tolerance"

    def __init__(self, *, atol=0.0, rtol=0.0, min_sqnr_db=None, decode=None):
        for knob, value in (("atol", atol), ("rtol", rtol)):
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{knob} must be a number >= 0, got {value!r}")
        if min_sqnr_db is not None and not isinstance(min_sqnr_db, (int, float)):
            raise ValueError(f"min_sqnr_db must be a number (dB) or None, got {min_sqnr_db!r}")
        self.atol, self.rtol, self.min_sqnr_db = float(atol), float(rtol), min_sqnr_db
        self.decode = decode or (lambda item: item)
        self.signal = 0.0
        self.noise = 0.0
        self.max_abs_error = 0.0
        self.items = 0

    def compare(self, got, expected):
        g, e = _numbers(self.decode(got)), _numbers(self.decode(expected))
        if len(g) != len(e):
            return f"{len(g)} numbers, expected {len(e)}"
        self.items += 1
        worst = None
        for k, (a, b) in enumerate(zip(g, e)):
            err = abs(a - b)
            self.signal += b * b
            self.noise += err * err
            self.max_abs_error = max(self.max_abs_error, err)
            if err > self.atol + self.rtol * abs(b) and worst is None:
                worst = f"element {k}: {a:g} vs {b:g} (|error| {err:g} > " \
                        f"{self.atol:g} + {self.rtol:g} * {abs(b):g})"
        return worst

    @property
    def sqnr_db(self):
        if self.noise == 0:
            return math.inf
        if self.signal == 0:
            return -math.inf
        return 10 * math.log10(self.signal / self.noise)

    def finish(self):
        if self.min_sqnr_db is not None and self.sqnr_db < self.min_sqnr_db:
            return (f"SQNR {self.sqnr_db:.2f} dB over {self.items} items is below "
                    f"{self.min_sqnr_db:g} dB")
        return None

    def summary(self):
        sqnr = self.sqnr_db
        return {"comparator": self.name, "atol": self.atol, "rtol": self.rtol,
                "items": self.items, "max_abs_error": self.max_abs_error,
                "sqnr_db": None if math.isinf(sqnr) else sqnr,
                "min_sqnr_db": self.min_sqnr_db}


class Scoreboard:
    """Expected output items and the check of the received ones.

    Parameters
    ----------
    expected : sequence
        The items the DUT must produce, in order.
    comparator : comparator, default :class:`Exact`
    label : str
        Names the run in every message.
    noun : str
        What an item is called in messages ("word", "window", "beat").
    render : callable
        ``render(item)`` for the report (e.g. unpack a payload).
    context : callable, optional
        ``context(k, got)`` -> ``(text, lines)``: what output item ``k`` (received as
        ``got``) came from, put in the report's first line, and extra lines after
        got/expected.
    fail_fast : bool
        Raise :class:`MismatchError` at the first wrong or extra item (default); else
        collect them in ``mismatches`` (``(index, report)``) and let the caller decide.
    """

    def __init__(self, expected, *, comparator=None, label="", noun="beat", render=repr,
                 context=None, fail_fast=True):
        self.expected = list(expected)
        self.comparator = comparator or Exact()
        self.label = label
        self.noun = noun
        self.render = render
        self.context = context
        self.fail_fast = fail_fast
        self.received = 0
        self.mismatches = []

    @property
    def done(self):
        return self.received >= len(self.expected)

    def _fail(self, k, text):
        self.mismatches.append((k, text))
        if self.fail_fast:
            raise MismatchError(text)

    def report(self, k, got, where=None, reason=None):
        """The one mismatch report: which item, where it came from, got vs expected."""
        where = f"{self.label}, cycle {where}" if where is not None else self.label
        text, lines = self.context(k, got) if self.context is not None else ("", [])
        head = f"{where}: output {self.noun} {k} differs" + (f" ({text})" if text else "")
        if reason and reason != "differs":
            head += f": {reason}"
        return "\n".join([head, f"  got      {self.render(got)}",
                          f"  expected {self.render(self.expected[k])}", *lines])

    def check(self, item, cycle=None):
        """One received item (the next in order)."""
        k = self.received
        self.received += 1
        if k >= len(self.expected):
            where = f"{self.label}, cycle {cycle}" if cycle is not None else self.label
            self._fail(k, f"{where}: extra output {self.noun} {k} after the expected "
                          f"{len(self.expected)}: {self.render(item)}")
            return False
        reason = self.comparator.compare(item, self.expected[k])
        if reason is not None:
            self._fail(k, self.report(k, item, cycle, reason))
            return False
        return True

    def finish(self):
        """After the run: every expected item arrived, no extra one, the comparator's
        run-level verdict holds. Raises :class:`MismatchError` (whatever ``fail_fast``)."""
        if self.mismatches:
            raise MismatchError(self.mismatches[0][1])
        n = len(self.expected)
        if self.received > n:
            raise MismatchError(f"{self.label}: {self.received - n} extra output "
                                f"{self.noun}(s) after the expected {n}")
        if self.received < n:
            raise MismatchError(f"{self.label}: {self.received} output {self.noun}s, "
                                f"expected {n}")
        verdict = self.comparator.finish()
        if verdict is not None:
            raise MismatchError(f"{self.label}: {verdict}")
