"""Seeded corruptions of images in [0, 1]: each samples its parameters, then applies them from a record.

A number is fixed; a ``(low, high)`` pair is drawn uniformly from that range (and a mask's rectangles
are placed) by a sampling generator spawned from ``seed``. The record holds every value applied and
``seed``, the seed of the noise realisation: the noise kinds draw their noise from
``numpy.random.default_rng(seed)`` alone, so ``replay_corruption(image, record)`` rebuilds the output
pixel for pixel, and a call with fixed parameters draws the same noise whether or not others are
sampled. ``n_changed`` (salt and pepper) and ``n_bytes`` (JPEG) describe the output and are recomputed
on replay. A record is plain JSON (numbers, booleans, strings and lists).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage

from prosima.imaging.record_fields import check_seed, entry, is_whole, number
from prosima.imaging.validation import ImageError, check_image

Param = float | tuple[float, float]
_SAMPLING_STREAM = 1  # spawn key of the parameter generator; the noise uses the seed itself


@dataclass(frozen=True)
class Corrupted:
    """A corrupted image and the record that reproduces it exactly."""

    image: np.ndarray
    record: dict[str, Any] = field(default_factory=dict)


def _sampler(seed: int) -> np.random.Generator:
    """The generator of the sampled parameters: independent of the noise drawn from ``seed``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_SAMPLING_STREAM,)))


def _draw(value: Param, rng: np.random.Generator, name: str) -> float:
    """A fixed number is returned as is; a (low, high) range is sampled uniformly."""
    if isinstance(value, tuple | list):
        if len(value) != 2 or value[0] > value[1]:
            raise ImageError(f"{name}: a range must be (low, high) with low <= high, got {value!r}")
        return float(rng.uniform(value[0], value[1]))
    return float(value)


def _record(name: str, seed: int, **params: Any) -> dict[str, Any]:
    return {"corruption": name, "seed": seed, **params}


def _what(record: Mapping[str, Any]) -> str:
    return f"{record.get('corruption')} record"


def _noise(record: Mapping[str, Any]) -> np.random.Generator:
    """The generator of the noise realisation: ``default_rng`` of the record's seed."""
    return np.random.default_rng(check_seed(entry(record, "seed", _what(record))))


def _sigma(record: Mapping[str, Any], what: str = "sigma") -> float:
    s = number(record, "sigma", _what(record))
    if s < 0:
        raise ImageError(f"{what} must be >= 0, got {s}")
    return s


# ------------------------------------------------------------------ apply: the deterministic operations
# Each takes a checked image and a record and returns the output and what describes it (recomputed).


