"""The portal on a ledger with a restoration and a DICOM slice: a recorded restoration is a
"faithful restoration by model X version Y" with its chain acquisition -> restoration -> model
version, the anchor's page lists what was restored from it, a DICOM upload is judged without a
patient identifier on the page, a keyed UID finds its record, and an instance of a private Orthanc
archive (skipped only where Orthanc is not installed) is verified by its id or its UID."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
from fastapi.testclient import TestClient
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from prosima.app.anchoring import anchor_files
from prosima.app.ledger_queries import init_ledger
from prosima.app.model_versions import anchor_model_version
from prosima.app.restoring import RestoreResult, restore_file
from prosima.imaging.corruption import gaussian_noise
from prosima.imaging.datasets import embedded_default_slices
from prosima.imaging.io import read_image, write_png
from prosima.service.app import create_app
from prosima.service.portal.archive import ARCHIVE_ATTRIBUTE
from prosima.service.settings import ServiceSettings

GENERATOR = "pretrained:prosima-full"
PATIENT_NAME, PATIENT_ID = "Portal^Phantom", "PROSIMA-PORTAL-0042"
READY_SECONDS = 180.0


@dataclass(frozen=True)
class World:
    ledger: Path
    original: Path  # an anchored PNG slice
    restored: Path  # its restoration, recorded
    dicom: Path  # an anchored DICOM slice
    sop_uid: str
    series_uid: str
    restoration_tx: str
    original_tx: str


def _dicom_slice(path: Path, image: np.ndarray) -> tuple[Path, str, str]:
    """One MR slice (uint16) with fresh UIDs and a patient name and id."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = (
        generate_uid(),
        generate_uid(),
        generate_uid(),
    )
    ds.PatientID, ds.PatientName, ds.Modality = PATIENT_ID, PATIENT_NAME, "MR"
    ds.SeriesNumber, ds.InstanceNumber = 1, 1
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.PixelSpacing, ds.SliceThickness = [1.0, 1.0], 1.0
    ds.ImagePositionPatient, ds.ImageOrientationPatient = [0.0, 0.0, 0.0], [1, 0, 0, 0, 1, 0]
    ds.set_pixel_data(np.rint(image * 4095).astype(np.uint16), "MONOCHROME2", 12)
    ds.save_as(path, enforce_file_format=True)
    return path, str(ds.SOPInstanceUID), str(ds.SeriesInstanceUID)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("portal-chain")
    source = embedded_default_slices()
    first, second = (np.asarray(source[round((len(source) - 1) * f)].image) for f in (0.45, 0.55))
    original = root / "slice.png"
    write_png(original, first, data_range=(0.0, 1.0))
    dicom, sop_uid, series_uid = _dicom_slice(root / "mr.dcm", second)
    ledger = root / "ledger"
    init_ledger(ledger, nodes=4)
    anchor_model_version(ledger, GENERATOR)
    report = anchor_files([original, dicom], ledger, consensus="direct")
    assert [r.status for r in report.results] == ["committed", "committed"]
    noisy = root / "noisy.png"
    unit = read_image(original).array / 255.0
    write_png(noisy, np.clip(gaussian_noise(unit, 0.05, seed=5).image, 0.0, 1.0), data_range=(0.0, 1.0))
    done = restore_file(noisy, ledger, root / "restored.png", consensus="direct")
    assert isinstance(done, RestoreResult)
    return World(
        ledger,
        original,
        done.restored.out,
        dicom,
        sop_uid,
        series_uid,
        done.restored.tx,
        report.results[0].tx,
    )


def _client(world: World, archive=None) -> Iterator[TestClient]:
    import time

    app = create_app(ServiceSettings(world.ledger, consensus="direct"))
    if archive is not None:
        setattr(app.state, ARCHIVE_ATTRIBUTE, archive)
    with TestClient(app) as client:
        deadline = time.monotonic() + READY_SECONDS
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, client.get("/readyz").json()
            time.sleep(0.1)
        yield client


