"""Exports say what happened in each standard's own terms: in-toto subjects carry the file's sha256
beside the pixel digest and travel in a signed DSSE envelope; a verification exports the verified
image and its relation to the record's image (PROV and in-toto); a C2PA restoration is an edit of
its input (the parentOf ingredient), of IPTC digital source type compositeWithTrainedAlgorithmicMedia."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from PIL import Image

from prosima.ledger.log.crypto import NodeKey
from prosima.ledger.log.registry import Registry
from prosima.provenance.dsse import (
    INTOTO_PAYLOAD_TYPE,
    EnvelopeError,
    pae,
    sign_statement,
    verify_envelope,
    verify_statement,
)
from prosima.provenance.exports import (
    C2PA_LABEL,
    IPTC_SOURCE,
    PIXELS_DIGEST,
    RESTORATION_SOURCE_TYPE,
    VERIFICATION_PREDICATE,
    ExportError,
    Verified,
    embed_c2pa,
    intoto_statement,
    prov_document,
)

FILE = b"the verified file's bytes"


@pytest.fixture(scope="module")
def tampered(chain) -> Verified:
    """A verified copy of the anchor's image with shard 1 changed."""
    return Verified(
        chain.h("tampered"), "tampered", False, chain.anchor.pixels, (1,), hashlib.sha256(FILE).hexdigest()
    )


def validate_with_in_toto_attestation(statement):
    """The statement as the in-toto attestation framework's own validator reads it."""
    pytest.importorskip("in_toto_attestation")
    from google.protobuf import json_format
    from in_toto_attestation.v1 import statement_pb2
    from in_toto_attestation.v1.statement import Statement

    Statement.copy_from_pb(json_format.ParseDict(statement, statement_pb2.Statement())).validate()


# ---------------------------------------------------------------- in-toto subjects


def test_restoration_subject_has_the_written_file_sha256_beside_the_pixel_digest(chain):
    st = intoto_statement(*chain.records, subject_file=FILE)
    assert st["subject"] == [
        {
            "name": f"pixels:{chain.restoration.output_pixels}",
            "digest": {
                PIXELS_DIGEST: chain.restoration.output_pixels,
                "sha256": hashlib.sha256(FILE).hexdigest(),
            },
        }
    ]
    validate_with_in_toto_attestation(st)


def test_verification_statement_is_about_the_verified_image(chain, tampered):
    st = intoto_statement(chain.anchor, chain.anchor_tx, verified=tampered)
    assert st["predicateType"] == VERIFICATION_PREDICATE
    assert st["subject"][0]["digest"] == {PIXELS_DIGEST: tampered.pixels, "sha256": tampered.file_sha256}
    check = st["predicate"]["verification"]
    assert check["relation"] == "changed from" and check["recordPixels"] == chain.anchor.pixels
    assert check["differingShards"] == [1] and check["ok"] is False
    assert st["predicate"]["anchor"]["pixels"] == chain.anchor.pixels
    validate_with_in_toto_attestation(st)


def test_verification_relations_and_refusals(chain, tampered):
    nearest = Verified(chain.h("other"), "changed", False, chain.anchor.pixels)
    assert nearest.relation == "nearest by fingerprint"
    exact = Verified(
        chain.restoration.output_pixels, "recorded-restoration", True, chain.restoration.output_pixels
    )
    assert exact.relation == "same pixels"
    st = intoto_statement(*chain.records, verified=exact)
    assert st["subject"][0]["digest"] == {PIXELS_DIGEST: chain.restoration.output_pixels}
    with pytest.raises(ExportError, match="not the record's image"):
        intoto_statement(*chain.records, verified=tampered)
    with pytest.raises(ExportError, match="not the record's image"):
        prov_document(*chain.records, verified=tampered)


# ---------------------------------------------------------------- DSSE


