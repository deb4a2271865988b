"""The streaming fixed-point FFT (``fft``): legal parameter ranges, written once for the
RTL, the fixed-point golden and the catalog. ``docs/fft.md`` says what each one means.
"""

import numbers

#: Points of a frame: powers of two, log2 in this range.
POINT_BITS = range(3, 13)
POINTS = tuple(1 << b for b in POINT_BITS)
#: Bits of a sample's real and imaginary parts (signed).
WIDTHS = range(8, 25)
#: Bits of a twiddle's real and imaginary parts (signed); F = twiddle_width - 2 fraction
#: bits, so W(0) = 2 ** F fits.
TWIDDLE_WIDTHS = range(8, 19)


def twiddle_fraction_bits(twiddle_width):
    """F: the twiddles are integers scaled by ``2 ** F``."""
    return twiddle_width - 2


def check_shifts(shifts, stages, name="shifts"):
    """``shifts`` (None: every stage halves; an int mask, bit ``s`` for stage ``s``; or a
    sequence of ``stages`` values 0 / 1) as a tuple of ints, stage 0 first. The errors
    name the parameter (``name``) and its legal values."""
    if shifts is None:
        return (1,) * stages
    if isinstance(shifts, numbers.Integral) and not isinstance(shifts, bool):
        if not 0 <= shifts < 1 << stages:
            raise ValueError(f"{name} must be in 0..{(1 << stages) - 1}, got "
                             f"{shifts}")
        return tuple((int(shifts) >> s) & 1 for s in range(stages))
    if isinstance(shifts, (str, bytes, bool)) or not hasattr(shifts, "__iter__"):
        raise TypeError(f"{name} must be None, an int mask in 0..{(1 << stages) - 1} or a "
                        f"sequence of {stages} values in 0..1, got "
                        f"{type(shifts).__name__} {shifts!r}")
    values = list(shifts)
    if len(values) != stages:
        raise ValueError(f"{name} must have log2(n) = {stages} values (one per stage), "
                         f"got {len(values)}")
    for s, value in enumerate(values):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):
            raise TypeError(f"{name}[{s}] must be an int, got {type(value).__name__} "
                            f"{value!r}")
        if value not in (0, 1):
            raise ValueError(f"{name}[{s}] must be in 0..1, got {value}")
    return tuple(int(value) for value in values)
