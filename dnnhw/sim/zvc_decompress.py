"""cocotb testbench of ``zvc-decompress``: golden-compressed words in, the original windows out.

The tests, their config knobs and what they record are described in :mod:`dnnhw.sim.zvc`.
"""

import cocotb

from .zvc import latency_test, random_stalls_test, throughput_test


@cocotb.test()
async def latency(dut):
    await latency_test(dut, "decompress")


@cocotb.test()
async def throughput(dut):
    await throughput_test(dut, "decompress")


@cocotb.test()
async def random_stalls(dut):
    await random_stalls_test(dut, "decompress")
