"""Benchmarks: scripts that measure fieldapp, not tests. Figures go in docs/PERFORMANCE.md."""
