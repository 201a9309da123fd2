"""Exact hashes of decoded pixels: of a whole image and of each of its GFT shards.

The hash is over canonical bytes, so it depends on the pixel values alone and not on the file that
held them: a PNG, the same values saved as ``.npy`` and a PNG re-compressed at another level all
hash alike, while one changed pixel changes the hash of the image and of the one shard that holds it.

Canonical bytes: a domain tag, the canonical dtype and the shape, then the values C-ordered and
little endian. The canonical dtype is ``<i8`` when every value is a whole number (so uint8 PNG,
uint16 PNG, int16 DICOM and integral floats agree) and ``<f4`` otherwise.
"""

from __future__ import annotations

import hashlib

import numpy as np

from prosima.imaging.shards import ShardGrid, plan_shards
from prosima.imaging.validation import check_image

PIXELS_VERSION = b"prosima.pixels.v1"


def canonical_pixels(array: np.ndarray) -> tuple[str, np.ndarray]:
    """The canonical dtype name and the values in it (see the module note)."""
    arr = check_image(array, ndim=(2, 3))
    if np.all(arr == np.rint(arr)) and np.abs(arr).max(initial=0) < 2**53:
        return "<i8", arr.astype("<i8")
    return "<f4", arr.astype("<f4")


def pixel_digest(array: np.ndarray) -> bytes:
    """SHA-256 of the canonical bytes of ``array``'s pixels (32 bytes)."""
    dtype, values = canonical_pixels(array)
    h = hashlib.sha256(PIXELS_VERSION)
    h.update(f"|{dtype}|{'x'.join(str(n) for n in values.shape)}|".encode())
    h.update(np.ascontiguousarray(values).tobytes())
    return h.digest()


def shard_digests(array: np.ndarray, k: int) -> tuple[ShardGrid, list[bytes]]:
    """The image's ``k``-shard GFT grid (no overlap) and the pixel digest of each shard's core."""
    arr = check_image(array, ndim=(2,))
    grid = plan_shards(arr.shape, k, 0)
    return grid, [pixel_digest(arr[shard.slices]) for shard in grid.shards]


def differing_shards(mine: list[bytes], theirs: list[bytes]) -> list[int]:
    """Indices of the shards whose digests differ (the lists must describe one grid)."""
    if len(mine) != len(theirs):
        raise ValueError(f"shard lists differ in length: {len(mine)} and {len(theirs)}")
    return [i for i, (a, b) in enumerate(zip(mine, theirs, strict=True)) if a != b]
