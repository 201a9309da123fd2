"""The objective's terms: SSIM of an image with itself is 1, the Laplacian penalises high frequencies."""

from __future__ import annotations

import torch

from prosima.models.ssim_loss import ssim
from prosima.watermark.objective import ObjectiveWeights, laplacian, mark_loss


def test_ssim_and_laplacian():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 20, 20, generator=g)
    assert abs(float(ssim(x, x)) - 1.0) < 1e-6
    assert float(ssim(x, (x + 0.2 * torch.rand(2, 1, 20, 20, generator=g)).clamp(0, 1))) < 0.99
    assert float(laplacian(torch.full((1, 1, 8, 8), 0.03)).abs().max()) == 0.0
    ramp = torch.linspace(0, 0.03, 8).repeat(8, 1)[None, None]
    checker = 0.03 * (torch.arange(8)[:, None] + torch.arange(8)[None, :]).remainder(2).float()[None, None]
    assert (laplacian(checker) ** 2).mean() > 100 * (laplacian(ramp) ** 2).mean()


def test_mark_loss_terms_and_weights():
    g = torch.Generator().manual_seed(0)
    clean = torch.rand(3, 1, 12, 12, generator=g)
    delta = 0.01 * torch.randn(3, 1, 12, 12, generator=g)
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    total, terms = mark_loss(logits, 1, clean, clean + delta, delta, ObjectiveWeights())
    assert set(terms) == {"efficacy", "ssim", "l2", "laplace"} and all(v >= 0 for v in terms.values())
    w = ObjectiveWeights(efficacy=1.0, ssim=0.0, l2=0.0, laplace=0.0)
    only, _ = mark_loss(logits, 1, clean, clean + delta, delta, w)
    assert abs(float(only) - terms["efficacy"]) < 1e-6 and float(total) > float(only)
