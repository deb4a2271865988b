"""Morph's layers through ZigZag, a peer mapping model, for a cross-check.

ZigZag (KU Leuven, ``pip install dnnhw[zigzag]``, the ``zigzag-dse`` package) searches
spatial and temporal mappings of one layer on an accelerator described as a memory
hierarchy and an operational array, and costs each mapping analytically. This module
describes one :class:`dnnhw.golden.morph.Layer` and :class:`dnnhw.golden.morph.Hardware`
to it as closely as ZigZag's model allows and returns the energy, the DRAM traffic and the
mapping of the mapping ZigZag finds cheapest in energy. Nothing here imports ZigZag until
:func:`run_zigzag` runs, so the package works without the extra.

How the layer and the accelerator are put to ZigZag
---------------------------------------------------
The workload is a true 3D convolution, ZigZag's user-defined loop equation
``O[b][k][oz][oy][ox] += W[k][c][fz][fy][fx] * I[b][c][iz][iy][ix]`` with the halo
relations ``iz = sf*oz + fz`` (and ``iy``, ``ix`` likewise, ``s*`` the stride), the padding
on each of the three input axes and the input sizes given explicitly, so the input tensor
holds ``C x F x H x W`` words. Operands are 16-bit (one word); partial sums are 16-bit too,
since Morph counts a partial sum as one word.

The hierarchy, innermost first (sizes in bits, energies per ZigZag access):

- ``reg_O``: one partial-sum word per MAC (``served_dimensions: []``, one per PE) at
  0 pJ: Morph's accumulator register, whose cost is in the MAC energy. Inputs and
  weights have no register: like Morph's PEs they read the L1 every cycle.
- ``l1``: ``l1_banks * l1_bank_words`` words shared by inputs, weights and partial sums,
  broadcast to the whole array (``served_dimensions: [D1, D2]``).
- ``l2``: ``l2_banks * l2_bank_words`` words shared by all three, likewise.
- ``dram``: all three, unbounded.

ZigZag charges ``r_cost``/``w_cost`` per access of a port's maximum bandwidth, and counts
accesses as ``ceil(bits / bandwidth_min) * bandwidth_min / bandwidth_max``; with
``bandwidth_min`` one word (16 bits) and the cost set to ``pJ_per_word * bandwidth_max /
16``, every word costs Morph's figure. Bandwidths: DRAM ``dram_words_per_cycle`` words per
cycle on one read-write port, L2 ``l2_words_per_cycle`` words per cycle per port (one
read, one write), L1 :data:`L1_WORDS_PER_CYCLE` words per cycle per port (Morph does not
limit the L1's bandwidth). MAC: ``energy_pj["mac"]`` per MAC on a ``16 x 16`` array
(:func:`array_shape`).

Spatial unrolling: Morph's PE block is ``Kp`` filters times ``Hp x Wp`` output positions of
one frame. ZigZag is given the same family: ``D1`` unrolls ``K``; ``D2`` unrolls ``K``,
``OY``, ``OX`` or a mix of them (ZigZag's own generator: factors are the divisors of
``min(dimension, 16)``, a factor that does not divide its dimension leaving a ragged last
iteration; it keeps the ``spatial_mappings`` most utilized candidates, LOMA maps each in
time, and the cheapest in energy wins). Input channels and filter taps are never unrolled,
as in Morph.

Temporal search: the three tap loops are fixed innermost (``s``, then ``r``, then ``t``, as
in Morph's PE loop, and Morph never tiles them); LOMA orders the rest, its
``lpf_limit`` (:data:`DEFAULT_LPF_LIMIT`) bounding the loop prime factors. The mapping
type is ZigZag's ``uneven``: each operand's tile boundaries between levels are its own.

Traffic is read from ZigZag's per-level data-movement counts (elements, which are words
here). ZigZag's own energy prices transfers per period instead, which differs from the
words by a few tenths of a percent at the L1 and L2: it rounds each count of wide-port
accesses down to whole accesses, and it prices a partial-sum fill on a tile's first visit,
before any channel has been added, which its element counts (and Morph) do not have;
``energy_pj_exact`` prices the words. ZigZag's API treats an innermost-memory read
repeated by an irrelevant loop as free; :func:`run_zigzag` counts it by default
(``same_data_no_access=False``), as Morph's PEs read the L1 every cycle.
"""

