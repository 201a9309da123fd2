"""Rebuild a corrupted or tampered image from the image it was made from and its record.

A corruption record names its kind under ``corruption``, a tamper record under ``name``; either may
have been through JSON. Nothing is drawn: the record holds every sampled value and the seed of any
noise, so the result equals the original output pixel for pixel.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from prosima.imaging.corruption import replay_corruption
from prosima.imaging.tamper import replay_tamper
from prosima.imaging.validation import ImageError


def replay(image: np.ndarray, record: Mapping[str, Any]) -> np.ndarray:
    """The output the corruption or tamper ``record`` describes, applied again to ``image``."""
    if not isinstance(record, Mapping):
        raise ImageError(f"a corruption or tamper record is a mapping, got {type(record).__name__}")
    if "corruption" in record:
        return replay_corruption(image, record).image
    if "name" in record:
        return replay_tamper(image, record).array
    raise ImageError("not a corruption or tamper record: it has neither 'corruption' nor 'name'")
