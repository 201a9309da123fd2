"""Simulated networks for benchmarks and fault drills: Byzantine schedules, network runs and workloads."""
