"""Parley's wire contracts: every type that crosses a process boundary, and every subject name.

Services share nothing but this package and ``parley`` libs. Types here are msgspec Structs;
their JSON Schemas are exported under ``contracts/schemas`` by ``python -m parley.contracts``.
"""
