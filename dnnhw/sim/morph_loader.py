"""The host side of Morph's array: a part-1 mapping turned into the sequencer's
configuration, after checking that it fits the buffers the array was built with.

:class:`ArrayShape`
    What a build has: the PE block, the L2 banks, the L1 copies and PE banks, the
    register width and the multiplier's cycles.
:func:`array_hardware`
    The model's :class:`~dnnhw.golden.morph.Hardware` of a build: its PEs and L2, and the
    timing constants read off the sequencer program (``docs/morph-array.md``).
:func:`check`, :func:`configure`
    Why a layer and mapping do not fit a build (the model's legality for the L2, the
    array's own for the L1 and its registers: the program is run on the configuration to
    find the widest value it makes), and the configuration registers.
:func:`layout`
    Where the inputs, weights and outputs sit in the array's memory.
"""

import math
from dataclasses import dataclass, replace

from dnnhw.golden import morph
from dnnhw.golden.morph import DIMS, Violation
from dnnhw.rtl.morph_program import (ADDRESS_ORDER1, ADDRESS_ORDER2, ADDRESS_START, CONFIG,
                                     COUNTERS, sequencer_program, timing)
from dnnhw.sim.morph_machine import Machine


__all__ = ["ArrayShape", "array_hardware", "search_hardware", "check", "configure", "layout",
           "l2_regions", "register_bits", "coord_bits",
           "config_writes", "counters_by_name", "shape_of", "resolve_mapping"]


@dataclass(frozen=True)
class ArrayShape:
    """One build of the array.

    Members
    -------
    kp, hp, wp : int
        The PE block built (a mapping's block may be smaller).
    l2_banks, l2_bank_words : int
        The L2: banks of words.
    l1_input_words, l1_weight_words : int
        Words of each L1 input copy (one per output position of the block) and of each
        weight copy (one per filter row).
    l1_psum_entries : int
        Entries of each PE's partial-sum bank: the PE blocks of one L1 tile.
    value_width : int
        Bits of the sequencer's registers (addresses and sizes).
    coord_width : int or None
        Bits of a tap's coordinates (None: ``value_width``).
    mul_cycles : int
        Cycles of the sequencer's multiply.
    addr_width : int
        Bits of a memory word address.
    max_trips, max_row : int
        The most tiles the sequencer steps along a dimension, the longest burst.
    """
    kp: int = 2
    hp: int = 2
    wp: int = 2
    l2_banks: int = 4
    l2_bank_words: int = 8192
    l1_input_words: int = 1024
    l1_weight_words: int = 1024
    l1_psum_entries: int = 256
    value_width: int = 32
    coord_width: int = None
    mul_cycles: int = 2
    addr_width: int = 24
    max_trips: int = 256
    max_row: int = 4095

    @property
    def pes(self):
        return self.kp * self.hp * self.wp


def shape_of(array):
    """The :class:`ArrayShape` of a :class:`~dnnhw.rtl.morph_array.MorphArray` build."""
    return ArrayShape(kp=array.kp, hp=array.hp, wp=array.wp, l2_banks=array.l2_banks,
                      l2_bank_words=array.l2_bank_words,
                      l1_input_words=array.l1_input_words,
                      l1_weight_words=array.l1_weight_words,
                      l1_psum_entries=array.l1_psum_entries,
                      value_width=array.value_width, coord_width=array.coord_width,
                      mul_cycles=array.mul_cycles,
                      addr_width=array.addr_width, max_trips=array.max_trips,
                      max_row=(1 << array.LENGTH_WIDTH) - 1)


def array_hardware(shape, memory_latency, *, l1_bank_words=None):
    """The model's hardware for ``shape`` behind a memory of ``memory_latency`` cycles:
    the counts the array must reproduce, its cycles exactly.

    The array's L1 split is fixed by the build, not by the mapping, so the model sees one
    L1 bank per operand of ``l1_bank_words`` (default: the largest of the copies and the
    PE banks, which no count depends on); :func:`check` holds each operand to its own
    size."""
    constants = timing(sequencer_program(), memory_latency, shape.mul_cycles)
    if l1_bank_words is None:
        l1_bank_words = max(shape.l1_input_words, shape.l1_weight_words,
                            shape.l1_psum_entries * shape.pes)
    return morph.Hardware(pes=shape.pes, l2_banks=shape.l2_banks,
                          l2_bank_words=shape.l2_bank_words, l1_banks=3,
                          l1_bank_words=l1_bank_words,
                          max_block=(shape.kp, shape.hp, shape.wp), name="morph-array",
                          **constants)


def search_hardware(shape, memory_latency):
    """:func:`array_hardware` for the optimizer (:mod:`dnnhw.golden.morph_search`): an L1
    bank per operand of the smallest of the copies and the PE banks' entries, so that
    whatever the model lets in also fits the array (a partial-sum tile of ``n`` words
    needs at most ``n`` entries per PE bank). Conservative for partial sums."""
    return array_hardware(shape, memory_latency, l1_bank_words=min(
        shape.l1_input_words, shape.l1_weight_words, shape.l1_psum_entries))


