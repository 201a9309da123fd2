import json

import numpy as np
import pytest
from typer.testing import CliRunner

from prosima.cli import app

runner = CliRunner()


def test_help_lists_the_commands():
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for cmd in ("data", "bench", "ledger"):
        assert cmd in res.output
    res = runner.invoke(app, ["bench", "--help"])
    assert "denoise" in res.output and "ledger" in res.output


def test_data_info_on_a_npy_volume(tmp_path):
    vol = np.zeros((20, 20, 10), np.float32)
    vol[5:15, 5:15, 2:8] = 1.0
    np.save(tmp_path / "v.npy", vol)
    res = runner.invoke(app, ["data", "info", str(tmp_path / "v.npy"), "--json", str(tmp_path / "i.json")])
    assert res.exit_code == 0, res.output
    info = json.loads((tmp_path / "i.json").read_text())
    assert info["shape"] == [20, 20, 10] and info["format"] == "npy"


def test_data_info_refuses_clearly(tmp_path):
    (tmp_path / "empty").mkdir()
    res = runner.invoke(app, ["data", "info", str(tmp_path / "empty")])
    assert res.exit_code == 2 and "no supported images" in res.output
    res = runner.invoke(app, ["data", "info", str(tmp_path / "missing.nii.gz")])
    assert res.exit_code == 2 and "missing.nii.gz" in res.output


def test_bench_denoise_refuses_bad_options():
    res = runner.invoke(app, ["bench", "denoise", "--sigmas", "0.05,abc"])
    assert res.exit_code == 2 and "--sigmas" in res.output
    res = runner.invoke(app, ["bench", "denoise", "--methods", "magic", "--max-slices", "1"])
    assert res.exit_code == 2 and "unknown method" in res.output


@pytest.mark.parametrize(
    ("rel", "kind"),
    [
        ("brain_mri", "brats"),
        ("dicom/ct_head_ge", "dicom_series"),
        ("chest_xray/covid19_xray_256", "labelled_images"),
        ("fusion/harvard_aanlib/CT-MRI", "paired"),
        ("dicom/mr_siemens_mosaic", "dicom_folders"),
        ("chest_xray/pneumoniamnist/pneumoniamnist.npz", "npz"),
    ],
)
def test_data_info_on_shared_folders(shared_data, rel, kind):
    res = runner.invoke(app, ["data", "info", str(shared_data / rel)])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["kind"] == kind


def test_usable_slices_match_the_brats_readme(shared_data):
    res = runner.invoke(app, ["data", "info", str(shared_data / "brain_mri")])
    counts = [s["usable_slices"] for s in json.loads(res.output)["subjects"]]
    assert len(counts) == 3 and all(110 <= c <= 128 for c in counts)
