"""``prosima restore`` writes outputs that keep their source's terms: a single-slice NIfTI comes back
X x Y x 1 with the source header's qform/sform and codes, and a derived DICOM keeps the input's
padding as padding; both verify as the recorded restoration."""

from __future__ import annotations

import json
import shutil
import subprocess

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from typer.testing import CliRunner

from prosima.cli import app

GENERATOR = "pretrained:prosima-full"
QFORM = np.array([[-1.0, 0, 0, 120], [0, 1.0, 0, -100], [0, 0, 2.5, 30], [0, 0, 0, 1]])
SFORM = np.array([[-1.0, 0, 0, 121.5], [0, 1.0, 0, -99], [0, 0, 2.5, 30], [0, 0, 0, 1]])


def run(*args, code=0):
    res = CliRunner().invoke(app, [str(a) for a in args])
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    assert res.exit_code == code, res.output
    return res


def ledger_with(root, image):
    """A 4-node ledger with ``image`` anchored and the generator anchored; the anchor record."""
    run("ledger", "init", root / "ledger", "--nodes", 4)
    run("anchor", image, "--ledger", root / "ledger", "--consensus", "direct", "--json", root / "a.json")
    run("models", "anchor", GENERATOR, "--ledger", root / "ledger")
    return json.loads((root / "a.json").read_text())[0]


def nifti_slice(path, values):
    """``values`` as an X x Y x 1 int16 NIfTI with a converter's header: qform_code 2, sform_code 1."""
    img = nib.Nifti1Image(values.astype(np.int16)[:, :, None], None)
    img.header.set_qform(QFORM, code=2)
    img.header.set_sform(SFORM, code=1)
    img.header.set_xyzt_units("mm")
    nib.save(img, path)
    return path


def test_a_single_slice_nifti_is_restored_with_its_header_geometry(tmp_path, brain_slices):
    clean = np.rint(brain_slices[1] * 1000)
    source = nifti_slice(tmp_path / "slice.nii.gz", clean)
    record = ledger_with(tmp_path, source)
    noisy = clean + np.random.default_rng(3).normal(0, 40, clean.shape)
    nifti_slice(tmp_path / "noisy.nii.gz", np.clip(noisy, 0, 1000))
    out = tmp_path / "restored.nii.gz"
    run(
        "restore",
        tmp_path / "noisy.nii.gz",
        "--ledger",
        tmp_path / "ledger",
        "--record",
        record["tx"],
        "--out",
        out,
    )
    written, src = nib.load(out), nib.load(source)
    assert written.shape == src.shape == (256, 256, 1)
    assert (int(written.header["qform_code"]), int(written.header["sform_code"])) == (2, 1)
    np.testing.assert_array_equal(written.get_qform(), src.get_qform())
    np.testing.assert_array_equal(written.get_sform(), src.get_sform())
    res = run("verify", out, "--ledger", tmp_path / "ledger")
    assert "VERIFIED EXACT: the recorded output of a restoration" in res.stdout


def padded_ct(path, pad=-2000):
    """pydicom's CT_small (128 x 128) with the corners outside a disc as padding (Pixel Padding Value)."""
    source = get_testdata_file("CT_small.dcm", download=False)
    if source is None:
        pytest.skip("this pydicom lacks its bundled CT_small.dcm")
    ds = pydicom.dcmread(source)
    stored = ds.pixel_array.copy()
    yy, xx = np.mgrid[:128, :128]
    outside = np.hypot(yy - 63.5, xx - 63.5) > 60
    stored[outside] = pad
    ds.PixelData = stored.tobytes()
    ds.add_new(0x00280120, "SS", pad)
    ds.save_as(path)
    return path, outside


def test_a_restored_dicom_keeps_the_padding_and_verifies(tmp_path):
    source, outside = padded_ct(tmp_path / "ct.dcm")
    record = ledger_with(tmp_path, source)
    ds = pydicom.dcmread(source)
    stored = ds.pixel_array.astype(np.int32)
    noise = np.rint(np.random.default_rng(0).normal(0, 30, stored.shape)).astype(np.int32)
    ds.PixelData = np.where(outside, stored, stored + noise).astype(np.int16).tobytes()  # padding kept
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(tmp_path / "noisy.dcm")
    out = tmp_path / "restored.dcm"
    run(
        "restore",
        tmp_path / "noisy.dcm",
        "--ledger",
        tmp_path / "ledger",
        "--record",
        record["tx"],
        "--out",
        out,
    )
    derived = pydicom.dcmread(out)
    np.testing.assert_array_equal(derived.pixel_array == derived.PixelPaddingValue, outside)
    assert ds.SOPInstanceUID in [r.ReferencedSOPInstanceUID for r in derived.SourceImageSequence]
    assert derived.ContributingEquipmentSequence[-1].PurposeOfReferenceCodeSequence[0].CodeValue == "109102"
    assert derived.SeriesNumber != ds.SeriesNumber
    if shutil.which("dciodvfy"):
        found = subprocess.run(
            ["dciodvfy", str(out)], capture_output=True, text=True, timeout=60, check=False
        )
        assert [line for line in (found.stdout + found.stderr).splitlines() if "Error" in line] == []
    res = run("verify", out, "--ledger", tmp_path / "ledger")
    assert "VERIFIED EXACT: the recorded output of a restoration" in res.stdout
