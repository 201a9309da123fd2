"""Datasets: BraTS axial slices, an embedded default brain, image folders by label, paired folders.

Every dataset is a plain ``Sequence`` of numpy items, so it works with a torch ``DataLoader`` without
the imaging half importing torch. Slices carry the record of how they were normalised.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from prosima.imaging.io import ImageReadError, read_image
from prosima.imaging.validation import ImageError, check_image

BRATS_CONTRASTS = ("t1n", "t1c", "t2w", "t2f")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".npy", ".dcm")
SLICE_SIZE = 256


@dataclass(frozen=True)
class SliceItem:
    """One normalised 2-D slice and where it came from."""

    image: np.ndarray
    subject: str
    contrast: str
    z: int
    brain_fraction: float
    normalisation: dict[str, Any] = field(repr=False)


def normalise_volume(
    volume: np.ndarray, percentiles: tuple[float, float] = (0.5, 99.5)
) -> tuple[np.ndarray, dict]:
    """Scale a volume to [0, 1] by robust percentiles of its non-zero (brain) voxels.

    Values below the low percentile map to 0, above the high one to 1; a zero background stays 0.
    Returns the normalised volume and the record of the rule and the values it used.
    """
    vol = check_image(volume, "volume")
    lo_p, hi_p = percentiles
    if not 0.0 <= lo_p < hi_p <= 100.0:
        raise ImageError(f"percentiles must satisfy 0 <= low < high <= 100, got {percentiles}")
    fg = vol[vol != 0]
    if fg.size == 0:
        raise ImageError("volume is entirely zero: nothing to normalise")
    lo, hi = (float(v) for v in np.percentile(fg, [lo_p, hi_p]))
    if hi <= lo:
        raise ImageError(f"volume has no intensity spread between percentiles {percentiles} ({lo} .. {hi})")
    out = np.clip((vol - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)
    out[vol == 0] = 0.0
    record = {"rule": "percentile_of_nonzero", "percentiles": [lo_p, hi_p], "low": lo, "high": hi}
    return out, record


def crop_or_pad(image: np.ndarray, size: tuple[int, int] = (SLICE_SIZE, SLICE_SIZE)) -> np.ndarray:
    """Centre-crop or zero-pad the last two axes of ``image`` to ``size``."""
    out = image
    for axis, want in zip((-2, -1), size, strict=True):
        have = out.shape[axis]
        if have > want:
            start = (have - want) // 2
            out = np.take(out, range(start, start + want), axis=axis)
        elif have < want:
            pad = [(0, 0)] * out.ndim
            before = (want - have) // 2
            pad[axis] = (before, want - have - before)
            out = np.pad(out, pad)
    return np.ascontiguousarray(out, dtype=np.float32)


class VolumeSlices(Sequence[SliceItem]):
    """Axial slices with enough brain in them, from named 3-D volumes (last axis is axial)."""

    def __init__(
        self,
        volumes: Iterable[tuple[str, str, np.ndarray]],
        *,
        min_brain_fraction: float = 0.05,
        size: int = SLICE_SIZE,
        percentiles: tuple[float, float] = (0.5, 99.5),
        max_slices_per_volume: int | None = None,
    ) -> None:
        self.min_brain_fraction = min_brain_fraction
        self.size = size
        self._volumes: dict[tuple[str, str], np.ndarray] = {}
        self._norms: dict[tuple[str, str], dict] = {}
        self._index: list[tuple[str, str, int, float]] = []
        for subject, contrast, volume in volumes:
            vol = check_image(volume, f"{subject}/{contrast}", ndim=(3,))
            normed, record = normalise_volume(vol, percentiles)
            fractions = (vol != 0).mean(axis=(0, 1))
            usable = [z for z in range(vol.shape[2]) if fractions[z] >= min_brain_fraction]
            if max_slices_per_volume is not None and len(usable) > max_slices_per_volume:
                picks = np.linspace(0, len(usable) - 1, max_slices_per_volume).round().astype(int)
                usable = [usable[i] for i in picks]
            self._volumes[(subject, contrast)] = normed
            self._norms[(subject, contrast)] = record
            self._index += [(subject, contrast, z, float(fractions[z])) for z in usable]
        if not self._index:
            raise ImageError(f"no axial slice has a brain fraction >= {min_brain_fraction}")

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, i: int) -> SliceItem:  # type: ignore[override]
        subject, contrast, z, frac = self._index[i]
        image = crop_or_pad(self._volumes[(subject, contrast)][:, :, z], (self.size, self.size))
        return SliceItem(image, subject, contrast, z, frac, self._norms[(subject, contrast)])

    def stack(self, i: int, context: int) -> np.ndarray:
        """Slice ``i`` between its ``context`` neighbours on each side, ``[2 * context + 1, H, W]``.

        Neighbours come from the whole volume (brain fraction does not matter for them); past the
        volume's ends the edge slice repeats.
        """
        subject, contrast, z, _ = self._index[i]
        vol = self._volumes[(subject, contrast)]
        zs = np.clip(np.arange(z - context, z + context + 1), 0, vol.shape[2] - 1)
        return crop_or_pad(np.moveaxis(vol[:, :, zs], 2, 0), (self.size, self.size))

    @property
    def subjects(self) -> list[str]:
        """Subjects in first-seen order."""
        return list(dict.fromkeys(s for s, _, _, _ in self._index))


def find_brats_subjects(root: str | Path) -> list[str]:
    """Subject folders of a BraTS 2023 tree (``<subject>/<subject>-<contrast>.nii.gz``), sorted."""
    root = Path(root)
    if not root.is_dir():
        raise ImageError(f"{root}: not a folder")
    subjects = sorted(
        d.name
        for d in root.iterdir()
        if d.is_dir() and any(_brats_file(root, d.name, c).exists() for c in BRATS_CONTRASTS)
    )
    if not subjects:
        raise ImageError(f"{root}: no BraTS subject folders (<subject>/<subject>-t1n.nii.gz) found")
    return subjects


def _brats_file(root: Path, subject: str, contrast: str) -> Path:
    return root / subject / f"{subject}-{contrast}.nii.gz"


def brats_slices(
    root: str | Path,
    subjects: Sequence[str] | None = None,
    contrasts: Sequence[str] = ("t1n",),
    **kwargs: Any,
) -> VolumeSlices:
    """Axial slices of the given BraTS subjects and contrasts (all subjects by default)."""
    root = Path(root)
    subjects = list(subjects) if subjects else find_brats_subjects(root)
    bad = sorted(set(contrasts) - set(BRATS_CONTRASTS))
    if bad:
        raise ImageError(f"unknown BraTS contrasts {bad}; choose from {list(BRATS_CONTRASTS)}")

    def volumes() -> Iterable[tuple[str, str, np.ndarray]]:
        for subject in subjects:
            for contrast in contrasts:
                path = _brats_file(root, subject, contrast)
                if not path.exists():
                    raise ImageReadError(
                        f"{path}: missing BraTS volume for subject {subject}, contrast {contrast}"
                    )
                yield subject, contrast, read_image(path).array

    return VolumeSlices(volumes(), **kwargs)


def embedded_default_volume() -> tuple[np.ndarray, dict[str, Any]]:
    """The MNI152 2009c T1 template that ships inside nilearn (197x233x189, 1 mm), read offline."""
    from nilearn.datasets import load_mni152_template

    img = load_mni152_template(resolution=1)
    volume = np.asarray(img.get_fdata(), dtype=np.float32)
    info = {
        "name": "MNI152 2009 T1 template (nilearn)",
        "shape": list(volume.shape),
        "affine": img.affine.tolist(),
    }
    return volume, info


def embedded_default_slices(**kwargs: Any) -> VolumeSlices:
    """Axial slices of the embedded default brain, normalised like BraTS slices."""
    volume, _ = embedded_default_volume()
    return VolumeSlices([("MNI152", "t1", volume)], **kwargs)


def split_subjects(
    subjects: Sequence[str], fractions: tuple[float, float, float] = (0.6, 0.2, 0.2), seed: int = 0
) -> dict[str, list[str]]:
    """Split subjects (never slices) into train/val/test by a seeded shuffle; each part gets at least one."""
    subjects = sorted(set(subjects))
    if len(subjects) < 3:
        raise ImageError(f"need at least 3 subjects for a train/val/test split, got {len(subjects)}")
    if abs(sum(fractions) - 1.0) > 1e-9 or min(fractions) <= 0:
        raise ImageError(f"fractions must be positive and sum to 1, got {fractions}")
    order = list(np.random.default_rng(seed).permutation(len(subjects)))
    n = len(subjects)
    n_val = max(1, round(fractions[1] * n))
    n_test = max(1, round(fractions[2] * n))
    n_train = n - n_val - n_test
    picked = [subjects[i] for i in order]
    return {
        "train": sorted(picked[:n_train]),
        "val": sorted(picked[n_train : n_train + n_val]),
        "test": sorted(picked[n_train + n_val :]),
    }


def to_unit_range(array: np.ndarray, original_dtype: str) -> np.ndarray:
    """Scale integer-typed pixel values to [0, 1] by their dtype's maximum; floats are kept."""
    dt = np.dtype(original_dtype)
    if dt.kind in "ui":
        return (array / float(np.iinfo(dt).max)).astype(np.float32)
    return array.astype(np.float32)


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


