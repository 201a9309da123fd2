"""Restoring images with a trained generator: a whole slice, or shard by shard with blended overlap.

Both paths condition every pixel on the fingerprint of the shard that holds it (the fingerprint's own
GFT grid over the whole image), so a shard restored with its neighbourhood sees the same z* as the
same pixels do inside the whole slice.
"""

from __future__ import annotations

import numpy as np
import torch

from prosima.imaging.shards import merge, plan_shards
from prosima.imaging.validation import check_image
from prosima.models.fingerprint import Fingerprint, inference
from prosima.models.unet import HybridUNet


def _conditioning(
    model: HybridUNet, fingerprint: Fingerprint | None, shape: tuple[int, int]
) -> tuple[torch.Tensor | None, np.ndarray | None]:
    if fingerprint is None or not model.conditioned:
        return None, None
    if tuple(fingerprint.shape) != tuple(shape):
        raise ValueError(f"fingerprint is for an image of shape {fingerprint.shape}, image is {shape}")
    return torch.from_numpy(fingerprint.dequantise()).unsqueeze(0), fingerprint.index_map()


def restore(model: HybridUNet, noisy: np.ndarray, fingerprint: Fingerprint | None = None) -> np.ndarray:
    """Restore a whole 2-D image (batch 1); ``fingerprint`` is ignored by an unconditioned model."""
    img = check_image(noisy, "noisy", ndim=(2,))
    fp, index = _conditioning(model, fingerprint, img.shape)
    with inference(model):
        x = torch.from_numpy(img)[None, None]
        y = model(x, fp, None if index is None else torch.from_numpy(index))
    return y[0, 0].numpy().astype(np.float32)


def restore_by_shards(
    model: HybridUNet,
    noisy: np.ndarray,
    fingerprint: Fingerprint | None = None,
    k: int = 16,
    overlap: int = 16,
) -> np.ndarray:
    """Restore each of ``k`` GFT shards with ``overlap`` pixels of neighbourhood, then blend them.

    Shards of one extent go through the network as one batch (a 4x4 grid has at most four extents).
    """
    img = check_image(noisy, "noisy", ndim=(2,))
    fp, index = _conditioning(model, fingerprint, img.shape)
    grid = plan_shards(img.shape, k, overlap)
    by_extent: dict[tuple[int, ...], list[int]] = {}
    for shard in grid.shards:
        by_extent.setdefault(tuple(b - a for a, b in shard.extent), []).append(shard.index)
    pieces: list[np.ndarray | None] = [None] * len(grid.shards)
    with inference(model):
        for members in by_extent.values():
            cuts = [grid.shards[i].slices for i in members]
            x = torch.from_numpy(np.stack([img[c] for c in cuts]))[:, None]
            fps = idx = None
            if fp is not None and index is not None:
                fps = fp.expand(len(members), -1, -1)
                idx = torch.from_numpy(np.stack([index[c] for c in cuts]))
            out = model(x, fps, idx)[:, 0].numpy()
            for j, i in enumerate(members):
                pieces[i] = out[j]
    return merge(grid, pieces, blend=True)  # type: ignore[arg-type]
