"""One rule for what a volume is (``prosima.imaging.io.is_volume``): ``anchor``, ``verify`` and
``restore`` take a DICOM series folder or a NIfTI file with slices along its last axis as a volume,
and one 2-D grayscale image otherwise; a file that is neither is refused by all three with the same
message, before the ledger is touched."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from prosima.cli import app
from prosima.imaging.io import ImageReadError, is_volume, read_input, write_nifti, write_png

runner = CliRunner()
RNG = np.random.default_rng(0)


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def ledger(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rule") / "ledger"
    assert invoke("ledger", "init", path, "--nodes", 4).exit_code == 0
    return path


def blocks(ledger: Path) -> int:
    return json.loads(invoke("ledger", "stats", "-d", ledger, "--json", "-").stdout)["blocks"]


def _npy(path: Path, shape: tuple[int, ...]) -> Path:
    np.save(path, RNG.random(shape).astype(np.float32))
    return path


def _nifti(path: Path, shape: tuple[int, ...]) -> Path:
    nib.save(nib.Nifti1Image(RNG.random(shape).astype(np.float32), np.eye(4)), path)
    return path


def _colour_png(path: Path) -> Path:
    write_png(path, RNG.random((64, 64, 3)).astype(np.float32))
    return path


NEITHER = {
    "npy (3, 64, 64)": (lambda d: _npy(d / "stack.npy", (3, 64, 64)), "shape (3, 64, 64)"),
    "npy (64, 64, 3)": (lambda d: _npy(d / "stack.npy", (64, 64, 3)), "shape (64, 64, 3)"),
    "colour png": (lambda d: _colour_png(d / "rgb.png"), "colour image"),
}


@pytest.mark.parametrize("case", sorted(NEITHER))
def test_anchor_verify_and_restore_refuse_alike(tmp_path, ledger, case):
    path = NEITHER[case][0](tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    results = {
        "anchor": invoke("anchor", path, "--ledger", ledger, "--json", out / "a.json"),
        "verify": invoke("verify", path, "--ledger", ledger, "--json", out / "v.json"),
        "restore": invoke("restore", path, "--ledger", ledger, "--out", out / f"r{path.suffix}"),
    }
    messages = set()
    for command, res in results.items():
        assert res.exit_code == 2, (command, res.output)
        assert isinstance(res.exception, SystemExit) and "Traceback" not in res.output
        assert res.output.startswith(f"error: {path}: ") and NEITHER[case][1] in res.output, res.output
        messages.add(res.output.strip())
    assert len(messages) == 1, messages  # one rule, one message
    assert list(out.iterdir()) == [] and blocks(ledger) == 0


def test_is_volume_reads_the_header_only(tmp_path):
    bomb = nib.Nifti1Header()
    bomb.set_data_shape((3000, 3000, 3000))
    bomb.set_data_dtype(np.float32)
    (tmp_path / "bomb.nii").write_bytes(bomb.binaryblock + b"\0" * 4)
    assert is_volume(tmp_path / "bomb.nii")  # 100 GiB claimed, nothing read
    assert is_volume(tmp_path)  # a folder is a DICOM series
    assert is_volume(_nifti(tmp_path / "v.nii.gz", (16, 16, 5, 1)))  # trailing length-1 axes dropped
    assert not is_volume(_nifti(tmp_path / "one.nii.gz", (16, 16, 1)))
    assert not is_volume(_nifti(tmp_path / "t.nii.gz", (16, 16, 5, 2)))
    assert not is_volume(_npy(tmp_path / "s.npy", (3, 16, 16)))
    assert not is_volume(tmp_path / "missing.nii")


def test_read_input_gives_the_slice_axis_of_a_volume(tmp_path):
    write_nifti(tmp_path / "v.nii.gz", RNG.random((16, 16, 4)).astype(np.float32))
    loaded, axis = read_input(tmp_path / "v.nii.gz")
    assert loaded.array.shape == (16, 16, 4) and axis == 2
    loaded, axis = read_input(_npy(tmp_path / "flat.npy", (16, 16)))
    assert loaded.array.shape == (16, 16) and axis is None
    loaded, axis = read_input(_nifti(tmp_path / "one.nii", (16, 16, 1)))  # one slice: one 2-D image
    assert loaded.array.shape == (16, 16) and axis is None
    with pytest.raises(ImageReadError, match=r"neither one 2-D image nor a volume"):
        read_input(_npy(tmp_path / "stack.npy", (3, 16, 16)))
