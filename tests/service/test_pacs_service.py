"""The service beside a real archive: images sent into Orthanc over DICOM (dcmtk's storescu, as a
modality sends them) are anchored by the service's follower, verified through the API by Orthanc
id and by SOP Instance UID and through the portal, a changed copy is caught, and a restoration
through the API is stored back into Orthanc as a derived series referencing its source. A second
service runs its own private Orthanc (``--archive``) and anchors what is stored into it on a poll.
Skipped only where Orthanc or storescu is not installed."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
from fastapi.testclient import TestClient

from prosima.app.model_versions import anchor_model_version
from prosima.imaging.datasets import embedded_default_slices
from prosima.imaging.dicom_series import FULL_SCALE, changed_copy, write_mr_series
from prosima.ledger.log.directory import Ledger
from prosima.pacs.credentials import ArchiveLogin, write_credentials
from prosima.pacs.orthanc_client import OrthancClient
from prosima.pacs.orthanc_server import MODALITY_AET, find_dicomweb_plugin, find_orthanc, running_orthanc
from prosima.service.app import create_app
from prosima.service.settings import ServiceSettings
from prosima.service.tokens import TokenStore

GENERATOR = "pretrained:prosima-full"
SECONDS = 180.0
MISSING_ID = "0" * 8 + "-00000000" * 4


@pytest.fixture(scope="module")
def tools() -> str:
    """storescu's path; skips where Orthanc or storescu is not installed."""
    if find_orthanc() is None:
        pytest.skip("the Orthanc binary is not installed (apt-get install orthanc orthanc-dicomweb)")
    found = shutil.which("storescu")
    if found is None:
        pytest.skip("dcmtk's storescu is not installed (apt-get install dcmtk)")
    return found


