"""Morph's claim on our own array: the pieces of the RTL study that the cocotb bench
(:mod:`dnnhw.sim.morph_array`, test ``study``) runs.

:func:`scaled_c3d`
    C3D conv1 to conv5b shrunk for RTL simulation, its channel ratios kept.
:func:`study_mappings`
    Per layer, the optimizer's energy-best mapping for a build (Morph) and the best single
    mapping for every layer (the fixed dataflow, as in ``dnnhw bench morph``).
:func:`energy_pj`
    A run's energy from its counters: each level's reads and writes times its energy per
    word, plus the MACs.
"""

from dnnhw.golden import morph, morph_search
from dnnhw.workloads import c3d_morph_layers

from .morph_loader import check, search_hardware


__all__ = ["scaled_c3d", "study_mappings", "energy_pj"]


def scaled_c3d(*, side=16, channel_scale=16, frame_scale=4):
    """C3D conv1 to conv5b with a ``side x side`` first frame (halving at each pooling),
    channels divided by ``channel_scale`` (conv1 keeps its 3 inputs) and frames by
    ``frame_scale``, at least one of each: the channel ratios of the network, small enough
    to simulate."""
    out = []
    for layer in c3d_morph_layers(side):
        c = layer.C if layer.C <= 3 else max(1, layer.C // channel_scale)
        out.append(morph.Layer(C=c, F=max(1, layer.F // frame_scale), H=layer.H, W=layer.W,
                               K=max(1, layer.K // channel_scale), T=layer.T, R=layer.R,
                               S=layer.S, stride=layer.stride, padding=layer.padding,
                               name=layer.name))
    return out


def study_mappings(shape, memory_latency, network=None, *, max_l2=16):
    """``[(layer, morph mapping, fixed mapping), ...]`` for ``network`` (default
    :func:`scaled_c3d`) on the build ``shape``: the energy-best mapping per layer, and the
    best single mapping for all of them (tiles clipped to smaller layers). Both legal on
    the build (the search's L1 is the build's smallest buffer, see
    :func:`~dnnhw.sim.morph_loader.search_hardware`)."""
    network = scaled_c3d() if network is None else network
    hardware = search_hardware(shape, memory_latency)
    optima = [morph_search.best_mapping(layer, hardware, "energy", max_l2=max_l2).mapping
              for layer in network]
    fixed, _, _ = morph_search.fixed_mapping(network, hardware, optima)
    out = []
    for layer, best in zip(network, optima):
        clipped = morph_search.clip(fixed, layer)
        for mapping in (best, clipped):
            problems = check(layer, mapping, shape)
            assert not problems, (layer.name, mapping.describe(), problems)
        out.append((layer, best, clipped))
    return out


def energy_pj(counters, energy_per_word):
    """``{"dram", "l2", "l1", "mac", "total"}`` in pJ from a run's counters
    (:func:`~dnnhw.sim.morph_loader.counters_by_name`) and ``energy_per_word`` (a
    :class:`~dnnhw.golden.morph.Hardware`'s ``energy_pj``)."""
    out = {}
    for level in ("dram", "l2", "l1"):
        words = sum(counters["traffic"][level][op][d] for op in ("inputs", "weights", "psums")
                    for d in ("reads", "writes"))
        out[level] = words * energy_per_word[level]
    out["mac"] = counters["macs"] * energy_per_word["mac"]
    out["total"] = sum(out.values())
    return out
