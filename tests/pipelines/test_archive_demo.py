"""``prosima demo --archive``: the demo through the real service (a child process) and a private
Orthanc, its slices stored over DICOM with storescu. Skipped only where Debian's orthanc or dcmtk
is not installed (``.ci/run`` installs both)."""

from __future__ import annotations

import json
import shutil

import pytest

from prosima.pacs.orthanc_server import find_orthanc
from prosima.pipelines.archive_demo import ArchiveDemoError, find_storescu
from prosima.pipelines.demo import DemoConfig, run_demo


def _missing_tool() -> str | None:
    if find_orthanc() is None:
        return "Debian's orthanc is not installed"
    return None if shutil.which("storescu") else "dcmtk's storescu is not installed"


@pytest.mark.skipif(_missing_tool() is not None, reason=str(_missing_tool()))
def test_the_demo_through_the_service_and_orthanc(tmp_path):
    out = tmp_path / "demo"
    report = run_demo(DemoConfig(out=out, slices=2, tamper_slices=1, nodes=4, archive=True), progress=False)
    through = report["archive"]
    assert through["stored"] == 2 and all(
        o["ok"] and o["status"] == "anchored-original" for o in through["originals"]
    )
    for r in through["restorations"]:  # replaced under the same UIDs, restored, stored back
        assert r["corrupted_status"] == "changed" and not r["corrupted_ok"]
        assert (
            r["verified"] and r["restored_status"] == "recorded-restoration" and r["model"] == "prosima-full"
        )
        assert r["references_source"] and r["psnr_restored"] > r["psnr_corrupted"]
    tamper = through["tamper"]
    assert not tamper["ok"] and tamper["status"] == "tampered" and tamper["differing_shards"]
    assert max(through["anchored_after_seconds"]) < 60
    led = report["ledger"]  # counted after the service's records: the archive's 2 anchors, 2 restorations
    assert led["chain_ok"] and led["height"] > 1 + 1 + 6 - 1
    html = (out / "report.html").read_text()
    assert "Through the service and the archive" in html and "<td>None</td>" not in html
    assert json.loads((out / "report.json").read_text())["archive"]["stored"] == 2
    assert (out / "through-archive" / "service.log").is_file()


def test_a_missing_storescu_is_named(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    with pytest.raises(ArchiveDemoError, match="apt-get install dcmtk"):
        find_storescu()
