"""Classical fusion baselines for two registered 2-D sources in [0, 1].

``average`` and ``maximum`` work pixel by pixel; ``laplacian_pyramid`` (Burt & Adelson 1983) and
``wavelet`` (a discrete wavelet transform, PyWavelets) fuse a multi-scale decomposition, taking the
coefficient of larger magnitude in every detail band and the mean of the two coarse bases. Each
returns a float32 image of the sources' shape (odd sizes included), clipped to [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pywt
from scipy import ndimage
from skimage.transform import pyramid_reduce, resize

from prosima.imaging.validation import ImageError, check_image

_EXPAND_SIGMA = 2 / 3  # skimage's pyramid smoothing for a factor of 2: sigma = 2 * factor / 6


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    check_image(a, "a", ndim=(2,))
    check_image(b, "b", ndim=(2,))
    a_, b_ = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a_.shape != b_.shape:
        raise ImageError(f"shape mismatch: a {a_.shape}, b {b_.shape}")
    return a_, b_


def _out(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0.0, 1.0).astype(np.float32)


def _max_abs(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pixel-wise, whichever of ``x`` and ``y`` has the larger magnitude (``x`` on ties)."""
    return np.where(np.abs(x) >= np.abs(y), x, y)


def average(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pixel-wise mean ``(a + b) / 2``."""
    a_, b_ = _pair(a, b)
    return _out((a_ + b_) / 2)


def maximum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pixel-wise max-absolute rule (for images in [0, 1], the brighter source)."""
    a_, b_ = _pair(a, b)
    return _out(_max_abs(a_, b_))


def _reduce(x: np.ndarray) -> np.ndarray:
    return pyramid_reduce(x, downscale=2, order=1, mode="reflect", preserve_range=True)


def _expand(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Upsample to exactly ``shape`` (bilinear) and smooth, as skimage's ``pyramid_expand`` does."""
    up = resize(x, shape, order=1, mode="reflect", anti_aliasing=False, preserve_range=True)
    return ndimage.gaussian_filter(up, _EXPAND_SIGMA, mode="reflect")


def _laplacian(x: np.ndarray, levels: int) -> list[np.ndarray]:
    """Detail layers ``G_k - expand(G_{k+1})`` for k < levels, then the Gaussian base ``G_levels``."""
    layers, g = [], x
    for _ in range(levels):
        smaller = _reduce(g)
        layers.append(g - _expand(smaller, g.shape))
        g = smaller
    return [*layers, g]


def laplacian_pyramid(a: np.ndarray, b: np.ndarray, levels: int = 4) -> np.ndarray:
    """Laplacian-pyramid fusion: ``levels`` halvings (fewer on images too small for them),
    max-absolute rule on each detail layer, mean of the two bases, then collapse the pyramid."""
    if levels < 0:
        raise ValueError(f"levels must be >= 0, got {levels}")
    a_, b_ = _pair(a, b)
    levels = min(levels, max(int(np.log2(min(a_.shape))), 0))
    la, lb = _laplacian(a_, levels), _laplacian(b_, levels)
    fused = (la[-1] + lb[-1]) / 2
    for da, db in zip(reversed(la[:-1]), reversed(lb[:-1]), strict=True):
        fused = _max_abs(da, db) + _expand(fused, da.shape)
    return _out(fused)


def wavelet(a: np.ndarray, b: np.ndarray, name: str = "db2", levels: int = 3) -> np.ndarray:
    """DWT fusion (``pywt.wavedec2``, symmetric extension): mean of the approximations, max-absolute
    rule on every detail band, inverse transform cropped to the input shape. ``levels`` is capped at
    ``pywt.dwt_max_level`` so no band is all boundary."""
    if levels < 0:
        raise ValueError(f"levels must be >= 0, got {levels}")
    a_, b_ = _pair(a, b)
    levels = min(levels, pywt.dwt_max_level(min(a_.shape), name))
    ca = pywt.wavedec2(a_, name, mode="symmetric", level=levels)
    cb = pywt.wavedec2(b_, name, mode="symmetric", level=levels)
    fused: list = [(ca[0] + cb[0]) / 2]
    for da, db in zip(ca[1:], cb[1:], strict=True):
        fused.append(tuple(_max_abs(x, y) for x, y in zip(da, db, strict=True)))
    out = pywt.waverec2(fused, name, mode="symmetric")
    return _out(out[: a_.shape[0], : a_.shape[1]])


Fusion = Callable[[np.ndarray, np.ndarray], np.ndarray]

BASELINES: dict[str, Fusion] = {
    "average": average,
    "maximum": maximum,
    "laplacian_pyramid": laplacian_pyramid,
    "wavelet": wavelet,
}
