"""The archive as a hospital runs it: images sent into a private Orthanc over DICOM, anchored by the
watcher, verified by Orthanc instance id and by SOP Instance UID, a changed copy caught, and a
restoration stored back as a derived series; nothing anchored twice across restarts, and no UID in
clear on the ledger."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from typer.testing import CliRunner

from prosima.app.model_versions import anchor_model_version
from prosima.app.session import Session
from prosima.cli import app
from prosima.ledger.log.directory import Ledger
from prosima.pacs.instances import restore_instance, verify_instance
from prosima.pacs.orthanc_client import OrthancClient
from prosima.pacs.orthanc_server import OrthancServer
from prosima.pacs.watch_state import WatchStateError, read_position, write_position
from prosima.pacs.watcher import ArchiveWatcher

runner = CliRunner()
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"


@dataclass
class Site:
    """An archive with three slices sent in over DICOM and anchored by one ``watch --once``."""

    archive: OrthancServer
    client: OrthancClient
    ledger: Path
    slices: list[Path]
    sop_uids: list[str]
    first_watch: dict

    def login(self) -> list[str]:
        return ["--orthanc", self.archive.url, "--user", self.archive.config.user]

    def env(self) -> dict[str, str]:
        return {"PROSIMA_ORTHANC_PASSWORD": self.archive.config.password}

    def cli(self, *args: str):
        return runner.invoke(
            app, ["pacs", *args, "--ledger", str(self.ledger), *self.login()], env=self.env()
        )

    def height(self) -> int:
        with Ledger.open(self.ledger) as led:
            return led.store.height


@pytest.fixture(scope="module")
def site(archive, send, dicom_slices, tmp_path_factory) -> Site:
    ledger = tmp_path_factory.mktemp("site") / "ledger"
    Ledger.init(ledger, nodes=4).close()
    anchor_model_version(ledger, "pretrained:prosima-full")
    for path in dicom_slices:
        send(path)
    s = Site(archive, archive.client(), ledger, dicom_slices, [], {})
    s.sop_uids = [str(pydicom.dcmread(p).SOPInstanceUID) for p in dicom_slices]
    res = s.cli("watch", "--once", "--json", "-")
    assert res.exit_code == 0, res.output
    s.first_watch = json.loads(res.stdout)
    return s


def test_every_instance_sent_over_dicom_is_anchored(site):
    counts = site.first_watch["counts"]
    assert counts["committed"] == 3, site.first_watch
    ids = {site.client.find_instance(uid) for uid in site.sop_uids}
    assert {e["instance"] for e in site.first_watch["instances"]} == ids
    assert all(len(e["records"]) == 1 for e in site.first_watch["instances"])
    assert read_position(site.ledger, site.client.url) == site.first_watch["last"] > 0


def test_verify_by_instance_id_and_by_sop_uid_says_verified_exact(site):
    uid = site.sop_uids[0]
    instance_id = site.client.find_instance(uid)
    for ref in (instance_id, uid):
        res = site.cli("verify", ref)
        assert res.exit_code == 0, res.output
        assert "VERIFIED EXACT: an anchored original" in res.output
        assert f"SOP Instance UID {uid}" in res.output  # the link resolved, on this terminal only
    with Session.open(site.ledger, "direct") as session:
        result = verify_instance(session, site.client, uid)
    assert result.ok and result.verdict.status == "anchored-original"
    assert result.instance is not None and result.instance.resolution.same_instance


def test_a_restart_anchors_nothing_twice(site):
    before = site.height()
    res = site.cli("watch", "--once", "--json", "-")
    assert res.exit_code == 0, res.output
    again = json.loads(res.stdout)
    assert again["counts"]["committed"] == 0 and again["since"] == site.first_watch["last"]
    # a crash after the commits but before the position was saved: the feed is read again
    write_position(site.ledger, site.client.url, 0)
    res = site.cli("watch", "--once", "--json", "-")
    assert res.exit_code == 0, res.output
    replay = json.loads(res.stdout)
    assert replay["counts"]["committed"] == 0
    first = {e["instance"]: e["records"] for e in site.first_watch["instances"]}
    for event in replay["instances"]:
        if event["instance"] in first and event["outcome"] == "already-anchored":
            assert event["records"] == first[event["instance"]]
    assert site.height() == before


def test_a_changed_copy_stored_into_the_archive_does_not_verify(site, send, helpers, tmp_path):
    source = site.slices[1]

    def paste(pixels: np.ndarray) -> np.ndarray:
        pixels[96:160, 96:160] = pixels.max()
        return pixels

    send(helpers.changed_copy(source, tmp_path / "changed.dcm", paste))  # same UIDs: replaces it
    instance_id = site.client.find_instance(site.sop_uids[1])
    res = site.cli("verify", instance_id)
    assert res.exit_code == 1, res.output
    assert "NOT VERIFIED CHANGED" in res.output
    before = site.height()
    res = site.cli("watch", "--once", "--json", "-")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    outcomes = {e["instance"]: e["outcome"] for e in report["instances"]}
    assert outcomes[instance_id] == "changed" and report["counts"]["committed"] == 0
    assert site.height() == before  # never anchored as a new original
    res = site.cli("verify", site.sop_uids[1])
    assert res.exit_code == 1 and "NOT VERIFIED" in res.output


def test_a_restoration_is_stored_back_as_a_derived_series_of_its_source(site, send, helpers, tmp_path):
    source = site.slices[2]
    sop = site.sop_uids[2]
    rng = np.random.default_rng(0)
    scale = 40.0 if pydicom.dcmread(source).Modality == "CT" else 0.05 * 4095
    send(helpers.changed_copy(source, tmp_path / "noisy.dcm", lambda p: p + rng.normal(0, scale, p.shape)))
    noisy_id = site.client.find_instance(sop)
    assert site.cli("verify", sop).exit_code == 1

    res = site.cli("restore", sop, "--json", "-")
    assert res.exit_code == 0, res.output
    done = json.loads(res.stdout)
    stored = done["orthanc"]["stored"]
    assert done["orthanc"]["source"] == noisy_id and stored != noisy_id

    derived = pydicom.dcmread(site.client.instance_file(stored, tmp_path / "derived.dcm"))
    original = pydicom.dcmread(source)
    assert list(derived.ImageType)[:2] == ["DERIVED", "SECONDARY"]
    assert derived.StudyInstanceUID == original.StudyInstanceUID
    assert derived.SeriesInstanceUID != original.SeriesInstanceUID
    assert derived.SOPInstanceUID != sop
    assert derived.SourceImageSequence[0].ReferencedSOPInstanceUID == sop
    assert done["match"]["tx"][:16] in derived.DerivationDescription

    res = site.cli("verify", stored)
    assert res.exit_code == 0, res.output
    assert "VERIFIED EXACT: the recorded output of a restoration" in res.output
    before = site.height()
    res = site.cli("watch", "--once", "--json", "-")
    report = json.loads(res.stdout)
    outcomes = {e["instance"]: e["outcome"] for e in report["instances"]}
    assert outcomes[stored] == "restoration"  # not anchored as an acquisition
    assert site.height() == before

    with Session.open(site.ledger, "inproc") as session:  # the function the service calls
        again = restore_instance(session, site.client, noisy_id)
        assert again.stored.instance_id not in (stored, noisy_id)
        assert verify_instance(session, site.client, again.stored.instance_id).ok


def test_a_running_watcher_holds_the_ledger_and_outlives_a_failed_poll(site):
    stop, errors, reports, failed = threading.Event(), [], [], []

    def follow(client: OrthancClient, on_error=None) -> None:
        try:
            with Session.open(site.ledger, "inproc") as session:  # a session is used by one thread
                ArchiveWatcher(session, client).run(
                    interval=0.05, stop=stop, on_report=reports.append, on_error=on_error
                )
        except Exception as exc:  # reported to the test below
            failed.append(exc)

    stranger = OrthancClient(site.archive.url, site.archive.config.user, "wrong")
    follow(stranger, on_error=lambda e: (errors.append(str(e)), stop.set()))
    assert "refused the credentials" in errors[0] and not reports and not failed

    stop.clear()
    thread = threading.Thread(target=follow, args=(site.client,))
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not reports and not failed and time.monotonic() < deadline:
            time.sleep(0.05)
        assert reports and reports[-1].count("committed") == 0, failed
        with (
            Session.open(site.ledger, "direct") as session,
            pytest.raises(WatchStateError, match="another watcher"),
        ):
            ArchiveWatcher(session, site.client).poll()
    finally:
        stop.set()
        thread.join(60)
    assert not thread.is_alive() and not failed


def _report_without_pixels(like: Path, out: Path) -> Path:
    """A Basic Text SR of ``like``'s study: an instance with no image."""
    src = pydicom.dcmread(like)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = BASIC_TEXT_SR
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = BASIC_TEXT_SR, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = src.StudyInstanceUID, generate_uid()
    ds.PatientID, ds.Modality, ds.SeriesNumber, ds.InstanceNumber = src.get("PatientID", ""), "SR", 99, 1
    ds.save_as(out, enforce_file_format=True)
    return out


