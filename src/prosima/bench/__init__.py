"""Benchmarks: one module per reproduced table or figure."""
