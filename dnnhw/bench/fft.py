"""The FFT's SQNR study: the golden model (:func:`dnnhw.golden.fft_fixed.fft`) against
the float transform at every legal width, on the testbench's data
(:mod:`dnnhw.sim.fft_data`). The main job runs it as the ``fft`` core's analysis; the
report's ``fft-sqnr`` section renders it.
"""

import numpy as np

from ..golden.fft_fixed import fft as golden_fft
from ..sim.fft_data import (IMAGES, full_scale_frames, image_frames, random_frames,
                            reference, sqnr_db)
from ..spec.fft import TWIDDLE_WIDTHS, WIDTHS


__all__ = ["SQNR_POINTS", "sqnr_by_width"]

#: Frame sizes of the SQNR study (:func:`sqnr_by_width`).
SQNR_POINTS = (64, 1024)


def sqnr_by_width(configs=None):
    """The core's analysis in the main job (``fft-sqnr`` of the report): the golden
    model's SQNR against the float transform (``numpy.fft.fft(x) / n``) at ``n`` in
    :data:`SQNR_POINTS` and every legal width, on the testbench's data: random samples
    in the disc ``|x| <= M - 1``, rows of the photographs (``max(16, 65536 / n)`` of
    each, spread over it), and full-scale samples (the square, which saturates when
    rotated); ``max(16, 65536 / n)`` frames of each. Twiddles of ``min(width, 18)`` bits
    and of 16 (the flow's builds). ``bound_db`` is the SQNR of the exact transform
    rounded to integers: the best any ``width``-bit output can do. ``configs`` (the run's
    parameter sets) do not enter. About 10 s."""
    rows = []
    for n in SQNR_POINTS:
        count = max(16, 65536 // n)
        for width in WIDTHS:
            rng = np.random.default_rng([n, width])
            data = {"random": random_frames(rng, count, n, width),
                    "image": np.concatenate([image_frames(name, count, n, width)
                                             for name in IMAGES]),
                    "full_scale": full_scale_frames(rng, count, n, width)}
            exact = reference(data["random"])
            rounded = np.stack([np.rint(exact.real), np.rint(exact.imag)], axis=-1)
            bound = sqnr_db(rounded, data["random"])
            for twiddle_width in sorted({min(width, TWIDDLE_WIDTHS[-1]), 16}):
                for source, x in data.items():
                    y, overflow = golden_fft(x, n=n, width=width,
                                             twiddle_width=twiddle_width)
                    rows.append({"n": n, "width": width, "twiddle_width": twiddle_width,
                                 "data": source, "frames": int(len(x)),
                                 "sqnr_db": sqnr_db(y, x), "overflow": bool(overflow),
                                 "bound_db": bound if source == "random" else None})
    return {"points": list(SQNR_POINTS), "widths": list(WIDTHS), "images": list(IMAGES),
            "reference": "numpy.fft.fft(x) / n", "rows": rows}
