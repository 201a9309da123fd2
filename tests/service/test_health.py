"""Health, readiness and the OpenAPI document."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from prosima.service.app import create_app
from prosima.service.settings import ServiceSettings


def test_healthz_readyz_and_openapi(served):
    client = served.client
    assert client.get("/healthz").json() == {"ok": True}
    assert client.get("/readyz").json() == {"ok": True, "ready": True}
    doc = client.get("/openapi.json").json()
    for path in ("/v1/verify", "/v1/verify/batch", "/v1/verify/series", "/v1/anchor", "/v1/restore",
                 "/v1/records/{tx}", "/v1/records", "/v1/proofs/inclusion/{tx}", "/v1/proofs/consistency",
                 "/v1/tree-head", "/v1/models", "/v1/exports/prov", "/v1/jobs/{job_id}"):  # fmt: skip
        assert path in doc["paths"], path
    assert "multipart/form-data" in doc["paths"]["/v1/verify"]["post"]["requestBody"]["content"]
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "security" in doc["paths"]["/v1/anchor"]["post"]
    assert "security" not in doc["paths"]["/v1/verify"]["post"]  # verification is open to anyone


def test_not_ready_when_the_ledger_cannot_be_opened(tmp_path: Path):
    app = create_app(ServiceSettings(tmp_path / "no-ledger", work_dir=tmp_path))
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200  # the process is up
        for _ in range(100):
            ready = client.get("/readyz")
            if "opening" not in ready.json()["error"]:
                break
        assert ready.status_code == 503 and "not a ledger directory" in ready.json()["error"]
        res = client.get("/v1/tree-head")
        assert res.status_code == 503 and "could not open its ledger" in res.json()["error"]