def test_pae_is_the_dsse_encoding():
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_dsse_envelope_signed_by_the_node_key_verifies_and_a_tampered_payload_fails(chain, tampered):
    key, other = NodeKey.from_seed(b"\x01" * 32), NodeKey.from_seed(b"\x02" * 32)
    st = intoto_statement(chain.anchor, chain.anchor_tx, verified=tampered)
    env = sign_statement(st, key)
    assert env["payloadType"] == INTOTO_PAYLOAD_TYPE == "application/vnd.in-toto+json"
    assert [s["keyid"] for s in env["signatures"]] == [key.node_id.hex()]
    registry = Registry([key.public_key, other.public_key])
    assert verify_statement(env, registry) == st
    assert verify_statement(json.dumps(env), {key.node_id.hex(): key.public_key}) == st
    # any DSSE verifier: plain Ed25519 over PAE(payloadType, payload), no other prefix
    payload, sig = base64.b64decode(env["payload"]), base64.b64decode(env["signatures"][0]["sig"])
    Ed25519PublicKey.from_public_bytes(key.public_key).verify(sig, pae(INTOTO_PAYLOAD_TYPE, payload))

    tampered = dict(st, predicate={**st["predicate"], "verification": {"ok": True}})
    forged = dict(env, payload=base64.b64encode(json.dumps(tampered).encode()).decode())
    with pytest.raises(EnvelopeError, match="no signature verifies"):
        verify_statement(forged, registry)
    with pytest.raises(EnvelopeError, match="payloadType"):
        verify_envelope(dict(env, payloadType="application/json"), registry)
    with pytest.raises(EnvelopeError, match="no signature verifies"):  # the type is signed too
        verify_envelope(dict(env, payloadType="application/json"), registry, "application/json")
    with pytest.raises(EnvelopeError, match="no signature verifies"):
        verify_statement(env, Registry([other.public_key]))
    with pytest.raises(EnvelopeError, match="no signature verifies"):  # a key given under another id
        verify_statement(env, {key.node_id.hex(): other.public_key})
    with pytest.raises(EnvelopeError, match="no signatures"):
        verify_statement(dict(env, signatures=[]), registry)
    with pytest.raises(EnvelopeError, match="base64"):
        verify_statement(dict(env, payload="***"), registry)


# ---------------------------------------------------------------- PROV of a verification


def relations(doc, name):
    return list(doc.get(name, {}).values())


def test_prov_of_a_tampered_copy_derives_it_from_the_original_as_changed(chain, tampered):
    doc = prov_document(chain.anchor, chain.anchor_tx, verified=tampered)
    mine, original = f"pixels:{tampered.pixels}", f"pixels:{chain.anchor.pixels}"
    entity = doc["entity"][mine]
    assert entity["prosima:role"] == "verified" and entity["prosima:verifiedStatus"] == "tampered"
    assert entity["prosima:fileSha256"] == tampered.file_sha256
    derived = [r for r in relations(doc, "wasDerivedFrom") if r["prov:generatedEntity"] == mine]
    assert len(derived) == 1 and derived[0]["prov:usedEntity"] == original
    assert derived[0]["prosima:relation"] == "changed from"
    assert derived[0]["prov:type"]["$"] == "prosima:ChangedCopy"


def test_prov_of_a_nearest_image_is_influence_not_derivation_and_exact_is_the_record(chain):
    nearest = Verified(chain.h("other"), "changed", False, chain.anchor.pixels)
    doc = prov_document(chain.anchor, chain.anchor_tx, verified=nearest)
    mine = f"pixels:{nearest.pixels}"
    assert not [r for r in relations(doc, "wasDerivedFrom") if r["prov:generatedEntity"] == mine]
    influence = [r for r in relations(doc, "wasInfluencedBy") if r["prov:influencee"] == mine]
    assert influence[0]["prov:influencer"] == f"pixels:{chain.anchor.pixels}"
    assert influence[0]["prosima:relation"] == "nearest by fingerprint"

    exact = Verified(
        chain.anchor.pixels, "anchored-original", True, chain.anchor.pixels, file_sha256=chain.h("f")
    )
    doc = prov_document(chain.anchor, chain.anchor_tx, verified=exact)
    entity = doc["entity"][f"pixels:{chain.anchor.pixels}"]
    assert entity["prosima:role"] == "original" and entity["prosima:verifiedStatus"] == "anchored-original"
    assert entity["prosima:fileSha256"] == chain.h("f")


# ---------------------------------------------------------------- C2PA


def png(path, seed):
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (32, 40), dtype=np.uint8)).save(path)
    return path


