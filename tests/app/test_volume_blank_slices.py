"""A volume's constant (blank) slices verify as its anchored originals by their place: a record of
exactly their pixels bound to their slice index and instance link, in a volume whose slices with
content are its anchored originals at their places. A renamed file, another volume with blanks at
the same places, a blanked slice and a lone constant image are not verified."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from prosima.app.anchoring import anchor_files
from prosima.app.ledger_access import open_provenance
from prosima.app.session import Session
from prosima.app.verifying import VerifyResult, VolumeVerifyResult, verify_file
from prosima.cli import app
from prosima.imaging.datasets import embedded_default_slices
from prosima.imaging.io import write_nifti
from prosima.ledger.log.directory import Ledger
from prosima.provenance.site_key import key_path
from prosima.provenance.verdict_text import slice_line, verdict_lines
from prosima.provenance.volume_verify import verify_volume

runner = CliRunner()
BLANK = {0: 0.0, 4: 0.25}  # slice -> its one value (distinct, so one anchoring records each)


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _anatomy(*where: float) -> list[np.ndarray]:
    source = embedded_default_slices()
    return [np.asarray(source[round((len(source) - 1) * f)].image, dtype=np.float32) for f in where]


def _volume(path: Path, content: list[np.ndarray], blank: dict[int, float] = BLANK) -> Path:
    """A volume of ``content`` slices with constant slices at ``blank``'s places."""
    planes, rest = [], iter(content)
    for z in range(len(content) + len(blank)):
        planes.append(np.full_like(content[0], blank[z]) if z in blank else next(rest))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_nifti(path, np.stack(planes, axis=2).astype(np.float32))
    return path


