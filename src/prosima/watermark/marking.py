"""Mark a dataset, clean-label: a seeded fraction of the target-class images is replaced by its
marked version and every label is kept; each marked image is named by the SHA-256 of its pixels.

Marked images are rounded to 8 bits (what a PNG holds), so the hashes are of exactly what is
released. ``XMark`` is the saliency-guided marker; ``baselines`` has BadNets and Blended.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from prosima.watermark.generator import MarkGenerator, apply_delta
from prosima.watermark.train import saliency_inputs

Marker = Callable[[np.ndarray], np.ndarray]
PIXELS_TAG = b"prosima.watermark.pixels.v1"


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Images in [0, 1] as 8-bit values (rounded, clipped)."""
    return np.rint(np.clip(np.asarray(images, dtype=np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)


def quantise(images: np.ndarray) -> np.ndarray:
    """Images rounded to the 8-bit grid, as float32 in [0, 1]."""
    return to_uint8(images).astype(np.float32) / 255.0


def pixel_sha256(image: np.ndarray) -> str:
    """SHA-256 (hex) of one image's 8-bit pixels: a tag, the shape, then the bytes in C order."""
    pixels = to_uint8(image)
    h = hashlib.sha256(PIXELS_TAG)
    h.update(f"|{'x'.join(str(n) for n in pixels.shape)}|".encode())
    h.update(np.ascontiguousarray(pixels).tobytes())
    return h.hexdigest()


@dataclass
class XMark:
    """Saliency-guided marks: EigenCAM of ``surrogate``, top ``mask_fraction`` mask, ``generator``."""

    generator: MarkGenerator
    surrogate: nn.Module
    mask_fraction: float
    batch: int = 128
    method: str = "xmark"

    @torch.no_grad()
    def perturbation(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The marked images, the perturbations and the masks, each (N, H, W)."""
        self.generator.eval()
        marked, deltas, masks = [], [], []
        for i in range(0, len(images), self.batch):
            x, sal, mask = saliency_inputs(self.surrogate, images[i : i + self.batch], self.mask_fraction)
            delta = self.generator(x, sal, mask)
            marked.append(apply_delta(x, delta)[:, 0])
            deltas.append(delta[:, 0])
            masks.append(mask[:, 0] > 0)
        return tuple(torch.cat(t).numpy() for t in (marked, deltas, masks))  # type: ignore[return-value]

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return self.perturbation(np.asarray(images, dtype=np.float32))[0]

    def describe(self) -> dict[str, Any]:
        return {"method": self.method, "eps": self.generator.eps, "mask_fraction": self.mask_fraction}


@dataclass(frozen=True, eq=False)
class MarkedSet:
    """A marked copy of a dataset: all images (marked ones replaced), the untouched labels, and which
    images were marked (indices, ids, pixel SHA-256)."""

    images: np.ndarray
    labels: np.ndarray
    ids: list[str]
    marked: np.ndarray
    hashes: list[str]
    target: int
    fraction: float
    seed: int
    marker: dict[str, Any] = field(default_factory=dict)

    def record(self) -> list[dict[str, str]]:
        """``[{"id", "sha256"}]`` of the marked images (for the key)."""
        return [{"id": self.ids[i], "sha256": h} for i, h in zip(self.marked, self.hashes, strict=True)]


def choose_marked(ids: list[str], labels: np.ndarray, target: int, fraction: float, seed: int) -> np.ndarray:
    """Indices of round(fraction * n_target) target-class images, drawn with ``seed`` from the
    target images sorted by id (so the choice does not depend on the order of the dataset)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"the marked fraction must be in (0, 1], got {fraction}")
    pool = sorted(np.flatnonzero(np.asarray(labels) == target), key=lambda i: ids[i])
    if not pool:
        raise ValueError(f"no images of the target class {target} to mark")
    n = max(1, round(fraction * len(pool)))
    pick = np.random.default_rng(seed).permutation(len(pool))[:n]
    return np.array(sorted(pool[i] for i in pick), dtype=np.int64)


def mark_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    ids: list[str],
    marker: Marker,
    target: int,
    fraction: float = 0.1,
    seed: int = 0,
) -> MarkedSet:
    """Replace a seeded ``fraction`` of the target-class images by their marked, 8-bit versions;
    labels are unchanged (clean label). Pure: ``images`` is not modified."""
    chosen = choose_marked(ids, labels, target, fraction, seed)
    out = np.array(images, dtype=np.float32, copy=True)
    out[chosen] = quantise(marker(out[chosen]))
    hashes = [pixel_sha256(out[i]) for i in chosen]
    describe = getattr(marker, "describe", None)
    return MarkedSet(
        out,
        np.array(labels, copy=True),
        list(ids),
        chosen,
        hashes,
        int(target),
        float(fraction),
        int(seed),
        describe() if describe else {},
    )


def save_pngs(folder: str | Path, images: np.ndarray, ids: list[str]) -> list[Path]:
    """Write each image as an 8-bit PNG at ``folder/<id>`` (``.png`` added when missing)."""
    from PIL import Image

    paths = []
    for image, name in zip(images, ids, strict=True):
        path = Path(folder) / (name if name.endswith(".png") else f"{name}.png")
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(to_uint8(image)).save(path, format="PNG")
        paths.append(path)
    return paths