def test_c2pa_restoration_is_an_edit_of_its_input(tmp_path, chain):
    pytest.importorskip("c2pa")
    parent, restored = png(tmp_path / "noisy.png", 0), png(tmp_path / "restored.png", 1)
    when = dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)
    statement = intoto_statement(*chain.records)
    store = embed_c2pa(
        restored, tmp_path / "out.png", {C2PA_LABEL: statement}, tmp_path / "certs",
        parent=parent, when=when, description="restored",
    )  # fmt: skip
    assert store["validation_state"] == "Trusted", store.get("validation_results")
    manifest = store["manifests"][store["active_manifest"]]
    actions = next(a for a in manifest["assertions"] if a["label"].startswith("c2pa.actions"))["data"]
    assert [a["action"] for a in actions["actions"]] == ["c2pa.opened", "c2pa.edited"]
    edited = actions["actions"][1]
    assert edited["digitalSourceType"] == IPTC_SOURCE + RESTORATION_SOURCE_TYPE
    assert RESTORATION_SOURCE_TYPE == "compositeWithTrainedAlgorithmicMedia"
    assert edited["when"] == "2024-01-02T03:04:05.678000Z" and edited["description"] == "restored"
    opened = actions["actions"][0]["parameters"]["ingredients"]
    assert len(opened) == 1 and "c2pa.ingredient" in opened[0]["url"]
    [ingredient] = manifest["ingredients"]
    assert ingredient["relationship"] == "parentOf" and ingredient["format"] == "image/png"
    assert "noisy" not in json.dumps(ingredient)  # the input's file name is not exported
    data = {a["label"]: a["data"] for a in manifest["assertions"]}
    assert data[C2PA_LABEL] == statement
    assert not any(a["action"] == "c2pa.created" for a in actions["actions"])


def test_c2pa_parent_of_another_format_and_naive_time(tmp_path):
    pytest.importorskip("c2pa")
    np.save(tmp_path / "noisy.npy", np.zeros((4, 4)))
    restored = png(tmp_path / "restored.png", 1)
    store = embed_c2pa(
        restored,
        tmp_path / "out.png",
        {C2PA_LABEL: {"x": 1}},
        tmp_path / "certs",
        parent=tmp_path / "noisy.npy",
    )
    assert store["validation_state"] == "Trusted"
    [ingredient] = store["manifests"][store["active_manifest"]]["ingredients"]
    assert ingredient["format"] == "application/octet-stream" and ingredient["relationship"] == "parentOf"
    with pytest.raises(ExportError, match="aware"):
        embed_c2pa(
            restored, tmp_path / "o.png", {C2PA_LABEL: {}}, tmp_path / "certs", when=dt.datetime(2024, 1, 1)
        )


# ---------------------------------------------------------------- through the command line


@pytest.fixture(scope="module")
def cli_world(tmp_path_factory, brain_slices):
    """One brain slice anchored through the CLI, and the generator anchored, on a 4-node ledger."""
    from typer.testing import CliRunner

    from prosima.cli import app
    from prosima.imaging.io import write_png

    root = tmp_path_factory.mktemp("standards")
    runner = CliRunner()

    def run(*args, code=0):
        res = runner.invoke(app, [str(a) for a in args])
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            raise res.exception
        assert res.exit_code == code, res.output
        return res

    write_png(root / "slice.png", brain_slices[1], data_range=(0.0, 1.0))
    run("ledger", "init", root / "ledger", "--nodes", 4)
    run("anchor", root / "slice.png", "--ledger", root / "ledger", "--json", root / "anchored.json")
    run("models", "anchor", "pretrained:prosima-full", "--ledger", root / "ledger")
    anchored = json.loads((root / "anchored.json").read_text())[0]
    return root, run, anchored, Registry.load(root / "ledger" / "registry.cbor")


