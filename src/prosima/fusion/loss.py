"""The unsupervised fusion loss (no ground truth): structure, intensity and gradient against both
sources, as the fusion literature does (e.g. U2Fusion, SwinFusion, CDDFuse's first stage).

``loss = w_ssim * (1 - (SSIM(F, A) + SSIM(F, B)) / 2) + w_int * |F - max(A, B)|_1
+ w_grad * | |grad F| - max(|grad A|, |grad B|) |_1``, means over pixels; SSIM is the loss SSIM of
``prosima.models.ssim_loss`` (MONAI's, 7x7 Gaussian window, data range 1), the gradient magnitude
Sobel's (|gx| + |gy|, replicate padding).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch.nn import functional as F

from prosima.models.ssim_loss import ssim

_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


@dataclass(frozen=True)
class LossWeights:
    """The weights of the structure, intensity and gradient terms."""

    ssim: float = 1.0
    intensity: float = 1.0
    gradient: float = 2.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sobel_magnitude(x: torch.Tensor) -> torch.Tensor:
    """|gx| + |gy| of (N, C, H, W) ``x`` per channel (Sobel, replicate padding)."""
    c = x.shape[1]
    kx = _SOBEL_X.to(x)[None, None].repeat(c, 1, 1, 1)
    ky = kx.transpose(-1, -2)
    xp = F.pad(x, (1, 1, 1, 1), mode="replicate")
    return F.conv2d(xp, kx, groups=c).abs() + F.conv2d(xp, ky, groups=c).abs()


class FusionLoss(torch.nn.Module):
    """The loss of fused (N, 1, H, W) ``f`` against sources (N, 2, H, W); ``terms`` after a call
    holds each term's value."""

    def __init__(self, weights: LossWeights | None = None) -> None:
        super().__init__()
        self.weights = weights or LossWeights()
        self.terms: dict[str, float] = {}

    def forward(self, f: torch.Tensor, sources: torch.Tensor) -> torch.Tensor:
        a, b = sources[:, :1], sources[:, 1:2]
        terms = {
            "ssim": 1.0 - 0.5 * (ssim(f, a) + ssim(f, b)),
            "intensity": (f - torch.maximum(a, b)).abs().mean(),
            "gradient": (sobel_magnitude(f) - sobel_magnitude(sources).amax(1, keepdim=True)).abs().mean(),
        }
        self.terms = {k: float(v.detach()) for k, v in terms.items()}
        return sum(getattr(self.weights, k) * v for k, v in terms.items())
