"""Batches and volumes on the command line: which folders are batches and which are DICOM series
(``prosima.app.batch_inputs``), and ``anchor``, ``verify`` and ``restore`` over a folder of slices
and a NIfTI volume through one open ledger: a summary table, ``--json`` one row per image (per
slice) naming no file, exit 0 only when every image verifies, 1 for a negative verdict, 2 for
refused input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from prosima.app.batch_inputs import expand_inputs
from prosima.cli import app
from prosima.errors import InputError
from prosima.imaging.corruption import gaussian_noise
from prosima.imaging.datasets import embedded_default_slices
from prosima.imaging.io import read_image, write_nifti, write_png

runner = CliRunner()
GENERATOR = "pretrained:prosima-full"


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def run(*args: object, code: int | None = 0):
    res = runner.invoke(app, [str(a) for a in args])
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    if code is not None:
        assert res.exit_code == code, res.output
    return res


def test_a_folder_of_images_is_a_batch_and_a_folder_of_dicom_files_a_series(tmp_path):
    batch = tmp_path / "batch"
    (batch / "series").mkdir(parents=True)
    (batch / "series" / "0001.dcm").write_bytes(b"x")
    (batch / "empty").mkdir()
    for name in ("b.png", "a.nii.gz", "c.npy", "notes.txt", ".hidden.png"):
        (batch / name).write_bytes(b"x")
    found = expand_inputs([batch])
    assert found.batch
    assert [p.name for p in found.paths] == ["a.nii.gz", "b.png", "c.npy", "series"]
    assert sorted(p.name for p in found.skipped) == ["empty", "notes.txt"]
    series = expand_inputs([batch / "series"])
    assert series.paths == [batch / "series"] and not series.batch  # a volume, as before
    assert expand_inputs([batch / "b.png", batch / "c.npy"]).batch
    assert not expand_inputs([batch / "b.png"]).batch
    with pytest.raises(InputError, match="no images in this folder"):
        expand_inputs([batch / "empty"])
    with pytest.raises(InputError, match="file not found"):
        expand_inputs([tmp_path / "missing.png"])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Two PNG slices and a three-slice NIfTI volume in one folder, anchored as one batch."""
    root = tmp_path_factory.mktemp("batch")
    source = embedded_default_slices()
    images = [np.asarray(source[round((len(source) - 1) * f)].image) for f in (0.3, 0.4, 0.5, 0.6, 0.7)]
    folder = root / "images"
    folder.mkdir()
    for i, image in enumerate(images[:2]):
        write_png(folder / f"slice{i}.png", image, data_range=(0.0, 1.0))
    write_nifti(folder / "volume.nii.gz", np.stack(images[2:], axis=2).astype(np.float32))
    (folder / "README.txt").write_text("not an image")
    ledger = root / "ledger"
    run("ledger", "init", ledger, "--nodes", 4)
    res = run("anchor", folder, "--ledger", ledger, "--json", root / "anchored.json")
    return root, folder, ledger, res


def test_anchor_a_folder_commits_every_slice_and_tabulates_each_file(world):
    root, _folder, _ledger, res = world
    rows = json.loads((root / "anchored.json").read_text())
    assert [r["status"] for r in rows] == ["committed"] * 5
    assert "skipped 1 entries" in res.stdout
    table = res.stdout[res.stdout.index("anchor\n") :]
    for name, slices in (("slice0.png", 1), ("slice1.png", 1), ("volume.nii.gz", 3)):
        line = next(line for line in table.splitlines() if name in line)
        assert [c.strip() for c in line.split("│")[3:5]] == [str(slices), str(slices)]
    assert "committed 5/5 images, 0 already anchored, 0 not committed" in res.stdout


