"""Verilog generation and the JSON sidecar that describes it.

The sidecar is the contract with testbenches, host drivers and outside users: they read
port names, widths and payload field offsets from it instead of hard-coding bit
positions. Its keys:

``core``, ``module``, ``params``
    Catalog name, Verilog module name, resolved parameters.
``clock``, ``reset``
    Port names of the single ``sync`` domain (reset is synchronous, active high).
``ports``
    ``[{"name", "direction": "in"|"out", "width"}]`` in Verilog port order.
``streams``
    For every ``lib.stream`` member: ``{"role": "sink"|"source", "valid", "ready",
    "payload", "width", "fields"}``. ``fields`` maps a payload field name to
    ``{"offset", "width"}`` plus, for arrays, ``{"count", "element_width"}``.
``signals``
    Plain (non-stream) ports with their direction and width.
``latency``, ``throughput``
    What the component guarantees, as documented on it.
"""

import itertools
import json
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Shape, Value
from amaranth.lib import data, stream, wiring

from .catalog import get_core


__all__ = ["describe", "generate"]


def _layout_fields(layout):
    fields = {}
    if isinstance(layout, data.StructLayout):
        for name, member in layout:
            entry = {"offset": member.offset, "width": member.width}
            if isinstance(member.shape, data.ArrayLayout):
                entry["count"] = member.shape.length
                entry["element_width"] = Shape.cast(member.shape.elem_shape).width
            fields[name] = entry
    return fields


def describe(component, *, core, module, params):
    """The sidecar dictionary of ``component`` converted as ``module``."""
    ports, streams, signals = [], {}, {}
    for path, member, value in component.signature.flatten(component):
        name = "__".join(str(p) for p in path)
        direction = "in" if member.flow == wiring.In else "out"
        ports.append({"name": name, "direction": direction, "width": len(Value.cast(value))})
    for member_name, member in component.signature.members.items():
        if member.is_port:
            signals[member_name] = {"direction": "in" if member.flow == wiring.In else "out",
                                    "width": len(Value.cast(getattr(component, member_name)))}
            continue
        sig = member.signature
        if isinstance(sig, wiring.FlippedSignature):
            sig = sig.flip()
        if not isinstance(sig, stream.Signature):
            continue
        # An array of streams (``In(stream.Signature(...)).array(n)``) is one entry per
        # element, named as its flattened ports are: ``inputs__0``, ``inputs__1``, ...
        for index in itertools.product(*(range(n) for n in member.dimensions)):
            value = getattr(component, member_name)
            for i in index:
                value = value[i]
            name = "__".join([member_name, *map(str, index)])
            payload = value.payload
            layout = payload.shape() if isinstance(payload, data.View) else None
            streams[name] = {
                "role": "sink" if member.flow == wiring.In else "source",
                "valid": f"{name}__valid",
                "ready": f"{name}__ready",
                "payload": f"{name}__payload",
                "width": len(Value.cast(payload)),
                "fields": _layout_fields(layout) if layout is not None else {},
            }
    ports += [{"name": "clk", "direction": "in", "width": 1},
              {"name": "rst", "direction": "in", "width": 1}]
    return {
        "core": core,
        "module": module,
        "params": params,
        "clock": "clk",
        "reset": "rst",
        "ports": ports,
        "streams": streams,
        "signals": signals,
        # Looked up on the class so that a property which raises is not taken for a
        # component that documents no latency.
        "latency": component.latency if hasattr(type(component), "latency") else None,
        "throughput": component.throughput if hasattr(type(component), "throughput") else None,
    }


def generate(core, params=None, out_dir="."):
    """Write ``<module>.v`` and ``<module>.json`` for a catalog core (a
    :class:`~dnnhw.catalog.Core` row, or the name of one in :data:`~dnnhw.catalog.CORES`)
    into ``out_dir``.

    Returns ``(verilog_path, sidecar_path, sidecar_dict)``.
    """
    core = get_core(core) if isinstance(core, str) else core
    params = core.resolve(params)
    module = core.module_name(params)
    component = core.build(params)
    text = verilog.convert(component, name=module, emit_src=False)
    sidecar = describe(component, core=core.name, module=module, params=params)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    v_path = out_dir / f"{module}.v"
    j_path = out_dir / f"{module}.json"
    v_path.write_text(text)
    j_path.write_text(json.dumps(sidecar, indent=2) + "\n")
    return v_path, j_path, sidecar
