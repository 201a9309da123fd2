"""Acquisition-like DICOM: 2-D slices in [0, 1] written as one MR series (12-bit unsigned, the way a
scanner stores them, with seeded UIDs so that the same seed writes the same files), and copies of
an instance with its stored pixels changed under the same UIDs (what a corruption in the archive
leaves behind). The patient is a named phantom: nothing here is a person's data."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

BITS = 12
FULL_SCALE = (1 << BITS) - 1  # a unit pixel is stored as round(value * 4095)
PHANTOM = ("PROSIMA-PHANTOM-0001", "Phantom^MNI152")  # Patient ID, Patient's Name


def _uid(seed: int, *parts: object) -> str:
    """A UID derived from the seed and ``parts`` (pydicom's 2.25 form of a SHA-512 of them)."""
    return generate_uid(entropy_srcs=["prosima.dicom_series", str(seed), *map(str, parts)])


def stored_pixels(unit: np.ndarray) -> np.ndarray:
    """``unit`` (values in [0, 1]) as the stored 12-bit values."""
    return np.rint(np.clip(np.asarray(unit, dtype=np.float64), 0.0, 1.0) * FULL_SCALE).astype(np.uint16)


def write_mr_series(folder: Path, slices: Sequence[np.ndarray], *, seed: int = 0) -> list[Path]:
    """Write ``slices`` (2-D, values in [0, 1]) as the instances of one MR series in ``folder``
    (``mr000.dcm``, ...), one slice apart; the same seed gives the same UIDs and bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    study, series, frame = (_uid(seed, part) for part in ("study", "series", "frame"))
    paths = []
    for n, unit in enumerate(slices):
        if np.ndim(unit) != 2:
            raise ValueError(f"slice {n}: expected a 2-D image, got shape {np.shape(unit)}")
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = _uid(seed, "instance", n)
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = MRImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.PatientID, ds.PatientName = PHANTOM
        ds.Modality, ds.SeriesDescription = "MR", "PROSIMA demo: MNI152 T1 sections"
        ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "1", 1, n + 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.PixelSpacing, ds.SliceThickness = [1.0, 1.0], 1.0
        ds.ImagePositionPatient, ds.ImageOrientationPatient = [0.0, 0.0, float(n)], [1, 0, 0, 0, 1, 0]
        ds.set_pixel_data(stored_pixels(unit), "MONOCHROME2", BITS)
        path = folder / f"mr{n:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def changed_copy(src: Path, dst: Path, change: Callable[[np.ndarray], np.ndarray]) -> Path:
    """``src`` with its stored pixels replaced by ``change(pixels as float64)`` (rounded and clipped
    to the stored type), under the same UIDs."""
    ds = pydicom.dcmread(src)
    pixels = ds.pixel_array
    info = np.iinfo(pixels.dtype)
    changed = np.clip(np.rint(change(pixels.astype(np.float64))), info.min, info.max).astype(pixels.dtype)
    ds.PixelData = changed.tobytes()
    ds.save_as(dst)
    return dst
