"""A loaded image (a float32 array and where it came from), format detection and read errors.

Shared by the readers in :mod:`prosima.imaging.io` and :mod:`prosima.imaging.dicom`, so neither
imports the other for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from prosima.imaging.validation import ImageError, ImageReadError, check_image

_SUFFIX_FORMATS = {
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".npy": "npy",
    ".nii": "nifti",
    ".nii.gz": "nifti",
    ".dcm": "dicom",
    ".dicom": "dicom",
}
_LUMA_601 = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True, eq=False)
class ImageMeta:
    """Where an image came from and how its array relates to the stored data.

    Compared by identity: the affine is an array, so field-wise equality is not defined.
    """

    path: str
    format: str
    modality: str | None
    shape: tuple[int, ...]
    spacing: tuple[float, ...] | None
    affine: np.ndarray | None
    original_dtype: str
    intensity_range: tuple[float, float]
    identifiers: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class LoadedImage:
    """A float32 image array and its metadata."""

    array: np.ndarray
    meta: ImageMeta


def read_error(path: str | Path, problem: str) -> ImageReadError:
    """Build the error for ``path``; readers raise it ``from`` the library exception."""
    return ImageReadError(f"{path}: {problem}")


def describe(exc: BaseException) -> str:
    """One line naming a library exception, for wrapping it in an ImageReadError."""
    text = " ".join(str(exc).split())
    if isinstance(exc, KeyError):  # a bare key such as "(0028,0101)" says nothing on its own
        return f"a required field is missing: {text}" if text else "a required field is missing"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def rgb_to_gray(array: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of an (..., 3) RGB array, as float32 (no rounding)."""
    return np.asarray(array[..., :3], dtype=np.float32) @ _LUMA_601


def loaded_image(
    path: str | Path,
    fmt: str,
    array: np.ndarray,
    *,
    original_dtype: str,
    modality: str | None = None,
    spacing: tuple[float, ...] | None = None,
    affine: np.ndarray | None = None,
    identifiers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> LoadedImage:
    """Validate ``array`` (2-D or 3-D, finite) and bundle it with its metadata."""
    try:
        arr = check_image(array, str(path))
    except ImageError as exc:
        raise ImageReadError(str(exc)) from exc
    if affine is not None:
        affine = np.array(affine, dtype=np.float64)
        affine.flags.writeable = False
    meta = ImageMeta(
        path=str(path),
        format=fmt,
        modality=modality,
        shape=tuple(int(n) for n in arr.shape),
        spacing=None if spacing is None else tuple(float(s) for s in spacing),
        affine=affine,
        original_dtype=original_dtype,
        intensity_range=(float(arr.min()), float(arr.max())),
        identifiers=dict(identifiers or {}),
        extra=dict(extra or {}),
    )
    return LoadedImage(array=arr, meta=meta)


def suffix(path: Path) -> str:
    """The lower-case suffix that names a format (``.nii.gz`` counts as one)."""
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def has_dicm_preamble(path: Path) -> bool:
    """True when ``path`` has the 128-byte preamble followed by ``DICM``."""
    try:
        with path.open("rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def detect_format(path: str | Path) -> str:
    """The format of an existing, non-empty file, from its extension or DICOM preamble."""
    p = Path(path)
    if not p.exists():
        raise read_error(path, "file not found")
    if p.is_dir():
        raise read_error(path, "is a folder, not an image file (a DICOM series folder is read as a volume)")
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise read_error(path, f"cannot access file ({describe(exc)})") from exc
    if size == 0:
        raise read_error(path, "file is empty (0 bytes)")
    fmt = _SUFFIX_FORMATS.get(suffix(p))
    if fmt is None and has_dicm_preamble(p):
        fmt = "dicom"
    if fmt is None:
        known = ", ".join(sorted(_SUFFIX_FORMATS))
        raise read_error(
            path,
            f"unsupported file type {suffix(p) or '(no extension)'!r}; expected one of {known} "
            "or a DICOM file with the 'DICM' preamble",
        )
    return fmt
