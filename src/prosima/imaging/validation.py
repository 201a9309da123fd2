"""The image error types, and the checks that refuse bad image arrays with a message naming the problem."""

from __future__ import annotations

import numpy as np

from prosima.errors import InputError


class ImageError(InputError, ValueError):
    """An image (file or array) is unusable; the message names the source and the problem."""


class ImageReadError(ImageError):
    """A file could not be read as an image; the message names the file and the problem."""


def check_image(
    array: np.ndarray,
    name: str = "image",
    *,
    ndim: tuple[int, ...] = (2, 3),
    allow_nonfinite: bool = False,
) -> np.ndarray:
    """Return ``array`` as a float32 ndarray, or raise ImageError naming what is wrong.

    Refuses non-numeric data, a dimensionality outside ``ndim``, empty arrays and
    (unless allowed) NaN or infinite values.
    """
    arr = np.asarray(array)
    if arr.dtype.kind not in "biuf":
        raise ImageError(f"{name}: dtype {arr.dtype} is not numeric")
    if arr.ndim not in ndim:
        want = " or ".join(f"{d}-D" for d in ndim)
        raise ImageError(f"{name}: expected a {want} array, got {arr.ndim}-D with shape {arr.shape}")
    if arr.size == 0 or 0 in arr.shape:
        raise ImageError(f"{name}: array is empty (shape {arr.shape})")
    arr = arr.astype(np.float32, copy=False)
    if not allow_nonfinite:
        bad = ~np.isfinite(arr)
        if bad.any():
            n_nan = int(np.isnan(arr).sum())
            n_inf = int(bad.sum()) - n_nan
            raise ImageError(f"{name}: contains {n_nan} NaN and {n_inf} infinite values")
    return arr
