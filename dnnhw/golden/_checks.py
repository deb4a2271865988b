"""Argument checks shared by the golden models (and the benchmarks built on them): the
messages name the argument and its legal range."""

import numbers


def check_int(name, value, lo=None, hi=None):
    """``value`` as an int after checking it is one (not a bool) and in ``lo..hi``
    (``hi=None``: at least ``lo``; both None: any int)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    value = int(value)
    if lo is not None and hi is not None and not lo <= value <= hi:
        raise ValueError(f"{name} must be in {lo}..{hi}, got {value}")
    if lo is not None and hi is None and value < lo:
        raise ValueError(f"{name} must be >= {lo}, got {value}")
    return value
