"""Provenance exports: PROV-JSON parses back with the expected graph, the in-toto Statement has the
v1 layout, and a C2PA manifest signed offline into a PNG reads back trusted and detects tampering."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sys

import numpy as np
import pytest
from PIL import Image
from prov.model import ProvDocument

from prosima.optional import MissingExtraError
from prosima.provenance.exports import (
    ANCHOR_PREDICATE,
    C2PA_LABEL,
    CERT_FILES,
    INTOTO_STATEMENT,
    NS_URI,
    PIXELS_DIGEST,
    RESTORATION_PREDICATE,
    ExportError,
    embed_c2pa,
    intoto_statement,
    make_cert_chain,
    prov_document,
    prov_json,
    read_c2pa,
)


def full(chain):
    return prov_document(*chain.records, chain.model)


def pairs(doc, relation, a, b):
    return {(r[a], r[b]) for r in doc.get(relation, {}).values()}


def test_prov_json_parses_back_into_the_same_document(chain):
    text = prov_json(*chain.records, chain.model)
    back = ProvDocument.deserialize(content=text, format="json")
    assert back == ProvDocument.deserialize(content=json.dumps(full(chain)), format="json")
    assert {str(r.identifier) for r in back.get_records() if r.identifier} >= {
        f"pixels:{chain.anchor.pixels}",
        f"pixels:{chain.restoration.output_pixels}",
        f"weights:{chain.restoration.model}",
        f"fingerprint:{chain.anchor.fingerprint}",
    }


def test_prov_graph_has_the_entities_activity_agent_and_relations(chain):
    doc = full(chain)
    assert doc["prefix"]["prosima"] == NS_URI
    assert all(uri.startswith(("urn:prosima:", NS_URI)) for uri in doc["prefix"].values())
    original, restored = f"pixels:{chain.anchor.pixels}", f"pixels:{chain.restoration.output_pixels}"
    degraded, weights = f"pixels:{chain.restoration.input_pixels}", f"weights:{chain.restoration.model}"
    fingerprint = f"fingerprint:{chain.anchor.fingerprint}"
    assert {original, restored, degraded, weights, fingerprint, f"weights:{chain.anchor.encoder}"} <= set(
        doc["entity"]
    )
    act = f"prosima:restoration-{chain.restoration_tx['tx']}"
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    when = dt.datetime.fromisoformat(doc["activity"][act]["prov:endTime"])
    assert when == epoch + dt.timedelta(microseconds=chain.restoration_tx["time_us"])
    anchored = doc["activity"][f"prosima:anchor-{chain.anchor_tx['tx']}"]["prov:endTime"]
    assert dt.datetime.fromisoformat(anchored) == epoch + dt.timedelta(
        microseconds=chain.anchor_tx["time_us"]
    )
    assert {f"node:{chain.anchor_tx['signer']}", f"node:{chain.restoration_tx['signer']}"} == set(
        doc["agent"]
    )
    assert {(act, degraded), (act, weights), (act, fingerprint)} <= pairs(
        doc, "used", "prov:activity", "prov:entity"
    )
    assert (restored, act) in pairs(doc, "wasGeneratedBy", "prov:entity", "prov:activity")
    derived = pairs(doc, "wasDerivedFrom", "prov:generatedEntity", "prov:usedEntity")
    assert {(restored, degraded), (restored, fingerprint), (fingerprint, original)} <= derived
    assert (act, f"node:{chain.restoration_tx['signer']}") in pairs(
        doc, "wasAssociatedWith", "prov:activity", "prov:agent"
    )
    revisions = [
        r for r in doc["wasDerivedFrom"].values() if r.get("prov:type", {}).get("$") == "prov:Revision"
    ]
    assert [(r["prov:generatedEntity"], r["prov:usedEntity"]) for r in revisions] == [
        (weights, f"weights:{chain.model.parent}")
    ]
    assert doc["entity"][weights]["prosima:round"]["$"] == "2"


def test_prov_anchor_only_and_one_agent_per_node(chain):
    doc = prov_document(chain.anchor, chain.anchor_tx)
    assert set(doc["activity"]) == {f"prosima:anchor-{chain.anchor_tx['tx']}"}
    assert f"pixels:{chain.anchor.pixels}" in doc["entity"]
    same_node = dict(chain.restoration_tx, signer=chain.anchor_tx["signer"])
    assert len(prov_document(chain.anchor, chain.anchor_tx, chain.restoration, same_node)["agent"]) == 1


def test_exports_refuse_records_that_do_not_belong_together(chain):
    other = dict(chain.anchor_tx, tx=chain.h("another anchor"))
    for export in (prov_document, intoto_statement):
        with pytest.raises(ExportError, match="conditioned on anchor"):
            export(chain.anchor, other, chain.restoration, chain.restoration_tx)
        with pytest.raises(ExportError, match="come together"):
            export(chain.anchor, chain.anchor_tx, chain.restoration)
        with pytest.raises(ExportError, match="neither the encoder nor the generator"):
            export(chain.anchor, chain.anchor_tx, model=chain.model)
        with pytest.raises(ExportError, match="time_us"):
            export(chain.anchor, {"tx": chain.anchor_tx["tx"]})


def test_intoto_statement_layout(chain):
    st = intoto_statement(*chain.records, chain.model)
    assert set(st) == {"_type", "subject", "predicateType", "predicate"}
    assert st["_type"] == INTOTO_STATEMENT and st["predicateType"] == RESTORATION_PREDICATE
    assert st["subject"] == [
        {
            "name": f"pixels:{chain.restoration.output_pixels}",
            "digest": {PIXELS_DIGEST: chain.restoration.output_pixels},
        }
    ]
    pred = st["predicate"]
    assert pred["anchor"] == chain.anchor.to_json() and pred["restoration"] == chain.restoration.to_json()
    assert pred["anchorTx"]["tx"] == chain.anchor_tx["tx"] and pred["anchorTx"]["height"] == 3
    assert pred["restorationTx"]["height"] == 9 and pred["model"]["digest"] == chain.restoration.model
    assert pred["modelVersion"]["name"] == "g-round-2"
    assert json.loads(json.dumps(st)) == st


def test_intoto_anchor_only_and_file_digest(tmp_path, chain):
    st = intoto_statement(chain.anchor, chain.anchor_tx)
    assert st["predicateType"] == ANCHOR_PREDICATE and "restoration" not in st["predicate"]
    assert "sha256" not in st["subject"][0]["digest"]
    path = tmp_path / "original.png"
    path.write_bytes(b"png bytes")
    for given in (path, b"png bytes"):
        digest = intoto_statement(chain.anchor, chain.anchor_tx, subject_file=given)["subject"][0]["digest"]
        assert digest == {
            PIXELS_DIGEST: chain.anchor.pixels,
            "sha256": hashlib.sha256(b"png bytes").hexdigest(),
        }
    assert (
        intoto_statement(chain.anchor, chain.anchor_tx, subject_file=path)["subject"][0]["name"]
        == "original.png"
    )


def test_c2pa_is_an_optional_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "c2pa", None)
    with pytest.raises(MissingExtraError, match=r"prosima\[c2pa\]"):
        read_c2pa(tmp_path / "x.png")


def _png(path, seed=0):
    pixels = np.random.default_rng(seed).integers(0, 256, (32, 40), dtype=np.uint8)
    Image.fromarray(pixels, mode="L").save(path)
    return pixels


def test_cert_chain_is_made_once(tmp_path):
    paths = make_cert_chain(tmp_path / "certs")
    assert set(paths) == set(CERT_FILES) and all(p.is_file() for p in paths.values())
    before = {k: p.read_bytes() for k, p in paths.items()}
    assert {k: p.read_bytes() for k, p in make_cert_chain(tmp_path / "certs").items()} == before
    assert paths["key"].stat().st_mode & 0o077 == 0


def test_c2pa_manifest_signed_offline_reads_back_trusted(tmp_path, chain):
    pytest.importorskip("c2pa")
    pixels = _png(tmp_path / "in.png")
    statement = intoto_statement(*chain.records)
    arrays = {"small": [64, 48], "wide": [1, 300], "signed": [-1, 2], "bytes_like": [0, 255]}
    assertions = {C2PA_LABEL: statement, "invalid.prosima.arrays": arrays}
    store = embed_c2pa(tmp_path / "in.png", tmp_path / "out.png", assertions, tmp_path / "certs")
    assert store == read_c2pa(tmp_path / "out.png", tmp_path / "certs")
    assert store["validation_state"] == "Trusted"
    manifest = store["manifests"][store["active_manifest"]]
    data = {a["label"]: a["data"] for a in manifest["assertions"]}
    assert data[C2PA_LABEL] == statement  # integer arrays survive (contentauth/c2pa-rs#2570)
    assert data["invalid.prosima.arrays"] == arrays
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out.png")), pixels)
    assert read_c2pa(tmp_path / "out.png")["validation_state"] != "Trusted"  # CA not trusted by default


def test_c2pa_detects_changed_pixels(tmp_path):
    pytest.importorskip("c2pa")
    _png(tmp_path / "in.png")
    embed_c2pa(tmp_path / "in.png", tmp_path / "out.png", {C2PA_LABEL: {"x": 1}}, tmp_path / "certs")
    raw = bytearray((tmp_path / "out.png").read_bytes())
    idat = raw.index(b"IDAT") + 8
    raw[idat] ^= 0xFF
    (tmp_path / "bad.png").write_bytes(bytes(raw))
    state = read_c2pa(tmp_path / "bad.png", tmp_path / "certs")
    assert state["validation_state"] == "Invalid"
    with pytest.raises(ExportError, match="custom labels"):
        embed_c2pa(tmp_path / "in.png", tmp_path / "o.png", {"c2pa.actions": {}}, tmp_path / "certs")
