"""Formal properties of the cores, checked with SymbiYosys from PyPI.

- :mod:`~dnnhw.formal.harness`: a formal top around any component (free producers that
  keep the stream rule, free consumers that stall at will).
- :mod:`~dnnhw.formal.properties`: :class:`~dnnhw.formal.properties.Property`, the stream
  rule every output gets, and the counting and liveness building blocks.
- :mod:`~dnnhw.formal.run`: one SymbiYosys run per property, verdicts, their table.
- One file per core family with its properties (named by the catalog row's ``proofs``).

``dnnhw prove CORE -p NAME=VALUE`` runs a core's properties and prints each verdict.
"""