import math
import time
from pathlib import Path

from ..golden.morph import DEFAULT_HARDWARE, Layer


__all__ = ["zigzag_available", "zigzag_version", "run_zigzag", "workload_spec",
           "accelerator_spec", "mapping_spec", "array_shape", "c3d_layers", "main",
           "L1_WORDS_PER_CYCLE", "WORD_BITS", "DEFAULT_LPF_LIMIT"]

#: Bits per word: Morph's operands and partial sums.
WORD_BITS = 16
#: The L1's ports are given this many words per cycle each: wide enough never to stall
#: (Morph assumes the L1 feeds a PE block every cycle).
L1_WORDS_PER_CYCLE = 1024

#: LOMA's loop-prime-factor limit: the three filter-tap loops are fixed innermost, so 9
#: leaves 6 factors of K, C and the output axes to order (720 orders at most per spatial
#: unrolling; 17 to 27 CPU seconds per C3D layer with 3 spatial unrollings, where 10 takes
#: 3 to 5 times as long).
DEFAULT_LPF_LIMIT = 9

#: ZigZag's names for the layer's operands, and ours.
_OPERANDS = {"I": "inputs", "W": "weights", "O": "psums"}
#: ZigZag's memory names and our level names.
_LEVELS = {"dram": "dram", "l2": "l2", "l1": "l1", "reg_O": "reg"}


def zigzag_available():
    """Whether ZigZag (``zigzag-dse``) can be imported."""
    try:
        import zigzag.api  # noqa: F401
    except Exception:  # ImportError, or a broken install
        return False
    return True


def zigzag_version():
    """The installed ZigZag's version, or ``None``."""
    try:
        from importlib.metadata import version
        return version("zigzag-dse")
    except Exception:
        return None


def array_shape(hardware):
    """``(D1, D2)``: the PEs as a near-square array (``16 x 16`` for 256 PEs)."""
    d1 = math.isqrt(hardware.pes)
    while hardware.pes % d1:
        d1 -= 1
    return hardware.pes // d1, d1


def workload_spec(layer):
    """ZigZag's workload (a one-layer list) for a Morph :class:`Layer`."""
    sf, sh, sw = layer.stride
    pf, ph, pw = layer.padding
    return [{
        "id": 0,
        "name": layer.name or "layer",
        "operator_type": "Conv",
        "equation": "O[b][k][oz][oy][ox]+=W[k][c][fz][fy][fx]*I[b][c][iz][iy][ix]",
        "dimension_relations": [f"iz={sf}*oz+1*fz", f"iy={sh}*oy+1*fy", f"ix={sw}*ox+1*fx"],
        "loop_dims": ["B", "K", "C", "OZ", "OY", "OX", "FZ", "FY", "FX"],
        "loop_sizes": [layer.N, layer.K, layer.C, layer.Fo, layer.Ho, layer.Wo,
                       layer.T, layer.R, layer.S],
        "pr_loop_dims": ["IZ", "IY", "IX"],
        "pr_loop_sizes": [layer.F, layer.H, layer.W],
        "padding": [[pf, pf], [ph, ph], [pw, pw]],
        "operand_precision": {"W": WORD_BITS, "I": WORD_BITS, "O": WORD_BITS,
                              "O_final": WORD_BITS},
        # Both inputs come from outside the workload (its own id: constant operands).
        "operand_source": {"W": 0, "I": 0},
    }]


def _port(name, kind, words_per_cycle, allocation):
    return {"name": name, "type": kind, "bandwidth_min": WORD_BITS,
            "bandwidth_max": WORD_BITS * words_per_cycle, "allocation": allocation}


