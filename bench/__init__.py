"""Benchmarks, each run as `python -m bench.NAME` (see README.md)."""
