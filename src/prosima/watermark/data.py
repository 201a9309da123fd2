"""The chest X-ray sets: arrays in [0, 1], integer labels, file ids, and a seeded split by file."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from prosima.errors import InputError

COVID_DIR = Path("chest_xray") / "covid19_xray_256"
PNEUMONIAMNIST_FILE = Path("chest_xray") / "pneumoniamnist" / "pneumoniamnist.npz"
PNEUMONIAMNIST_CLASSES = ("normal", "pneumonia")
RESIZE_METHOD = "PIL box (area average) on 8-bit pixels"


class DataError(InputError, ValueError):
    """A data set that is missing or not in the expected layout."""


@dataclass(frozen=True, eq=False)
class XrayData:
    """Images (N, H, W) float32 in [0, 1] (8-bit values / 255), labels (N,) int64, one id per image."""

    images: np.ndarray
    labels: np.ndarray
    ids: list[str]
    classes: list[str]
    source: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.ids)
        if self.images.ndim != 3 or len(self.images) != n or self.labels.shape != (n,):
            raise DataError(
                f"images {self.images.shape}, labels {self.labels.shape} and {n} ids do not agree"
            )

    def subset(self, index: np.ndarray | list[int]) -> XrayData:
        """The images at ``index``, in that order."""
        idx = np.asarray(index, dtype=np.int64)
        return XrayData(
            self.images[idx], self.labels[idx], [self.ids[i] for i in idx], self.classes, self.source
        )


@dataclass(frozen=True)
class Split:
    """Index arrays of a split by file, and what made it."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    seed: int
    fractions: tuple[float, float, float]


def shared_data_root(root: str | Path | None = None) -> Path:
    """``root``, else ``$PROSIMA_SHARED_DATA``, else ``../shared/data`` beside the repository."""
    if root is not None:
        return Path(root)
    env = os.environ.get("PROSIMA_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3].parent / "shared" / "data"


def _resize(pixels: np.ndarray, size: int | None) -> np.ndarray:
    if size is None or pixels.shape == (size, size):
        return pixels
    from PIL import Image

    return np.asarray(Image.fromarray(pixels).resize((size, size), Image.Resampling.BOX), dtype=np.uint8)


def load_covid_xray(root: str | Path | None = None, size: int | None = 128) -> XrayData:
    """The COVID-19 chest X-ray set (``<class>/*.png``, label = folder, classes sorted), down-sampled
    to ``size`` x ``size`` (None: as stored). ``root`` is the set's folder or a shared-data root."""
    from prosima.imaging.limits import open_pillow

    folder = shared_data_root(root)
    if (folder / COVID_DIR).is_dir():
        folder = folder / COVID_DIR
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    if not classes:
        raise DataError(f"{folder}: no class folders of PNG images")
    images, labels, ids = [], [], []
    for label, name in enumerate(classes):
        for path in sorted((folder / name).glob("*.png")):
            with open_pillow(path) as im:  # refused from the header when oversized
                pixels = np.asarray(im.convert("L"), dtype=np.uint8)
            images.append(_resize(pixels, size))
            labels.append(label)
            ids.append(f"{name}/{path.name}")
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise DataError(f"{folder}: images of several shapes {sorted(shapes)}; pass a size")
    source = {"name": "covid19_xray_256", "path": str(folder), "size": size, "resize": RESIZE_METHOD}
    return XrayData(
        np.stack(images).astype(np.float32) / 255.0, np.asarray(labels, np.int64), ids, classes, source
    )


def load_pneumoniamnist(
    root: str | Path | None = None, splits: tuple[str, ...] = ("train", "val", "test")
) -> XrayData:
    """PneumoniaMNIST (28 x 28, 0 normal, 1 pneumonia); ids are ``<split>/<index>``. ``root`` is the
    ``.npz`` file or a shared-data root."""
    path = shared_data_root(root)
    if path.is_dir():
        path = path / PNEUMONIAMNIST_FILE
    if not path.is_file():
        raise DataError(f"{path}: no PneumoniaMNIST .npz there")
    images, labels, ids = [], [], []
    with np.load(path) as npz:
        for split in splits:
            try:
                x, y = npz[f"{split}_images"], npz[f"{split}_labels"].reshape(-1)
            except KeyError:
                raise DataError(f"{path}: no {split}_images / {split}_labels arrays") from None
            images.append(x)
            labels.append(y)
            ids += [f"{split}/{i:05d}" for i in range(len(x))]
    source = {"name": "pneumoniamnist", "path": str(path), "size": 28, "splits": list(splits)}
    return XrayData(
        np.concatenate(images).astype(np.float32) / 255.0,
        np.concatenate(labels).astype(np.int64),
        ids,
        list(PNEUMONIAMNIST_CLASSES),
        source,
    )


def load_dataset(path: str | Path, size: int | None = 128) -> XrayData:
    """A PneumoniaMNIST-style ``.npz`` or a folder of class folders of PNGs."""
    path = Path(path)
    if path.suffix == ".npz":
        return load_pneumoniamnist(path)
    return load_covid_xray(path, size=size)


def split_by_file(
    ids: list[str],
    labels: np.ndarray,
    fractions: tuple[float, float, float] = (0.7, 0.1, 0.2),
    seed: int = 0,
) -> Split:
    """Each file to exactly one of train / val / test, stratified by label; the order of ``ids`` does
    not matter (files are sorted by id before the seeded shuffle)."""
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1.0) > 1e-9:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")
    if len(set(ids)) != len(ids):
        raise DataError("file ids are not unique")
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    parts: list[list[int]] = [[], [], []]
    for label in np.unique(labels):
        members = sorted(np.flatnonzero(labels == label), key=lambda i: ids[i])
        members = [members[i] for i in rng.permutation(len(members))]
        n_val = round(fractions[1] * len(members))
        n_test = round(fractions[2] * len(members))
        parts[2] += members[:n_test]
        parts[1] += members[n_test : n_test + n_val]
        parts[0] += members[n_test + n_val :]
    train, val, test = (np.array(sorted(p), dtype=np.int64) for p in parts)
    return Split(train, val, test, seed, tuple(float(f) for f in fractions))