def _memory(size_words, pj_per_word, words_per_cycle, operands, ports, served):
    cost = pj_per_word * words_per_cycle  # per access of bandwidth_max bits
    return {"size": size_words * WORD_BITS, "r_cost": cost, "w_cost": cost, "area": 0.0,
            "latency": 1, "operands": operands, "ports": ports,
            "served_dimensions": served}


def accelerator_spec(hardware=DEFAULT_HARDWARE):
    """ZigZag's accelerator description (a dict for its YAML file) for Morph's hardware."""
    e = hardware.energy_pj
    shared = ["I1", "I2", "O"]
    reads = ["I1, tl", "I2, tl", "O, tl", "O, th"]
    writes = ["I1, fh", "I2, fh", "O, fh", "O, fl"]
    memories = {
        # One accumulator per PE; its energy is in the MAC figure.
        "reg_O": _memory(1, 0.0, 1, ["O"], [
            _port("r_port_1", "read", 1, ["O, tl"]),
            _port("r_port_2", "read", 1, ["O, th"]),
            _port("w_port_1", "write", 1, ["O, fh"]),
            _port("w_port_2", "write", 1, ["O, fl"]),
        ], []),
        "l1": _memory(hardware.l1_banks * hardware.l1_bank_words, e["l1"], L1_WORDS_PER_CYCLE,
                      shared, [_port("r_port_1", "read", L1_WORDS_PER_CYCLE, reads),
                               _port("w_port_1", "write", L1_WORDS_PER_CYCLE, writes)],
                      ["D1", "D2"]),
        "l2": _memory(hardware.l2_banks * hardware.l2_bank_words, e["l2"],
                      hardware.l2_words_per_cycle, shared,
                      [_port("r_port_1", "read", hardware.l2_words_per_cycle, reads),
                       _port("w_port_1", "write", hardware.l2_words_per_cycle, writes)],
                      ["D1", "D2"]),
        "dram": _memory(1 << 40, e["dram"], hardware.dram_words_per_cycle, shared, [
            _port("rw_port_1", "read_write", hardware.dram_words_per_cycle, reads + writes),
        ], ["D1", "D2"]),
    }
    d1, d2 = array_shape(hardware)
    return {"name": hardware.name, "memories": memories,
            "operational_array": {"unit_energy": float(e["mac"]), "unit_area": 1.0,
                                  "dimensions": ["D1", "D2"], "sizes": [d1, d2]}}


def mapping_spec(layer, spatial=None):
    """ZigZag's mapping file: the spatial unrolling (fixed) or the hints for its search.

    ``spatial``: ``None`` for the search described in the module docstring, or a fixed
    unrolling such as ``{"D1": {"K": 16}, "D2": {"OY": 4, "OX": 4}}``.
    """
    entry = {"name": "default",
             "memory_operand_links": {"O": "O", "W": "I2", "I": "I1"},
             # The filter taps innermost, whole, in Morph's order (s, then r, then t):
             # a constraint on LOMA's loop orders, which also keeps its search small.
             "temporal_ordering": [[d, n] for d, n in (("FX", layer.S), ("FY", layer.R),
                                                       ("FZ", layer.T)) if n > 1]}
    if spatial is None:
        entry["spatial_mapping_hint"] = {"D1": ["K"], "D2": ["K", "OY", "OX"]}
    else:
        entry["spatial_mapping"] = {oa: [f"{dim}, {int(n)}" for dim, n in dims.items()]
                                    for oa, dims in spatial.items()}
    return [entry]


def _write_yaml(path, data):
    import yaml  # a dependency of zigzag-dse
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _factor(n):
    return str(int(n)) if float(n).is_integer() else f"{float(n):.3g}"


