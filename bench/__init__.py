"""Benchmark harness for the back-office services: see docs/performance.md."""
