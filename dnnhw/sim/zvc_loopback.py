"""cocotb testbench of ``zvc-loopback`` (compressor -> decompressor): windows in, the same windows out.

The tests, their config knobs and what they record are described in :mod:`dnnhw.sim.zvc`.
"""

import cocotb

from .zvc import latency_test, random_stalls_test, round_trip_test, throughput_test


@cocotb.test()
async def latency(dut):
    await latency_test(dut, "loopback")


@cocotb.test()
async def throughput(dut):
    await throughput_test(dut, "loopback")


@cocotb.test()
async def random_stalls(dut):
    await random_stalls_test(dut, "loopback")


@cocotb.test()
async def round_trip(dut):
    await round_trip_test(dut, "loopback")
