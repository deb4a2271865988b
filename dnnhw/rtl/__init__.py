"""Amaranth components. Modules here import amaranth (and the standard library) only."""
