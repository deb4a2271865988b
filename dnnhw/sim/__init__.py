"""Simulation: the cocotb runner, shared stream drivers and monitors, per-core testbenches."""
