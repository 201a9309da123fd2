import json

import numpy as np
import pytest
import torch

from prosima.models.checkpoint import CheckpointError, load_model, save_checkpoint, state_digest
from prosima.models.encoder import SemanticEncoder
from prosima.models.model_card import read_model_card, sha256_file
from prosima.models.pretrained import (
    WEIGHTS_DIR,
    PretrainedError,
    available_pretrained,
    export_pretrained,
    load_model_ref,
    load_pretrained,
    verify_pretrained,
)


def _checkpoint(path):
    torch.manual_seed(0)
    enc = SemanticEncoder("conv", (8, 16), embed_dim=12)
    payload = {
        "kind": "encoder",
        "spec": enc.spec.to_dict(),
        "model_state": enc.state_dict(),
        "step": 5,
        "elapsed_s": 1.5,
        "config": {"threads": 1, "data": {"root": None, "contrasts": ["t1n"]}},
        "split": {"train": ["a"], "val": ["b"]},
        "best": {"val_loss": 1.0},
    }
    save_checkpoint(path, payload)
    return enc


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_export_then_load_checks_sha256(tmp_path, dtype):
    enc = _checkpoint(tmp_path / "ck.pt")
    card = export_pretrained(tmp_path / "ck.pt", "enc", tmp_path / "w", dtype=dtype)
    assert card.sha256 == sha256_file(tmp_path / "w" / "enc.pt")
    assert read_model_card(tmp_path / "w" / "enc.card.json") == card
    assert (tmp_path / "w" / "enc.md").read_text().count(card.sha256) == 1
    assert card.split == {"train": ["a"], "val": ["b"]} and card.training["steps"] == 5
    assert available_pretrained(tmp_path / "w") == ["enc"]
    loaded = load_pretrained("enc", tmp_path / "w")
    x = torch.rand(2, 1, 16, 16)
    tol = 1e-2 if dtype == "float16" else 0.0
    assert torch.allclose(loaded(x), enc.eval()(x), atol=tol)
    assert state_digest(loaded.state_dict()) == card.state_digest


