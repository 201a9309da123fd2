"""The Harvard AANLIB co-registered pairs: MRI with CT, PET or SPECT, matched by file name.

Layout (``../shared/data/fusion/harvard_aanlib``): ``CT-MRI/{CT,MRI}``, ``PET-MRI/{PET,MRI}``,
``SPECT-MRI/{SPECT,MRI}``, 256x256 PNGs. MRI and CT are 8-bit grayscale; PET and SPECT are RGB
pseudo-colour, fused through their luminance (``colour``). Split by pair, seeded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from prosima.errors import InputError
from prosima.fusion.colour import rgb_to_ycbcr
from prosima.imaging.limits import open_pillow
from prosima.imaging.validation import ImageReadError

HARVARD_DIR = Path("fusion") / "harvard_aanlib"
PAIRS = {"ct": ("CT-MRI", "CT"), "pet": ("PET-MRI", "PET"), "spect": ("SPECT-MRI", "SPECT")}
COLOUR = {"ct": False, "pet": True, "spect": True}


class FusionDataError(InputError, ValueError):
    """A pair or data set that is missing, mismatched or not in the expected form."""


@dataclass(frozen=True)
class SourcePair:
    """One co-registered pair: the MRI (H, W) and the other modality's luminance (H, W), both
    float32 in [0, 1]; ``chroma`` (H, W, 2) holds the other modality's Cb, Cr when it is colour."""

    mri: np.ndarray
    other: np.ndarray
    chroma: np.ndarray | None = None
    name: str = ""

    def stacked(self) -> np.ndarray:
        """(2, H, W): channel 0 the MRI, 1 the other luminance (the network's input)."""
        return np.stack([self.mri, self.other]).astype(np.float32)


def read_gray(path: str | Path, *, role: str = "MRI") -> np.ndarray:
    """An 8- or 16-bit grayscale image as float32 in [0, 1]; a colour image is refused (an MRI or
    CT must be grayscale)."""
    with _open(path) as im:
        if im.mode in ("RGB", "RGBA", "P", "CMYK", "YCbCr", "LAB", "HSV"):
            raw = np.asarray(im.convert("RGB"), dtype=np.int16)
            if has_colour(raw):
                raise FusionDataError(f"{path}: the {role} must be grayscale, got a colour ({im.mode}) image")
            return (raw[..., 0] / 255.0).astype(np.float32)
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(im, dtype=np.float64)
            return np.clip(arr / 65535.0, 0, 1).astype(np.float32)
        return (np.asarray(im.convert("L"), dtype=np.float32) / 255.0).astype(np.float32)


def read_rgb(path: str | Path) -> np.ndarray:
    """An image as (H, W, 3) float32 RGB in [0, 1] (grayscale is replicated)."""
    with _open(path) as im:
        return (np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0).astype(np.float32)


def _open(path: str | Path) -> Image.Image:
    p = Path(path)
    if not p.is_file():
        raise FusionDataError(f"{p}: no such file")
    try:
        im = open_pillow(p)
    except ImageReadError as exc:
        raise FusionDataError(str(exc)) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise FusionDataError(f"{p}: not a readable image ({exc})") from None
    try:
        im.load()
    except (OSError, SyntaxError, ValueError) as exc:
        im.close()
        raise FusionDataError(f"{p}: not a readable image ({exc})") from None
    return im


def has_colour(rgb: np.ndarray) -> bool:
    """Whether an (H, W, 3) image has distinct colour channels."""
    return bool(np.any(rgb[..., 0] != rgb[..., 1]) or np.any(rgb[..., 1] != rgb[..., 2]))


def load_pair(mri_path: str | Path, other_path: str | Path, name: str = "") -> SourcePair:
    """Read one pair: a grayscale MRI and a grayscale (CT) or colour (PET, SPECT) other source of
    the same size; colour is split into luminance and chroma (BT.601 YCbCr)."""
    mri = read_gray(mri_path, role="MRI")
    rgb = read_rgb(other_path)
    if rgb.shape[:2] != mri.shape:
        raise FusionDataError(
            f"the pair differs in size: MRI {mri.shape[1]}x{mri.shape[0]}, "
            f"{Path(other_path).name} {rgb.shape[1]}x{rgb.shape[0]}"
        )
    if has_colour(rgb):
        ycc = rgb_to_ycbcr(rgb)
        return SourcePair(mri, ycc[..., 0], ycc[..., 1:], name or Path(mri_path).stem)
    return SourcePair(mri, rgb[..., 0].copy(), None, name or Path(mri_path).stem)


