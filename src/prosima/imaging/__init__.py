"""Imaging half of PROSIMA: I/O, datasets, corruptions, metrics, shards, classical baselines.

Imports nothing from the ledger half.
"""
