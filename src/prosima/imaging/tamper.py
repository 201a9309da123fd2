"""Seeded tampers of 2-D images in their own units (e.g. 0..255), each guaranteed to change a pixel.

A tamper keeps the shape and the value range ``[min, max]`` of its input, never writes to the input,
and gives whole-numbered output for whole-numbered input (so an 8-bit image saves losslessly as an
8-bit PNG). "Content" is where the image exceeds its minimum (the background). Each record names
the tamper, its seed and parameters, the ``region`` it aimed at and the ``bbox`` of the pixels that
actually changed, both as half-open ``(row0, row1, col0, col1)`` (slice bounds).

Each tamper first samples where and how much from the image with ``numpy.random.default_rng(seed)``,
then applies what it sampled: the record's ``params`` hold all of it, so ``replay_tamper(image,
record)`` rebuilds the output pixel for pixel without drawing anything. A record is JSON-ready (a
pair may come back from JSON as a list; replay takes either).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from prosima.imaging.record_fields import check_seed, entry, number, number_pair, whole, whole_pair
from prosima.imaging.validation import ImageError, check_image

Box = tuple[int, int, int, int]
_ATTEMPTS = 64


@dataclass(frozen=True)
class Tampered:
    """A tampered image and the record that reproduces it and locates the change."""

    array: np.ndarray
    record: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Input:
    img: np.ndarray
    lo: float
    hi: float
    whole: bool

    @property
    def content(self) -> np.ndarray:
        """Pixels brighter than the background (the image minimum)."""
        return self.img > self.lo


def _prepare(image: np.ndarray) -> _Input:
    img = check_image(image, ndim=(2,)).copy()
    lo, hi = float(img.min()), float(img.max())
    if hi <= lo:
        raise ImageError(f"a constant image (all {lo}) cannot be tampered within its own value range")
    return _Input(img, lo, hi, bool(np.all(img == np.round(img))))


def changed_bbox(before: np.ndarray, after: np.ndarray) -> Box | None:
    """The half-open bounding box of the pixels that differ, or None when none do."""
    rows, cols = np.nonzero(before != after)
    if rows.size == 0:
        return None
    return int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1


def _finish(
    name: str, seed: int, src: _Input, out: np.ndarray, region: Box, params: Mapping[str, Any]
) -> Tampered:
    """Round (whole-numbered input), clip to the input's range, and record what changed."""
    if src.whole:
        out = np.round(out)
    out = np.clip(out, src.lo, src.hi).astype(np.float32)
    bbox = changed_bbox(src.img, out)
    if bbox is None:  # every tamper is built to avoid this; never hand back an untouched image
        raise ImageError(f"{name} (seed {seed}) left the image unchanged")
    record = {
        "name": name,
        "seed": int(seed),
        "params": dict(params),
        "region": tuple(int(v) for v in region),
        "bbox": bbox,
        "n_changed": int(np.count_nonzero(src.img != out)),
        "value_range": (src.lo, src.hi),
        "whole": src.whole,
    }
    return Tampered(out, record)