class ImageFolder(Sequence[tuple[np.ndarray, int]]):
    """Images in one sub-folder per label (``root/<label>/*.png``); items are (image in [0, 1], label)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise ImageError(f"{self.root}: not a folder")
        self.classes = sorted(d.name for d in self.root.iterdir() if d.is_dir())
        self.samples = [(p, i) for i, c in enumerate(self.classes) for p in _image_files(self.root / c)]
        if not self.samples:
            raise ImageError(f"{self.root}: no images found in label sub-folders (expected <label>/*.png)")

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:  # type: ignore[override]
        path, label = self.samples[i]
        loaded = read_image(path, as_gray=True)
        return to_unit_range(loaded.array, loaded.meta.original_dtype), label


class PairedFolder(Sequence[tuple[np.ndarray, np.ndarray]]):
    """Co-registered pairs matched by file name: ``root/<a>/x.png`` with ``root/<b>/x.png``."""

    def __init__(self, root: str | Path, a: str, b: str, *, as_gray: bool = False) -> None:
        self.root = Path(root)
        self.a, self.b, self.as_gray = a, b, as_gray
        for side in (a, b):
            if not (self.root / side).is_dir():
                raise ImageError(f"{self.root / side}: not a folder")
        names_a = {p.name for p in _image_files(self.root / a)}
        names_b = {p.name for p in _image_files(self.root / b)}
        self.names = sorted(names_a & names_b)
        self.unmatched = sorted(names_a ^ names_b)
        if not self.names:
            raise ImageError(f"{self.root}: no file names shared by '{a}' and '{b}'")

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[override]
        pair = []
        for side in (self.a, self.b):
            loaded = read_image(self.root / side / self.names[i], as_gray=self.as_gray)
            pair.append(to_unit_range(loaded.array, loaded.meta.original_dtype))
        return pair[0], pair[1]
