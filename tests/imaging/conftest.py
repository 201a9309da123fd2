"""Shared fixtures of the imaging tests: a small synthetic CT slice written as a DICOM file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

PAD_STORED = -2000  # Pixel Padding Value, stored
INTERCEPT = -1024.0  # Rescale Intercept: HU = stored + INTERCEPT


def ct_slice(size: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stored int16 values of a CT-like slice (a disc of tissue; padding outside the field of view)
    and the mask of the padded pixels."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - (size - 1) / 2, xx - (size - 1) / 2)
    stored = np.where(r < size * 0.3, 1040 + rng.integers(-30, 30, (size, size)), 24).astype(np.int16)
    pad = r >= size * 0.45
    stored[pad] = PAD_STORED
    return stored, pad


def ct_dataset(stored: np.ndarray, *, type2: bool = False) -> Dataset:
    """An uncompressed CT Image Storage instance of ``stored`` with a Pixel Padding Value; its Type 2
    attributes of Patient, Study, Frame of Reference, Image Plane and CT Image are left out unless
    ``type2``."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.FrameOfReferenceUID = generate_uid()
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "CT", 3, 7
    ds.PatientName, ds.PatientID = "Synthetic^Phantom", "PHANTOM-1"
    ds.StudyDate, ds.StudyTime, ds.Manufacturer = "20240102", "030405", "Synthetic"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.PixelSpacing = [0.5, 0.5]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [-16, -16, 40]
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = INTERCEPT, 1, "HU"
    if type2:
        ds.PatientBirthDate = ds.PatientSex = ds.ReferringPhysicianName = ""
        ds.StudyID = ds.AccessionNumber = ds.PositionReferenceIndicator = ""
        ds.SliceThickness = ds.KVP = ds.AcquisitionNumber = None
    ds.set_pixel_data(stored, "MONOCHROME2", 16, generate_instance_uid=False)
    ds.add_new(0x00280120, "SS", PAD_STORED)  # Pixel Padding Value
    return ds


@pytest.fixture
def write_ct(tmp_path) -> Callable[..., Path]:
    """Write a synthetic CT slice (see ``ct_dataset``) to ``tmp_path/name``; returns the path."""

    def write(name: str = "ct.dcm", *, seed: int = 0, type2: bool = False, size: int = 64) -> Path:
        stored, _ = ct_slice(size, seed)
        path = tmp_path / name
        pydicom.dcmwrite(path, ct_dataset(stored, type2=type2), enforce_file_format=True)
        return path

    return write


@pytest.fixture
def ct_padding() -> Callable[[int], np.ndarray]:
    """The padding mask of ``ct_slice(size)``."""
    return lambda size=64: ct_slice(size)[1]
