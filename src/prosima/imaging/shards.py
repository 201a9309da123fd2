"""GFT: deterministic geometric fragmentation of 2-D and 3-D images into K rectangular shards.

The grid, the shard boundaries and the shard ids depend only on the image shape, K, the overlap
and the shard's position, never on pixel values, so every node computes the same shards without
coordination. ``merge(split(x)) == x`` exactly; with overlap, overlapping margins are blended with
linear ramps, which lets independently restored shards meet without seams.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from prosima.imaging.validation import ImageError, check_image

SHARD_ID_VERSION = "prosima.gft.v1"


@dataclass(frozen=True)
class Shard:
    """One shard: its place in the grid, its core box, its box with overlap, and its id."""

    index: int
    position: tuple[int, ...]
    core: tuple[tuple[int, int], ...]
    extent: tuple[tuple[int, int], ...]
    shard_id: str

    @property
    def slices(self) -> tuple[slice, ...]:
        """Slices that cut this shard (with overlap) out of the image."""
        return tuple(slice(a, b) for a, b in self.extent)


@dataclass(frozen=True)
class ShardGrid:
    """The shards of an image of ``shape`` cut into ``k`` pieces on a ``grid``."""

    shape: tuple[int, ...]
    k: int
    grid: tuple[int, ...]
    overlap: int
    shards: tuple[Shard, ...]

    def __len__(self) -> int:
        return len(self.shards)

    def locate(self, index: tuple[int, ...]) -> Shard:
        """The shard whose core holds the pixel at ``index``."""
        if len(index) != len(self.shape) or any(
            not 0 <= i < n for i, n in zip(index, self.shape, strict=True)
        ):
            raise ImageError(f"pixel {index} lies outside an image of shape {self.shape}")
        for shard in self.shards:
            if all(a <= i < b for i, (a, b) in zip(index, shard.core, strict=True)):
                return shard
        raise AssertionError("cores partition the image")  # unreachable: cores tile every pixel


def _factorisations(k: int, ndim: int) -> list[tuple[int, ...]]:
    """Every ordered tuple of ``ndim`` positive integers whose product is ``k``."""
    divisors = [d for d in range(1, k + 1) if k % d == 0]
    return [c for c in itertools.product(divisors, repeat=ndim) if math.prod(c) == k]


def choose_grid(shape: Sequence[int], k: int) -> tuple[int, ...]:
    """The grid of ``k`` cells whose cells are closest to cubes (ties: lexicographically smallest)."""
    if k < 1:
        raise ImageError(f"K must be >= 1, got {k}")
    candidates = [
        g for g in _factorisations(k, len(shape)) if all(gi <= n for gi, n in zip(g, shape, strict=True))
    ]
    if not candidates:
        raise ImageError(
            f"cannot cut an image of shape {tuple(shape)} into K={k} non-empty rectangular shards"
        )

    def elongation(grid: tuple[int, ...]) -> float:
        sides = [n / g for n, g in zip(shape, grid, strict=True)]
        return math.log(max(sides) / min(sides))

    return min(candidates, key=lambda g: (round(elongation(g), 12), g))


def shard_id(shape: Sequence[int], k: int, overlap: int, position: Sequence[int]) -> str:
    """Stable id of the shard at ``position``: a hash of the geometry alone (128 bits, hex)."""
    text = "|".join(
        [
            SHARD_ID_VERSION,
            "shape=" + "x".join(str(int(n)) for n in shape),
            f"k={int(k)}",
            f"overlap={int(overlap)}",
            "pos=" + ",".join(str(int(p)) for p in position),
        ]
    )
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:32]


def plan_shards(shape: Sequence[int], k: int, overlap: int = 0) -> ShardGrid:
    """Cut ``shape`` (2-D or 3-D) into ``k`` shards; ``overlap`` pixels of margin on each inner side."""
    shape = tuple(int(n) for n in shape)
    if len(shape) not in (2, 3) or any(n < 1 for n in shape):
        raise ImageError(f"GFT needs a 2-D or 3-D shape with positive sides, got {shape}")
    if overlap < 0:
        raise ImageError(f"overlap must be >= 0, got {overlap}")
    grid = choose_grid(shape, k)
    bounds = [[(i * n) // g for i in range(g + 1)] for n, g in zip(shape, grid, strict=True)]
    shards = []
    for index, position in enumerate(itertools.product(*(range(g) for g in grid))):
        core = tuple((b[p], b[p + 1]) for b, p in zip(bounds, position, strict=True))
        extent = tuple(
            (max(0, a - overlap), min(n, z + overlap)) for (a, z), n in zip(core, shape, strict=True)
        )
        shards.append(Shard(index, position, core, extent, shard_id(shape, k, overlap, position)))
    return ShardGrid(shape, k, grid, overlap, tuple(shards))


def split(image: np.ndarray, k: int, overlap: int = 0) -> tuple[ShardGrid, list[np.ndarray]]:
    """Plan the shards of ``image`` and cut it into them (copies, in shard order)."""
    img = check_image(image, ndim=(2, 3))
    grid = plan_shards(img.shape, k, overlap)
    return grid, [img[s.slices].copy() for s in grid.shards]


def _ramp(extent: tuple[int, int], core: tuple[int, int]) -> np.ndarray:
    """1 inside the core, falling linearly towards the extent's edges in the overlap margins."""
    (ea, ez), (ca, cz) = extent, core
    w = np.ones(ez - ea, dtype=np.float64)
    left, right = ca - ea, ez - cz
    if left:
        w[:left] = np.arange(1, left + 1) / (left + 1)
    if right:
        w[ez - ea - right :] = np.arange(right, 0, -1) / (right + 1)
    return w


def merge(grid: ShardGrid, pieces: Sequence[np.ndarray], blend: bool = True) -> np.ndarray:
    """Reassemble shards; margins are blended (``blend``) or ignored in favour of the cores."""
    if len(pieces) != len(grid.shards):
        raise ImageError(f"expected {len(grid.shards)} shards, got {len(pieces)}")
    total = np.zeros(grid.shape, dtype=np.float64)
    weight = np.zeros(grid.shape, dtype=np.float64)
    for shard, piece in zip(grid.shards, pieces, strict=True):
        piece = check_image(piece, f"shard {shard.index}", ndim=(len(grid.shape),))
        want = tuple(z - a for a, z in shard.extent)
        if piece.shape != want:
            raise ImageError(f"shard {shard.index} has shape {piece.shape}, expected {want}")
        if blend and grid.overlap:
            axes = [_ramp(e, c) for e, c in zip(shard.extent, shard.core, strict=True)]
            w = axes[0]
            for a in axes[1:]:
                w = np.multiply.outer(w, a)
            total[shard.slices] += w * piece
            weight[shard.slices] += w
        else:
            inner = tuple(
                slice(ca - ea, cz - ea) for (ea, _), (ca, cz) in zip(shard.extent, shard.core, strict=True)
            )
            core = tuple(slice(a, z) for a, z in shard.core)
            total[core] = piece[inner]
            weight[core] = 1.0
    return (total / weight).astype(np.float32)
