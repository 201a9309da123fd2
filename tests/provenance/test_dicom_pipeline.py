"""DICOM through the pipeline: real CT slices anchored, a noisy copy restored into a derived DICOM
that follows the derived-image conventions, and that output verified."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from prosima.imaging.io import read_image
from prosima.ledger.log.directory import Ledger
from prosima.provenance.anchor import anchor_images, read_inputs
from prosima.provenance.context import Provenance
from prosima.provenance.model_versions import anchor_model
from prosima.provenance.restore import Generator, RestoreError, restore_file
from prosima.provenance.verify import verify_loaded


@pytest.fixture(scope="module")
def ct_files(shared_data):
    folder = shared_data / "dicom" / "ct_head_ge"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    return sorted(folder.glob("*.dcm"))[10:12]


def _noisy_copy(src, dst, seed: int = 0) -> None:
    ds = pydicom.dcmread(src)
    arr = ds.pixel_array.astype(np.int32)
    noise = np.random.default_rng(seed).normal(0, 40, arr.shape)
    info = np.iinfo(ds.pixel_array.dtype)
    ds.PixelData = np.clip(np.rint(arr + noise), info.min, info.max).astype(ds.pixel_array.dtype).tobytes()
    ds.save_as(dst)


def test_dicom_anchor_restore_into_derived_dicom_and_verify(ct_files, tmp_path):
    ledger = Ledger.init(tmp_path / "ledger", nodes=4)
    try:
        prov = Provenance.open(ledger, consensus="inproc")
        anchored = anchor_images(prov, read_inputs(ct_files))
        assert len(anchored) == 2 and anchored[0].source["format"] == "dicom"
        original = verify_loaded(prov, read_image(ct_files[0]))
        assert original.ok and original.status == "anchored-original"

        noisy = tmp_path / "noisy.dcm"
        _noisy_copy(ct_files[0], noisy)
        with pytest.raises(RestoreError, match="derived DICOM"):
            restore_file(prov, noisy, tmp_path / "out.png", Generator.load())
        anchor_model(ledger, "pretrained:prosima-full")
        done = restore_file(prov, noisy, tmp_path / "restored.dcm", Generator.load())
        assert done.match["tx"] == anchored[0].tx

        out = pydicom.dcmread(done.out)
        src = pydicom.dcmread(noisy)
        assert list(out.ImageType)[:2] == ["DERIVED", "SECONDARY"]
        assert out.SOPInstanceUID != src.SOPInstanceUID
        assert out.SeriesInstanceUID != src.SeriesInstanceUID
        assert out.StudyInstanceUID == src.StudyInstanceUID
        assert out.SourceImageSequence[0].ReferencedSOPInstanceUID == src.SOPInstanceUID
        assert anchored[0].tx[:16] in out.DerivationDescription

        verdict = verify_loaded(prov, read_image(done.out))
        assert verdict.status == "recorded-restoration"
        assert verdict.ok, verdict.reasons
    finally:
        ledger.close()