@pytest.fixture(scope="module")
def anchored(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("blank")
    with Ledger.init(root / "ledger", nodes=4):
        pass
    volume = _volume(root / "scan.nii.gz", _anatomy(0.35, 0.5, 0.65))
    report = anchor_files([volume], root / "ledger", consensus="direct")
    assert [r.status for r in report.results] == ["committed"] * 5
    return root / "ledger", volume


def _verify(ledger: Path, volume: Path) -> VolumeVerifyResult:
    with Session.open(ledger, "direct") as session:
        result = session.verify(volume)
    assert isinstance(result, VolumeVerifyResult)
    return result


def test_an_anchored_volume_with_blank_slices_verifies_whole(anchored):
    ledger, volume = anchored
    result = _verify(ledger, volume)
    assert result.ok and result.to_json()["ok"] is True
    assert [v.status for v in result.verdicts] == ["anchored-original"] * 5
    for z, (v, link) in enumerate(zip(result.verdicts, result.instances, strict=True)):
        assert v.record is not None and v.record["source"]["slice"] == str(z)
        assert link is not None and link.resolution.same_instance
        assert v.proof is not None and v.proof["ok"] and v.block is not None and v.block["quorum_ok"]
        assert not v.reasons
    for z, value in BLANK.items():
        v = result.verdicts[z]
        assert v.constant == value and v.binding is not None and v.binding["slice"] == z
        assert "constant slice" in v.binding["reason"] and "slice index" in v.binding["by"]
        text = "\n".join(verdict_lines(v))
        assert text.startswith("VERIFIED EXACT: an anchored original") and "bound by its place" in text
    assert result.verdicts[1].binding is None and result.verdicts[1].constant is None
    assert verify_file(volume, ledger).to_json() == result.to_json()
    with open_provenance(ledger, "direct") as prov:
        assert [v.status for v in verify_volume(prov, volume)] == ["anchored-original"] * 5


def test_the_command_line_verifies_the_anchored_volume(anchored):
    ledger, volume = anchored
    res = runner.invoke(app, ["verify", str(volume), "--ledger", str(ledger)])
    assert res.exit_code == 0, res.output
    assert "VERIFIED 5 of 5 slices: 5 anchored-original" in res.stdout


def test_a_never_anchored_volume_with_blanks_at_the_same_places_is_not_verified(anchored, tmp_path):
    ledger, volume = anchored
    other = _volume(tmp_path / "elsewhere" / volume.name, _anatomy(0.2, 0.45, 0.8))  # the same name
    result = _verify(ledger, other)
    assert not result.ok and result.to_json()["ok"] is False
    statuses = [v.status for v in result.verdicts]
    assert [statuses[z] for z in BLANK] == ["constant", "constant"]
    assert all(s != "anchored-original" for s in statuses)
    for z in BLANK:
        v = result.verdicts[z]
        assert not v.ok and v.record is None and v.binding is None
        assert "not its anchored originals at their places" in v.reasons[-1]
        assert f"slice {z}: constant" in slice_line(z, v)
    res = runner.invoke(app, ["verify", str(other), "--ledger", str(ledger)])
    assert res.exit_code == 1, res.output


def test_a_renamed_copy_keeps_its_blank_slices_unbound(anchored, tmp_path):
    ledger, volume = anchored
    renamed = tmp_path / "renamed.nii.gz"
    shutil.copyfile(volume, renamed)
    result = _verify(ledger, renamed)
    assert not result.ok
    assert [v.status for v in result.verdicts] == ["constant", *["anchored-original"] * 3, "constant"]
    assert all("none records slice" in result.verdicts[z].reasons[-1] for z in BLANK)


def test_a_blanked_slice_is_not_taken_for_the_anchored_one(anchored, tmp_path):
    ledger, volume = anchored
    content = _anatomy(0.35, 0.5, 0.65)
    content[1] = np.zeros_like(content[1])  # slice 2's anatomy wiped out, the value of slice 0
    blanked = _volume(tmp_path / volume.name, content)
    result = _verify(ledger, blanked)
    assert not result.ok
    assert [v.status for v in result.verdicts] == [
        "constant",
        "anchored-original",
        "constant",
        "anchored-original",
        "constant",
    ]
    assert "none records slice 2" in result.verdicts[2].reasons[-1]
    for z in BLANK:  # each is bound to its place, but the volume is not the anchored one
        assert "is of this slice, but slices [2] of this volume are not" in result.verdicts[z].reasons[-1]


def test_a_volume_verified_without_the_site_key_keeps_its_blanks_constant(anchored, tmp_path):
    ledger, volume = anchored
    elsewhere = tmp_path / "ledger"
    shutil.copytree(ledger, elsewhere)
    key_path(elsewhere).unlink()
    result = _verify(elsewhere, volume)
    assert not result.ok and [result.verdicts[z].status for z in BLANK] == ["constant", "constant"]
    assert "no site key" in result.verdicts[0].reasons[-1]


def test_a_lone_constant_image_stays_constant(anchored, tmp_path):
    ledger, _volume_path = anchored
    lone = tmp_path / "blank.nii.gz"  # one X x Y x 1 slice: a 2-D image with the blank slice's pixels
    write_nifti(lone, np.zeros((256, 256, 1), dtype=np.float32))
    result = verify_file(lone, ledger)
    assert isinstance(result, VerifyResult)
    v = result.verdict
    assert v.status == "constant" and not v.ok and v.binding is None and v.record is None
    assert len(v.same_pixels) == 1 and "not taken for any one of them" in v.reasons[0]
    res = runner.invoke(app, ["verify", str(lone), "--ledger", str(ledger)])
    assert res.exit_code == 1 and "NOT VERIFIED CONSTANT IMAGE" in res.stdout


@pytest.mark.xfail(
    strict=True,
    reason="anchoring records repeated pixels once (by pixel digest), so a volume's repeated blank "
    "slices, and those of a later volume, get no record of their own place",
)
def test_volumes_whose_blank_slices_repeat_verify_whole(tmp_path):
    with Ledger.init(tmp_path / "ledger", nodes=4):
        pass
    blank = {0: 0.0, 1: 0.0, 5: 0.0}
    first = _volume(tmp_path / "a.nii.gz", _anatomy(0.35, 0.5, 0.65), blank)
    second = _volume(tmp_path / "b.nii.gz", _anatomy(0.2, 0.45, 0.8), blank)
    anchor_files([first, second], tmp_path / "ledger", consensus="direct")
    for volume in (first, second):
        result = _verify(tmp_path / "ledger", volume)
        assert result.ok, [v.reasons for v in result.verdicts if not v.ok]
