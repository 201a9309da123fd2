"""Protocol 1 on NVIDIA FLARE's simulator: a tiny federation of two sites for two rounds anchors two
model versions, each a checkpoint that ``prosima models verify`` finds on the ledger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prosima.cli import app
from prosima.ledger.log.directory import Ledger
from prosima.ledger.log.transaction import TxKind
from prosima.models.checkpoint import load_model, state_digest
from prosima.models.config import ConfigError, load_config

pytest.importorskip("nvflare", reason="needs NVIDIA FLARE: pip install 'prosima[fl]'")

from prosima.federated.job import plan_sites, run_federated

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "federated_tiny.yaml"
runner = CliRunner()


def test_two_sites_two_rounds_anchor_two_versions(tmp_path):
    with Ledger.init(tmp_path / "ledger", nodes=4):
        pass
    cfg = load_config(CONFIG)
    summary = run_federated(cfg, tmp_path / "ledger", out_dir=tmp_path / "run")
    rounds = summary["rounds"]
    assert [r["round"] for r in rounds] == [0, 1]
    assert [s["name"] for s in rounds[0]["sites"]] == ["site-1", "site-2"]
    assert {s["seed"] for r in rounds for s in r["sites"]} == {1000, 1001, 2000, 2001}  # per site and round
    assert rounds[0]["digest"] != rounds[1]["digest"]
    for r in rounds:
        model, payload = load_model(tmp_path / "run" / r["weights"])
        assert state_digest(model.state_dict()) == r["digest"] and payload["round"] == r["round"]
        assert r["validation"]["val_psnr"] > 10
    with Ledger.open(tmp_path / "ledger") as ledger:
        txs = [tx for h in range(ledger.store.height + 1) for tx in ledger.store.block(h).txs]
    assert [tx.kind for tx in txs] == [TxKind.MODEL_VERSION] * 2
    run_info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run_info["engine"] == "nvflare simulator" and run_info["rounds"] == 2
    verdict = tmp_path / "v.json"
    weights = tmp_path / "run" / "round-001.pt"
    args = ["models", "verify", str(weights), "--ledger", str(tmp_path / "ledger"), "--json", str(verdict)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    record = json.loads(verdict.read_text())["records"][0]["version"]
    assert record["round"] == 1 and record["parent"] == rounds[0]["digest"]
    assert record["metrics"]["val_psnr"] == pytest.approx(rounds[1]["validation"]["val_psnr"])
    with pytest.raises(ConfigError, match="already holds a federated run"):
        run_federated(cfg, tmp_path / "ledger", out_dir=tmp_path / "run")


def test_sites_default_to_one_per_training_subject():
    cfg = load_config(None, ["data.root=/data", "data.train_subjects=[A, B]", "data.val_subjects=[C]",
                             "variant=full"])  # fmt: skip
    assert [(s.name, s.subjects) for s in plan_sites(cfg)] == [("site-1", ["A"]), ("site-2", ["B"])]


@pytest.mark.parametrize(
    ("sites", "message"),
    [
        ("[{name: a, subjects: [A]}, {name: a, subjects: [B]}]", "site names must differ"),
        ("[{name: a, subjects: [A]}, {name: b, subjects: [A]}]", "held by both a and b"),
        ("[{name: a, subjects: [C]}]", "a validation subject"),
        ("[{name: a, subjects: []}]", "holds no subjects"),
    ],
)
def test_bad_site_plans_are_refused(sites, message):
    with pytest.raises(ConfigError, match=message):
        load_config(
            None, ["data.root=/data", "data.val_subjects=[C]", "variant=full", f"federated.sites={sites}"]
        )


def test_encoder_federation_is_refused(tmp_path):
    cfg = load_config(None, ["task=encoder"])
    with pytest.raises(ConfigError, match="trains the restoration generator"):
        run_federated(cfg, tmp_path / "ledger")
