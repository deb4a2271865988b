"""Synthesis: out-of-context harness, Yosys / nextpnr flow, QoR records."""
