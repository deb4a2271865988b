"""Parameter checks shared by the rtl components: messages name the parameter and the
legal range."""


def check_int(name, value, lo, hi):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in {lo}..{hi}, got {value}")
    return value


def check_in(name, value, legal):
    """``value`` checked against ``legal``, a ``range`` of integers."""
    return check_int(name, value, legal.start, legal.stop - 1)


def check_bool(name, value):
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {value!r}")
