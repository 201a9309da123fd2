"""``POST /v1/verify``: ``ok`` exactly where ``prosima verify`` exits 0 (an anchored original yes; a
tampered copy and an image never anchored no), with the same verdict as the command line."""

from __future__ import annotations

import base64
import json

from typer.testing import CliRunner

from prosima.cli import app as cli
from prosima.ledger.log.proof import check_document
from prosima.ledger.log.registry import Registry


def cli_verify(path, ledger) -> tuple[int, dict]:
    res = CliRunner().invoke(cli, ["verify", str(path), "--ledger", str(ledger), "--json", "-"])
    return res.exit_code, json.loads(res.stdout)


def test_an_anchored_original_verifies_with_a_checkable_proof(served):
    res = served.client.post("/v1/verify", files=served.upload(served.originals[0]))
    assert res.status_code == 200
    body = res.json()
    assert body["ok"] is True and body["status"] == "anchored-original"
    assert body["instance"]["same_instance"] is True  # the upload keeps its name: the keyed link matches
    registry = Registry.load(served.ledger / "registry.cbor")
    assert check_document(body["proof"]["document"], registry=registry).ok


def test_a_tampered_copy_and_an_unknown_image_do_not(served):
    tampered = served.client.post("/v1/verify", files=served.upload(served.tampered)).json()
    assert tampered["ok"] is False and tampered["status"] in ("changed", "tampered")
    assert tampered["differing_shards"]
    unknown = served.client.post("/v1/verify", files=served.upload(served.unknown)).json()
    assert unknown["ok"] is False and unknown["record"] is None


def test_the_answer_is_the_command_lines(served):
    for path, code in ((served.originals[1], 0), (served.tampered, 1)):
        exit_code, verdict = cli_verify(path, served.ledger)
        body = served.client.post("/v1/verify", files=served.upload(path)).json()
        assert exit_code == code and body["ok"] is (code == 0)
        for field in ("status", "pixels", "differing_shards", "record", "instance"):
            assert body[field] == verdict[field], field


def test_heatmap_and_exports_on_request(served):
    res = served.client.post(
        "/v1/verify?heatmap=true&prov=true&intoto=true", files=served.upload(served.tampered)
    )
    body = res.json()
    assert base64.b64decode(body["heatmap_png"]).startswith(b"\x89PNG")
    assert "entity" in body["prov"] and body["intoto"]["payloadType"]
