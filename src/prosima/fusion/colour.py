"""ITU-R BT.601 full-range YCbCr (the JPEG convention) for the pseudo-colour PET and SPECT images:
fuse the luminance Y with the MRI, keep Cb and Cr, and convert back."""

from __future__ import annotations

import numpy as np

_TO_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
_TO_RGB = np.linalg.inv(_TO_YCC)


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB in [0, 1] -> (H, W, 3) Y, Cb, Cr with Y in [0, 1], Cb and Cr centred on 0.5."""
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got {rgb.shape}")
    ycc = rgb.astype(np.float64) @ _TO_YCC.T
    ycc[..., 1:] += 0.5
    return ycc.astype(np.float32)


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """The inverse of ``rgb_to_ycbcr``, clipped to [0, 1]."""
    if ycc.ndim != 3 or ycc.shape[-1] != 3:
        raise ValueError(f"expected an (H, W, 3) YCbCr image, got {ycc.shape}")
    x = ycc.astype(np.float64).copy()
    x[..., 1:] -= 0.5
    return np.clip(x @ _TO_RGB.T, 0.0, 1.0).astype(np.float32)


def recolour(fused_y: np.ndarray, chroma: np.ndarray | None) -> np.ndarray:
    """The fused luminance (H, W) with the colour source's chroma (H, W, 2) as RGB (H, W, 3); with
    no chroma, the luminance itself (H, W)."""
    if chroma is None:
        return np.clip(fused_y, 0, 1).astype(np.float32)
    if chroma.shape != (*fused_y.shape, 2):
        raise ValueError(f"chroma {chroma.shape} does not fit the fused image {fused_y.shape}")
    return ycbcr_to_rgb(np.concatenate([fused_y[..., None], chroma], -1))