def test_an_instance_without_an_image_is_skipped_with_its_reason(site, send, tmp_path):
    send(_report_without_pixels(site.slices[0], tmp_path / "report.dcm"))
    before = site.height()
    res = site.cli("watch", "--once", "--json", "-")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    skipped = [e for e in report["instances"] if e["outcome"] == "skipped"]
    assert len(skipped) == 1 and "no pixel data" in skipped[0]["detail"], report
    assert skipped[0]["instance"] in skipped[0]["detail"]  # named by the archive's id, not a temporary file
    assert read_position(site.ledger, site.client.url) == report["last"] > report["since"]
    assert site.height() == before


def test_the_ledger_holds_no_uid_in_clear(site, tmp_path):
    site.cli("watch", "--once")
    secrets: set[str] = set()
    for path in site.slices:
        ds = pydicom.dcmread(path)
        secrets |= {str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)}
        secrets |= {str(v) for v in (ds.get("PatientID"), ds.get("PatientName")) if v and len(str(v)) >= 6}
    changes = site.client.changes(0, 1000).changes
    secrets |= {c.resource_id for c in changes}  # Orthanc's ids: unkeyed hashes of the UIDs
    for c in changes:
        if c.change_type == "NewInstance":
            tags = site.client.instance_tags(c.resource_id)
            secrets |= {str(tags[k]) for k in ("SOPInstanceUID", "SeriesInstanceUID") if k in tags}
    held = b"".join(p.read_bytes() for p in site.ledger.rglob("*") if p.is_file())
    assert len(held) > 10_000
    leaked = sorted(s for s in secrets if s.encode() in held)
    assert not leaked
