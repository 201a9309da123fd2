"""The differentiable SSIM of the training losses (fusion, watermark): MONAI's, over valid windows.

``ssim(x, y)`` is the mean SSIM of two (N, C, H, W) or (N, C, D, H, W) batches over the windows that
lie wholly inside the image, every channel on its own, computed by MONAI's ``compute_ssim_and_cs``
(float32) with an ``SSIMWindow`` (``prosima.imaging.metrics``). On those windows it is the metric
SSIM: scikit-image reflects the image at the borders and crops the half window they touch, so the
two agree for any window both can build (tests/models/test_ssim_loss.py). The losses use
``LOSS_WINDOW``, a 7x7 Gaussian window with sigma 1.5 (population covariance, K1 0.01, K2 0.03);
scikit-image cannot build it (it cuts a Gaussian at 3.5 sigma, 11x11 for sigma 1.5).
"""

from __future__ import annotations

import torch
from monai.metrics.regression import KernelType, compute_ssim_and_cs

from prosima.imaging.metrics import SSIMWindow

LOSS_WINDOW = SSIMWindow(size=7)


def ssim(
    x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, window: SSIMWindow = LOSS_WINDOW
) -> torch.Tensor:
    """Mean SSIM of batches ``x`` and ``y`` over their valid windows (a differentiable scalar)."""
    if x.shape != y.shape:
        raise ValueError(f"SSIM of batches of different shapes: {tuple(x.shape)} and {tuple(y.shape)}")
    spatial = x.ndim - 2
    if spatial not in (2, 3):
        raise ValueError(f"SSIM takes (N, C, H, W) or (N, C, D, H, W) batches, got shape {tuple(x.shape)}")
    if min(x.shape[2:]) < window.size:
        s = window.size
        raise ValueError(f"SSIM needs images of at least {s}x{s}, got {tuple(x.shape[2:])}")
    if window.sample_covariance:
        raise ValueError("the loss SSIM uses the population covariance (MONAI has no sample covariance)")
    ssim_map, _ = compute_ssim_and_cs(
        x,
        y,
        spatial_dims=spatial,
        kernel_size=[window.size] * spatial,
        kernel_sigma=[window.sigma] * spatial,
        data_range=data_range,
        kernel_type=KernelType.GAUSSIAN if window.gaussian else KernelType.UNIFORM,
        k1=window.k1,
        k2=window.k2,
    )
    return ssim_map.mean()
