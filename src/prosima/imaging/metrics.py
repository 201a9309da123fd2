"""Image quality metrics with an explicit ``data_range``.

PSNR and SSIM come from scikit-image. SSIM uses the settings of Wang et al. (2004): an 11x11
Gaussian window with sigma 1.5, population covariance, K1 = 0.01, K2 = 0.03. Brain-masked PSNR
restricts the mean squared error to the brain, because a dark background inflates whole-slice
PSNR by several dB on skull-stripped MRI.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from prosima.imaging.validation import ImageError, check_image

SSIM_SETTINGS = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}


def _pair(reference: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref = check_image(reference, "reference")
    tst = check_image(test, "test")
    if ref.shape != tst.shape:
        raise ImageError(f"reference shape {ref.shape} differs from test shape {tst.shape}")
    return ref.astype(np.float64), tst.astype(np.float64)


def psnr(reference: np.ndarray, test: np.ndarray, data_range: float) -> float:
    """Peak signal-to-noise ratio in dB for images whose intensities span ``data_range``."""
    ref, tst = _pair(reference, test)
    return float(peak_signal_noise_ratio(ref, tst, data_range=data_range))


def ssim(reference: np.ndarray, test: np.ndarray, data_range: float) -> float:
    """Mean structural similarity (Gaussian 11x11 window, sigma 1.5) of 2-D images or 3-D volumes."""
    ref, tst = _pair(reference, test)
    return float(structural_similarity(ref, tst, data_range=data_range, **SSIM_SETTINGS))


def brain_mask(reference: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    """Foreground of a skull-stripped image: pixels above ``threshold``, holes filled."""
    ref = check_image(reference, "reference")
    return ndimage.binary_fill_holes(ref > threshold)


def masked_psnr(reference: np.ndarray, test: np.ndarray, mask: np.ndarray, data_range: float) -> float:
    """PSNR in dB over the pixels where ``mask`` is true."""
    ref, tst = _pair(reference, test)
    m = np.asarray(mask, dtype=bool)
    if m.shape != ref.shape:
        raise ImageError(f"mask shape {m.shape} differs from image shape {ref.shape}")
    if not m.any():
        raise ImageError("mask is empty: no pixels to compare")
    mse = float(np.mean((ref[m] - tst[m]) ** 2))
    return float("inf") if mse == 0.0 else float(10.0 * np.log10(data_range**2 / mse))


def brain_psnr(reference: np.ndarray, test: np.ndarray, data_range: float, threshold: float = 0.0) -> float:
    """PSNR inside the brain mask of ``reference``."""
    return masked_psnr(reference, test, brain_mask(reference, threshold), data_range)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of the angle between two embeddings, flattened; refuses zero vectors."""
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ImageError(f"embedding sizes differ: {x.size} vs {y.size}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ImageError("embedding contains NaN or infinite values")
    nx, ny = np.linalg.norm(x), np.linalg.norm(y)
    if nx == 0.0 or ny == 0.0:
        raise ImageError("cosine similarity of a zero vector is undefined")
    return float(np.dot(x, y) / (nx * ny))