def _describe(cme, level_names):
    """A short text of the chosen mapping, and the same as data."""
    spatial = {}
    for oa_dim, single in cme.layer.spatial_mapping.items():
        spatial[str(oa_dim.name if hasattr(oa_dim, "name") else oa_dim)] = {
            d.name: _factor(n) for d, n in single.items()}
    tm = cme.temporal_mapping.mapping_dic_stationary
    levels = {}
    for op, per_level in tm.items():
        name = _OPERANDS.get(op.name, op.name)
        # Outermost level first, each level's loops outermost first.
        levels[name] = [(level_names[op][i],
                         [(d.name, _factor(n)) for d, n in reversed(loops)])
                        for i, loops in reversed(list(enumerate(per_level)))]
    out_op = next(op for op in tm if op.name == "O")
    order = [(d.name, _factor(n))
             for level in reversed(tm[out_op]) for d, n in reversed(level)]
    sm = ", ".join(f"{oa}=" + "*".join(f"{d}{n}" for d, n in dims.items())
                   for oa, dims in spatial.items())
    text = [f"spatial {sm}",
            "temporal (outer->inner) " + " ".join(f"{d}{n}" for d, n in order)]
    for name, per_level in levels.items():
        text.append(f"{name}: " + " | ".join(
            f"{lvl}[{' '.join(d + n for d, n in loops) or '-'}]" for lvl, loops in per_level))
    return "; ".join(text), {"spatial": spatial, "temporal": order, "levels": levels}


def _results(cme, layer, hardware):
    from zigzag.mapping.data_movement import DataDirection, DataMoveAttr

    links = cme.layer.memory_operand_links
    traffic = {}
    energy_by_level = {}
    level_names = {}
    for layer_op in cme.layer.layer_operands:
        mem_op = links.layer_to_mem_op(layer_op)
        op_name = _OPERANDS.get(layer_op.name, layer_op.name)
        level_names[layer_op] = []
        moves = cme.mapping.unit_mem_data_movement[layer_op]
        for i, move in enumerate(moves):
            memory = cme.accelerator.get_memory_level(mem_op, i)
            level = _LEVELS.get(memory.memory_instance.name, memory.memory_instance.name)
            level_names[layer_op].append(level)
            n = move.get_attribute(DataMoveAttr.DATA_ELEM_MOVE_COUNT)
            reads = n.get(DataDirection.RD_OUT_TO_LOW) + n.get(DataDirection.RD_OUT_TO_HIGH)
            writes = n.get(DataDirection.WR_IN_BY_LOW) + n.get(DataDirection.WR_IN_BY_HIGH)
            traffic.setdefault(level, {})[op_name] = {"reads": int(reads),
                                                      "writes": int(writes)}
            energy_by_level[level] = (energy_by_level.get(level, 0.0)
                                      + float(cme.mem_energy_breakdown[layer_op][i]))
    energy_by_level["mac"] = float(cme.mac_energy)
    e = hardware.energy_pj
    exact = cme.layer.total_mac_count * e["mac"] + sum(
        n["reads"] * e[level] + n["writes"] * e[level]
        for level, ops in traffic.items() if level in e for n in ops.values())
    dram = traffic.get("dram", {})
    dram_words = {name: dram.get(name, {"reads": 0, "writes": 0})["reads"]
                  + dram.get(name, {"reads": 0, "writes": 0})["writes"]
                  for name in ("inputs", "weights", "psums")}
    dram_words["outputs"] = dram_words.pop("psums")
    dram_words["total"] = sum(dram_words.values())
    text, detail = _describe(cme, level_names)
    macs = int(cme.layer.total_mac_count)
    latency = float(cme.latency_total2)
    return {
        "energy_pj": float(cme.energy_total),
        "energy_by_level": energy_by_level,
        "energy_pj_exact": float(exact),
        "dram_words": dram_words,
        "traffic": traffic,
        "macs": macs,
        "mapping": text,
        "mapping_detail": detail,
        "latency_cycles": latency,
        "ideal_cycles": float(cme.ideal_temporal_cycle),
        "utilization": macs / (latency * hardware.pes) if latency else None,
    }


