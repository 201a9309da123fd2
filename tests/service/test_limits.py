"""Request limits and malformed requests: a body over the limit is refused with 413 (before it is
read, or as soon as it passes the limit when sent without a length), too many files with 413, a
file that is not an image with 422 naming it, a broken multipart body with 400; every error is
``{"error": message}`` and names no private folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from prosima.service.app import create_app
from prosima.service.settings import ServiceSettings


@pytest.fixture(scope="module")
def limited(service_ledger, tmp_path_factory) -> Iterator[TestClient]:
    """A service accepting 4 KiB bodies and 2 files per request."""
    settings = ServiceSettings(
        service_ledger[0], max_body_bytes=4096, max_files=2, work_dir=tmp_path_factory.mktemp("limited")
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_a_body_over_the_limit_is_refused(limited, served):
    big = served.upload(served.originals[0])  # a 256 x 256 PNG: tens of KiB
    res = limited.post("/v1/verify", files=big)
    assert res.status_code == 413 and "larger than this service accepts (4096 bytes" in res.json()["error"]


def test_a_body_without_a_length_is_cut_off_at_the_limit(limited):
    def chunks() -> Iterator[bytes]:
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
        for _ in range(64):
            yield b"x" * 1024

    res = limited.post(
        "/v1/verify", content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=b"}
    )
    assert res.status_code == 413 and "error" in res.json()


def test_too_many_files_are_refused(limited):
    files = [("files", (f"{i}.png", b"x")) for i in range(3)]
    res = limited.post("/v1/verify/batch", files=files)
    assert res.status_code == 413 and res.json() == {
        "error": "3 files in one request; this service accepts at most 2"
    }


def test_a_file_that_is_not_an_image(served):
    res = served.client.post("/v1/verify", files={"file": ("scan.png", b"not a png at all")})
    assert res.status_code == 422
    error = res.json()["error"]
    assert error.startswith("scan.png: ") and "PNG" in error
    assert str(served.root) not in error and "/" not in error.split(":")[0]


def test_malformed_requests(served):
    missing = served.client.post("/v1/verify", data={"other": "x"})
    assert missing.status_code == 422 and missing.json() == {"error": "file: Field required"}
    broken = served.client.post(
        "/v1/verify",
        content=b"--x\r\nnot a part",
        headers={"Content-Type": "multipart/form-data; boundary=y"},
    )
    assert broken.status_code in (400, 422) and "error" in broken.json()
    empty = served.client.post("/v1/verify/batch", files=[("since", ("h.json", b"{}"))])
    assert empty.status_code == 422
    bad_rule = served.client.post(
        "/v1/restore?min_similarity=3", files=served.upload(served.unknown), headers=served.auth
    )
    assert bad_rule.status_code == 422 and "min_similarity" in bad_rule.json()["error"]
    bad_model = served.client.post(
        "/v1/restore?model=/etc/passwd", files=served.upload(served.unknown), headers=served.auth
    )
    assert bad_model.status_code == 400 and "pretrained:NAME" in bad_model.json()["error"]


def test_uploads_are_removed_after_the_answer(served):
    work = served.root / "work"
    served.client.post("/v1/verify", files=served.upload(served.originals[0]))
    served.client.post("/v1/verify", files={"file": ("scan.png", b"junk")})
    assert not [p for p in work.iterdir() if p.name.startswith("prosima-upload-")]


def test_names_are_kept_but_never_paths(served, tmp_path: Path):
    res = served.client.post("/v1/verify", files={"file": ("../../etc/evil.png", b"junk")})
    assert res.status_code == 422 and res.json()["error"].startswith("evil.png: ")
