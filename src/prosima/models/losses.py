"""The three restoration losses and their weighted sum (paper eq. 3/5).

``L = L_pixel + lambda1 * L_perceptual + lambda2 * L_semantic``. Every term is zero when the restored
image equals the clean one and grows with the difference. The networks behind the perceptual and
semantic terms are frozen: gradients reach the restored image, never their weights.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

PIXEL_KINDS = ("l1", "l2")


def pixel_loss(restored: torch.Tensor, clean: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """Mean absolute (``l1``) or squared (``l2``) error."""
    if kind == "l1":
        return F.l1_loss(restored, clean)
    if kind == "l2":
        return F.mse_loss(restored, clean)
    raise ValueError(f"unknown pixel loss {kind!r}; choose from {PIXEL_KINDS}")


def perceptual_loss(features: nn.Module, restored: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """Mean over layers of the mean absolute difference of frozen feature maps."""
    with torch.no_grad():
        target = [f.detach() for f in features(clean)]
    got = features(restored)
    return torch.stack([F.l1_loss(a, b) for a, b in zip(got, target, strict=True)]).mean()


def tiles(x: torch.Tensor, size: int) -> torch.Tensor:
    """Non-overlapping ``size`` x ``size`` tiles of ``[B, C, H, W]`` (capped at H, W; remainder dropped)."""
    th, tw = min(size, x.shape[-2]), min(size, x.shape[-1])
    t = x.unfold(2, th, th).unfold(3, tw, tw)  # [B, C, nh, nw, th, tw]
    return t.permute(0, 2, 3, 1, 4, 5).reshape(-1, x.shape[1], th, tw)


def semantic_loss(
    encoder: nn.Module, restored: torch.Tensor, clean: torch.Tensor, tile: int = 64
) -> torch.Tensor:
    """``1 - cos`` between encoder embeddings of restored and clean tiles (shard-sized), averaged."""
    with torch.no_grad():
        target = encoder(tiles(clean, tile)).detach()
    got = encoder(tiles(restored, tile))
    return (1.0 - F.cosine_similarity(got, target, dim=-1, eps=1e-8)).mean()


class RestorationLoss(nn.Module):
    """``pixel + lambda1 * perceptual + lambda2 * semantic``; terms with a zero weight are not computed."""

    def __init__(
        self,
        pixel: str = "l1",
        lambda1: float = 0.0,
        lambda2: float = 0.0,
        features: nn.Module | None = None,
        encoder: nn.Module | None = None,
        tile: int = 64,
    ) -> None:
        super().__init__()
        if pixel not in PIXEL_KINDS:
            raise ValueError(f"unknown pixel loss {pixel!r}; choose from {PIXEL_KINDS}")
        if lambda1 < 0 or lambda2 < 0:
            raise ValueError("loss weights must be >= 0")
        if lambda1 > 0 and features is None:
            raise ValueError("lambda1 > 0 needs a feature network for the perceptual loss")
        if lambda2 > 0 and encoder is None:
            raise ValueError("lambda2 > 0 needs a semantic encoder")
        self.pixel, self.lambda1, self.lambda2, self.tile = pixel, float(lambda1), float(lambda2), int(tile)
        self.features = features if lambda1 > 0 else None
        self.encoder = encoder if lambda2 > 0 else None
        for net in (self.features, self.encoder):
            if net is not None:
                net.eval()
                for p in net.parameters():
                    p.requires_grad_(False)

    def train(self, mode: bool = True) -> RestorationLoss:  # the frozen networks stay in eval mode
        self.training = mode
        return self

    def forward(
        self, restored: torch.Tensor, clean: torch.Tensor, aux_batch: int | None = None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The weighted sum and its parts; ``aux_batch`` limits the perceptual and semantic terms (the
        costly ones: a frozen network's forward and backward) to the first that many samples."""
        total = pixel_loss(restored, clean, self.pixel)
        parts = {"pixel": float(total.detach())}
        aux_r, aux_c = (restored, clean) if aux_batch is None else (restored[:aux_batch], clean[:aux_batch])
        if self.features is not None:
            p = perceptual_loss(self.features, aux_r, aux_c)
            parts["perceptual"] = float(p.detach())
            total = total + self.lambda1 * p
        if self.encoder is not None:
            s = semantic_loss(self.encoder, aux_r, aux_c, self.tile)
            parts["semantic"] = float(s.detach())
            total = total + self.lambda2 * s
        parts["total"] = float(total.detach())
        return total, parts
