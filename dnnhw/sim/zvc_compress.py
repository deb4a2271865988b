"""cocotb testbench of ``zvc-compress``: windows in, golden-checked compressed words out.

The tests, their config knobs and what they record are described in :mod:`dnnhw.sim.zvc`.
"""

import cocotb

from .zvc import latency_test, random_stalls_test, throughput_test


@cocotb.test()
async def latency(dut):
    await latency_test(dut, "compress")


@cocotb.test()
async def throughput(dut):
    await throughput_test(dut, "compress")


@cocotb.test()
async def random_stalls(dut):
    await random_stalls_test(dut, "compress")
