"""Describe any supported file or folder: modality, shape, spacing, intensity range, usable slices."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prosima.imaging.datasets import BRATS_CONTRASTS, IMAGE_SUFFIXES, find_brats_subjects
from prosima.imaging.io import LoadedImage, read_dicom_series, read_image
from prosima.imaging.validation import ImageError

CT_TISSUE_HU = -500.0  # CT voxels above this are tissue rather than air


def usable_slices(loaded: LoadedImage, min_fraction: float = 0.05) -> int | None:
    """Number of axial slices whose foreground covers at least ``min_fraction`` of the slice.

    Foreground is anything above the volume's minimum (skull-stripped MRI), or above -500 HU for CT.
    NIfTI volumes are axial along the last axis, DICOM series and multi-frame files along the first.
    """
    arr = loaded.array
    if arr.ndim != 3:
        return None
    threshold = CT_TISSUE_HU if loaded.meta.modality == "CT" else float(arr.min())
    axis = 2 if loaded.meta.format == "nifti" else 0
    other = tuple(a for a in range(3) if a != axis)
    fractions = (arr > threshold).mean(axis=other)
    return int((fractions >= min_fraction).sum())


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
    first_label = next(iter(labelled))
    return {
        "kind": "labelled_images",
        "path": str(path),
        "classes": {k: len(v) for k, v in labelled.items()},
        "first": describe_image(read_image(labelled[first_label][0]), min_fraction),
    }
