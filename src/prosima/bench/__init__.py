"""Benchmarks: one module per reproduced table or figure.

Each has a config dataclass (what it measures), ``measure(config)`` that runs it without printing
(progress goes through a ``progress.Progress``), and the ``run_*_bench`` function the command line
calls: measure, then render through ``render`` (tables, JSON document, figures).
"""
