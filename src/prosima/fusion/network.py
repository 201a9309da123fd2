"""The BMIF fusion network, built so that the very same network runs on CKKS ciphertexts.

An Inception stem (parallel convolutions of several sizes on the two stacked sources: 1x1, 3x3, 5x5
and a 3x3 dilated by 4, so the receptive field is 9x9), then pointwise (1x1) layers with quadratic
activations ``y = x + a * x**2`` (``a`` learnt per channel), and a 1x1 output added to the mean of
the sources, or, with ``select`` > 0, to a polynomial maximum of the sources (below). Every layer
after the stem is pointwise and every activation is a polynomial, so an
encrypted forward pass needs only plaintext-weighted sums of ciphertexts and ciphertext squares:
the stem's spatial taps are the only neighbourhood access, and ``tap_offsets`` lists them so a
site can encrypt each shifted source once (``fusion.he``). Padding is replicate ("edge").

The polynomial maximum: ``max(a, b) = (a + b) / 2 + |a - b| / 2`` and ``|d| = d * sign(d)``, with
``sign`` approximated on [-1, 1] by ``select`` compositions of ``p(x) = (15x - 10x^3 + 3x^5) / 8``
(odd, ``p(1) = 1``, flat at +-1, slope 15/8 at 0; each composition sharpens the step). Only
additions and multiplications: the network can express the selection rule it is measured against,
and the learnt layers add what the rule misses (gating, detail).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

BRANCHES: tuple[tuple[int, int], ...] = ((1, 1), (3, 1), (5, 1), (3, 4))  # (kernel, dilation)


@dataclass(frozen=True)
class FusionConfig:
    """Channels per stem branch, hidden channels, and the stem's (kernel, dilation) branches."""

    branch_channels: int = 8
    hidden: int = 16
    branches: tuple[tuple[int, int], ...] = BRANCHES
    select: int = 0  # compositions of the sign polynomial (0: the output is added to the mean)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FusionConfig:
        return cls(
            branch_channels=int(d["branch_channels"]),
            hidden=int(d["hidden"]),
            branches=tuple((int(k), int(r)) for k, r in d["branches"]),
            select=int(d.get("select", 0)),  # weights from before it: 0
        )


class QuadAct(nn.Module):
    """``y = x + a * x**2`` with one learnt ``a`` per channel (a polynomial: CKKS-friendly)."""

    def __init__(self, channels: int, init: float = 0.05) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.full((channels,), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.a[None, :, None, None] * x * x


def sign_step(x: torch.Tensor) -> torch.Tensor:
    """One composition of the odd sign polynomial ``(15x - 10x^3 + 3x^5) / 8``."""
    x2 = x * x
    return x * (15.0 - 10.0 * x2 + 3.0 * x2 * x2) / 8.0


def polynomial_max(
    a: torch.Tensor, b: torch.Tensor, steps: int, gain: torch.Tensor | float = 1.0
) -> torch.Tensor:
    """``(a + b) / 2 + d * s(d) / 2`` with ``d = a - b`` and ``s`` ``steps`` compositions of
    ``sign_step`` on ``gain * d`` clamped to [-1, 1] (the range the polynomial is built for)."""
    d = a - b
    s = (gain * d).clamp(-1.0, 1.0)
    for _ in range(steps):
        s = sign_step(s)
    return 0.5 * (a + b) + 0.5 * d * s


class FusionNet(nn.Module):
    """(N, 2, H, W) sources in [0, 1] (channel 0 the MRI, 1 the other modality's luminance) ->
    (N, 1, H, W) fused luminance, unclamped (``fuse`` clamps). Any H, W >= 1."""

    def __init__(self, config: FusionConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or FusionConfig()
        self.stem = nn.ModuleList(
            nn.Conv2d(2, cfg.branch_channels, k, dilation=r, padding=0) for k, r in cfg.branches
        )
        width = cfg.branch_channels * len(cfg.branches)
        self.act1 = QuadAct(width)
        self.mix = nn.Conv2d(width, cfg.hidden, 1)
        self.act2 = QuadAct(cfg.hidden)
        self.out = nn.Conv2d(cfg.hidden, 1, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        if cfg.select < 0:
            raise ValueError(f"select must be >= 0, got {cfg.select}")

    @property
    def reach(self) -> int:
        """How far (pixels) the stem looks from the centre: its replicate padding."""
        return max(r * (k // 2) for k, r in self.config.branches)

    def stem_features(self, x: torch.Tensor) -> torch.Tensor:
        """The concatenated stem branches (before the first activation)."""
        feats = []
        for conv, (k, r) in zip(self.stem, self.config.branches, strict=True):
            p = r * (k // 2)
            feats.append(conv(F.pad(x, (p, p, p, p), mode="replicate") if p else x))
        return torch.cat(feats, 1)

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """The features the output layer reads (after the second activation)."""
        return self.act2(self.mix(self.act1(self.stem_features(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 2:
            raise ValueError(f"FusionNet expects (N, 2, H, W) sources, got {tuple(x.shape)}")
        return self.out(self.hidden(x)) + self.base(x)

    def base(self, x: torch.Tensor) -> torch.Tensor:
        """What the learnt output is added to: the sources' mean, or their polynomial maximum."""
        if not self.config.select:
            return x.mean(1, keepdim=True)
        return polynomial_max(x[:, :1], x[:, 1:2], self.config.select)


def tap_offsets(config: FusionConfig) -> list[tuple[int, int]]:
    """Every (dy, dx) the stem reads, sorted: the shifted copies of each source an encrypted
    forward pass needs."""
    taps = set()
    for k, r in config.branches:
        h = k // 2
        taps |= {(r * i, r * j) for i in range(-h, h + 1) for j in range(-h, h + 1)}
    return sorted(taps)


def stem_tap_weights(model: FusionNet) -> tuple[torch.Tensor, torch.Tensor]:
    """The stem as one linear map over the taps: weights (C, 2, T) in ``tap_offsets`` order and
    biases (C,), so ``stem_features(x)[:, c] = sum_{s,t} w[c, s, t] * shift_t(x[:, s]) + b[c]``."""
    taps = tap_offsets(model.config)
    index = {t: i for i, t in enumerate(taps)}
    rows, biases = [], []
    for conv, (k, r) in zip(model.stem, model.config.branches, strict=True):
        h = k // 2
        w = torch.zeros(conv.out_channels, 2, len(taps))
        for i in range(k):
            for j in range(k):
                w[:, :, index[(r * (i - h), r * (j - h))]] = conv.weight[:, :, i, j].detach()
        rows.append(w)
        biases.append(conv.bias.detach())
    return torch.cat(rows), torch.cat(biases)
