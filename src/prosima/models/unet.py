"""Hybrid U-Net generator G: convolutions for local texture, transformer blocks for global coherence.

The input is pixel-unshuffled (FFDNet-style) so that the full-resolution work stays cheap, then runs
through residual convolution levels (MONAI ``Convolution``), a bottleneck of pre-norm transformer blocks
(torch's fused attention; MONAI's ``TransformerBlock`` would need einops) with a convolutional position
encoding (so any input size works), and a mirrored decoder with additive skips. There is no
normalisation layer, so a crop restores the same way as the whole slice.

Conditioning on the latent fingerprint z* is FiLM: each shard's vector is projected to
``cond_channels`` numbers and then, per level, to a per-channel scale and shift; every pixel of a level
takes the shifts of the shards under it, weighted by the fraction of its area each shard's core covers
(``shard_index`` says which shard holds each input pixel). That equals painting the projected vectors
over the shards and average-pooling, at a fraction of the cost. The FiLM layers start at zero, and
``fingerprints=None`` skips them, so the same network runs with or without z*.

A 2.5-D generator (``context`` c > 0) reads a slice with its c neighbours on each side as input
channels and restores the middle one; ``inflate_state`` starts it from a 2-D generator's weights (the
middle channel's stem weights copied, the neighbours' zero), so it begins exactly as good as that
model and learns what the neighbours add.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from monai.networks.blocks import Convolution
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class GeneratorSpec:
    """Everything needed to rebuild a generator (stored in checkpoints and model cards)."""

    channels: tuple[int, ...] = (24, 48, 96, 192)
    unshuffle: int = 2
    attention_blocks: int = 2
    heads: int = 4
    mlp_ratio: int = 2
    fingerprint_dim: int = 0
    cond_channels: int = 32
    residual: bool = True
    in_channels: int = 1
    context: int = 0

    @property
    def input_channels(self) -> int:
        """Channels the network reads: the slice and ``context`` neighbours on each side (2.5-D)."""
        return self.in_channels * (2 * self.context + 1)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d


class ResBlock(nn.Module):
    """Two 3x3 convolutions with a PReLU between them, added to the input."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            Convolution(2, ch, ch, kernel_size=3, act="PRELU", norm=None),
            Convolution(2, ch, ch, kernel_size=3, conv_only=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class TransformerBlock(nn.Module):
    """Pre-norm multi-head self-attention and MLP, each added to its input."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        b, n, c = t.shape
        q, k, v = self.qkv(self.norm1(t)).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, c)
        t = t + self.proj(a)
        return t + self.mlp(self.norm2(t))


class AttentionBottleneck(nn.Module):
    """Convolutional position encoding then transformer blocks over the bottleneck's pixels."""

    def __init__(self, ch: int, blocks: int, heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.pos = nn.Conv2d(ch, ch, kernel_size=3, padding=1, groups=ch)
        self.blocks = nn.ModuleList(TransformerBlock(ch, heads, mlp_ratio) for _ in range(blocks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos(x)
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)
        for block in self.blocks:
            t = block(t)
        return t.transpose(1, 2).reshape(b, c, h, w)


class HybridUNet(nn.Module):
    """Restores a noisy ``[B, 1, H, W]`` image of any size; optionally conditioned on shard fingerprints."""

    def __init__(
        self,
        channels: Sequence[int] = (24, 48, 96, 192),
        unshuffle: int = 2,
        attention_blocks: int = 2,
        heads: int = 4,
        mlp_ratio: int = 2,
        fingerprint_dim: int = 0,
        cond_channels: int = 32,
        residual: bool = True,
        in_channels: int = 1,
        context: int = 0,
    ) -> None:
        super().__init__()
        chs = tuple(int(c) for c in channels)
        if len(chs) < 2:
            raise ValueError("a U-Net needs at least two levels")
        if context < 0:
            raise ValueError(f"context must be >= 0 neighbouring slices, got {context}")
        if attention_blocks and chs[-1] % heads:
            raise ValueError(f"bottleneck width {chs[-1]} must be divisible by heads={heads}")
        self.spec = GeneratorSpec(
            chs,
            unshuffle,
            attention_blocks,
            heads,
            mlp_ratio,
            fingerprint_dim,
            cond_channels,
            residual,
            in_channels,
            context,
        )
        r2 = unshuffle * unshuffle
        self.stem = Convolution(2, self.spec.input_channels * r2, chs[0], kernel_size=3, conv_only=True)
        self.enc = nn.ModuleList(ResBlock(c) for c in chs[:-1])
        self.down = nn.ModuleList(
            Convolution(2, a, b, strides=2, kernel_size=2, padding=0, conv_only=True)
            for a, b in itertools.pairwise(chs)
        )
        self.mid = ResBlock(chs[-1])
        self.attn = (
            AttentionBottleneck(chs[-1], attention_blocks, heads, mlp_ratio) if attention_blocks else None
        )
        self.up = nn.ModuleList(
            Convolution(
                2,
                b,
                a,
                strides=2,
                kernel_size=2,
                padding=0,
                output_padding=0,
                is_transposed=True,
                conv_only=True,
            )
            for a, b in itertools.pairwise(chs)
        )
        self.dec = nn.ModuleList(ResBlock(c) for c in chs[:-1])
        self.tail = Convolution(2, chs[0], in_channels * r2, kernel_size=3, conv_only=True)
        nn.init.zeros_(self.tail.conv.weight)  # an untrained residual model returns its input
        nn.init.zeros_(self.tail.conv.bias)
        if fingerprint_dim:
            self.cond_proj = nn.Sequential(nn.Linear(fingerprint_dim, cond_channels), nn.GELU())
            self.film = nn.ModuleList(nn.Linear(cond_channels, 2 * c) for c in chs)
            for layer in self.film:
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)
        else:
            self.cond_proj = None
            self.film = None

    @property
    def multiple(self) -> int:
        """Input sides are padded to a multiple of this."""
        return self.spec.unshuffle * 2 ** (len(self.spec.channels) - 1)

    @property
    def conditioned(self) -> bool:
        return self.cond_proj is not None

    def _conditioning(
        self, fingerprints: torch.Tensor, shard_index: torch.Tensor, pad: tuple[int, int, int, int]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Per-shard conditioning vectors ``[B, K, C]`` and per-level area fractions ``[B, K, h, w]``."""
        assert self.cond_proj is not None
        if fingerprints.ndim != 3 or fingerprints.shape[-1] != self.spec.fingerprint_dim:
            raise ValueError(
                f"fingerprints must be [B, K, {self.spec.fingerprint_dim}], got {tuple(fingerprints.shape)}"
            )
        b, k = fingerprints.shape[:2]
        idx = shard_index if shard_index.ndim == 3 else shard_index.unsqueeze(0)
        if idx.shape[0] not in (1, b):
            raise ValueError(f"shard_index batch {idx.shape[0]} differs from fingerprint batch {b}")
        if int(idx.min()) < 0 or int(idx.max()) >= k:
            raise ValueError(f"shard_index values must lie in 0..{k - 1}")
        idx = F.pad(idx.unsqueeze(1).float(), pad, mode="replicate").squeeze(1).long() if any(pad) else idx
        onehot = F.one_hot(idx, k).permute(0, 3, 1, 2).to(fingerprints.dtype)  # [B', K, H, W]
        r = self.spec.unshuffle
        fracs = [F.avg_pool2d(onehot, r) if r > 1 else onehot]
        for _ in range(len(self.spec.channels) - 1):
            fracs.append(F.avg_pool2d(fracs[-1], 2))
        return self.cond_proj(fingerprints), fracs

    def forward(
        self,
        x: torch.Tensor,
        fingerprints: torch.Tensor | None = None,
        shard_index: torch.Tensor | None = None,
        keep: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Restore ``x``; ``fingerprints [B, K, D]`` with ``shard_index [B or 1, H, W]`` condition it.

        A 2.5-D model (``context`` c > 0) reads ``[B, 2c+1, H, W]``, the slice between its neighbours
        in z order, and returns the middle slice ``[B, 1, H, W]``.
        ``keep`` (``[B]`` of 0/1) drops the conditioning of some samples (fingerprint dropout in training).
        """
        want = self.spec.input_channels
        if x.ndim != 4 or x.shape[1] != want:
            raise ValueError(f"expected [B, {want}, H, W], got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        m = self.multiple
        pad = (0, (-w) % m, 0, (-h) % m)
        xp = F.pad(x, pad, mode="replicate") if any(pad) else x
        cond = None
        if fingerprints is not None and self.film is not None:
            if shard_index is None:
                raise ValueError("fingerprints need a shard_index map saying which shard each pixel is in")
            if tuple(shard_index.shape[-2:]) != (h, w):
                raise ValueError(f"shard_index is {tuple(shard_index.shape[-2:])}, image is {(h, w)}")
            vectors, fracs = self._conditioning(fingerprints, shard_index, pad)
            if keep is not None:
                vectors = vectors * keep.reshape(-1, 1, 1).to(vectors.dtype)
            cond = (vectors, fracs)
        r = self.spec.unshuffle
        y = self.stem(F.pixel_unshuffle(xp, r) if r > 1 else xp)
        skips = []
        for level, (block, down) in enumerate(zip(self.enc, self.down, strict=True)):
            y = block(y)
            y = self._film(level, y, cond)
            skips.append(y)
            y = down(y)
        y = self.mid(y)
        y = self._film(len(self.enc), y, cond)
        if self.attn is not None:
            y = self.attn(y)
        for level in reversed(range(len(self.dec))):
            y = self.dec[level](self.up[level](y) + skips[level])
        y = self.tail(y)
        y = F.pixel_shuffle(y, r) if r > 1 else y
        c = self.spec.in_channels
        middle = xp[:, self.spec.context * c : (self.spec.context + 1) * c]
        out = middle - y if self.spec.residual else y
        return out[..., :h, :w]

    def _film(
        self, level: int, y: torch.Tensor, cond: tuple[torch.Tensor, list[torch.Tensor]] | None
    ) -> torch.Tensor:
        if cond is None or self.film is None:
            return y
        vectors, fracs = cond
        shifts = self.film[level](vectors)  # [B, K, 2C]
        gb = torch.einsum("bkhw,bkc->bchw", fracs[level].expand(shifts.shape[0], -1, -1, -1), shifts)
        gamma, beta = gb.chunk(2, dim=1)
        return y * (1.0 + gamma) + beta


def build_generator(spec: dict | GeneratorSpec) -> HybridUNet:
    """A generator from its spec (a dict as stored in a checkpoint, or a ``GeneratorSpec``)."""
    d = spec.to_dict() if isinstance(spec, GeneratorSpec) else dict(spec)
    return HybridUNet(**d)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def inflate_state(state: dict[str, torch.Tensor], spec: GeneratorSpec) -> dict[str, torch.Tensor]:
    """A 2-D generator's weights made to fit the 2.5-D ``spec`` (same widths, more input slices)."""
    out = dict(state)
    key = "stem.conv.weight"
    weight = state[key]
    r2 = spec.unshuffle * spec.unshuffle
    per_slice = spec.in_channels * r2
    if weight.shape[1] != per_slice:
        raise ValueError(f"the source stem reads {weight.shape[1]} channels, a 2-D model reads {per_slice}")
    wide = weight.new_zeros((weight.shape[0], spec.input_channels * r2, *weight.shape[2:]))
    wide[:, spec.context * per_slice : (spec.context + 1) * per_slice] = weight
    out[key] = wide
    return out


def blind_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A fingerprint-conditioned generator's weights without the conditioning (``cond_proj``, FiLM):
    the same network run blind, to start an unconditioned model from a conditioned one."""
    return {k: v for k, v in state.items() if not k.startswith(("cond_proj.", "film."))}