def _array_mapping(mapping):
    """``mapping`` with the array's L1 split (one bank per operand)."""
    return replace(mapping, l1_banks=(1, 1, 1))


def l2_regions(shape, mapping):
    """The first word of each operand's L2 region: the banks in order inputs, weights,
    partial sums."""
    banks = mapping.l2_banks
    return {"inputs": 0, "weights": banks[0] * shape.l2_bank_words,
            "psums": (banks[0] + banks[1]) * shape.l2_bank_words}


def check(layer, mapping, shape):
    """Every reason ``mapping`` of ``layer`` cannot run on ``shape`` (a list of
    :class:`~dnnhw.golden.morph.Violation`; empty when it can)."""
    # The model judges the layer, the tiles, the block and the L2; the L1 it is shown is
    # large enough for anything, and the array's own checks below hold each operand.
    roomy = array_hardware(shape, 1, l1_bank_words=1 << 30)
    out = morph.check(layer, _array_mapping(mapping), roomy)
    for axis, kernel, pad in zip("FHW", (layer.T, layer.R, layer.S), layer.padding):
        if pad >= kernel:
            out.append(Violation(f"padding along {axis} must be below the kernel's "
                                 f"{kernel} taps on the array, got {pad}"))
    if out:
        return out
    # The L1: each copy holds the largest L1 tile of its operand, the PE banks the most
    # blocks of one L1 tile.
    words = morph.tile_words(layer, mapping.l1_tile, within=mapping.l2_tile)
    kp, hp, wp = mapping.parallel
    kt, _, ft, ht, wt = mapping.l1_tile
    entries = math.ceil(kt / kp) * ft * math.ceil(ht / hp) * math.ceil(wt / wp)
    for operand, needed, available in (
            ("inputs", words["inputs"], shape.l1_input_words),
            ("weights", words["weights"], shape.l1_weight_words),
            ("psums", entries, shape.l1_psum_entries)):
        if needed > available:
            unit = "entries per PE bank" if operand == "psums" else "words per copy"
            out.append(Violation(f"l1 {operand}: the tile needs {needed} {unit}, the "
                                 f"array has {available} ({needed - available} over)",
                                 level="l1", operand=operand, needed=needed,
                                 available=available))
    # The sequencer's counters and the memory port.
    total = layout(layer)["words"]
    if total > 1 << shape.addr_width:
        out.append(Violation(f"the layer's tensors take {total} words, the memory port "
                             f"addresses {1 << shape.addr_width} ({shape.addr_width} bits)"))
    trips = {"the images": layer.N}
    trips.update({f"the tiles along {d}": math.ceil(layer.size(d) / t)
                  for d, t in zip(DIMS, mapping.l2_tile)})
    trips.update({f"the tiles along {d} (L1)": math.ceil(t2 / t1) for d, t2, t1
                  in zip(DIMS, mapping.l2_tile, mapping.l1_tile)})
    for what, count in trips.items():
        if count > shape.max_trips:
            out.append(Violation(f"{what} take {count} steps, the sequencer counts at most "
                                 f"{shape.max_trips} (index_width)"))
    longest = max(layer.taps, layer.W, layer.Wo)
    if longest > shape.max_row:
        out.append(Violation(f"a DRAM row of {longest} words is longer than the memory "
                             f"port's bursts ({shape.max_row} words)"))
    if out:
        return out
    coordinates = coord_bits(layer)
    available = shape.value_width if shape.coord_width is None else shape.coord_width
    if coordinates > available:
        out.append(Violation(f"the layer's taps reach coordinates that need {coordinates} "
                             f"bits (its sides and padding), the array computes them in "
                             f"{available} (coord_width)"))
    needed = register_bits(layer, mapping, shape)
    if needed > shape.value_width:
        out.append(Violation(f"the layer needs {needed}-bit registers (its {total} words "
                             f"of tensors and the values its program makes), the array's "
                             f"are {shape.value_width} bits (value_width)"))
    return out


def coord_bits(layer):
    """Two's-complement bits that hold every tap coordinate of ``layer``: from minus the
    padding to the side plus the padding, less one, along each of F, H, W (the blocks
    engine computes an active position's taps in them exactly)."""
    return max(max(side + pad - 1, pad).bit_length() + 1
               for side, pad in zip((layer.F, layer.H, layer.W), layer.padding))


def register_bits(layer, mapping, shape):
    """The fewest register bits (``value_width``) that run ``mapping`` of ``layer``
    exactly: every DRAM address positive in two's complement (the DRAM engine steps them
    in register-wide arithmetic), and every value the program makes, found by running the
    program alone with registers wide enough for anything. The engines' other sums are
    checked against their buffers."""
    machine = Machine.for_shape(sequencer_program(), shape, value_width=64)
    machine.run(_registers(layer, mapping, shape), None)
    return max(machine.widest, layout(layer)["words"].bit_length() + 1)


