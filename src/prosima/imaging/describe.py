"""Describe any supported file or folder: modality, shape, spacing, intensity range, usable slices."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from prosima.imaging.datasets import BRATS_CONTRASTS, IMAGE_SUFFIXES, find_brats_subjects
from prosima.imaging.io import LoadedImage, read_dicom_series, read_image, read_npy_header
from prosima.imaging.validation import ImageError

CT_TISSUE_HU = -500.0  # CT voxels above this are tissue rather than air


def foreground(volume: np.ndarray, modality: str | None) -> np.ndarray:
    """Voxels that are tissue rather than background.

    CT: above -500 HU. A volume whose border is all zero (skull-stripped MRI, as in BraTS): non-zero.
    Otherwise: more than 5% of the intensity span above the median of the border.
    """
    if modality == "CT":
        return volume > CT_TISSUE_HU
    border = np.concatenate([np.moveaxis(volume, a, 0)[[0, -1]].ravel() for a in range(volume.ndim)])
    if not border.any():
        return volume != 0
    background = float(np.median(border))
    return volume > background + 0.05 * (float(np.percentile(volume, 99.5)) - background)


def usable_slices(loaded: LoadedImage, min_fraction: float = 0.05) -> int | None:
    """Number of axial slices whose foreground covers at least ``min_fraction`` of the slice.

    NIfTI volumes are axial along the last axis, DICOM series and multi-frame files along the first.
    """
    arr = loaded.array
    if arr.ndim != 3:
        return None
    axis = 2 if loaded.meta.format == "nifti" else 0
    other = tuple(a for a in range(3) if a != axis)
    fractions = foreground(arr, loaded.meta.modality).mean(axis=other)
    return int((fractions >= min_fraction).sum())


def describe_npz(path: Path) -> dict[str, Any]:
    """The arrays in a NumPy ``.npz`` archive: name, shape, dtype and range."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            for name in archive.zip.namelist():  # every member's header, before any data is read
                with archive.zip.open(name) as fh:
                    read_npy_header(fh, f"{path} (member {name})")
            arrays = {
                k: {"shape": list(v.shape), "dtype": str(v.dtype), "range": [float(v.min()), float(v.max())]}
                for k, v in ((k, archive[k]) for k in archive.files)
            }
    except ImageError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise ImageError(f"{path}: not a readable .npz archive ({exc})") from exc
    return {"kind": "npz", "path": str(path), "arrays": arrays}


def describe_image(loaded: LoadedImage, min_fraction: float = 0.05) -> dict[str, Any]:
    """A JSON-ready summary of one loaded image."""
    m = loaded.meta
    return {
        "path": m.path,
        "format": m.format,
        "modality": m.modality,
        "shape": list(m.shape),
        "spacing": None if m.spacing is None else [round(float(s), 6) for s in m.spacing],
        "original_dtype": m.original_dtype,
        "intensity_range": [float(v) for v in m.intensity_range],
        "usable_slices": usable_slices(loaded, min_fraction),
    }


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def describe_path(path: str | Path, min_fraction: float = 0.05) -> dict[str, Any]:
    """Describe a file, a BraTS tree, a DICOM series, a folder of label folders or of pairs."""
    path = Path(path)
    if path.suffix.lower() == ".npz" and path.is_file():
        return describe_npz(path)
    if path.is_file() or path.name.endswith((".nii", ".nii.gz")):
        return {"kind": "file", **describe_image(read_image(path), min_fraction)}
    if not path.is_dir():
        raise ImageError(f"{path}: no such file or folder")
    subdirs = sorted(d for d in path.iterdir() if d.is_dir())
    files = _images_in(path)
    try:
        subjects = find_brats_subjects(path)
    except ImageError:
        subjects = []
    if subjects:
        entries = []
        for subject in subjects:
            present = [c for c in BRATS_CONTRASTS if (path / subject / f"{subject}-{c}.nii.gz").exists()]
            first = describe_image(
                read_image(path / subject / f"{subject}-{present[0]}.nii.gz"), min_fraction
            )
            entries.append({"subject": subject, "contrasts": present, **first})
        return {"kind": "brats", "path": str(path), "n_subjects": len(subjects), "subjects": entries}
    if files and all(p.suffix.lower() == ".dcm" for p in files):
        try:
            return {
                "kind": "dicom_series",
                "n_files": len(files),
                **describe_image(read_dicom_series(path), min_fraction),
            }
        except ImageError as exc:  # several series or mosaics: describe file by file
            entries = [describe_image(read_image(p), min_fraction) for p in files]
            return {
                "kind": "dicom_files",
                "path": str(path),
                "n_files": len(files),
                "note": str(exc),
                "files": entries,
            }
    if files:
        first = describe_image(read_image(files[0]), min_fraction)
        return {"kind": "images", "path": str(path), "n_images": len(files), "first": first}
    labelled = {d.name: _images_in(d) for d in subdirs}
    labelled = {k: v for k, v in labelled.items() if v}
    if not labelled:
        if subdirs:
            return {"kind": "folders", "path": str(path), "children": [d.name for d in subdirs]}
        raise ImageError(
            f"{path}: folder holds no supported images ({', '.join(IMAGE_SUFFIXES)}, .nii, .nii.gz)"
        )
    names = [{p.name for p in v} for v in labelled.values()]
    if len(names) == 2 and len(names[0] & names[1]) >= 0.5 * min(len(n) for n in names):
        a, b = labelled
        first = {k: describe_image(read_image(v[0]), min_fraction) for k, v in labelled.items()}
        return {
            "kind": "paired",
            "path": str(path),
            "sides": [a, b],
            "n_pairs": len(names[0] & names[1]),
            "first": first,
        }
    if all(p.suffix.lower() == ".dcm" for v in labelled.values() for p in v):
        return {
            "kind": "dicom_folders",
            "path": str(path),
            "folders": {k: describe_path(path / k, min_fraction) for k in labelled},
        }
    first_label = next(iter(labelled))
    return {
        "kind": "labelled_images",
        "path": str(path),
        "classes": {k: len(v) for k, v in labelled.items()},
        "first": describe_image(read_image(labelled[first_label][0]), min_fraction),
    }