def test_verify_a_folder_one_row_per_slice_exit_0_only_when_all_verify(world, tmp_path):
    _root, folder, ledger, _ = world
    res = run("verify", folder, "--ledger", ledger, "--json", tmp_path / "v.json")
    rows = json.loads((tmp_path / "v.json").read_text())
    assert [(r["input"], r["slice"]) for r in rows] == [(0, None), (1, None), (2, 0), (2, 1), (2, 2)]
    assert all(r["ok"] and r["status"] == "anchored-original" for r in rows)
    assert all(r["proof"]["ok"] for r in rows)
    text = json.dumps(rows)
    assert "slice0.png" not in text and "volume.nii.gz" not in text  # file names stay on the terminal
    assert "VERIFIED 3 of 3 images (5 of 5 slices)" in res.stdout
    assert "volume.nii.gz" in res.stdout

    tampered = tmp_path / "tampered.png"
    unit = read_image(folder / "slice1.png").array / 255.0
    unit[40:60, 100:140] = 1.0
    write_png(tampered, unit, data_range=(0.0, 1.0))
    res = run("verify", folder / "slice0.png", tampered, "--ledger", ledger, "--json", "-", code=1)
    rows = json.loads(res.stdout)
    assert [(r["input"], r["ok"], r["status"]) for r in rows] == [
        (0, True, "anchored-original"),
        (1, False, "tampered"),
    ]

    res = run("verify", folder, "--ledger", ledger, "--heatmap", tmp_path / "h.png", code=2)
    assert "apply to one 2-D image, not to a batch" in res.output
    res = run("verify", folder, tmp_path / "missing.png", "--ledger", ledger, code=2)
    assert "missing.png: file not found" in res.output


def test_a_single_volume_keeps_its_own_report(world, tmp_path):
    _root, folder, ledger, _ = world
    res = run("verify", folder / "volume.nii.gz", "--ledger", ledger, "--json", tmp_path / "v.json")
    document = json.loads((tmp_path / "v.json").read_text())
    assert document["ok"] and len(document["slices"]) == 3
    assert "VERIFIED 3 of 3 slices: 3 anchored-original" in res.stdout


def test_restore_a_folder_into_a_folder_refusals_reported_and_exit_1(world, tmp_path):
    _root, folder, ledger, _ = world
    run("models", "anchor", GENERATOR, "--ledger", ledger)
    noisy = tmp_path / "noisy"
    noisy.mkdir()
    for name in ("slice0.png", "slice1.png"):
        unit = read_image(folder / name).array / 255.0
        write_png(
            noisy / name, np.clip(gaussian_noise(unit, 0.05, seed=3).image, 0, 1), data_range=(0.0, 1.0)
        )
    blank = tmp_path / "blank.png"
    write_png(blank, np.zeros((256, 256)), data_range=(0.0, 1.0))
    out = tmp_path / "restored"
    res = run("restore", noisy, "--ledger", ledger, "--out", out, code=2)
    assert "writes into a folder; create it first" in res.output
    out.mkdir()
    res = run(
        "restore", noisy, blank, "--ledger", ledger, "--out", out, "--json", tmp_path / "r.json", code=1
    )
    rows = json.loads((tmp_path / "r.json").read_text())
    assert [(r["input"], r["status"]) for r in rows] == [(0, "restored"), (1, "restored"), (2, "refused")]
    assert "constant image" in rows[2]["reason"]
    assert "restored 2 of 3 inputs, 1 refused" in res.stdout
    assert sorted(p.name for p in out.iterdir()) == ["slice0.png", "slice1.png"]
    res = run("verify", out, "--ledger", ledger, "--json", tmp_path / "v.json")
    assert {r["status"] for r in json.loads((tmp_path / "v.json").read_text())} == {"recorded-restoration"}
    res = run("restore", noisy, "--ledger", ledger, "--out", out, code=2)  # nothing overwritten
    assert "exists; refusing to overwrite it" in res.output
    res = run("restore", noisy, "--ledger", ledger, "--out", out, "--record", rows[0]["tx"], code=2)
    assert "apply to one 2-D image, not to a batch" in res.output
