"""The loss SSIM (MONAI, torch) against the metric SSIM (scikit-image): one value for one window."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.losses import SSIMLoss
from scipy import ndimage

from prosima.imaging.metrics import SKIMAGE_DEFAULTS, WANG_2004, SSIMWindow, ssim
from prosima.models.ssim_loss import LOSS_WINDOW
from prosima.models.ssim_loss import ssim as loss_ssim


def _images(seed: int, shape: tuple[int, int] = (64, 72)) -> tuple[np.ndarray, np.ndarray]:
    """A smooth image in [0, 1] and a noisy, slightly blurred copy (float64)."""
    rng = np.random.default_rng(seed)
    clean = ndimage.gaussian_filter(rng.random(shape), 3.0)
    clean = (clean - clean.min()) / (clean.max() - clean.min())
    test = np.clip(ndimage.gaussian_filter(clean, 0.7) + rng.normal(0, 0.08, shape), 0, 1)
    return clean, test


def _batch(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x)[None, None]


POPULATION_UNIFORM_7 = SSIMWindow(size=7, gaussian=False)


@pytest.mark.parametrize("window", [WANG_2004, POPULATION_UNIFORM_7, SSIMWindow(size=9, sigma=1.2)])
@pytest.mark.parametrize("seed", range(4))
def test_the_loss_ssim_is_the_metric_ssim_for_the_same_window(window, seed):
    clean, test = _images(seed)
    metric = ssim(clean, test, 1.0, window)
    assert 0.2 < metric < 0.95
    assert float(loss_ssim(_batch(test), _batch(clean), 1.0, window)) == pytest.approx(metric, abs=1e-5)


def test_the_constants_and_data_range_agree_too():
    clean, test = _images(7)
    window = SSIMWindow(k1=0.02, k2=0.05)
    metric = ssim(clean * 255, test * 255, 255.0, window)
    assert metric != pytest.approx(ssim(clean, test, 1.0), abs=1e-3)  # the constants matter
    got = loss_ssim(_batch(test * 255), _batch(clean * 255), 255.0, window)
    assert float(got) == pytest.approx(metric, abs=1e-5)


def test_the_loss_window_is_monai_ssim_loss():
    """The fusion loss used MONAI's SSIMLoss(win_size=7), the watermark objective a 7x7 Gaussian of
    sigma 1.5 written out; both are this."""
    w = LOSS_WINDOW
    assert (w.size, w.gaussian, w.sigma, w.sample_covariance, w.k1, w.k2) == (7, True, 1.5, False, 0.01, 0.03)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(3, 1, 32, 40, generator=g), torch.rand(3, 1, 32, 40, generator=g)
    want = SSIMLoss(spatial_dims=2, data_range=1.0, win_size=7)(x, y)
    assert float(1 - loss_ssim(x, y)) == pytest.approx(float(want), abs=1e-6)


def test_the_loss_ssim_is_differentiable_and_one_on_equal_images():
    g = torch.Generator().manual_seed(1)
    clean = torch.rand(2, 1, 24, 24, generator=g)
    marked = (clean + 0.05 * torch.randn(2, 1, 24, 24, generator=g)).requires_grad_(True)
    value = loss_ssim(marked, clean)
    value.backward()
    assert marked.grad is not None and torch.isfinite(marked.grad).all() and marked.grad.abs().sum() > 0
    assert float(loss_ssim(clean, clean)) == pytest.approx(1.0, abs=1e-6)


def test_the_loss_ssim_refuses_what_it_cannot_compute():
    x = torch.zeros(1, 1, 6, 6)
    with pytest.raises(ValueError, match="at least 7x7"):
        loss_ssim(x, x)
    with pytest.raises(ValueError, match="different shapes"):
        loss_ssim(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 9))
    with pytest.raises(ValueError, match="sample covariance"):
        loss_ssim(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8), window=SKIMAGE_DEFAULTS)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        loss_ssim(torch.zeros(8, 8), torch.zeros(8, 8))
