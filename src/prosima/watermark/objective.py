"""The generator's training objective: efficacy + similarity + Laplacian smoothness (+ specificity).

``loss = w_efficacy * CE(f(marked), target)`` over marked non-target images (the mark must read as
the target class to the efficacy model f) ``+ w_ssim * (1 - SSIM(marked, clean)) + w_l2 *
mean(delta**2)`` (the mark must be invisible) ``+ w_laplace * mean(laplacian(delta)**2)`` (no high
frequencies, so the mark survives rescaling) ``+ w_specificity * CE(g(marked), true label)`` when a
second, clean model g is given (the mark must not fool a model that never learnt it, so that clean
models do not answer to it). SSIM is the loss SSIM of ``prosima.models.ssim_loss``: 7 x 7 Gaussian
window (sigma 1.5), valid windows, data range 1, K1 0.01, K2 0.03.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F

from prosima.models.ssim_loss import ssim

_LAPLACE = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


@dataclass(frozen=True)
class ObjectiveWeights:
    """The weights of the four terms."""

    efficacy: float = 1.0
    ssim: float = 1.0
    l2: float = 10.0
    laplace: float = 50.0
    specificity: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def laplacian(delta: torch.Tensor) -> torch.Tensor:
    """The 5-point Laplacian of (N, 1, H, W) ``delta`` (replicate padding)."""
    return F.conv2d(F.pad(delta, (1, 1, 1, 1), mode="replicate"), _LAPLACE.to(delta)[None, None])


def mark_loss(
    logits: torch.Tensor,
    target: int,
    clean: torch.Tensor,
    marked: torch.Tensor,
    delta: torch.Tensor,
    weights: ObjectiveWeights,
    clean_logits: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The total loss and each term (as floats) for one batch of non-target images; ``logits`` are
    the efficacy model's on the marked images, ``clean_logits`` (optional) a clean model's, whose
    true ``labels`` the specificity term keeps."""
    goal = torch.full((len(logits),), int(target), dtype=torch.long)
    terms = {
        "efficacy": F.cross_entropy(logits, goal),
        "ssim": 1.0 - ssim(marked, clean),
        "l2": (delta**2).mean(),
        "laplace": (laplacian(delta) ** 2).mean(),
    }
    if clean_logits is not None and labels is not None:
        terms["specificity"] = F.cross_entropy(clean_logits, labels)
    total = sum(getattr(weights, name) * value for name, value in terms.items())
    return total, {name: value.item() for name, value in terms.items()}
