"""The constants of each core, written once: modes, legal ranges, encodings.

One small module per core, importing nothing but the standard library, so that
``dnnhw.rtl``, ``dnnhw.golden`` and the catalog can all read the same definition
(rtl and golden may not import each other). Hardware latencies are not here: they are
properties of the rtl components (for example ``DiffyTile.LATENCY``), written in the
sidecar; read them from there.
"""
