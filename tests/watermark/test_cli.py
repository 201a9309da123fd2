"""``prosima watermark``: train, embed (key committed to a ledger), verify (exit 0 only on a claim);
malformed keys and model files are errors (exit 2) naming the problem."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from prosima.cli.watermark import app as watermark_app
from prosima.ledger.log.directory import Ledger
from prosima.watermark.classifier import TrainConfig, save_classifier, train_classifier
from prosima.watermark.data import load_covid_xray, load_pneumoniamnist

runner = CliRunner()


@pytest.fixture(scope="module")
def npz(tmp_path_factory, toy):
    data = toy(300, 28, seed=5)
    path = tmp_path_factory.mktemp("data") / "toy.npz"
    u8 = np.rint(data.images * 255).astype(np.uint8)
    np.savez(
        path,
        train_images=u8[:200],
        train_labels=data.labels[:200, None],
        val_images=u8[200:220],
        val_labels=data.labels[200:220, None],
        test_images=u8[220:],
        test_labels=data.labels[220:, None],
    )
    return path


def _suspect(folder, seed, path):
    release = load_covid_xray(folder, size=None)
    model = train_classifier(
        release.images, release.labels, "cnn", TrainConfig(epochs=10, lr=5e-3, batch=32, seed=seed), width=8
    )
    return save_classifier(path, model)


def test_badnets_embed_commit_and_verify(npz, tmp_path):
    Ledger.init(tmp_path / "ledger", nodes=4).close()
    out = tmp_path / "bn"
    res = runner.invoke(
        watermark_app,
        [
            "embed",
            str(npz),
            "--out",
            str(out),
            "--method",
            "badnets",
            "--target",
            "pneumonia",
            "--fraction",
            "1.0",
            "--queries",
            "40",
            "--ledger",
            str(tmp_path / "ledger"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "key committed" in res.output
    key = out / "key" / "key.json"
    body = json.loads(key.read_text())
    assert body["method"] == "badnets" and body["target"] == 1 and len(body["marked"]) > 50
    release = load_covid_xray(out / "release", size=None)
    truth = load_pneumoniamnist(npz)
    assert release.classes == truth.classes  # release/<class>/ keeps the class order
    marked = _suspect(out / "release", 0, tmp_path / "marked.pt")
    clean_data = truth.subset(np.flatnonzero([i.startswith("train") for i in truth.ids]))
    clean = train_classifier(
        clean_data.images,
        clean_data.labels,
        "cnn",
        TrainConfig(epochs=10, lr=5e-3, batch=32, seed=1),
        width=8,
    )
    save_classifier(tmp_path / "clean.pt", clean)
    args = ["verify", "--key", str(key), "--ledger", str(tmp_path / "ledger")]
    yes = runner.invoke(watermark_app, [*args, "--model", str(marked), "--json", str(tmp_path / "v.json")])
    assert yes.exit_code == 0, yes.output
    assert "OWNERSHIP CLAIMED" in yes.output and "committed at height" in yes.output
    verdict = json.loads((tmp_path / "v.json").read_text())
    assert verdict["claim"] and verdict["ledger"]["committed"] and verdict["wsr"] > 0.5
    no = runner.invoke(watermark_app, [*args, "--model", str(tmp_path / "clean.pt")])
    assert no.exit_code == 1 and "NO CLAIM" in no.output
    Ledger.init(tmp_path / "other", nodes=4).close()
    elsewhere = runner.invoke(
        watermark_app,
        ["verify", "--key", str(key), "--ledger", str(tmp_path / "other"), "--model", str(marked)],
    )
    assert elsewhere.exit_code == 1 and "NOT committed" in elsewhere.output

    bad = dict(body, target="one")
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    res = runner.invoke(
        watermark_app, ["verify", "--key", str(tmp_path / "bad.json"), "--model", str(marked)]
    )
    assert res.exit_code == 2 and "key field 'target'" in res.output
    (tmp_path / "junk.pt").write_text("not a model")
    res = runner.invoke(watermark_app, ["verify", "--key", str(key), "--model", str(tmp_path / "junk.pt")])
    assert res.exit_code == 2 and "not a readable model file" in res.output


def test_xmark_train_embed_verify(npz, tmp_path):
    marker = tmp_path / "marker"
    res = runner.invoke(
        watermark_app,
        [
            "train",
            str(npz),
            "--out",
            str(marker),
            "--target",
            "normal",
            "--epochs",
            "1",
            "--surrogate-epochs",
            "1",
            "--eps",
            "8",
        ],
    )
    assert res.exit_code == 0, res.output
    info = json.loads((marker / "train.json").read_text())
    assert info["target"] == 0 and info["generator"]["config"]["eps"] == 8 / 255
    out = tmp_path / "xm"
    res = runner.invoke(
        watermark_app,
        [
            "embed",
            str(npz),
            "--out",
            str(out),
            "--marker",
            str(marker),
            "--fraction",
            "0.2",
            "--queries",
            "20",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "not committed" in res.output
    body = json.loads((out / "key" / "key.json").read_text())
    assert (
        body["method"] == "xmark"
        and body["marker"]["eps"] == 8 / 255
        and set(body["files"]) == {"generator", "surrogate", "queries"}
    )
    again = runner.invoke(watermark_app, ["embed", str(npz), "--out", str(out), "--marker", str(marker)])
    assert again.exit_code == 2 and "already there" in again.output
    res = runner.invoke(
        watermark_app,
        [
            "verify",
            "--key",
            str(out / "key" / "key.json"),
            "--model",
            str(marker / "surrogate.pt"),
            "--label-only",
        ],
    )
    assert res.exit_code in (0, 1) and "wilcoxon" in res.output
    (out / "key" / "generator.pt").write_bytes(b"tampered")
    res = runner.invoke(
        watermark_app,
        ["verify", "--key", str(out / "key" / "key.json"), "--model", str(marker / "surrogate.pt")],
    )
    assert res.exit_code == 2 and "files.generator" in res.output
