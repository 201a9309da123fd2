"""Model versions on the ledger: records round-trip, anchoring and lookup, and ``prosima models
verify`` says anchored (exit 0) only for the exact anchored weights."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from prosima.cli import app
from prosima.fusion.checkpoint import save_fusion, weights_to_bytes
from prosima.fusion.network import FusionConfig, FusionNet
from prosima.ledger.log.directory import Entry, Ledger
from prosima.ledger.log.encoding import encode
from prosima.ledger.log.transaction import TxKind
from prosima.models.artifact import CHECKPOINT_V1_FORMAT
from prosima.models.checkpoint import load_checkpoint, save_checkpoint, state_digest
from prosima.models.unet import HybridUNet
from prosima.provenance.model_versions import (
    ModelVersion,
    ModelVersionError,
    anchor_model,
    anchor_version,
    find_versions,
    weights_digest,
)

runner = CliRunner()


def _weights(path, seed=0):
    torch.manual_seed(seed)
    model = HybridUNet([4, 8], 1, 0, 1, 2, 0, 4, True)
    save_checkpoint(
        path, {"kind": "generator", "spec": model.spec.to_dict(), "model_state": model.state_dict()}
    )
    return state_digest(model.state_dict())


def _version(digest, round_number=0):
    return ModelVersion(
        digest=digest,
        name="g",
        kind="generator",
        round=round_number,
        rounds=2,
        sites=[{"name": "site-1", "subjects": ["A"], "n_slices": 3}],
        metrics={"val_psnr": 31.25, "val_ssim": 0.1 + 0.2},
        config_digest="ab" * 32,
        seeds={"init": 0},
    )


def test_record_round_trips_through_canonical_cbor():
    v = _version("0f" * 32)
    again = ModelVersion.from_payload(v.payload())
    assert again == v and again.metrics["val_ssim"] == 0.1 + 0.2  # floats survive exactly
    assert v.payload() == again.payload()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\xff\x00", "not a model-version record"),
        (encode({"format": "other"}), "not a prosima.model-version.v1 record"),
        (encode({"format": "prosima.model-version.v1", "digest": "00" * 32}), "malformed"),
        (encode({"format": "prosima.model-version.v1", "digest": "zz", "name": "g", "kind": "g"}), "hex"),
    ],
)
def test_bad_records_are_refused_by_name(payload, message):
    with pytest.raises(ModelVersionError, match=message):
        ModelVersion.from_payload(payload)


def test_anchor_then_find_with_a_checked_proof(tmp_path):
    digest = _weights(tmp_path / "w.pt")
    assert weights_digest(tmp_path / "w.pt")[0] == digest
    with Ledger.init(tmp_path / "ledger", nodes=4) as ledger:
        ledger.append([Entry(b"not a model", TxKind.DATA, bytes.fromhex(digest))])  # same key, other kind
        first = anchor_version(ledger, _version(digest, 0))
        second = anchor_version(ledger, _version(digest, 1))
        found = find_versions(ledger, digest)
        assert [f["tx"] for f in found] == [first["tx"], second["tx"]]
        assert all(f["proof_ok"] and not f["proof_problems"] for f in found)
        assert [f["version"]["round"] for f in found] == [0, 1]
        assert find_versions(ledger, "11" * 32) == []


def test_models_verify_cli(tmp_path):
    digest = _weights(tmp_path / "w.pt")
    _weights(tmp_path / "other.pt", seed=1)
    with Ledger.init(tmp_path / "ledger", nodes=4) as ledger:
        anchor_version(ledger, _version(digest, 1))
    ok = runner.invoke(app, ["models", "verify", str(tmp_path / "w.pt"), "--ledger", str(tmp_path / "ledger"),
                             "--json", str(tmp_path / "v.json")])  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert "ANCHORED: g" in ok.stdout and "round 1 of 2" in ok.stdout and "site-1" in ok.stdout
    verdict = json.loads((tmp_path / "v.json").read_text())
    assert verdict["anchored"] and verdict["digest"] == digest
    other = runner.invoke(
        app, ["models", "verify", str(tmp_path / "other.pt"), "--ledger", str(tmp_path / "ledger")]
    )
    assert other.exit_code == 1 and "NOT ANCHORED" in other.stdout
    (tmp_path / "junk.pt").write_text("not weights")
    junk = runner.invoke(
        app, ["models", "verify", str(tmp_path / "junk.pt"), "--ledger", str(tmp_path / "ledger")]
    )
    assert junk.exit_code == 2 and "not a readable checkpoint" in junk.output
    nowhere = runner.invoke(
        app, ["models", "verify", str(tmp_path / "w.pt"), "--ledger", str(tmp_path / "none")]
    )
    assert nowhere.exit_code == 2 and "not a ledger directory" in nowhere.output


def test_versions_anchored_from_earlier_checkpoints_still_verify(tmp_path):
    """A record anchored from a checkpoint in the format before model files (``prosima.checkpoint.v1``)
    names the same weights re-saved in the current format, so both verify against it."""
    torch.manual_seed(0)
    model = HybridUNet([4, 8], 1, 0, 1, 2, 0, 4, True)
    half = {k: v.half() for k, v in model.state_dict().items()}
    old = {"format": CHECKPOINT_V1_FORMAT, "kind": "generator", "spec": model.spec.to_dict()}
    torch.save(old | {"model_state": half, "name": "old-g"}, tmp_path / "old.pt")
    with Ledger.init(tmp_path / "ledger", nodes=4) as ledger:
        anchored = anchor_model(ledger, str(tmp_path / "old.pt"))
        assert not anchored["existing"] and anchored["name"] == "old-g"
        save_checkpoint(tmp_path / "new.pt", load_checkpoint(tmp_path / "old.pt"))
        assert weights_digest(tmp_path / "new.pt")[0] == anchored["digest"]
        assert anchor_model(ledger, str(tmp_path / "new.pt"))["existing"]
    for name in ("old.pt", "new.pt"):
        res = runner.invoke(
            app, ["models", "verify", str(tmp_path / name), "--ledger", str(tmp_path / "ledger")]
        )
        assert res.exit_code == 0 and "ANCHORED: old-g" in res.stdout, res.output


def test_fusion_and_xmark_files_anchor_by_the_same_digest(tmp_path):
    from prosima.watermark.classifier import PlainCNN, save_classifier
    from prosima.watermark.classifier import weights_digest as xmark_digest

    torch.manual_seed(1)
    net, cnn = FusionNet(FusionConfig(hidden=4)), PlainCNN(width=4)
    torch.save({"weights": weights_to_bytes(net), "info": {}}, tmp_path / "fusion-old.pt")
    save_fusion(tmp_path / "fusion.pt", net)
    save_classifier(tmp_path / "cnn.pt", cnn)
    with Ledger.init(tmp_path / "ledger", nodes=4) as ledger:
        fused = anchor_model(ledger, str(tmp_path / "fusion-old.pt"))
        assert fused["digest"] == state_digest(net.state_dict()) and not fused["existing"]
        assert anchor_model(ledger, str(tmp_path / "fusion.pt"))["existing"]
        marked = anchor_model(ledger, str(tmp_path / "cnn.pt"))
        assert marked["digest"] == xmark_digest(cnn)
        kinds = [f["version"]["kind"] for d in (fused, marked) for f in find_versions(ledger, d["digest"])]
        assert kinds == ["fusion", "xmark-classifier"]
