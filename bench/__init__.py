"""Benchmarks: print figures, assert nothing. Run with ``just bench``."""