def _apply_gaussian(img: np.ndarray, record: Mapping[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    clip = entry(record, "clip", _what(record))
    if not isinstance(clip, bool):
        raise ImageError(f"gaussian record: clip must be true or false, got {clip!r}")
    out = img + _noise(record).normal(0.0, _sigma(record), img.shape).astype(np.float32)
    if clip:
        out = np.clip(out, 0.0, 1.0)
    return out.astype(np.float32), {}


def _apply_rician(img: np.ndarray, record: Mapping[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    s, rng = _sigma(record), _noise(record)
    real = img + rng.normal(0.0, s, img.shape)
    imag = rng.normal(0.0, s, img.shape)
    return np.hypot(real, imag).astype(np.float32), {}


def _apply_salt_and_pepper(img: np.ndarray, record: Mapping[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    a, ratio = number(record, "amount", _what(record)), number(record, "salt_ratio", _what(record))
    if not 0.0 <= a <= 1.0 or not 0.0 <= ratio <= 1.0:
        raise ImageError(f"amount and salt_ratio must lie in [0, 1], got {a}, {ratio}")
    rng = _noise(record)
    hit = rng.random(img.shape) < a
    salt = rng.random(img.shape) < ratio
    out = img.copy()
    out[hit & salt] = 1.0
    out[hit & ~salt] = 0.0
    return out, {"n_changed": int(hit.sum())}


def _apply_mask(img: np.ndarray, record: Mapping[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    h, w = img.shape[-2:]
    out = img.copy()
    fill = number(record, "fill", _what(record))
    for rect in entry(record, "rects", _what(record)):
        if not isinstance(rect, list | tuple) or len(rect) != 4 or not all(is_whole(v) for v in rect):
            raise ImageError(
                f"a mask rectangle is four whole numbers (row, col, height, width), got {rect!r}"
            )
        y, x, rh, rw = (int(v) for v in rect)
        if not (y >= 0 and x >= 0 and rh >= 1 and rw >= 1 and y + rh <= h and x + rw <= w):
            raise ImageError(f"mask rectangle {list(rect)} (row, col, height, width) lies outside {h}x{w}")
        out[..., y : y + rh, x : x + rw] = fill
    return out, {}


def _apply_jpeg(img: np.ndarray, record: Mapping[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    q = entry(record, "quality", _what(record))
    if not is_whole(q) or not 1 <= q <= 95:
        raise ImageError(f"JPEG quality must be a whole number in 1..95, got {q!r}")
    u8 = np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(u8, mode="L").save(buf, format="JPEG", quality=int(q))
    n_bytes = buf.tell()
    buf.seek(0)
    return np.asarray(Image.open(buf), dtype=np.float32) / 255.0, {"n_bytes": n_bytes}


def _apply_blur(img: np.ndarray, record: Mapping[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    s = _sigma(record, "blur sigma")
    return ndimage.gaussian_filter(img, sigma=s, mode="reflect").astype(np.float32), {}


_APPLY: dict[str, Callable[[np.ndarray, Mapping[str, Any]], tuple[np.ndarray, dict[str, Any]]]] = {
    "gaussian": _apply_gaussian,
    "rician": _apply_rician,
    "salt_and_pepper": _apply_salt_and_pepper,
    "mask": _apply_mask,
    "jpeg": _apply_jpeg,
    "blur": _apply_blur,
}


def replay_corruption(image: np.ndarray, record: Mapping[str, Any]) -> Corrupted:
    """Apply the corruption ``record`` describes to ``image`` again: the same pixels, nothing drawn anew."""
    name = entry(record, "corruption", "a corruption record")
    if not isinstance(name, str) or name not in _APPLY:
        raise ImageError(f"unknown corruption {name!r} in the record; choose from {sorted(_APPLY)}")
    img = check_image(image, ndim=(2,) if name == "jpeg" else (2, 3))
    out, described = _APPLY[name](img, record)
    return Corrupted(out, {**record, **described})


# ------------------------------------------------------------------ sample, then apply


def gaussian_noise(image: np.ndarray, sigma: Param = 0.05, *, seed: int = 0, clip: bool = False) -> Corrupted:
    """Additive white Gaussian noise of standard deviation ``sigma`` (image units, on [0, 1])."""
    seed = check_seed(seed)
    record = _record("gaussian", seed, sigma=_draw(sigma, _sampler(seed), "sigma"), clip=bool(clip))
    return replay_corruption(image, record)


def rician_noise(image: np.ndarray, sigma: Param = 0.05, *, seed: int = 0) -> Corrupted:
    """Rician noise: the magnitude of a complex signal with Gaussian noise on both channels (MRI)."""
    seed = check_seed(seed)
    return replay_corruption(image, _record("rician", seed, sigma=_draw(sigma, _sampler(seed), "sigma")))


def salt_and_pepper(
    image: np.ndarray, amount: Param = 0.05, *, seed: int = 0, salt_ratio: float = 0.5
) -> Corrupted:
    """Set a fraction ``amount`` of pixels to 1 (salt) or 0 (pepper)."""
    seed = check_seed(seed)
    a = _draw(amount, _sampler(seed), "amount")
    return replay_corruption(image, _record("salt_and_pepper", seed, amount=a, salt_ratio=float(salt_ratio)))


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
    seed = check_seed(seed)
    rng = _sampler(seed)
    h, w = img.shape[-2:]
    rects = []
    for _ in range(int(n_rects)):
        fh, fw = _draw(size, rng, "size"), _draw(size, rng, "size")
        if not 0.0 < fh <= 1.0 or not 0.0 < fw <= 1.0:
            raise ImageError(f"size must lie in (0, 1], got {fh}, {fw}")
        rh, rw = max(1, round(fh * h)), max(1, round(fw * w))
        rects.append([int(rng.integers(0, h - rh + 1)), int(rng.integers(0, w - rw + 1)), rh, rw])
    return replay_corruption(img, _record("mask", seed, n_rects=int(n_rects), rects=rects, fill=float(fill)))


def jpeg_compression(image: np.ndarray, quality: Param = 30, *, seed: int = 0) -> Corrupted:
    """Round-trip a 2-D image through 8-bit JPEG at ``quality`` (1-95); input clipped to [0, 1]."""
    seed = check_seed(seed)
    q = round(_draw(quality, _sampler(seed), "quality"))
    return replay_corruption(image, _record("jpeg", seed, quality=q))


def gaussian_blur(image: np.ndarray, sigma: Param = 1.5, *, seed: int = 0) -> Corrupted:
    """Gaussian blur of width ``sigma`` pixels on every axis (reflecting borders)."""
    seed = check_seed(seed)
    return replay_corruption(image, _record("blur", seed, sigma=_draw(sigma, _sampler(seed), "sigma")))


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
