"""Self-supervised objective of the encoders: contrastive views, optionally plus reconstruction.

Two views of the same shard-sized window of a slice must map close together and away from the other
windows in the batch (NT-Xent, SimCLR). The semantic encoder's views differ by Gaussian noise, a small
shift and a gain, so it learns to ignore noise and keep anatomy; a reconstruction head that decodes the
clean window (downsampled) from the embedding makes the embedding carry the layout of the anatomy and
not only what tells windows apart. The evaluation encoder is trained on views that differ by flips,
turns, shift and gain but no noise, with another architecture and seed, so it grades restorations
without sharing the semantic loss's blind spots.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class PretextHeads(nn.Module):
    """Training-only heads on top of the embedding: projection (contrastive) and reconstruction."""

    def __init__(
        self, embed_dim: int, projection_dim: int = 64, recon_size: int = 16, reconstruct: bool = True
    ) -> None:
        super().__init__()
        self.recon_size = recon_size
        self.projection = nn.Sequential(
            nn.Linear(embed_dim, embed_dim), nn.GELU(), nn.Linear(embed_dim, projection_dim)
        )
        self.reconstruction = (
            nn.Sequential(nn.Linear(embed_dim, 256), nn.GELU(), nn.Linear(256, recon_size * recon_size))
            if reconstruct
            else None
        )


def nt_xent(a: torch.Tensor, b: torch.Tensor, temperature: float = 0.1) -> tuple[torch.Tensor, float]:
    """Normalised-temperature cross entropy over 2B views; also the top-1 accuracy of finding the partner."""
    n = a.shape[0]
    z = F.normalize(torch.cat([a, b]), dim=-1)
    sim = z @ z.t() / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    loss = F.cross_entropy(sim, target)
    acc = float((sim.argmax(dim=1) == target).float().mean())
    return loss, acc


def sample_windows(
    images: torch.Tensor,
    n: int,
    window: int,
    jitter: int,
    generator: torch.Generator,
    min_foreground: float = 0.25,
    tries: int = 5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two clean ``[n, 1, window, window]`` crops of the same places, up to ``jitter`` px apart.

    Places are drawn uniformly; up to ``tries`` draws look for one with ``min_foreground`` non-zero pixels.
    """
    big = window + 2 * jitter
    count, h, w = images.shape
    if h < big or w < big:
        raise ValueError(f"slices of {h}x{w} are too small for windows of {window} with jitter {jitter}")
    a, b = [], []
    for _ in range(n):
        for _ in range(tries):
            i = int(torch.randint(count, (1,), generator=generator))
            y = int(torch.randint(h - big + 1, (1,), generator=generator))
            x = int(torch.randint(w - big + 1, (1,), generator=generator))
            crop = images[i, y : y + big, x : x + big]
            if float((crop > 0).float().mean()) >= min_foreground:
                break
        oy, ox, py, px = (int(v) for v in torch.randint(2 * jitter + 1, (4,), generator=generator))
        a.append(crop[oy : oy + window, ox : ox + window])
        b.append(crop[py : py + window, px : px + window])
    return torch.stack(a).unsqueeze(1), torch.stack(b).unsqueeze(1)


def _geometric(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    out = []
    for img in x:
        k = int(torch.randint(4, (1,), generator=generator))
        img = torch.rot90(img, k, dims=(-2, -1))
        if int(torch.randint(2, (1,), generator=generator)):
            img = torch.flip(img, dims=(-1,))
        out.append(img)
    return torch.stack(out)


def make_view(
    clean: torch.Tensor, kind: str, generator: torch.Generator, sigma_max: float = 0.15
) -> tuple[torch.Tensor, torch.Tensor]:
    """A view of clean windows and its clean counterpart (gain and geometry applied, no noise)."""
    n = clean.shape[0]
    if kind == "noise":
        gain = 0.9 + 0.2 * torch.rand(n, 1, 1, 1, generator=generator)
        base = clean * gain
        sigma = sigma_max * torch.rand(n, 1, 1, 1, generator=generator)
        return base + sigma * torch.randn(clean.shape, generator=generator), base
    if kind == "geometric":
        gain = 0.8 + 0.4 * torch.rand(n, 1, 1, 1, generator=generator)
        base = _geometric(clean, generator) * gain
        return base, base
    raise ValueError(f"unknown view kind {kind!r}; choose 'noise' or 'geometric'")


def pretext_loss(
    encoder: nn.Module,
    heads: PretextHeads,
    view_a: torch.Tensor,
    view_b: torch.Tensor,
    target_a: torch.Tensor,
    temperature: float = 0.1,
    recon_weight: float = 1.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """NT-Xent of the two views' projections, plus decoding ``target_a`` from view a's embedding."""
    ea, eb = encoder(view_a), encoder(view_b)
    loss, acc = nt_xent(heads.projection(ea), heads.projection(eb), temperature)
    parts = {"contrastive": float(loss.detach()), "top1": acc}
    if heads.reconstruction is not None and recon_weight > 0:
        s = heads.recon_size
        want = F.adaptive_avg_pool2d(target_a, s).flatten(1)
        rec = F.mse_loss(heads.reconstruction(ea), want)
        parts["reconstruction"] = float(rec.detach())
        loss = loss + recon_weight * rec
    parts["total"] = float(loss.detach())
    return loss, parts
