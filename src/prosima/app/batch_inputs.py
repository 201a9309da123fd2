"""What the images named on a command line are: a file is one image (a 2-D image, or a 3-D NIfTI
volume); a folder is a DICOM series (one volume) when it holds a DICOM file, and otherwise a batch:
its image files in name order and its subfolders that are DICOM series, each a volume.

The rule in full: in a batch folder, files whose names end in ``.png``, ``.jpg``, ``.jpeg``,
``.npy``, ``.nii`` or ``.nii.gz`` are images (a 3-D NIfTI file a volume) and subfolders holding a
DICOM file are series; hidden entries (``.name``) are left out, other files and folders are skipped
(and counted), and nothing deeper is searched. A folder holding a DICOM file (``.dcm``, ``.dicom``
or the ``DICM`` preamble) is a series, as it always was; put each series in a folder of its own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from prosima.errors import InputError
from prosima.imaging.loaded import has_dicm_preamble, suffix

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".npy", ".nii", ".nii.gz")
DICOM_SUFFIXES = (".dcm", ".dicom")


@dataclass(frozen=True)
class Inputs:
    """The images of a run in order (files, DICOM series folders), what batch folders held besides
    (``skipped``), and whether it is a batch: several arguments, or a folder of images."""

    paths: list[Path]
    skipped: list[Path]
    batch: bool


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def is_dicom_series(folder: Path) -> bool:
    """Whether ``folder`` holds a DICOM file (by its suffix or its ``DICM`` preamble)."""
    return any(
        p.is_file() and (suffix(p) in DICOM_SUFFIXES or has_dicm_preamble(p)) for p in _visible(folder)
    )


def _batch_folder(folder: Path) -> tuple[list[Path], list[Path]]:
    images, skipped = [], []
    for p in _visible(folder):
        if (p.is_file() and suffix(p) in IMAGE_SUFFIXES) or (p.is_dir() and is_dicom_series(p)):
            images.append(p)
        else:
            skipped.append(p)
    if not images:
        raise InputError(
            f"{folder}: no images in this folder (no {', '.join(IMAGE_SUFFIXES)} files, no DICOM "
            f"files or series folders; {len(skipped)} other entries)"
        )
    return images, skipped


def expand_inputs(paths: Sequence[Path]) -> Inputs:
    """The images ``paths`` name, by the module's rule; a path that does not exist is refused."""
    if not paths:
        raise InputError("no images given")
    found: list[Path] = []
    skipped: list[Path] = []
    from_folder = False
    for path in paths:
        if not path.exists():
            raise InputError(f"{path}: file not found")
        if path.is_dir() and not is_dicom_series(path):
            images, other = _batch_folder(path)
            found += images
            skipped += other
            from_folder = True
        else:
            found.append(path)
    return Inputs(found, skipped, batch=from_folder or len(paths) > 1)