def _pick(mask: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
    """A uniformly drawn pixel of a non-empty mask."""
    rows, cols = np.nonzero(mask)
    i = int(rng.integers(rows.size))
    return int(rows[i]), int(cols[i])


def _side(size: int, shape: tuple[int, ...]) -> int:
    """A square side that leaves room to move the square in both directions (when there is any)."""
    if size < 1:
        raise ImageError(f"size must be >= 1, got {size}")
    return max(1, min(int(size), min(shape) - 1))


def _window_at(p: tuple[int, int], s: int, shape: tuple[int, ...]) -> tuple[int, int]:
    """Top-left corner of the s x s square centred on pixel p, shifted to fit (it still holds p)."""
    return (
        int(np.clip(p[0] - s // 2, 0, shape[0] - s)),
        int(np.clip(p[1] - s // 2, 0, shape[1] - s)),
    )


# ------------------------------------------------------------------ apply: the deterministic operations
# Each takes the prepared input and the params of a record and returns the unrounded output and the
# region it aimed at; _finish rounds, clips and records.


def _inside(corner: tuple[int, int], s: int, src: _Input, what: str) -> tuple[int, int]:
    """``corner`` of an s x s square that lies inside the image, or ImageError."""
    h, w = src.img.shape
    if not (s >= 1 and 0 <= corner[0] <= h - s and 0 <= corner[1] <= w - s):
        raise ImageError(f"{what}: a {s}x{s} square at {corner} does not fit a {h}x{w} image")
    return corner


def _apply_one_pixel(src: _Input, params: Mapping[str, Any]) -> tuple[np.ndarray, Box]:
    what = "one_pixel record params"
    r, c = _inside(whole_pair(params, "pixel", what), 1, src, what)
    old, new = number(params, "old", what), number(params, "new", what)
    if float(src.img[r, c]) != old:
        raise ImageError(f"{what}: pixel {(r, c)} is {float(src.img[r, c])} here, the record says {old}")
    out = src.img.copy()
    out[r, c] = new
    return out, (r, r + 1, c, c + 1)


def _apply_copy_move(src: _Input, params: Mapping[str, Any]) -> tuple[np.ndarray, Box]:
    what = "copy_move record params"
    s = whole(params, "size", what)
    ar, ac = _inside(whole_pair(params, "source", what), s, src, what)
    br, bc = _inside(whole_pair(params, "target", what), s, src, what)
    out = src.img.copy()
    out[br : br + s, bc : bc + s] = src.img[ar : ar + s, ac : ac + s]
    return out, (br, br + s, bc, bc + s)


def _apply_lesion_blob(src: _Input, params: Mapping[str, Any]) -> tuple[np.ndarray, Box]:
    what = "lesion_blob record params"
    r, c = _inside(whole_pair(params, "centre", what), 1, src, what)
    radius, sigma = number(params, "radius", what), number(params, "sigma", what)
    amplitude = number(params, "amplitude", what)
    if radius <= 0 or sigma <= 0:
        raise ImageError(f"{what}: radius and sigma must be > 0, got {radius}, {sigma}")
    h, w = src.img.shape
    yy, xx = np.ogrid[:h, :w]
    d2 = (yy - r) ** 2 + (xx - c) ** 2
    blob = np.where(d2 <= (2.0 * radius) ** 2, np.exp(-d2 / (2.0 * sigma**2)), 0.0)
    reach = int(np.ceil(2.0 * radius))
    region = (max(0, r - reach), min(h, r + reach + 1), max(0, c - reach), min(w, c + reach + 1))
    return src.img + amplitude * blob, region


def _apply_erase(src: _Input, params: Mapping[str, Any]) -> tuple[np.ndarray, Box]:
    what = "erase record params"
    s = whole(params, "size", what)
    r, c = _inside(whole_pair(params, "corner", what), s, src, what)
    out = src.img.copy()
    out[r : r + s, c : c + s] = number(params, "fill", what)
    return out, (r, r + s, c, c + s)


def _apply_rescale_intensity(src: _Input, params: Mapping[str, Any]) -> tuple[np.ndarray, Box]:
    what = "rescale_intensity record params"
    factor, about = number(params, "factor", what), number(params, "about", what)
    if factor <= 0 or factor == 1:
        raise ImageError(f"factor must be > 0 and != 1, got {factor}")
    scaled = about + (src.img.astype(np.float64) - about) * factor
    if src.whole and np.array_equal(np.clip(np.round(scaled), src.lo, src.hi), src.img):
        scaled = np.floor(scaled) if factor < 1 else np.ceil(scaled)
    h, w = src.img.shape
    return scaled, (0, h, 0, w)


_APPLY: dict[str, Callable[[_Input, Mapping[str, Any]], tuple[np.ndarray, Box]]] = {
    "one_pixel": _apply_one_pixel,
    "copy_move": _apply_copy_move,
    "lesion_blob": _apply_lesion_blob,
    "erase": _apply_erase,
    "rescale_intensity": _apply_rescale_intensity,
}


def _apply(name: str, seed: int, src: _Input, params: Mapping[str, Any]) -> Tampered:
    out, region = _APPLY[name](src, params)
    return _finish(name, seed, src, out, region, params)


def replay_tamper(image: np.ndarray, record: Mapping[str, Any]) -> Tampered:
    """Apply the tamper ``record`` describes to ``image`` (the one it was made from) again, pixel-exact."""
    name = entry(record, "name", "a tamper record")
    if not isinstance(name, str) or name not in _APPLY:
        raise ImageError(f"unknown tamper {name!r} in the record; choose from {sorted(_APPLY)}")
    what = f"{name} record"
    seed = check_seed(entry(record, "seed", what))
    params = entry(record, "params", what)
    if not isinstance(params, Mapping):
        raise ImageError(f"{what}: params must be a mapping, got {type(params).__name__}")
    src = _prepare(image)
    if "value_range" in record and number_pair(record, "value_range", what) != (src.lo, src.hi):
        lo, hi = number_pair(record, "value_range", what)
        raise ImageError(f"{what} was made from an image spanning [{lo}, {hi}], not [{src.lo}, {src.hi}]")
    return _apply(name, seed, src, params)


# ------------------------------------------------------------------ sample, then apply


def one_pixel(image: np.ndarray, seed: int = 0) -> Tampered:
    """Move one content pixel by a quarter to a half of the image's range, towards the farther bound."""
    src, seed = _prepare(image), check_seed(seed)
    rng = np.random.default_rng(seed)
    r, c = _pick(src.content, rng)
    v, span = float(src.img[r, c]), src.hi - src.lo
    delta = span * float(rng.uniform(0.25, 0.5))
    if src.whole:  # whole steps, at least one; floor keeps it within the room on the farther side
        delta = max(1.0, float(np.floor(delta)))
    new = v - delta if v - src.lo >= src.hi - v else v + delta
    return _apply("one_pixel", seed, src, {"pixel": (r, c), "old": v, "new": new})


def copy_move(image: np.ndarray, seed: int = 0, size: int = 32) -> Tampered:
    """Copy a ``size`` x ``size`` square centred on content onto another place of the image."""
    src, seed = _prepare(image), check_seed(seed)
    rng = np.random.default_rng(seed)
    h, w = src.img.shape
    s = _side(size, src.img.shape)

    def differs(a: tuple[int, int], b: tuple[int, int]) -> bool:
        return a != b and not np.array_equal(
            src.img[a[0] : a[0] + s, a[1] : a[1] + s], src.img[b[0] : b[0] + s, b[1] : b[1] + s]
        )

    pair = None
    for attempt in range(_ATTEMPTS):
        a = _window_at(_pick(src.content, rng), s, src.img.shape)
        b = (int(rng.integers(h - s + 1)), int(rng.integers(w - s + 1)))
        apart = abs(a[0] - b[0]) >= s or abs(a[1] - b[1]) >= s
        if (apart or attempt >= _ATTEMPTS // 2) and differs(a, b):
            pair = (a, b)
            break
    if pair is None:  # a non-constant image always has two different squares of a side < its sides
        b = (0, 0)
        pair = next((a, b) for a in np.ndindex(h - s + 1, w - s + 1) if differs(a, b))
    (ar, ac), (br, bc) = pair
    return _apply("copy_move", seed, src, {"size": s, "source": (int(ar), int(ac)), "target": (br, bc)})


def lesion_blob(image: np.ndarray, seed: int = 0, radius: float = 6.0, contrast: float = 0.5) -> Tampered:
    """Add a bright Gaussian nodule (sigma ``radius / 2``, peak ``contrast`` of the range) on content.

    The centre is a content pixel below the maximum where there is one (else the nearest room to
    brighten), so the centre pixel itself always rises; the blob is cut to zero beyond ``2 * radius``.
    """
    if radius <= 0 or contrast <= 0:
        raise ImageError(f"radius and contrast must be > 0, got {radius}, {contrast}")
    src, seed = _prepare(image), check_seed(seed)
    rng = np.random.default_rng(seed)
    room = src.img < src.hi
    centre_mask = src.content & room
    if not centre_mask.any():  # saturated content (a binary image): use its rim, or any dark pixel
        centre_mask = room
    amplitude = contrast * (src.hi - src.lo)
    if src.whole:  # a whole-numbered centre must rise by at least one level after rounding
        amplitude = max(amplitude, 1.0)
    params = {
        "centre": _pick(centre_mask, rng),
        "radius": float(radius),
        "sigma": radius / 2.0,
        "contrast": float(contrast),
        "amplitude": float(amplitude),
    }
    return _apply("lesion_blob", seed, src, params)


def erase(image: np.ndarray, seed: int = 0, size: int = 24) -> Tampered:
    """Set a ``size`` x ``size`` square holding a content pixel to the background (the minimum)."""
    src, seed = _prepare(image), check_seed(seed)
    rng = np.random.default_rng(seed)
    s = _side(size, src.img.shape)
    corner = _window_at(_pick(src.content, rng), s, src.img.shape)
    return _apply("erase", seed, src, {"size": s, "corner": corner, "fill": src.lo})


def rescale_intensity(image: np.ndarray, seed: int = 0, factor: float = 0.9) -> Tampered:
    """Scale intensities about the background: ``min + (image - min) * factor``, clipped to the range.

    Whole-numbered input is rounded; where rounding would undo the change (a tiny range) it is
    rounded towards the change instead. A factor > 1 cannot change an image with no level strictly
    between its minimum and maximum (a binary mask) and raises ImageError. ``seed`` only labels the
    record: nothing is drawn.
    """
    if factor <= 0 or factor == 1:
        raise ImageError(f"factor must be > 0 and != 1, got {factor}")
    src, seed = _prepare(image), check_seed(seed)
    return _apply("rescale_intensity", seed, src, {"factor": float(factor), "about": src.lo})


TAMPERS: dict[str, Callable[..., Tampered]] = {
    "one_pixel": one_pixel,
    "copy_move": copy_move,
    "lesion_blob": lesion_blob,
    "erase": erase,
    "rescale_intensity": rescale_intensity,
}


def tamper(image: np.ndarray, name: str, seed: int = 0, **params: Any) -> Tampered:
    """Apply the tamper called ``name`` (a key of TAMPERS) with ``params``."""
    try:
        fn = TAMPERS[name]
    except KeyError:
        raise ValueError(f"unknown tamper {name!r}; choose from {sorted(TAMPERS)}") from None
    return fn(image, seed, **params)