def run_zigzag(layer, hardware=DEFAULT_HARDWARE, *, workdir, lpf_limit=DEFAULT_LPF_LIMIT,
               spatial_mappings=3, spatial=None, same_data_no_access=False, opt="energy"):
    """ZigZag's best mapping of ``layer`` on ``hardware`` and its costs.

    Parameters
    ----------
    layer : dnnhw.golden.morph.Layer
    hardware : dnnhw.golden.morph.Hardware
    workdir : path
        Where the workload, accelerator and mapping YAML files are written (created).
    lpf_limit : int
        LOMA's loop-prime-factor limit (raised by ZigZag to the number of temporal
        loops, 8 for a 3D convolution whose dimensions all exceed the array): the taps are
        fixed innermost, so at most ``(lpf_limit - 3)!`` loop orders are mapped per spatial
        unrolling.
    spatial_mappings : int
        How many spatial unrollings ZigZag generates and maps (ignored with ``spatial``).
    spatial : dict, optional
        A fixed unrolling (see :func:`mapping_spec`).
    same_data_no_access : bool
        ZigZag's ``access_same_data_considered_as_no_access`` (its API passes ``True``):
        an innermost-memory read repeated by an irrelevant loop is free. ``False`` (the
        default here) counts it, as Morph does.
    opt : ``"energy"``, ``"latency"`` or ``"edp"``
        What picks the mapping.

    Returns
    -------
    dict
        ``energy_pj`` (ZigZag's total), ``energy_by_level`` (``dram``, ``l2``, ``l1``,
        ``reg``, ``mac`` in pJ), ``energy_pj_exact`` (the words of ``traffic`` times our
        energy per word, plus the MACs: see the module docstring for why it differs
        slightly from ZigZag's), ``dram_words``
        (``inputs``, ``weights``, ``outputs``: reads plus writes, partial-sum spills and
        refills included; ``total``), ``traffic``
        (``traffic[level][operand] = {"reads", "writes"}`` in words, as
        :class:`dnnhw.golden.morph.Counts` has it), ``macs``, ``mapping`` (text),
        ``mapping_detail``, ``latency_cycles`` (ZigZag's, stalls and on/off-loading
        included), ``ideal_cycles``, ``utilization``, ``zigzag_version``,
        ``seconds`` (wall) and ``cpu_seconds`` of the search, ``settings``.
    """
    if not isinstance(layer, Layer):
        raise TypeError("layer must be a dnnhw.golden.morph.Layer, "
                        f"got {type(layer).__name__}")
    import logging

    from zigzag.stages.evaluation.cost_model_evaluation import CostModelStage
    from zigzag.stages.main import MainStage
    from zigzag.stages.mapping.spatial_mapping_generation import SpatialMappingGeneratorStage
    from zigzag.stages.mapping.temporal_mapping_generator_stage import (
        TemporalMappingGeneratorStage)
    from zigzag.stages.parser.accelerator_parser import AcceleratorParserStage
    from zigzag.stages.parser.workload_parser import WorkloadParserStage
    from zigzag.stages.results.reduce_stages import (MinimalEDPStage, MinimalEnergyStage,
                                                     MinimalLatencyStage)
    from zigzag.stages.workload_iterator import WorkloadStage
    from zigzag.mapping.temporal_mapping import TemporalMappingType

    reduce_stage = {"energy": MinimalEnergyStage, "latency": MinimalLatencyStage,
                    "edp": MinimalEDPStage}[opt.lower()]
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    accelerator_path = workdir / "accelerator.yaml"
    mapping_path = workdir / "mapping.yaml"
    _write_yaml(accelerator_path, accelerator_spec(hardware))
    _write_yaml(mapping_path, mapping_spec(layer, spatial))
    workload = workload_spec(layer)
    _write_yaml(workdir / "workload.yaml", workload)

    stages = [WorkloadParserStage, AcceleratorParserStage, WorkloadStage, reduce_stage,
              SpatialMappingGeneratorStage, reduce_stage, TemporalMappingGeneratorStage,
              CostModelStage]
    quiet = logging.getLogger("zigzag")
    old_level = quiet.level
    quiet.setLevel(logging.ERROR)
    start, cpu = time.perf_counter(), time.process_time()
    try:
        answers = MainStage(
            list_of_callables=stages,
            accelerator=str(accelerator_path),
            workload=workload,
            mapping=str(mapping_path),
            dump_folder=str(workdir),
            loma_lpf_limit=lpf_limit,
            loma_show_progress_bar=False,
            nb_mappings_generated=spatial_mappings,
            enable_mix_spatial_mapping_generation=True,
            access_same_data_considered_as_no_access=same_data_no_access,
            temporal_mapping_type=TemporalMappingType.UNEVEN,
        ).run()
    finally:
        quiet.setLevel(old_level)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert len(answers) == 1, f"one layer, one best mapping; ZigZag gave {len(answers)}"
    cme = answers[0][0]
    result = _results(cme, layer, hardware)
    result.update(zigzag_version=zigzag_version(), seconds=seconds, cpu_seconds=cpu,
                  settings={"lpf_limit": lpf_limit, "spatial_mappings": spatial_mappings,
                            "spatial": spatial, "same_data_no_access": same_data_no_access,
                            "opt": opt, "array": array_shape(hardware)})
    return result


