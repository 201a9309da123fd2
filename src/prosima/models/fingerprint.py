"""Latent fingerprints: per GFT shard, an int8-quantised embedding of the clean image's shard.

The fingerprint of an image of shape ``(H, W)`` cut into ``k`` shards (no overlap) is ``codes``
(``int8 [K, D]``) and one ``float32`` scale per shard; ``codes * scales[:, None]`` approximates the
encoder's unit-length embedding of each shard. These are what later layers hash and anchor, and what
the generator is conditioned on (z*). Computation runs in eval mode, without autograd, with torch's
deterministic algorithms switched on, so the same encoder, image and thread count give the same bytes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from prosima.imaging.shards import ShardGrid, plan_shards
from prosima.imaging.validation import check_image

QMAX = 127
FINGERPRINT_VERSION = "prosima.fingerprint.v1"


@dataclass(frozen=True)
class Fingerprint:
    """Quantised per-shard embeddings of one 2-D image."""

    codes: np.ndarray  # int8 [K, D]
    scales: np.ndarray  # float32 [K]
    shape: tuple[int, int]
    k: int

    def __post_init__(self) -> None:
        if self.codes.dtype != np.int8 or self.codes.ndim != 2 or self.codes.shape[0] != self.k:
            raise ValueError(f"codes must be int8 [K={self.k}, D], got {self.codes.dtype} {self.codes.shape}")
        if self.scales.dtype != np.float32 or self.scales.shape != (self.k,):
            raise ValueError(
                f"scales must be float32 [{self.k}], got {self.scales.dtype} {self.scales.shape}"
            )

    @property
    def dim(self) -> int:
        return int(self.codes.shape[1])

    def dequantise(self) -> np.ndarray:
        """The embeddings the codes stand for, ``float32 [K, D]``."""
        return dequantise(self.codes, self.scales)

    def grid(self) -> ShardGrid:
        """The GFT grid the shards came from."""
        return plan_shards(self.shape, self.k, 0)

    def index_map(self) -> np.ndarray:
        """``int64 [H, W]``: which shard's core holds each pixel."""
        return shard_index_map(self.grid())

    def shard_bytes(self, index: int) -> bytes:
        """Canonical bytes of one shard's fingerprint: int8 codes, then the scale (float32 little endian)."""
        return self.codes[index].tobytes() + np.asarray(self.scales[index], dtype="<f4").tobytes()


def quantise(embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-row int8 quantisation: ``codes = round(z / scale)``, ``scale = max|z| / 127``."""
    z = np.asarray(embeddings, dtype=np.float32)
    if z.ndim != 2:
        raise ValueError(f"embeddings must be [K, D], got shape {z.shape}")
    peak = np.abs(z).max(axis=1)
    scales = np.where(peak > 0, peak / QMAX, 1.0).astype(np.float32)
    codes = np.clip(np.rint(z / scales[:, None]), -QMAX, QMAX).astype(np.int8)
    return codes, scales


def dequantise(codes: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Float embeddings from int8 codes and per-row scales."""
    return (codes.astype(np.float32) * np.asarray(scales, dtype=np.float32)[:, None]).astype(np.float32)


def shard_index_map(grid: ShardGrid) -> np.ndarray:
    """``int64`` map of the grid's shape: the index of the shard whose core holds each pixel."""
    out = np.empty(grid.shape, dtype=np.int64)
    for shard in grid.shards:
        out[tuple(slice(a, b) for a, b in shard.core)] = shard.index
    return out


@contextlib.contextmanager
def inference(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode, no autograd, deterministic algorithms; restores the previous state afterwards."""
    was_training = model.training
    was_det = torch.are_deterministic_algorithms_enabled()
    model.eval()
    torch.use_deterministic_algorithms(True)
    try:
        with torch.inference_mode():
            yield model
    finally:
        torch.use_deterministic_algorithms(was_det)
        model.train(was_training)


def shard_embeddings(encoder: nn.Module, image: np.ndarray | torch.Tensor, k: int) -> torch.Tensor:
    """Float embeddings ``[K, D]`` of the ``k`` GFT shards (no overlap) of a 2-D image.

    Shards of equal size go through the encoder as one batch.
    """
    img = image if isinstance(image, torch.Tensor) else torch.from_numpy(check_image(image, ndim=(2,)))
    if img.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {tuple(img.shape)}")
    grid = plan_shards(tuple(img.shape), k, 0)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for shard in grid.shards:
        by_shape.setdefault(tuple(b - a for a, b in shard.core), []).append(shard.index)
    out: list[torch.Tensor | None] = [None] * len(grid.shards)
    for indices in by_shape.values():
        batch = torch.stack([img[grid.shards[i].slices] for i in indices]).unsqueeze(1).float()
        emb = encoder(batch)
        for j, i in enumerate(indices):
            out[i] = emb[j]
    return torch.stack(out)  # type: ignore[arg-type]


def compute_fingerprints(encoder: nn.Module, image: np.ndarray, k: int = 16) -> Fingerprint:
    """The latent fingerprint of a clean 2-D image: quantised embeddings of its ``k`` shards."""
    img = check_image(image, ndim=(2,))
    with inference(encoder):
        emb = shard_embeddings(encoder, img, k).cpu().numpy()
    codes, scales = quantise(emb)
    return Fingerprint(codes, scales, (int(img.shape[0]), int(img.shape[1])), int(k))
