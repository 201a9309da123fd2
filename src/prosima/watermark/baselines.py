"""Baseline markers with the same verification test: BadNets (a fixed checkerboard patch in a
corner) and Blended (a fixed seeded noise pattern blended in with weight ``alpha``).

A marker is a callable from (N, H, W) images in [0, 1] to marked images; ``describe`` gives what
rebuilds it (stored in the key).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class BadNets:
    """A ``patch_fraction * min(H, W)`` (at least 3 pixels) square checkerboard of 0 and 1 whose
    corner pixel is 1, ``margin`` pixels from the bottom-right corner."""

    patch_fraction: float = 0.1
    margin: int = 1
    method: str = "badnets"

    def patch(self, shape: tuple[int, int]) -> tuple[slice, slice, np.ndarray]:
        s = max(3, round(self.patch_fraction * min(shape)))
        h, w = shape
        r, c = np.indices((s, s))
        board = ((r + c) % 2 == 0).astype(np.float32)
        return slice(h - self.margin - s, h - self.margin), slice(w - self.margin - s, w - self.margin), board

    def __call__(self, images: np.ndarray) -> np.ndarray:
        out = np.array(images, dtype=np.float32, copy=True)
        rows, cols, board = self.patch(out.shape[-2:])
        out[..., rows, cols] = board
        return out

    def describe(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Blended:
    """``(1 - alpha) * image + alpha * pattern``, the pattern uniform noise in [0, 1] drawn at the
    image's size from ``seed``."""

    alpha: float = 0.1
    seed: int = 0
    method: str = "blended"

    def pattern(self, shape: tuple[int, int]) -> np.ndarray:
        return np.random.default_rng(self.seed).random(shape, dtype=np.float32)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        x = np.asarray(images, dtype=np.float32)
        return ((1.0 - self.alpha) * x + self.alpha * self.pattern(x.shape[-2:])).astype(np.float32)

    def describe(self) -> dict[str, Any]:
        return asdict(self)


BASELINES = {"badnets": BadNets, "blended": Blended}


def baseline_from(description: dict[str, Any]) -> BadNets | Blended:
    """The baseline marker that ``describe`` described."""
    params = dict(description)
    method = params.get("method")
    if method not in BASELINES:
        raise ValueError(f"unknown baseline marker {method!r}; expected one of {sorted(BASELINES)}")
    return BASELINES[method](**params)
