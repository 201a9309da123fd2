"""Image quality metrics with an explicit ``data_range``.

PSNR and SSIM come from scikit-image, computed in float64 on the values given. ``ssim`` is the one
metric SSIM of the package: by default with the settings of Wang et al. (2004), ``WANG_2004``: an
11x11 Gaussian window with sigma 1.5, population covariance, K1 = 0.01, K2 = 0.03; the fusion
metrics pass ``SKIMAGE_DEFAULTS`` (the definition of the evaluator fusion papers share). The
differentiable SSIM of the training losses (``prosima.models.ssim_loss``) takes the same
``SSIMWindow``. Brain-masked PSNR restricts the mean squared error to the brain, because a dark
background inflates whole-slice PSNR by several dB on skull-stripped MRI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from prosima.imaging.validation import ImageError, check_image

_SKIMAGE_TRUNCATE = 3.5  # scikit-image cuts its Gaussian window at 3.5 sigma


@dataclass(frozen=True)
class SSIMWindow:
    """The window and constants of an SSIM: ``size`` x ``size`` (per axis), Gaussian of ``sigma`` or
    uniform, local (co)variances with the population (1/n) or sample (1/(n-1)) normalisation."""

    size: int = 11
    gaussian: bool = True
    sigma: float = 1.5
    sample_covariance: bool = False
    k1: float = 0.01
    k2: float = 0.03

    def __post_init__(self) -> None:
        if self.size < 1 or self.size % 2 == 0:
            raise ImageError(f"SSIM window size must be odd and >= 1, got {self.size}")
        if self.sigma <= 0 or self.k1 <= 0 or self.k2 <= 0:
            raise ImageError(f"SSIM sigma, K1 and K2 must be > 0, got {self.sigma}, {self.k1}, {self.k2}")

    def skimage_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``skimage.metrics.structural_similarity`` for this window."""
        if self.gaussian and self.size != 2 * int(_SKIMAGE_TRUNCATE * self.sigma + 0.5) + 1:
            want = 2 * int(_SKIMAGE_TRUNCATE * self.sigma + 0.5) + 1
            raise ImageError(
                f"scikit-image cuts a Gaussian window at 3.5 sigma: sigma {self.sigma} gives "
                f"{want}x{want}, not {self.size}x{self.size}"
            )
        return {
            "win_size": self.size,
            "gaussian_weights": self.gaussian,
            "sigma": self.sigma,
            "use_sample_covariance": self.sample_covariance,
            "K1": self.k1,
            "K2": self.k2,
        }


WANG_2004 = SSIMWindow()
SKIMAGE_DEFAULTS = SSIMWindow(size=7, gaussian=False, sample_covariance=True)


def _pair(reference: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    check_image(reference, "reference")  # its copy is float32: compute on the values given
    check_image(test, "test")
    ref, tst = np.asarray(reference, dtype=np.float64), np.asarray(test, dtype=np.float64)
    if ref.shape != tst.shape:
        raise ImageError(f"reference shape {ref.shape} differs from test shape {tst.shape}")
    return ref, tst


def psnr(reference: np.ndarray, test: np.ndarray, data_range: float) -> float:
    """Peak signal-to-noise ratio in dB for images whose intensities span ``data_range``."""
    ref, tst = _pair(reference, test)
    return float(peak_signal_noise_ratio(ref, tst, data_range=data_range))


def ssim(reference: np.ndarray, test: np.ndarray, data_range: float, window: SSIMWindow = WANG_2004) -> float:
    """Mean structural similarity of 2-D images or 3-D volumes (default: Gaussian 11x11, sigma 1.5)."""
    ref, tst = _pair(reference, test)
    kwargs = window.skimage_kwargs()
    if min(ref.shape) < window.size:
        s = window.size
        raise ImageError(f"SSIM needs images of at least {s}x{s}, got {ref.shape}")
    return float(structural_similarity(ref, tst, data_range=data_range, **kwargs))


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