def store(storescu: str, login: dict, path: Path) -> None:
    """C-STORE ``path`` into the archive of ``login`` (a credentials file's content), as a modality."""
    done = subprocess.run(
        [
            storescu,
            "-aet",
            login["calling_aet"],
            "-aec",
            login["aet"],
            "127.0.0.1",
            str(login["dicom_port"]),
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def mr_slices(folder: Path, count: int, seed: int) -> list[Path]:
    """MR slices of one new series (its UIDs from ``seed``), made from the embedded brain sections."""
    source = embedded_default_slices()
    picks = [source[round((len(source) - 1) * f)].image for f in np.linspace(0.4, 0.6, count)]
    return write_mr_series(folder, picks, seed=seed)


def noisy_copy(src: Path, dst: Path) -> Path:
    """``src`` under the same UIDs with Gaussian noise added to its pixels."""
    noise = np.random.default_rng(0).normal(0, 0.05 * FULL_SCALE, pydicom.dcmread(src).pixel_array.shape)
    return changed_copy(src, dst, lambda p: np.clip(p + noise, 0, FULL_SCALE))


def new_ledger(root: Path) -> tuple[Path, Path, str]:
    """A 4-node ledger with the generator anchored, and a tokens file with one token."""
    ledger = root / "ledger"
    Ledger.init(ledger, nodes=4).close()
    anchor_model_version(ledger, GENERATOR)
    store_, token = TokenStore.open_or_empty(root / "tokens.json").with_new_token("tests")
    store_.save()
    return ledger, root / "tokens.json", token


def until(check, seconds: float = SECONDS):
    """``check()``'s first true answer, polled until ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while not (answer := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)
    return answer


def ready(client: TestClient) -> dict:
    return until(lambda: (r := client.get("/readyz")).status_code == 200 and r.json())


@dataclass
class Site:
    client: TestClient
    archive: OrthancClient
    login: dict
    storescu: str
    slices: list[Path]
    sop_uids: list[str]
    auth: dict[str, str]
    password: str

    def verify(self, ref: str) -> dict:
        res = self.client.post(f"/v1/pacs/verify/{ref}")
        assert res.status_code == 200, res.text
        return res.json()

    def job(self, href: str) -> dict:
        return until(lambda: (s := self.client.get(href).json())["state"] in ("succeeded", "failed") and s)


@pytest.fixture(scope="module")
def site(tools, tmp_path_factory) -> Iterator[Site]:
    """The service connected to an existing Orthanc (``--orthanc``, ``--credentials``) with its
    follower polling every 0.2 s; two slices sent in over DICOM."""
    root = tmp_path_factory.mktemp("pacs-service")
    ledger, tokens, token = new_ledger(root)
    slices = mr_slices(root, 2, seed=7)
    with running_orthanc(root / "orthanc", overwrite_instances=True) as server:
        login = {"calling_aet": MODALITY_AET, "aet": server.aet, "dicom_port": server.dicom_port}
        credentials = write_credentials(
            root / "archive.json", ArchiveLogin(None, server.config.user, server.config.password)
        )
        settings = ServiceSettings(
            ledger, tokens=tokens, orthanc=server.url, credentials=credentials, watch_interval=0.2
        )
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            ready(client)
            for path in slices:
                store(tools, login, path)
            uids = [str(pydicom.dcmread(p).SOPInstanceUID) for p in slices]
            yield Site(
                client,
                server.client(),
                login,
                tools,
                slices,
                uids,
                {"Authorization": f"Bearer {token}"},
                server.config.password,
            )


def test_readyz_reports_the_archive(site):
    archive = ready(site.client)["archive"]
    assert archive["ok"] and archive["url"] == site.archive.url and not archive["private"]
    assert archive["version"] == site.archive.system()["Version"]
    assert archive["dicom_web"] == (find_dicomweb_plugin() is not None)


def test_the_follower_anchors_what_is_stored_over_dicom_and_it_verifies_by_id_and_uid(site):
    for uid in site.sop_uids:
        until(lambda uid=uid: site.verify(uid)["ok"])
    watch = site.client.get("/v1/pacs/watch").json()
    assert watch["archive"] == site.archive.url and watch["last"] > 0
    assert watch["follower"]["interval_s"] == 0.2 and watch["follower"]["last_poll"]["ok"]
    instance_id = site.archive.find_instance(site.sop_uids[0])
    for ref in (instance_id, site.sop_uids[0]):
        answer = site.verify(ref)
        assert answer["ok"] and answer["orthanc"]["instance"] == instance_id
        assert answer["instance"]["same_instance"]  # the record's keyed UID link is this instance
        assert answer["status"] == "anchored-original"


def test_verify_refuses_bad_ids_and_names_a_missing_instance(site):
    missing = site.client.post(f"/v1/pacs/verify/{MISSING_ID}")
    assert missing.status_code == 404 and "Orthanc has no such resource" in missing.json()["error"]
    unknown_uid = site.client.post("/v1/pacs/verify/1.2.3.4.5.6.7")
    assert unknown_uid.status_code == 404 and "no instance with this SOP Instance UID" in unknown_uid.text
    bad = site.client.post("/v1/pacs/verify/not-an-id")
    assert bad.status_code == 400 and "is neither an Orthanc instance id" in bad.json()["error"]
    assert site.password not in missing.text + unknown_uid.text + bad.text


def test_writes_need_a_token(site):
    assert site.client.post("/v1/pacs/watch/poll").status_code == 401
    assert site.client.post(f"/v1/pacs/restore/{site.sop_uids[0]}").status_code == 401
    poll = site.client.post("/v1/pacs/watch/poll", headers=site.auth)
    assert poll.status_code == 200 and poll.json()["archive"] == site.archive.url


def test_a_restoration_through_the_api_is_stored_back_as_a_derived_series(site, tmp_path):
    until(lambda: site.verify(site.sop_uids[1])["ok"])  # the original is anchored
    noisy = noisy_copy(site.slices[1], tmp_path / "noisy.dcm")
    store(site.storescu, site.login, noisy)  # the same UIDs: it replaces the anchored original
    source = site.archive.find_instance(site.sop_uids[1])
    until(lambda: not site.verify(site.sop_uids[1])["ok"])
    res = site.client.post(f"/v1/pacs/restore/{site.sop_uids[1]}", headers=site.auth)
    assert res.status_code == 202, res.text
    job = site.job(res.json()["href"])
    assert job["state"] == "succeeded", job
    done = job["result"]
    assert done["ok"] and done["orthanc"]["source"] == source
    stored = done["orthanc"]["stored"]
    derived = pydicom.dcmread(site.archive.instance_file(stored, tmp_path / "derived.dcm"))
    original = pydicom.dcmread(site.slices[1])
    assert list(derived.ImageType)[:2] == ["DERIVED", "SECONDARY"]
    assert derived.StudyInstanceUID == original.StudyInstanceUID
    assert derived.SeriesInstanceUID != original.SeriesInstanceUID
    assert derived.SourceImageSequence[0].ReferencedSOPInstanceUID == site.sop_uids[1]
    answer = site.verify(stored)
    assert answer["ok"] and answer["status"] == "recorded-restoration", answer


def test_the_portal_verifies_an_instance_by_its_id(site):
    form = site.client.get("/portal")
    assert 'name="instance"' in form.text
    instance_id = site.archive.find_instance(site.sop_uids[0])
    until(lambda: site.verify(instance_id)["ok"])
    res = site.client.post("/portal/verify/instance", data={"instance": instance_id})
    assert res.status_code == 200, res.text
    assert "Exact original" in res.text and f"archive instance {instance_id}" in res.text
    missing = site.client.post("/portal/verify/instance", data={"instance": MISSING_ID})
    assert missing.status_code == 404 and site.password not in missing.text


def test_an_unreachable_archive_is_a_502_naming_it(tools, tmp_path):
    ledger, _tokens, _token = new_ledger(tmp_path)
    settings = ServiceSettings(ledger, orthanc="http://127.0.0.1:9")  # nothing listens on port 9
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        archive = ready(client)["archive"]
        assert not archive["ok"] and "cannot reach Orthanc" in archive["error"]
        res = client.post(f"/v1/pacs/verify/{MISSING_ID}")
        assert res.status_code == 502 and "cannot reach Orthanc at http://127.0.0.1:9" in res.json()["error"]


def test_a_private_archive_runs_with_the_service_and_anchors_what_is_stored(tools, tmp_path, monkeypatch):
    ledger, tokens, token = new_ledger(tmp_path)
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "archive"
    settings = ServiceSettings(ledger, tokens=tokens, archive_folder=Path("archive"))  # as typed
    app = create_app(settings)
    credentials = folder / "orthanc-credentials.json"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    login = json.loads(credentials.read_text())
    archive = OrthancClient(login["url"], login["user"], login["password"])
    with TestClient(app, raise_server_exceptions=False) as client:
        assert ready(client)["archive"]["private"]
        (slice_,) = mr_slices(tmp_path, 1, seed=8)
        store(tools, login, slice_)
        poll = client.post("/v1/pacs/watch/poll", headers={"Authorization": f"Bearer {token}"})
        assert poll.status_code == 200 and poll.json()["counts"]["committed"] == 1, poll.text
        uid = str(pydicom.dcmread(slice_).SOPInstanceUID)
        assert client.post(f"/v1/pacs/verify/{uid}").json()["ok"]
        watch = client.get("/v1/pacs/watch").json()
        assert watch["follower"] is None and watch["archive_id"] == login["archive_id"]
        assert watch["last"] == poll.json()["last"] > 0  # kept under the id, which outlives the ports
    with pytest.raises(Exception, match="cannot reach Orthanc"):
        archive.system()  # stopped with the service
