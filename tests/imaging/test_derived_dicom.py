"""Derived DICOM images say what happened in DICOM's own terms: padding stays padding, the Source Image
Sequence names the anchored original (and the input), the software is Processing Equipment of a new
series, and the instance conforms to its IOD (``dciodvfy`` of Debian's dicom3tools finds no error)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pydicom
import pytest

from prosima.imaging.dicom import SERIES_NUMBER_OFFSET, write_derived_dicom
from prosima.imaging.io import read_image

PAD_HU = -2000 - 1024  # the synthetic CT's Pixel Padding Value after its rescale (conftest)


def derived(path, source, **kw):
    """A 'restoration' of ``source``: its HU plus noise everywhere, padding included."""
    hu = read_image(source).array
    noisy = hu + np.random.default_rng(1).normal(0, 15, hu.shape)
    kw.setdefault("derivation_description", "Restored by a test")
    write_derived_dicom(path, noisy, source, **kw)
    return pydicom.dcmread(path)


def test_padding_pixels_are_written_back_as_padding(tmp_path, write_ct, ct_padding):
    out = derived(tmp_path / "d.dcm", write_ct())
    pad = ct_padding()
    assert "PixelPaddingValue" in out and out["PixelPaddingValue"].VR == "SS"
    stored = out.pixel_array
    np.testing.assert_array_equal(stored == out.PixelPaddingValue, pad)  # padding and only padding
    back = read_image(tmp_path / "d.dcm").array
    assert np.abs(back[pad] - PAD_HU).max() <= float(out.RescaleSlope) / 2 + 1e-6
    assert back[~pad].min() > PAD_HU + 500  # the field of view kept the restored values


def test_a_restored_value_equal_to_the_padding_does_not_read_as_padding(tmp_path, write_ct, ct_padding):
    source = write_ct()
    hu = read_image(source).array.copy()
    pad = ct_padding()
    hu[0 + 32, 32] = PAD_HU  # inside the field of view, exactly the padding value
    write_derived_dicom(tmp_path / "d.dcm", hu, source, derivation_description="x")
    out = pydicom.dcmread(tmp_path / "d.dcm")
    np.testing.assert_array_equal(out.pixel_array == out.PixelPaddingValue, pad)


def test_source_without_padding_gets_none(tmp_path):
    from pydicom.data import get_testdata_file

    source = get_testdata_file("CT_small.dcm", download=False)
    out = derived(tmp_path / "d.dcm", source)
    assert "PixelPaddingValue" not in out


def codes(item):
    code = item.PurposeOfReferenceCodeSequence[0]
    return code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning


def test_source_image_sequence_names_the_original_then_the_input(tmp_path, write_ct):
    source = write_ct()
    src = pydicom.dcmread(source)
    original = {"SOPClassUID": src.SOPClassUID, "SOPInstanceUID": "1.2.826.0.1.3680043.10.543.1"}
    out = derived(tmp_path / "d.dcm", source, original=original)
    refs = out.SourceImageSequence
    assert [r.ReferencedSOPInstanceUID for r in refs] == [original["SOPInstanceUID"], src.SOPInstanceUID]
    assert all(r.ReferencedSOPClassUID == src.SOPClassUID for r in refs)
    purpose = ("121322", "DCM", "Source image for image processing operation")
    assert [codes(r) for r in refs] == [purpose, purpose]

    same = derived(tmp_path / "same.dcm", source, original={"SOPInstanceUID": src.SOPInstanceUID})
    assert [r.ReferencedSOPInstanceUID for r in same.SourceImageSequence] == [src.SOPInstanceUID]
    unknown = derived(tmp_path / "unknown.dcm", source)
    assert [r.ReferencedSOPInstanceUID for r in unknown.SourceImageSequence] == [src.SOPInstanceUID]


def test_processing_equipment_and_a_new_series_number(tmp_path, write_ct):
    source = write_ct()
    out = derived(tmp_path / "d.dcm", source)
    item = out.ContributingEquipmentSequence[-1]
    assert codes(item) == ("109102", "DCM", "Processing Equipment")
    assert item.Manufacturer == "PROSIMA" and item.ContributionDescription == "Restored by a test"
    assert out.SeriesNumber == 3 + SERIES_NUMBER_OFFSET
    assert derived(tmp_path / "n.dcm", source, series_number=42).SeriesNumber == 42


def test_type2_attributes_the_source_lacks_are_present_and_empty(tmp_path, write_ct):
    source = write_ct()
    src = pydicom.dcmread(source)
    missing = ["PatientBirthDate", "PatientSex", "ReferringPhysicianName", "StudyID", "AccessionNumber"]
    missing += ["PositionReferenceIndicator", "SliceThickness", "KVP", "AcquisitionNumber"]
    missing += ["PatientPosition", "Laterality"]
    assert not any(k in src for k in missing)
    out = derived(tmp_path / "d.dcm", source)
    assert all(k in out and out[k].is_empty for k in missing)
    assert out.PatientName == src.PatientName and out.InstanceNumber == src.InstanceNumber  # kept


def dciodvfy_errors(path) -> list[str]:
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60, check=False)
    return [line for line in (run.stdout + run.stderr).splitlines() if "Error" in line]


needs_dciodvfy = pytest.mark.skipif(
    shutil.which("dciodvfy") is None, reason="dciodvfy not installed (Debian package dicom3tools)"
)


@needs_dciodvfy
def test_dciodvfy_finds_no_error_in_a_derived_instance(tmp_path, write_ct):
    source = write_ct()
    assert any("Type 2" in e for e in dciodvfy_errors(source))  # the source lacks Type 2 attributes
    derived(tmp_path / "d.dcm", source, original={"SOPInstanceUID": "1.2.826.0.1.3680043.10.543.2"})
    assert dciodvfy_errors(tmp_path / "d.dcm") == []


@needs_dciodvfy
def test_dciodvfy_finds_no_error_in_a_derived_real_ct_slice(tmp_path, shared_data):
    files = sorted((shared_data / "dicom" / "ct_head_ge").glob("*.dcm"))
    if not files:
        pytest.skip("no CT slices in the shared data")
    out = derived(tmp_path / "d.dcm", files[len(files) // 2])
    assert dciodvfy_errors(tmp_path / "d.dcm") == []
    src = pydicom.dcmread(files[len(files) // 2])
    pad = src.pixel_array == src.PixelPaddingValue
    assert pad.mean() > 0.1 and np.array_equal(out.pixel_array == out.PixelPaddingValue, pad)
