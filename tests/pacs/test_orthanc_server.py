"""The private archive: loopback only, authentication on, stores only from the registered AE title,
DICOMweb served when the plugin is installed, stopped with its process; and ``prosima pacs archive``
runs one until interrupted, its login in a private file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from prosima.pacs.orthanc_client import OrthancClient, OrthancError
from prosima.pacs.orthanc_server import OrthancConfig, find_dicomweb_plugin, start_orthanc


def test_the_configuration_keeps_the_archive_private(tmp_path):
    doc = OrthancConfig(tmp_path, 1, 2).document()
    assert doc["RemoteAccessAllowed"] is False and doc["AuthenticationEnabled"] is True
    assert doc["DicomAlwaysAllowStore"] is False and doc["DicomCheckModalityHost"] is True
    assert all(m["Host"] == "127.0.0.1" for m in doc["DicomModalities"].values())
    assert doc["WebDavEnabled"] is False and doc["ExecuteLuaEnabled"] is False
    assert str(tmp_path) in doc["StorageDirectory"]
    assert "hunter2" not in repr(OrthancConfig(tmp_path, 1, 2, password="hunter2"))


def test_the_archive_refuses_strangers(archive, storescu, dicom_slices, tmp_path):
    assert archive.client().system()["DicomAet"] == archive.aet
    with pytest.raises(OrthancError, match="refused the credentials"):
        OrthancClient(archive.url).system()
    with pytest.raises(OrthancError, match="refused the credentials"):
        OrthancClient(archive.url, archive.config.user, "wrong").system()
    done = subprocess.run(
        [
            storescu,
            "-aet",
            "STRANGER",
            "-aec",
            archive.aet,
            "127.0.0.1",
            str(archive.dicom_port),
            str(dicom_slices[0]),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and "Calling AE Title Not Recognized" in done.stderr
    assert archive.client().changes().changes == []
    config = archive.config.folder / "orthanc.json"
    assert config.stat().st_mode & 0o077 == 0  # it holds the password


def test_dicomweb_is_served_when_installed(archive):
    if find_dicomweb_plugin() is None:
        pytest.skip("the DICOMweb plugin (orthanc-dicomweb) is not installed")
    assert "dicom-web" in archive.client().plugins()


def test_stop_ends_the_process(orthanc_binary, tmp_path):
    server = start_orthanc(tmp_path / "archive")
    server.stop()
    assert server.process.poll() is not None
    with pytest.raises(OrthancError, match="cannot reach"):
        server.client(timeout=2).system()
    server.stop()  # idempotent


def test_pacs_archive_runs_until_interrupted(orthanc_binary, tmp_path):
    folder = tmp_path / "archive"
    proc = subprocess.Popen(
        [sys.executable, "-m", "prosima.cli", "pacs", "archive", "--folder", str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        login = folder / "orthanc-credentials.json"
        deadline = time.monotonic() + 120
        while not login.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert login.exists(), proc.stdout.read() if proc.poll() is not None else "no login written"
        assert os.stat(login).st_mode & 0o077 == 0
        doc = json.loads(login.read_text())
        assert OrthancClient(doc["url"], doc["user"], doc["password"]).system()["Version"]
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out
        assert "storescu -aet PROSIMA_SCU" in out and doc["password"] not in out
        with pytest.raises(OrthancError, match="cannot reach"):
            OrthancClient(doc["url"], doc["user"], doc["password"], timeout=2).system()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