@pytest.fixture(scope="module")
def client(world) -> Iterator[TestClient]:
    yield from _client(world)


def _verify(client: TestClient, path: Path) -> str:
    res = client.post("/portal/verify", files={"file": (path.name, path.read_bytes())})
    assert res.status_code == 200, res.text
    return res.text


def test_a_recorded_restoration_names_its_model_version_and_its_chain(client, world):
    (version,) = client.get("/v1/models").json()["versions"]
    digest = version["version"]["digest"]
    page = _verify(client, world.restored)
    assert f"Faithful restoration by model prosima-full version {digest[:12]}" in page
    assert "Verified" in page
    chain = page.split("<h2>Record chain</h2>", 1)[1].split("</ol>", 1)[0]
    roles = [part.split("</p>", 1)[0] for part in chain.split('<p class="role">')[1:]]
    assert roles == ["Acquisition", "Restoration", "Model version"]
    for tx in (world.original_tx, world.restoration_tx, version["tx"]):
        assert f"/portal/records/{tx}" in chain
    assert "Checked: the inclusion proof holds." in page


def test_the_anchor_page_lists_its_restoration(client, world):
    page = client.get(f"/portal/records/{world.original_tx}")
    assert page.status_code == 200
    restorations = page.text.split("<h2>Restorations of this image</h2>", 1)[1].split("</ul>", 1)[0]
    assert f"/portal/records/{world.restoration_tx}" in restorations
    restoration = client.get(f"/portal/records/{world.restoration_tx}")
    assert "Model version" in restoration.text and f"/portal/records/{world.original_tx}" in restoration.text


def test_a_dicom_slice_is_judged_without_patient_identifiers(client, world):
    page = _verify(client, world.dicom)
    assert "Verified" in page and "Exact original" in page
    sentence = page.split("The record is of this very instance (its keyed link matches", 1)[1].split("</p>")[
        0
    ]
    assert "SOP Instance UID" in sentence
    for identifier in (PATIENT_NAME, PATIENT_ID, "Phantom", world.sop_uid, world.series_uid):
        assert identifier not in page, identifier


def test_a_keyed_uid_finds_its_record(client, world):
    anchor_tx = client.post("/v1/verify", files={"file": ("mr.dcm", world.dicom.read_bytes())}).json()[
        "record"
    ]["tx"]
    for by, uid in (("auto", world.sop_uid), ("sop_uid", world.sop_uid), ("series_uid", world.series_uid)):
        found = client.post("/portal/search", data={"q": uid, "by": by})
        assert found.status_code == 200 and f"/portal/records/{anchor_tx}" in found.text, by
        assert "1 record found" in found.text
    other = client.post("/portal/search", data={"q": world.series_uid, "by": "study_uid"})
    assert other.status_code == 200 and "No record found." in other.text


def test_an_archived_instance_is_verified_by_its_id_and_uid(world, tmp_path):
    from prosima.pacs.orthanc_server import find_orthanc, running_orthanc

    if find_orthanc() is None:
        pytest.skip("the Orthanc binary is not installed (apt-get install orthanc; .ci/run does)")
    with running_orthanc(tmp_path / "orthanc") as server:
        archive = server.client()
        stored = archive.upload(world.dicom)
        for client in _client(world, archive):
            form = client.get("/portal")
            assert 'name="instance"' in form.text and 'for="instance"' in form.text
            for ref in (stored.instance_id, world.sop_uid):
                res = client.post("/portal/verify/instance", data={"instance": ref})
                assert res.status_code == 200, res.text
                assert "Exact original" in res.text and f"archive instance {stored.instance_id}" in res.text
                assert PATIENT_NAME not in res.text and PATIENT_ID not in res.text
            missing = client.post("/portal/verify/instance", data={"instance": "0" * 8 + "-00000000" * 4})
            assert missing.status_code == 404 and "Orthanc has no such resource" in missing.text
            assert server.config.password not in missing.text
    assert pydicom.dcmread(world.dicom).PatientName == PATIENT_NAME  # the file itself is untouched
