"""How an image's stored values map onto the [0, 1] range the models were trained on, and back.

Integer images (8- and 16-bit PNG, JPEG) are divided by their type's maximum, so the mapping does
not depend on the content and a corrupted copy maps exactly like its original. Float images already
in [0, 1] are kept; any other image (DICOM in its rescaled units, NIfTI) is min-max scaled, and the
range used is recorded with the restoration so the output can be written back in the input's units.
"""

from __future__ import annotations

import numpy as np

from prosima.imaging.io import LoadedImage


def model_range(loaded: LoadedImage) -> tuple[float, float]:
    """The stored values that map to 0 and to 1."""
    dt = np.dtype(loaded.meta.original_dtype)
    if loaded.meta.format in ("png", "jpeg") and dt.kind in "ui":
        return 0.0, float(np.iinfo(dt).max)
    lo, hi = (float(v) for v in loaded.meta.intensity_range)
    if lo >= 0.0 and hi <= 1.0:
        return 0.0, 1.0
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def to_model(array: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """Stored values to model units (float32, not clipped)."""
    lo, hi = value_range
    return ((np.asarray(array, dtype=np.float64) - lo) / (hi - lo)).astype(np.float32)


def from_model(unit: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """Model units back to stored values (float32), clipped to the range."""
    lo, hi = value_range
    return (np.clip(np.asarray(unit, dtype=np.float64), 0.0, 1.0) * (hi - lo) + lo).astype(np.float32)
