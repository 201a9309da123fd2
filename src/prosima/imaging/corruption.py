"""Seeded corruptions of images in [0, 1], each returning the result and a record of every parameter.

A number is fixed; a ``(low, high)`` pair is sampled uniformly from that range with the seeded
generator, and the value actually applied is what the record holds.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage

from prosima.imaging.validation import ImageError, check_image

Param = float | tuple[float, float]


@dataclass(frozen=True)
class Corrupted:
    """A corrupted image and the record that reproduces it exactly."""

    image: np.ndarray
    record: dict[str, Any] = field(default_factory=dict)


def _draw(value: Param, rng: np.random.Generator, name: str) -> float:
    """A fixed number is returned as is; a (low, high) range is sampled uniformly."""
    if isinstance(value, tuple | list):
        if len(value) != 2 or value[0] > value[1]:
            raise ImageError(f"{name}: a range must be (low, high) with low <= high, got {value!r}")
        return float(rng.uniform(value[0], value[1]))
    return float(value)


def _record(name: str, seed: int, **params: Any) -> dict[str, Any]:
    return {"corruption": name, "seed": int(seed), **params}


def gaussian_noise(image: np.ndarray, sigma: Param = 0.05, *, seed: int = 0, clip: bool = False) -> Corrupted:
    """Additive white Gaussian noise of standard deviation ``sigma`` (image units, on [0, 1])."""
    img = check_image(image)
    rng = np.random.default_rng(seed)
    s = _draw(sigma, rng, "sigma")
    if s < 0:
        raise ImageError(f"sigma must be >= 0, got {s}")
    out = img + rng.normal(0.0, s, img.shape).astype(np.float32)
    if clip:
        out = np.clip(out, 0.0, 1.0)
    return Corrupted(out.astype(np.float32), _record("gaussian", seed, sigma=s, clip=clip))


def rician_noise(image: np.ndarray, sigma: Param = 0.05, *, seed: int = 0) -> Corrupted:
    """Rician noise: the magnitude of a complex signal with Gaussian noise on both channels (MRI)."""
    img = check_image(image)
    rng = np.random.default_rng(seed)
    s = _draw(sigma, rng, "sigma")
    if s < 0:
        raise ImageError(f"sigma must be >= 0, got {s}")
    real = img + rng.normal(0.0, s, img.shape)
    imag = rng.normal(0.0, s, img.shape)
    return Corrupted(np.hypot(real, imag).astype(np.float32), _record("rician", seed, sigma=s))


def salt_and_pepper(
    image: np.ndarray, amount: Param = 0.05, *, seed: int = 0, salt_ratio: float = 0.5
) -> Corrupted:
    """Set a fraction ``amount`` of pixels to 1 (salt) or 0 (pepper)."""
    img = check_image(image)
    rng = np.random.default_rng(seed)
    a = _draw(amount, rng, "amount")
    if not 0.0 <= a <= 1.0 or not 0.0 <= salt_ratio <= 1.0:
        raise ImageError(f"amount and salt_ratio must lie in [0, 1], got {a}, {salt_ratio}")
    hit = rng.random(img.shape) < a
    salt = rng.random(img.shape) < salt_ratio
    out = img.copy()
    out[hit & salt] = 1.0
    out[hit & ~salt] = 0.0
    rec = _record("salt_and_pepper", seed, amount=a, salt_ratio=salt_ratio, n_changed=int(hit.sum()))
    return Corrupted(out, rec)


def random_mask(
    image: np.ndarray,
    n_rects: int = 3,
    size: Param = (0.05, 0.2),
    *,
    seed: int = 0,
    fill: float = 0.0,
) -> Corrupted:
    """Blank ``n_rects`` random rectangles; each side is ``size`` times the image side (last two axes)."""
    img = check_image(image)
    rng = np.random.default_rng(seed)
    h, w = img.shape[-2:]
    out = img.copy()
    rects = []
    for _ in range(int(n_rects)):
        fh, fw = _draw(size, rng, "size"), _draw(size, rng, "size")
        if not 0.0 < fh <= 1.0 or not 0.0 < fw <= 1.0:
            raise ImageError(f"size must lie in (0, 1], got {fh}, {fw}")
        rh, rw = max(1, round(fh * h)), max(1, round(fw * w))
        y, x = int(rng.integers(0, h - rh + 1)), int(rng.integers(0, w - rw + 1))
        out[..., y : y + rh, x : x + rw] = fill
        rects.append([y, x, rh, rw])
    return Corrupted(out, _record("mask", seed, n_rects=int(n_rects), rects=rects, fill=float(fill)))


def jpeg_compression(image: np.ndarray, quality: Param = 30, *, seed: int = 0) -> Corrupted:
    """Round-trip a 2-D image through 8-bit JPEG at ``quality`` (1-95); input clipped to [0, 1]."""
    img = check_image(image, ndim=(2,))
    rng = np.random.default_rng(seed)
    q = round(_draw(quality, rng, "quality"))
    if not 1 <= q <= 95:
        raise ImageError(f"JPEG quality must lie in 1..95, got {q}")
    u8 = np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(u8, mode="L").save(buf, format="JPEG", quality=q)
    n_bytes = buf.tell()
    buf.seek(0)
    out = np.asarray(Image.open(buf), dtype=np.float32) / 255.0
    return Corrupted(out, _record("jpeg", seed, quality=q, n_bytes=n_bytes))


def gaussian_blur(image: np.ndarray, sigma: Param = 1.5, *, seed: int = 0) -> Corrupted:
    """Gaussian blur of width ``sigma`` pixels on every axis (reflecting borders)."""
    img = check_image(image)
    rng = np.random.default_rng(seed)
    s = _draw(sigma, rng, "sigma")
    if s < 0:
        raise ImageError(f"blur sigma must be >= 0, got {s}")
    out = ndimage.gaussian_filter(img, sigma=s, mode="reflect").astype(np.float32)
    return Corrupted(out, _record("blur", seed, sigma=s))


CORRUPTIONS: dict[str, Callable[..., Corrupted]] = {
    "gaussian": gaussian_noise,
    "rician": rician_noise,
    "salt_and_pepper": salt_and_pepper,
    "mask": random_mask,
    "jpeg": jpeg_compression,
    "blur": gaussian_blur,
}


def corrupt(image: np.ndarray, name: str, *, seed: int = 0, **params: Any) -> Corrupted:
    """Apply the corruption called ``name`` (a key of CORRUPTIONS) with ``params``."""
    try:
        fn = CORRUPTIONS[name]
    except KeyError:
        raise ImageError(f"unknown corruption {name!r}; choose from {sorted(CORRUPTIONS)}") from None
    return fn(image, seed=seed, **params)