def harvard_root(root: str | Path | None = None) -> Path:
    """``root``, else ``$PROSIMA_SHARED_DATA/fusion/harvard_aanlib``, else ``../shared/data/...``
    beside the repository."""
    if root is not None:
        return Path(root)
    base = os.environ.get("PROSIMA_SHARED_DATA")
    if base:
        return Path(base) / HARVARD_DIR
    return Path(__file__).resolve().parents[3].parent / "shared" / "data" / HARVARD_DIR


@dataclass(frozen=True)
class PairSet:
    """Every pair of one modality pair: names, stacked sources (N, 2, H, W) and chroma."""

    pair: str
    names: list[str]
    sources: np.ndarray
    chroma: list[np.ndarray | None]
    source: dict[str, Any] = field(default_factory=dict)

    def subset(self, index: np.ndarray | list[int]) -> PairSet:
        idx = [int(i) for i in index]
        return PairSet(
            self.pair,
            [self.names[i] for i in idx],
            self.sources[idx],
            [self.chroma[i] for i in idx],
            self.source,
        )

    def item(self, i: int) -> SourcePair:
        return SourcePair(self.sources[i, 0], self.sources[i, 1], self.chroma[i], self.names[i])


def pair_files(root: str | Path | None, pair: str) -> list[tuple[str, Path, Path]]:
    """(name, MRI file, other file) for every name present in both folders; a file without its
    partner is an error naming it."""
    if pair not in PAIRS:
        raise FusionDataError(f"unknown modality pair {pair!r}; expected one of {sorted(PAIRS)}")
    folder, other = PAIRS[pair]
    base = harvard_root(root) / folder
    mri_dir, other_dir = base / "MRI", base / other
    for d in (mri_dir, other_dir):
        if not d.is_dir():
            raise FusionDataError(
                f"{d}: missing (expected the Harvard AANLIB layout {folder}/{{MRI,{other}}})"
            )
    mri = {p.stem: p for p in mri_dir.glob("*.png")}
    oth = {p.stem: p for p in other_dir.glob("*.png")}
    lone = sorted(set(mri) ^ set(oth))
    if lone:
        side = "MRI" if lone[0] in mri else other
        raise FusionDataError(f"{folder}: {side}/{lone[0]}.png has no partner ({len(lone)} unpaired files)")
    if not mri:
        raise FusionDataError(f"{base}: no pairs")
    return [(n, mri[n], oth[n]) for n in sorted(mri)]


def load_pairs(root: str | Path | None, pair: str, limit: int | None = None) -> PairSet:
    """Every pair of ``pair`` ('ct', 'pet' or 'spect'), sorted by name (``limit``: the first n)."""
    files = pair_files(root, pair)[:limit]
    items = [load_pair(m, o, n) for n, m, o in files]
    shapes = {it.mri.shape for it in items}
    if len(shapes) != 1:
        raise FusionDataError(f"{pair}: pairs of several sizes {sorted(shapes)}")
    return PairSet(
        pair,
        [it.name for it in items],
        np.stack([it.stacked() for it in items]),
        [it.chroma for it in items],
        {"root": str(HARVARD_DIR), "pair": PAIRS[pair][0], "n": len(items)},
    )


@dataclass(frozen=True)
class PairSplit:
    """Index arrays of a split by pair and the seed that made it."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    seed: int
    fractions: tuple[float, float, float]


def split_pairs(n: int, seed: int = 0, fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)) -> PairSplit:
    """A seeded permutation of ``n`` pairs cut into train / val / test."""
    if n < 3:
        raise FusionDataError(f"need at least 3 pairs to split, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    n_train = max(1, round(fractions[0] * n))
    n_val = max(1, round(fractions[1] * n))
    return PairSplit(
        np.sort(order[:n_train]),
        np.sort(order[n_train : n_train + n_val]),
        np.sort(order[n_train + n_val :]),
        seed,
        fractions,
    )
