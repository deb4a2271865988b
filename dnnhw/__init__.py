"""dnnhw: DNN-accelerator hardware generated from the literature.

Subpackages, with dependencies pointing one way (``cli/catalog -> synth, sim -> rtl, golden``):

``dnnhw.rtl``     Amaranth components, one block per file (imports amaranth only).
``dnnhw.golden``  NumPy golden models (imports numpy only).
``dnnhw.sim``     cocotb testbenches, stream drivers and the simulator runner.
``dnnhw.synth``   Yosys / nextpnr flow and QoR records.
"""

__version__ = "0.1.0"