def sha256_of(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_verify_exports_name_the_verified_file(cli_world, tmp_path):
    root, run, anchored, registry = cli_world
    run("verify", root / "slice.png", "--ledger", root / "ledger", "--intoto", tmp_path / "exact.json")
    exact = verify_statement((tmp_path / "exact.json").read_text(), registry)
    assert exact["subject"][0]["digest"] == {
        PIXELS_DIGEST: anchored["pixels"],
        "sha256": sha256_of(root / "slice.png"),
    }
    assert exact["predicate"]["verification"]["relation"] == "same pixels"

    pixels = np.asarray(Image.open(root / "slice.png")).copy()
    pixels[120:124, 60:64] = 255 - pixels[120:124, 60:64]
    Image.fromarray(pixels).save(tmp_path / "tampered.png")
    run(
        "verify", tmp_path / "tampered.png", "--ledger", root / "ledger", "--json", tmp_path / "v.json",
        "--intoto", tmp_path / "it.json", "--prov", tmp_path / "prov.json", code=1,
    )  # fmt: skip
    verdict = json.loads((tmp_path / "v.json").read_text())
    assert verdict["status"] == "tampered"
    envelope = json.loads((tmp_path / "it.json").read_text())
    assert envelope["signatures"][0]["keyid"] in {n.hex() for n in registry.members}
    statement = verify_statement(envelope, registry)
    validate_with_in_toto_attestation(statement)
    assert statement["predicateType"] == VERIFICATION_PREDICATE
    assert statement["subject"][0]["digest"] == {
        PIXELS_DIGEST: verdict["pixels"],
        "sha256": sha256_of(tmp_path / "tampered.png"),
    }
    check = statement["predicate"]["verification"]
    assert check["relation"] == "changed from" and check["recordPixels"] == anchored["pixels"]
    assert check["differingShards"] == verdict["differing_shards"]
    doc = json.loads((tmp_path / "prov.json").read_text())
    mine = f"pixels:{verdict['pixels']}"
    assert doc["entity"][mine]["prosima:fileSha256"] == sha256_of(tmp_path / "tampered.png")
    derived = [r for r in doc["wasDerivedFrom"].values() if r["prov:generatedEntity"] == mine]
    assert [(r["prov:usedEntity"], r["prosima:relation"]) for r in derived] == [
        (f"pixels:{anchored['pixels']}", "changed from")
    ]
    assert "tampered.png" not in (tmp_path / "prov.json").read_text() + (tmp_path / "it.json").read_text()


def test_restore_intoto_names_the_written_file_and_c2pa_is_an_edit(cli_world, tmp_path, helpers):
    root, run, anchored, registry = cli_world
    noisy = helpers.write_noisy(tmp_path / "noisy.png", root / "slice.png")
    out = tmp_path / "restored.png"
    args = ["--ledger", root / "ledger", "--record", anchored["tx"], "--json", tmp_path / "r.json"]
    run("restore", noisy, "--out", out, *args, "--intoto", tmp_path / "it.json")
    done = json.loads((tmp_path / "r.json").read_text())
    statement = verify_statement((tmp_path / "it.json").read_text(), registry)
    validate_with_in_toto_attestation(statement)
    assert statement["subject"][0]["digest"] == {
        PIXELS_DIGEST: done["record"]["output_pixels"],
        "sha256": sha256_of(out),
    }


def test_restore_c2pa_is_an_edit_dated_by_the_ledger(cli_world, tmp_path, helpers):
    pytest.importorskip("c2pa")
    from prosima.provenance.exports import read_c2pa

    root, run, anchored, registry = cli_world
    noisy = helpers.write_noisy(tmp_path / "noisy.png", root / "slice.png")
    signed = tmp_path / "signed.png"
    run(
        "restore", noisy, "--out", signed, "--ledger", root / "ledger", "--record", anchored["tx"],
        "--c2pa", tmp_path / "certs", "--intoto", tmp_path / "s.json",
    )  # fmt: skip
    store = read_c2pa(signed, tmp_path / "certs")
    assert store["validation_state"] == "Trusted"
    manifest = store["manifests"][store["active_manifest"]]
    actions = next(a for a in manifest["assertions"] if a["label"].startswith("c2pa.actions"))["data"]
    assert [a["action"] for a in actions["actions"]] == ["c2pa.opened", "c2pa.edited"]
    assert actions["actions"][1]["digitalSourceType"] == IPTC_SOURCE + RESTORATION_SOURCE_TYPE
    assert [i["relationship"] for i in manifest["ingredients"]] == ["parentOf"]
    embedded = next(a["data"] for a in manifest["assertions"] if a["label"] == C2PA_LABEL)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    when = dt.datetime.fromisoformat(actions["actions"][1]["when"].replace("Z", "+00:00"))
    assert when == epoch + dt.timedelta(microseconds=embedded["predicate"]["restorationTx"]["time_us"])
    after = verify_statement((tmp_path / "s.json").read_text(), registry)
    assert after["subject"][0]["digest"]["sha256"] == sha256_of(signed)  # the file as signed
    assert after["predicate"]["restoration"] == embedded["predicate"]["restoration"]
