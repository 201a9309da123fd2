"""Ledger half of PROSIMA: orders and proves byte strings; knows nothing of images."""
