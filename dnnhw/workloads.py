"""The workloads every command measures on, defined once.

``ALEXNET_DENSITIES``
    cDMA's published per-layer activation densities of AlexNet (Rhu et al., HPCA 2018),
    and :func:`alexnet_activations`, ReLU-like tensors of one layer at its density, in the
    shape every command uses (``ALEXNET_SHAPE``), so that ``dnnhw ratios``, ``dnnhw bench
    ratios`` and the report print the same figures.
"""

import numpy as np


__all__ = ["ALEXNET_DENSITIES", "ALEXNET_SHAPE", "DTYPE_OF_WIDTH", "alexnet_activations"]

#: Layer name to the fraction of non-zero activations cDMA measured.
ALEXNET_DENSITIES = {"conv0": 0.49, "conv1": 0.36, "conv4": 0.22, "fc1": 0.31}

#: Channels x height x width of the stand-in tensors (conv1's 96 channels at 27 x 27).
ALEXNET_SHAPE = (96, 27, 27)

#: The element type a ZV window of each width holds: int8 / int16 fixed point, fp32.
DTYPE_OF_WIDTH = {8: np.int8, 16: np.int16, 32: np.float32}


def alexnet_activations(layer, width=32, seed=0):
    """A ReLU-like tensor at ``layer``'s published density, of ``DTYPE_OF_WIDTH[width]``."""
    from .golden.zvc import relu_like
    if layer not in ALEXNET_DENSITIES:
        raise ValueError(f"layer must be one of {', '.join(ALEXNET_DENSITIES)}, got {layer!r}")
    if width not in DTYPE_OF_WIDTH:
        raise ValueError(f"width must be one of {', '.join(map(str, DTYPE_OF_WIDTH))}, "
                         f"got {width!r}")
    return relu_like(ALEXNET_SHAPE, ALEXNET_DENSITIES[layer], dtype=DTYPE_OF_WIDTH[width],
                     rng=seed)
