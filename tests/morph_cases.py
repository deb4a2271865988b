"""Small Morph cases for the walk (:mod:`dnnhw.golden.morph_walk`) and the closed form.

:func:`random_case`
    ``(layer, mapping, hardware)``: a small random layer (C, K up to 6, F/H/W up to 7,
    kernels 1..3, stride 1..2, padding 0..1, N 1..2, at most :data:`MAX_MACS` MACs),
    random loop orders, tile sizes (often ragged) and parallelism, on a hardware with
    small banks partitioned so that the mapping is legal (:func:`morph.check` is the
    judge; a case it rejects is drawn again).
:func:`random_array_case`
    The same, restricted to what the PE array accepts (padding below the kernel).
:func:`dram_image`
    Random int8 operands of a layer and the memory image the array and its machine read
    (:func:`dnnhw.sim.morph_loader.layout`).
:data:`TINY`
    The smallest layer and mapping that spills and refills partial sums at both levels.
:func:`hand_cases`
    ``[(name, layer, mapping, hardware), ...]``: fixed edge cases (one tile; all tiles of
    one; ragged; strided; tiles entirely in the padding; C spilled; N = 2).
"""

import math

import numpy as np

from dnnhw.golden.morph import DIMS, Hardware, Layer, Mapping, check

#: The most MACs a random case has (the walk takes a few microseconds per MAC).
MAX_MACS = 6000


def _randint(rng, lo, hi):
    """An int in ``lo .. hi`` inclusive from a ``numpy`` Generator or a ``random.Random``."""
    if hasattr(rng, "integers"):
        return int(rng.integers(lo, hi + 1))
    return rng.randint(lo, hi)


def _permutation(rng, items):
    items = list(items)
    for i in range(len(items) - 1, 0, -1):
        j = _randint(rng, 0, i)
        items[i], items[j] = items[j], items[i]
    return "".join(items)


def _random_layer(rng, max_macs):
    while True:
        kernel = [_randint(rng, 1, 3) for _ in range(3)]
        stride = tuple(_randint(rng, 1, 2) for _ in range(3))
        padding = tuple(_randint(rng, 0, 1) for _ in range(3))
        spatial = [_randint(rng, 1, 7) for _ in range(3)]
        if any(k > s + 2 * p for k, s, p in zip(kernel, spatial, padding)):
            continue
        layer = Layer(C=_randint(rng, 1, 6), F=spatial[0], H=spatial[1], W=spatial[2],
                      K=_randint(rng, 1, 6), T=kernel[0], R=kernel[1], S=kernel[2],
                      N=_randint(rng, 1, 2), stride=stride, padding=padding,
                      name="random")
        if layer.macs <= max_macs:
            return layer


def _tile_size(rng, limit):
    """A tile size in ``1 .. limit``, with the whole extent and 1 more likely."""
    roll = _randint(rng, 0, 5)
    if roll == 0:
        return limit
    if roll == 1:
        return 1
    return _randint(rng, 1, limit)


def _pieces(start, length, tile):
    return [(s, min(tile, start + length - s)) for s in range(start, start + length, tile)]


def _extent(layer, axis, start, length):
    size, taps, stride, pad = layer.axis(axis)
    lo, hi = start * stride - pad, (start + length - 1) * stride - pad + taps - 1
    return max(0, min(hi, size - 1) - max(lo, 0) + 1)


def _needs(layer, mapping):
    """Words each operand's tile needs at each level, from the rules of ``docs/morph.md``:
    inputs take the largest clipped extent of the tiles as placed (the L1 tiles restart
    at each L2 tile's origin)."""
    out = {}
    for level, tile in (("l2", mapping.l2_tile), ("l1", mapping.l1_tile)):
        k, c, f, h, w = tile
        inputs = c
        for axis, t in zip("FHW", (f, h, w)):
            dim = DIMS.index(axis)
            placed = [(s1, l1)
                      for s2, l2 in _pieces(0, layer.size(axis), mapping.l2_tile[dim])
                      for s1, l1 in _pieces(s2, l2, mapping.l1_tile[dim])]
            ranges = placed if level == "l1" else _pieces(0, layer.size(axis), t)
            inputs *= max(_extent(layer, axis, s, n) for s, n in ranges)
        out[level] = (max(1, inputs), k * c * layer.taps, k * f * h * w)
    return out


def random_case(rng, max_macs=MAX_MACS):
    """``(layer, mapping, hardware)``, legal by :func:`morph.check`. ``rng`` is a
    ``numpy.random.Generator`` or a ``random.Random``."""
    while True:
        layer = _random_layer(rng, max_macs)
        l2 = tuple(_tile_size(rng, layer.size(d)) for d in DIMS)
        l1 = tuple(_tile_size(rng, t) for t in l2)
        parallel = (_tile_size(rng, l1[0]), _tile_size(rng, l1[3]), _tile_size(rng, l1[4]))
        pes = math.prod(parallel) + _randint(rng, 0, 6)
        proto = Mapping(outer_order=_permutation(rng, DIMS),
                        inner_order=_permutation(rng, DIMS), l2_tile=l2, l1_tile=l1,
                        parallel=parallel, l2_banks=(1, 1, 1), l1_banks=(1, 1, 1))
        needs = _needs(layer, proto)
        sizes = {}
        banks = {}
        for level in ("l2", "l1"):
            bank_words = (4, 8, 16, 32, 64)[_randint(rng, 0, 4)]
            while sum(math.ceil(n / bank_words) for n in needs[level]) > 12:
                bank_words *= 2
            # Tight partitions, with a spare bank now and then.
            banks[level] = tuple(math.ceil(n / bank_words) + (_randint(rng, 0, 3) == 0)
                                 for n in needs[level])
            sizes[level] = (sum(banks[level]) + _randint(rng, 0, 2), bank_words)
        hardware = Hardware(pes=pes, l2_banks=sizes["l2"][0], l2_bank_words=sizes["l2"][1],
                            l1_banks=sizes["l1"][0], l1_bank_words=sizes["l1"][1],
                            dram_latency=_randint(rng, 0, 20),
                            dram_words_per_cycle=_randint(rng, 1, 4),
                            l2_words_per_cycle=_randint(rng, 1, 8),
                            block_overhead=_randint(rng, 0, 3), name="morph-random")
        mapping = Mapping(outer_order=proto.outer_order, inner_order=proto.inner_order,
                          l2_tile=l2, l1_tile=l1, parallel=parallel,
                          l2_banks=banks["l2"], l1_banks=banks["l1"])
        if not check(layer, mapping, hardware):
            return layer, mapping, hardware