def c3d_layers():
    """C3D conv1 .. conv5b at 16 x 112 x 112 (3x3x3 filters, padding 1, stride 1)."""
    shapes = [("conv1", 3, 64, 16, 112), ("conv2", 64, 128, 16, 56),
              ("conv3a", 128, 256, 8, 28), ("conv3b", 256, 256, 8, 28),
              ("conv4a", 256, 512, 4, 14), ("conv4b", 512, 512, 4, 14),
              ("conv5a", 512, 512, 2, 7), ("conv5b", 512, 512, 2, 7)]
    return [Layer(C=c, F=f, H=s, W=s, K=k, name=name) for name, c, k, f, s in shapes]


def main(argv=None):
    """``python -m dnnhw.bench.morph_zigzag [--workdir D] [--lpf N] [layer ...]``: a table."""
    import argparse
    import json
    import tempfile

    p = argparse.ArgumentParser(prog="python -m dnnhw.bench.morph_zigzag",
                                description="C3D layers through ZigZag on Morph's hardware")
    p.add_argument("layers", nargs="*", help="C3D layer names (default: all eight)")
    p.add_argument("--workdir", default=None)
    p.add_argument("--lpf", type=int, default=DEFAULT_LPF_LIMIT)
    p.add_argument("--spatial-mappings", type=int, default=3)
    p.add_argument("--json", help="write every result to this file")
    args = p.parse_args(argv)
    if not zigzag_available():
        raise SystemExit("ZigZag is not installed: pip install 'dnnhw[zigzag]'")
    layers = [la for la in c3d_layers() if not args.layers or la.name in args.layers]
    root = Path(args.workdir or tempfile.mkdtemp(prefix="morph-zigzag-"))
    rows = {}
    print(f"ZigZag {zigzag_version()}, workdir {root}")
    print("| layer | energy (uJ) | DRAM words in / w / out | MACs | cycles | CPU s "
          "| mapping |")
    print("|---|---|---|---|---|---|---|")
    for layer in layers:
        r = run_zigzag(layer, workdir=root / layer.name, lpf_limit=args.lpf,
                       spatial_mappings=args.spatial_mappings)
        rows[layer.name] = r
        d = r["dram_words"]
        print(f"| {layer.name} | {r['energy_pj'] / 1e6:.1f} | {d['inputs']} / "
              f"{d['weights']} / {d['outputs']} | {r['macs']} | {r['latency_cycles']:.4g} | "
              f"{r['cpu_seconds']:.1f} | {r['mapping']} |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1, default=str)
    return rows


if __name__ == "__main__":
    main()
