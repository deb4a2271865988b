"""NumPy golden models. Modules here import numpy (and the standard library) only."""
