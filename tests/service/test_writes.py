"""Writes need an API token: none, a wrong one, or a service without a tokens file are refused
before anything is read or committed; with a valid token an upload is anchored, and a noisy copy
restored, committed, downloaded and verified as a recorded restoration."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient

from prosima.imaging.corruption import gaussian_noise
from prosima.imaging.io import read_image, write_png
from prosima.ledger.log.directory import Ledger
from prosima.service.app import create_app
from prosima.service.settings import ServiceSettings


def height(ledger) -> int:
    with Ledger.open(ledger) as led:
        return led.store.height


def test_a_write_without_or_with_a_wrong_token_is_refused(served):
    before = height(served.ledger)
    files = served.upload(served.unknown, "files")
    missing = served.client.post("/v1/anchor", files=files)
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"] == "Bearer"
    assert "Authorization: Bearer" in missing.json()["error"]
    wrong = served.client.post("/v1/anchor", files=files, headers={"Authorization": "Bearer prosima_wrong"})
    assert wrong.status_code == 401 and wrong.json() == {"error": "the API token is not valid here"}
    basic = served.client.post(
        "/v1/restore", files=served.upload(served.unknown), headers={"Authorization": "Basic eDp5"}
    )
    assert basic.status_code == 401
    assert served.client.get("/v1/outputs/anything").status_code == 401
    assert height(served.ledger) == before


def test_writes_are_refused_by_a_service_without_tokens(service_ledger, tmp_path):
    ledger = service_ledger[0]
    with TestClient(create_app(ServiceSettings(ledger, work_dir=tmp_path))) as client:
        res = client.post(
            "/v1/anchor", files={"files": ("a.png", b"x")}, headers={"Authorization": "Bearer x"}
        )
    assert res.status_code == 403 and "--tokens" in res.json()["error"]


def test_anchor_with_a_valid_token(served, tmp_path):
    source = read_image(served.unknown).array / 255.0
    image = tmp_path / "fresh.png"
    write_png(image, np.clip(source[::-1].copy(), 0, 1), data_range=(0.0, 1.0))  # pixels never anchored
    res = served.client.post("/v1/anchor", files=served.upload(image, "files"), headers=served.auth)
    assert res.status_code == 200, res.json()
    body = res.json()
    assert body["ok"] and body["committed"] == 1 and body["results"][0]["status"] == "committed"
    assert body["commit"]["wall_ms"] >= body["commit"]["critical_path_ms"] > 0
    again = served.client.post("/v1/anchor", files=served.upload(image, "files"), headers=served.auth).json()
    assert again["ok"] and again["existing"] == 1 and again["committed"] == 0  # reported, not committed
    assert served.client.post("/v1/verify", files=served.upload(image)).json()["ok"]


def test_restore_download_and_verify(served, tmp_path):
    clean = read_image(served.originals[1]).array / 255.0
    noisy = tmp_path / "noisy.png"
    write_png(noisy, np.clip(gaussian_noise(clean, 0.05, seed=3).image, 0, 1), data_range=(0.0, 1.0))
    res = served.client.post("/v1/restore?intoto=true", files=served.upload(noisy), headers=served.auth)
    assert res.status_code == 200, res.json()
    body = res.json()
    assert body["ok"] and body["match"]["tx"] and body["intoto"]["payloadType"]
    assert body["out"] == "restored-noisy.png" and str(tmp_path) not in str(body)
    download = served.client.get(body["output"]["href"], headers=served.auth)
    assert download.status_code == 200 and download.headers["content-type"] == "image/png"
    restored = tmp_path / "restored.png"
    restored.write_bytes(download.content)
    verdict = served.client.post("/v1/verify", files=served.upload(restored)).json()
    assert verdict["ok"] and verdict["status"] == "recorded-restoration"
    assert verdict["record"]["tx"] == body["tx"]
    record = served.client.get(f"/v1/records/{body['tx']}").json()
    assert record["original"]["tx"] == body["match"]["tx"]
    assert record["model_versions"] and record["model_versions"][0]["proof_ok"]


def test_a_refused_restoration_is_a_negative_answer(served, tmp_path):
    blank = tmp_path / "blank.png"
    write_png(blank, np.full((256, 256), 0.5), data_range=(0.0, 1.0))  # constant: refused, never guessed
    res = served.client.post("/v1/restore", files=served.upload(blank), headers=served.auth)
    assert res.status_code == 200
    body = res.json()
    assert body["ok"] is False and body["refused"] is True and body["error"]
