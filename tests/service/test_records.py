"""Records and proofs over HTTP: a record by id (decoded, with its proof), by pixel digest and by
keyed UID; tree heads and consistency proofs that check offline."""

from __future__ import annotations

import json

from prosima.ledger.log.proof import check_document
from prosima.ledger.log.registry import Registry


def test_a_record_by_id_and_by_digest(served):
    verdict = served.client.post("/v1/verify", files=served.upload(served.originals[0])).json()
    tx = verdict["record"]["tx"]
    record = served.client.get(f"/v1/records/{tx}").json()
    assert record["ok"] and record["transaction"]["kind"] == "image.anchored"
    assert record["image_record"]["record"]["pixels"] == verdict["pixels"]
    assert record["transaction"]["time_iso"].endswith("+00:00")
    by_digest = served.client.get(f"/v1/records?digest={verdict['pixels']}").json()
    assert by_digest["ok"] and [r["tx"] for r in by_digest["records"]] == [tx]
    assert served.client.get(f"/v1/records/{'0' * 64}").status_code == 404
    assert served.client.get("/v1/records/nothex").status_code == 400
    none = served.client.get(f"/v1/records?digest={'0' * 64}").json()
    assert none == {"ok": False, "digest": "0" * 64, "records": []}


def test_records_by_keyed_link(served):
    found = served.client.post("/v1/records/search", files=served.upload(served.originals[0])).json()
    assert found["ok"] and found["what"] == "the file slice0.png"
    assert found["records"][0]["kind"] == "anchor"
    unknown = served.client.get("/v1/records?sop_uid=1.2.3.4").json()
    assert unknown["ok"] is False and unknown["records"] == []
    assert served.client.get("/v1/records?sop_uid=1&study_uid=2").status_code == 400


def test_proofs_and_tree_heads_check_offline(served):
    registry = Registry.load(served.ledger / "registry.cbor")
    tx = served.client.post("/v1/verify", files=served.upload(served.originals[1])).json()["record"]["tx"]
    inclusion = served.client.get(f"/v1/proofs/inclusion/{tx}").json()
    assert check_document(inclusion, registry=registry).ok
    head = served.client.get("/v1/tree-head").json()
    assert head["tree_size"] >= 3
    consistency = served.client.get("/v1/proofs/consistency?from_height=0").json()
    assert check_document(consistency, registry=registry).ok
    checked = served.client.post(
        "/v1/proofs/check", files={"file": ("p.json", json.dumps(inclusion).encode())}
    )
    assert checked.status_code == 200 and checked.json()["ok"]
    block = served.client.get("/v1/blocks/0").json()
    assert block["header"]["height"] == 0 and block["transactions"][0]["payload_decoded"]


def test_model_versions(served):
    versions = served.client.get("/v1/models").json()["versions"]
    assert [v["version"]["name"] for v in versions] == ["prosima-full"]
    digest = versions[0]["version"]["digest"]
    records = served.client.get(f"/v1/models/{digest}").json()
    assert records["ok"] and records["records"][0]["proof_ok"]
