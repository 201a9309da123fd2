"""One ``Session`` for many actions: its verdicts, anchors and restorations are those of the
path-based functions (which open a session per call), and ``refresh`` sees what another writer
appended meanwhile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from prosima.app.anchoring import anchor_files
from prosima.app.model_versions import anchor_model_version
from prosima.app.restoring import RestoreResult, restore_file
from prosima.app.session import Session
from prosima.app.verifying import VerifyResult, VolumeVerifyResult, verify_file
from prosima.errors import InputError
from prosima.imaging.corruption import gaussian_noise
from prosima.imaging.datasets import embedded_default_slices
from prosima.imaging.io import read_image, write_nifti, write_png
from prosima.ledger.log.directory import Ledger

GENERATOR = "pretrained:prosima-full"


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def slices() -> list[np.ndarray]:
    source = embedded_default_slices()
    return [np.asarray(source[round((len(source) - 1) * f)].image) for f in (0.35, 0.5, 0.65)]


def _png(path: Path, image: np.ndarray) -> Path:
    write_png(path, image, data_range=(0.0, 1.0))
    return path


def _noisy(path: Path, clean: Path, seed: int) -> Path:
    unit = read_image(clean).array / 255.0
    return _png(path, np.clip(gaussian_noise(unit, 0.05, seed=seed).image, 0.0, 1.0))


def _tampered(path: Path, clean: Path) -> Path:
    unit = read_image(clean).array / 255.0
    unit[40:60, 100:140] = 1.0
    return _png(path, unit)


def _ledger(root: Path) -> Path:
    with Ledger.init(root / "ledger", nodes=4):
        pass
    return root / "ledger"


def _same(a: VerifyResult | VolumeVerifyResult, b: VerifyResult | VolumeVerifyResult) -> None:
    assert a.ok == b.ok
    assert a.to_json() == b.to_json()


def test_one_session_verifies_anchors_and_restores_as_the_path_functions_do(tmp_path, slices):
    ledger = _ledger(tmp_path)
    files = [_png(tmp_path / f"slice{i}.png", s) for i, s in enumerate(slices)]
    anchor_model_version(ledger, GENERATOR)
    with Session.open(ledger) as session:
        report = session.anchor(files[:2])
        assert [a.status for a in report.results] == ["committed", "committed"]
        again = session.anchor(files[:2])
        assert [a.status for a in again.results] == ["already-anchored", "already-anchored"]
        noisy = _noisy(tmp_path / "noisy.png", files[1], seed=3)
        done = session.restore(noisy, tmp_path / "restored.png", model=GENERATOR)
        assert isinstance(done, RestoreResult)
        assert done.restored.match["tx"] == report.results[1].tx
        tampered = _tampered(tmp_path / "tampered.png", files[0])
        checked = (*files, tampered, done.restored.out)
        verdicts = [session.verify(f) for f in checked]
        assert [v.verdict.status for v in verdicts] == [
            "anchored-original",
            "anchored-original",
            "not-on-ledger",
            "tampered",
            "recorded-restoration",
        ]
        assert [v.ok for v in verdicts] == [True, True, False, False, True]
        found = session.find_records(file=files[1])
        assert [r.kind for r in found.records] == ["anchor", "restoration"]
    for f, v in zip(checked, verdicts, strict=True):  # the ledger as it was: the proofs too
        _same(verify_file(f, ledger), v)
    other = restore_file(_noisy(tmp_path / "noisy0.png", files[0], seed=4), ledger, tmp_path / "r0.png")
    assert isinstance(other, RestoreResult) and other.restored.match["tx"] == report.results[0].tx
    assert verify_file(other.restored.out, ledger).ok


def test_a_volume_is_verified_slice_by_slice_with_progress(tmp_path, slices):
    ledger = _ledger(tmp_path)
    volume = tmp_path / "volume.nii.gz"
    write_nifti(volume, np.stack(slices, axis=2).astype(np.float32))
    anchor_files([volume], ledger, consensus="direct")
    seen: list[tuple[int, int]] = []
    with Session.open(ledger, "direct") as session:
        result = session.verify(volume, on_slice=lambda done, total: seen.append((done, total)))
        assert isinstance(result, VolumeVerifyResult) and result.ok
        assert seen == [(1, 3), (2, 3), (3, 3)]
        with pytest.raises(InputError, match="apply to 2-D images"):
            session.verify(volume, heatmap=True)
    _same(verify_file(volume, ledger), result)


def test_refresh_sees_a_block_another_writer_appended(tmp_path, slices):
    ledger = _ledger(tmp_path)
    files = [_png(tmp_path / f"slice{i}.png", s) for i, s in enumerate(slices)]
    anchor_files(files[:1], ledger, consensus="direct")
    with Session.open(ledger) as session:
        assert session.verify(files[0]).ok
        anchor_files(files[1:2], ledger, consensus="direct")  # another writer, its own ledger handle
        assert not session.verify(files[1]).ok  # as of the session's last look
        session.refresh()
        after = session.verify(files[1])
        assert after.ok and after.verdict.status == "anchored-original"
        assert session.anchor(files[1:2]).results[0].status == "already-anchored"
        anchor_files(files[2:], ledger)  # another writer again, through its own committee
        flipped = _png(tmp_path / "flipped.png", np.flipud(slices[0]))
        report = session.anchor([*files, flipped])  # committed on top of the other writer's block
        assert [(r.status, r.height) for r in report.results] == [
            ("already-anchored", 0),
            ("already-anchored", 1),
            ("already-anchored", 2),
            ("committed", 3),
        ]
    with Ledger.open(ledger) as led:
        assert led.verify().ok and led.store.height == 3
