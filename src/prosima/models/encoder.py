"""Semantic encoders: an image, or one GFT shard of it, to a unit-length embedding.

Two architectures share one interface so that the network graded by the benchmark can differ from
the one the semantic loss trains against: ``conv`` (plain strided convolutions with group norm, the
semantic encoder E/S) and ``residual`` (MONAI residual units with instance norm, the evaluation
encoder). Both accept any spatial size (global average pooling) and return ``[B, embed_dim]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from monai.networks.blocks import Convolution, ResidualUnit
from torch import nn
from torch.nn import functional as F

ENCODER_KINDS = ("conv", "residual")


@dataclass(frozen=True)
class EncoderSpec:
    """Everything needed to rebuild an encoder (stored in checkpoints and model cards)."""

    kind: str = "conv"
    channels: tuple[int, ...] = (32, 64, 128, 128)
    embed_dim: int = 128
    in_channels: int = 1
    groups: int = 8

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d


def _norm(kind: str, channels: int, groups: int) -> tuple:
    if kind == "conv":
        return ("group", {"num_groups": min(groups, channels)})
    return "instance"


class SemanticEncoder(nn.Module):
    """Image (or shard) to an L2-normalised embedding; ``features`` gives the per-stage feature maps."""

    def __init__(
        self,
        kind: str = "conv",
        channels: Sequence[int] = (32, 64, 128, 128),
        embed_dim: int = 128,
        in_channels: int = 1,
        groups: int = 8,
    ) -> None:
        super().__init__()
        if kind not in ENCODER_KINDS:
            raise ValueError(f"unknown encoder kind {kind!r}; choose from {ENCODER_KINDS}")
        if not channels or embed_dim < 1:
            raise ValueError("an encoder needs at least one stage and embed_dim >= 1")
        self.spec = EncoderSpec(kind, tuple(int(c) for c in channels), int(embed_dim), in_channels, groups)
        stages: list[nn.Module] = []
        prev = in_channels
        for i, ch in enumerate(self.spec.channels):
            stride = 1 if i == 0 else 2
            norm = _norm(kind, ch, groups)
            if kind == "conv":
                stage = nn.Sequential(
                    Convolution(2, prev, ch, strides=stride, kernel_size=3, act="GELU", norm=norm),
                    Convolution(2, ch, ch, kernel_size=3, act="GELU", norm=norm),
                )
            else:
                stage = ResidualUnit(
                    2, prev, ch, strides=stride, kernel_size=3, subunits=2, act="PRELU", norm=norm
                )
            stages.append(stage)
            prev = ch
        self.stages = nn.ModuleList(stages)
        self.head = nn.Linear(prev, embed_dim)

    @property
    def embed_dim(self) -> int:
        return self.spec.embed_dim

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps after each stage (for a perceptual loss)."""
        _check_input(x, self.spec.in_channels)
        out = []
        for stage in self.stages:
            x = stage(x)
            out.append(x)
        return out

    def embed_raw(self, x: torch.Tensor) -> torch.Tensor:
        """The embedding before normalisation, ``[B, embed_dim]``."""
        feats = self.features(x)[-1]
        return self.head(feats.mean(dim=(-2, -1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.embed_raw(x), dim=-1, eps=1e-8)


def _check_input(x: torch.Tensor, channels: int) -> None:
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(f"expected a [B, {channels}, H, W] tensor, got shape {tuple(x.shape)}")


def build_encoder(spec: dict | EncoderSpec) -> SemanticEncoder:
    """An encoder from its spec (a dict as stored in a checkpoint, or an ``EncoderSpec``)."""
    d = spec.to_dict() if isinstance(spec, EncoderSpec) else dict(spec)
    return SemanticEncoder(**d)