def layout(layer):
    """Word addresses of the tensors, dense and row-major one after another: inputs
    ``N x C x F x H x W``, weights ``K x C x T x R x S``, outputs ``N x K x Fo x Ho x Wo``;
    ``words`` is the memory they take."""
    words = layer.operand_words()
    inputs = layer.N * layer.C * layer.F * layer.H * layer.W
    weights = layer.K * layer.C * layer.taps
    outputs = layer.N * layer.K * layer.Fo * layer.Ho * layer.Wo
    assert words["psums"] == outputs
    return {"x_base": 0, "w_base": inputs, "y_base": inputs + weights,
            "words": inputs + weights + outputs}


def configure(layer, mapping, shape, *, checked=True):
    """The configuration registers (every name of
    :data:`~dnnhw.rtl.morph_program.CONFIG`, plus ``order2`` and ``order1``) that run
    ``mapping`` of ``layer`` on ``shape``. Raises
    :class:`~dnnhw.golden.morph.MappingError` with every reason it does not fit, unless
    ``checked`` is false (to see what the array does with what the loader refuses)."""
    violations = check(layer, mapping, shape) if checked else []
    if violations:
        raise morph.MappingError(violations)
    return _registers(layer, mapping, shape)


def _registers(layer, mapping, shape):
    """The configuration of :func:`configure`, unchecked."""
    L = layer
    (sf, sh, sw), (pf, ph, pw) = L.stride, L.padding
    sizes = {d: L.size(d) for d in DIMS}
    config = {
        "N": L.N, "C": L.C, "F": L.F, "H": L.H, "W": L.W, "K": L.K,
        "T": L.T, "R": L.R, "S": L.S, "sf": sf, "sh": sh, "sw": sw,
        "pf": pf, "ph": ph, "pw": pw, "Fo": L.Fo, "Ho": L.Ho, "Wo": L.Wo,
        "TRS": L.taps, "RS": L.R * L.S,
        "x_n": L.C * L.F * L.H * L.W, "x_c": L.F * L.H * L.W, "x_f": L.H * L.W,
        "w_k": L.C * L.taps,
        "y_n": L.K * L.Fo * L.Ho * L.Wo, "y_k": L.Fo * L.Ho * L.Wo, "y_f": L.Ho * L.Wo,
        "Kp": mapping.parallel[0], "Hp": mapping.parallel[1], "Wp": mapping.parallel[2],
        "order2": mapping.outer_order, "order1": mapping.inner_order,
    }
    for d, t2, t1 in zip(DIMS, mapping.l2_tile, mapping.l1_tile):
        config[f"t2_{d}"] = t2
        config[f"t1_{d}"] = t1
        config[f"trips2_{d}"] = math.ceil(sizes[d] / t2)
        config[f"trips1_{d}"] = math.ceil(t2 / t1)
        last = sizes[d] - t2 * (math.ceil(sizes[d] / t2) - 1)
        config[f"trips1_last_{d}"] = math.ceil(last / t1)
    regions = l2_regions(shape, mapping)
    config.update(l2_inputs=regions["inputs"], l2_weights=regions["weights"],
                  l2_psums=regions["psums"])
    config.update({k: v for k, v in layout(layer).items() if k != "words"})
    missing = set(CONFIG) - set(config)
    assert not missing, missing
    return config


def config_writes(config, program):
    """The configuration port's writes that load ``config`` (:func:`configure`) and start
    the layer: ``[(addr, data), ...]``, every register, the two orders, then ``START``."""
    writes = [(program.registers[name], config[name]) for name in CONFIG]
    for address, order in ((ADDRESS_ORDER2, config["order2"]),
                           (ADDRESS_ORDER1, config["order1"])):
        writes.append((address, sum(DIMS.index(d) << (3 * p) for p, d in enumerate(order))))
    writes.append((ADDRESS_START, 0))
    return writes


def counters_by_name(values):
    """``{level: {operand: {reads, writes}}}``, ``macs``, ``cycles``, ``compute_cycles``,
    ``stall_cycles`` from
    the counter port's values in :data:`~dnnhw.rtl.morph_program.COUNTERS` order."""
    named = dict(zip(COUNTERS, values))
    traffic = {level: {op: {d: named[f"{level}.{op}.{d}"] for d in ("reads", "writes")}
                       for op in ("inputs", "weights", "psums")}
               for level in ("dram", "l2", "l1")}
    return {"traffic": traffic, "macs": named["macs"], "cycles": named["cycles"],
            "compute_cycles": named["compute_cycles"], "stall_cycles": named["stall_cycles"]}


def resolve_mapping(layer, spec, shape, latency, max_l2):
    """A :class:`~dnnhw.golden.morph.Mapping` from a dict, or the optimizer's pick for
    ``shape`` when ``spec`` names an objective."""
    if isinstance(spec, dict):
        return morph.Mapping(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()})
    from dnnhw.golden.morph_search import best_mapping
    return best_mapping(layer, search_hardware(shape, latency), objective=spec,
                        max_l2=max_l2).mapping
