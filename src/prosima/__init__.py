"""PROSIMA: provenance-secured semantic restoration of medical images."""

__version__ = "0.1.0"