def random_array_case(rng, max_macs=MAX_MACS):
    """:func:`random_case` that the PE array accepts too: padding below the kernel on every
    axis (``docs/morph-array.md``, *Restriction*)."""
    while True:
        layer, mapping, hardware = random_case(rng, max_macs)
        if all(p < k for p, k in zip(layer.padding, (layer.T, layer.R, layer.S))):
            return layer, mapping, hardware


#: A hardware whose banks hold any tile of the hand cases, with round timing constants.
ROOMY = Hardware(pes=128, l2_banks=3, l2_bank_words=4096, l1_banks=3, l1_bank_words=4096,
                 dram_latency=10, dram_words_per_cycle=2, l2_words_per_cycle=4,
                 block_overhead=1, name="morph-roomy")


def _mapping(outer, inner, l2, l1, parallel):
    return Mapping(outer_order=outer, inner_order=inner, l2_tile=l2, l1_tile=l1,
                   parallel=parallel, l2_banks=(1, 1, 1), l1_banks=(1, 1, 1))


def hand_cases():
    """``[(name, layer, mapping, hardware), ...]``: fixed edge cases, all legal on
    :data:`ROOMY`."""
    cases = []
    conv = Layer(C=3, F=4, H=5, W=5, K=4, T=3, R=3, S=3, padding=1, name="conv")
    full = conv.shape
    cases.append(("one-tile", conv, _mapping("KCFHW", "KCFHW", full, full, (4, 5, 5))))
    ones = (1, 1, 1, 1, 1)
    cases.append(("all-ones", conv, _mapping("WHFCK", "CKWHF", ones, ones, (1, 1, 1))))
    cases.append(("ragged", conv, _mapping("FKHCW", "HWCKF", (3, 2, 3, 4, 5),
                                           (2, 1, 2, 3, 2), (2, 2, 2))))
    cases.append(("c-spilled", conv, _mapping("CKFHW", "KFHWC", (2, 1, 4, 5, 5),
                                              (1, 1, 2, 3, 5), (1, 3, 5))))
    strided = Layer(C=2, F=5, H=7, W=6, K=3, T=1, R=3, S=2, stride=(2, 2, 1),
                    padding=(0, 1, 0), name="strided")
    cases.append(("strided", strided, _mapping("HWKCF", "WFHKC", (2, 2, 2, 3, 4),
                                               (1, 1, 1, 2, 3), (1, 2, 3))))
    # R = 1 with padding 1: the first and last output rows read only padding.
    pointwise = Layer(C=2, F=2, H=3, W=3, K=2, T=1, R=1, S=1, padding=(0, 1, 1),
                      name="pad-only-rows")
    cases.append(("pad-only-tiles", pointwise, _mapping("HWKCF", "KCFHW", (2, 2, 2, 1, 2),
                                                         (1, 1, 1, 1, 1), (1, 1, 1))))
    batch = Layer(C=2, F=3, H=4, W=4, K=3, T=2, R=2, S=3, N=2, padding=(0, 1, 1),
                  name="batch")
    cases.append(("batch", batch, _mapping("CWHFK", "FHWKC", (2, 1, 2, 3, 2),
                                           (1, 1, 1, 2, 2), (1, 2, 1))))
    out = []
    for name, layer, mapping in cases:
        problems = check(layer, mapping, ROOMY)
        assert not problems, (name, problems)
        out.append((name, layer, mapping, ROOMY))
    return out


def dram_image(layer, seed):
    """``(x, w, dram)``: random int8 inputs and weights of ``layer`` and the memory words
    holding them at :func:`~dnnhw.sim.morph_loader.layout`'s addresses (outputs zero)."""
    from dnnhw.sim.morph_loader import layout
    place = layout(layer)
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=(layer.N, layer.C, layer.F, layer.H, layer.W))
    w = rng.integers(-128, 128, size=(layer.K, layer.C, layer.T, layer.R, layer.S))
    dram = [0] * place["words"]
    dram[place["x_base"]:place["w_base"]] = x.ravel().tolist()
    dram[place["w_base"]:place["y_base"]] = w.ravel().tolist()
    return x, w, dram


#: Two L2 steps (K), two L1 steps each (C, then a refill of the partial sums).
TINY = (Layer(C=2, F=1, H=2, W=2, K=2, T=1, R=2, S=2, padding=(0, 1, 1)),
        Mapping("KCFHW", "CKFHW", (1, 2, 1, 3, 3), (1, 1, 1, 2, 3), (1, 2, 2), (1, 1, 1),
                (1, 1, 1)))
