"""Restoring images with a trained generator: a whole slice, shard by shard with blended overlap, or a
whole volume slice by slice (a 2.5-D model reading each slice's neighbours).

Both paths condition every pixel on the fingerprint of the shard that holds it (the fingerprint's own
GFT grid over the whole image), so a shard restored with its neighbourhood sees the same z* as the
same pixels do inside the whole slice.
"""

from __future__ import annotations

from collections.abc import Sequence

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
    """Restore a whole 2-D image (batch 1); ``fingerprint`` is ignored by an unconditioned model.

    A 2.5-D model takes ``noisy`` as ``[2c+1, H, W]``: the slice between its c neighbours each side.
    """
    c = model.spec.context
    img = check_image(noisy, "noisy", ndim=(3,) if c else (2,))
    if c and img.shape[0] != 2 * c + 1:
        raise ValueError(f"a 2.5-D model with context {c} reads {2 * c + 1} slices, got {img.shape[0]}")
    fp, index = _conditioning(model, fingerprint, img.shape[-2:])
    with inference(model):
        x = torch.from_numpy(img if c else img[None])[None]
        y = model(x, fp, None if index is None else torch.from_numpy(index))
    return y[0, 0].numpy().astype(np.float32)


def neighbour_stack(volume: np.ndarray, z: int, context: int) -> np.ndarray:
    """Slice ``z`` of ``[Z, H, W]`` between its ``context`` neighbours each side (edge slices repeat)."""
    zs = np.clip(np.arange(z - context, z + context + 1), 0, volume.shape[0] - 1)
    return volume[zs]


def restore_volume(
    model: HybridUNet,
    noisy: np.ndarray,
    fingerprints: Sequence[Fingerprint | None] | None = None,
    batch: int = 4,
) -> np.ndarray:
    """Restore every slice of a ``[Z, H, W]`` volume, whole slices ``batch`` at a time.

    A 2.5-D model reads each slice with its neighbours; a 2-D model each slice alone. ``fingerprints``
    (one per slice, or None) condition a conditioned model slice by slice.
    """
    vol = check_image(noisy, "noisy volume", ndim=(3,))
    z_count, h, w = vol.shape
    fps = list(fingerprints) if fingerprints is not None else [None] * z_count
    if len(fps) != z_count:
        raise ValueError(f"{len(fps)} fingerprints for a volume of {z_count} slices")
    conditioned = model.conditioned and all(f is not None for f in fps)
    c = model.spec.context
    out = np.empty_like(vol)
    with inference(model):
        for start in range(0, z_count, batch):
            zs = range(start, min(start + batch, z_count))
            x = torch.from_numpy(np.stack([neighbour_stack(vol, z, c) for z in zs]))
            cond, index = None, None
            if conditioned:
                parts = [_conditioning(model, fps[z], (h, w)) for z in zs]
                cond = torch.cat([p[0] for p in parts])  # type: ignore[misc]
                index = torch.from_numpy(parts[0][1])  # one grid for every slice of the volume
            out[start : start + len(zs)] = model(x, cond, index)[:, 0].numpy()
    return out


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
    if model.spec.context:
        raise ValueError("a 2.5-D model restores volumes (restore_volume), not single 2-D images")
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