def test_tampered_or_missing_weights_are_refused(tmp_path):
    _checkpoint(tmp_path / "ck.pt")
    export_pretrained(tmp_path / "ck.pt", "enc", tmp_path / "w")
    with pytest.raises(PretrainedError, match="no shipped weights named 'other'"):
        load_pretrained("other", tmp_path / "w")
    raw = bytearray((tmp_path / "w" / "enc.pt").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (tmp_path / "w" / "enc.pt").write_bytes(bytes(raw))
    with pytest.raises(PretrainedError, match="SHA-256"):
        load_pretrained("enc", tmp_path / "w")
    (tmp_path / "w" / "enc.pt").unlink()
    with pytest.raises(PretrainedError, match="missing"):
        verify_pretrained("enc", tmp_path / "w")


def test_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_model(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="readable"):
        load_model(tmp_path / "junk.pt")
    _checkpoint(tmp_path / "ck.pt")
    with pytest.raises(CheckpointError, match="not a generator"):
        load_model_ref(str(tmp_path / "ck.pt"), "generator")


@pytest.mark.parametrize("name", available_pretrained() or ["(none shipped yet)"])
def test_shipped_weights_load_and_match_their_card(name):
    if name not in available_pretrained():
        pytest.skip("no weights shipped in prosima/models/weights yet")
    path, card = verify_pretrained(name)
    assert sha256_file(path) == card.sha256
    model = load_pretrained(name)
    assert state_digest(model.state_dict()) == card.state_digest
    assert json.loads((WEIGHTS_DIR / f"{name}.card.json").read_text())["sha256"] == card.sha256
    assert np.isfinite(card.parameters)


@pytest.mark.skipif(
    not {"prosima-full", "semantic-encoder"} <= set(available_pretrained()),
    reason="the full model and its semantic encoder are not shipped",
)
def test_shipped_full_model_restores_a_noisy_slice_better_than_the_input():
    """The shipped generator, conditioned on the shipped encoder's fingerprint of the clean slice,
    beats the noisy input on an unseen brain (the embedded MNI152 template), at batch 1."""
    from prosima.imaging.corruption import gaussian_noise
    from prosima.imaging.datasets import embedded_default_slices
    from prosima.imaging.metrics import psnr
    from prosima.models.fingerprint import compute_fingerprints
    from prosima.models.inference import restore

    clean = embedded_default_slices(max_slices_per_volume=3)[1].image
    noisy = gaussian_noise(clean, 0.1, seed=0).image
    encoder, generator = load_pretrained("semantic-encoder"), load_pretrained("prosima-full")
    restored = restore(generator, noisy, compute_fingerprints(encoder, clean, 16))
    assert restored.shape == clean.shape and np.isfinite(restored).all()
    assert psnr(clean, restored, 1.0) > psnr(clean, noisy, 1.0) + 2.0


def test_export_counts_the_shipped_steps_it_started_from_and_keeps_the_curve(tmp_path):
    from typer.testing import CliRunner

    from prosima.cli import app

    weights = tmp_path / "w"
    _checkpoint(tmp_path / "first.pt")
    first = export_pretrained(tmp_path / "first.pt", "enc", weights)
    assert first.training["cumulative_steps"] == 5 and first.training["curve"] == []
    run = tmp_path / "run"
    run.mkdir()
    rows = [{"type": "val", "step": s, "val_psnr@0.05": 30.0 + s, "val_loss": 1.0} for s in (0, 2, 4, 2, 6)]
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    payload = load_checkpoint_payload(tmp_path / "first.pt")
    payload |= {
        "step": 4,
        "elapsed_s": 2.0,
        "links": {"init": {"ref": "pretrained:enc", "state_digest": first.state_digest}},
    }
    save_checkpoint(run / "best.pt", payload)
    card = export_pretrained(run / "best.pt", "enc-run", weights)
    t = card.training
    assert t["steps"] == 4 and t["cumulative_steps"] == 9 and t["cumulative_seconds"] == 3.5
    # steps beyond the exported one are left out; a repeated step keeps its last row
    assert [(r["step"], r["val_psnr@0.05"]) for r in t["curve"]] == [(7, 32.0), (9, 34.0)]
    assert "## Learning curve" in (weights / "enc-run.md").read_text()
    # an init that is not the card it names (other weights) counts nothing before it
    payload["links"]["init"]["state_digest"] = "0" * 64
    save_checkpoint(run / "other.pt", payload)
    assert export_pretrained(run / "other.pt", "enc2", weights).training["cumulative_steps"] == 4
    # a restart from that run's checkpoint counts everything before it, and its curve follows on
    later = tmp_path / "later"
    later.mkdir()
    (later / "metrics.jsonl").write_text(json.dumps({"type": "val", "step": 3, "val_psnr@0.05": 40.0}) + "\n")
    source = load_checkpoint_payload(run / "best.pt")
    digest = state_digest(source["model_state"])
    save_checkpoint(
        later / "best.pt",
        source
        | {
            "step": 3,
            "elapsed_s": 1.0,
            "links": {"init": {"ref": str(run / "best.pt"), "state_digest": digest}},
        },
    )
    chained = export_pretrained(later / "best.pt", "enc3", weights).training
    assert chained["cumulative_steps"] == 12 and chained["cumulative_seconds"] == 4.5
    assert [r["step"] for r in chained["curve"]] == [7, 9, 12]
    res = CliRunner().invoke(app, ["models", "curve", str(run), "--png", str(tmp_path / "c.png")])
    assert res.exit_code == 0, res.output
    assert (
        "run: 4 validations, last at step 6 (0.05: 36.00 dB)" in res.output and (tmp_path / "c.png").is_file()
    )
    res = CliRunner().invoke(
        app, ["models", "curve", str(tmp_path / "nothing"), "--png", str(tmp_path / "d.png")]
    )
    assert res.exit_code == 2 and "no validation rows" in res.output


def load_checkpoint_payload(path):
    from prosima.models.checkpoint import load_checkpoint

    return load_checkpoint(path)
