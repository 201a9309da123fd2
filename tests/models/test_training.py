import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from prosima.cli import app
from prosima.models.checkpoint import load_checkpoint, load_model
from prosima.models.config import ConfigError, load_config
from prosima.models.training import local_train, read_metrics, train

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def tiny(tmp_path, *extra):
    return load_config(CONFIGS / "tiny.yaml", [f"out_dir={tmp_path}", *extra])


def test_tiny_run_lowers_the_loss_and_writes_everything(tmp_path):
    out = tmp_path / "run"
    summary = train(tiny(out), progress=False)
    rows = read_metrics(out)
    losses = [r["total"] for r in rows if r["type"] == "train"]
    vals = [r for r in rows if r["type"] == "val"]
    assert losses[-1] < losses[0]
    assert [v["step"] for v in vals] == [0, 30, 60] and vals[-1]["val_loss"] < vals[0]["val_loss"]
    assert summary["steps"] == 60 and summary["best"]["val_psnr"] >= vals[0]["val_psnr"]
    for name in ("checkpoint.pt", "best.pt", "config.yaml", "run.json", "metrics.jsonl"):
        assert (out / name).is_file(), name
    run = json.loads((out / "run.json").read_text())
    assert run["seeds"]["init"] == 0 and run["variant"] == "full"
    assert load_config(out / "config.yaml") == tiny(out)
    model, payload = load_model(out / "checkpoint.pt", "generator")
    assert payload["step"] == 60 and model.conditioned
    assert payload["links"]["semantic_encoder"]["state_digest"]


def test_resume_reproduces_the_uninterrupted_run(tmp_path):
    extra = ["train.steps=8", "train.val_every=4", "train.checkpoint_every=4", "train.log_every=2"]
    train(tiny(tmp_path / "straight", *extra), progress=False)
    cfg = tiny(tmp_path / "split", *extra)
    train(cfg, progress=False, stop_after=3)
    with pytest.raises(ConfigError, match="--resume"):
        train(cfg, progress=False)
    train(cfg, progress=False, resume=True)
    a = load_checkpoint(tmp_path / "straight" / "checkpoint.pt")["model_state"]
    b = load_checkpoint(tmp_path / "split" / "checkpoint.pt")["model_state"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    changed = tiny(tmp_path / "split", *extra, "loss.default_lambda1=0.5")
    with pytest.raises(ConfigError, match="another config"):
        train(changed, progress=False, resume=True)


def test_local_train_is_a_pure_step_for_a_federated_engine(tmp_path):
    cfg = tiny(tmp_path)
    first = local_train(cfg, None, ["MNI152"], steps=3, seed=5)
    assert first.steps == 3 and {"total", "pixel", "n_slices"} <= set(first.metrics)
    again = local_train(cfg, None, ["MNI152"], steps=3, seed=5)
    assert all(torch.equal(first.state[k], again.state[k]) for k in first.state)
    second = local_train(cfg, first.state, ["MNI152"], steps=2, seed=6, optimizer_state=first.optimizer_state)
    assert any(not torch.equal(first.state[k], second.state[k]) for k in first.state)
    with pytest.raises(ValueError, match="one subject"):
        local_train(cfg, None, ["someone-else"], steps=1)


def test_encoder_task_trains_with_both_objectives(tmp_path):
    common = [
        "task=encoder",
        "variant=",
        "train.steps=4",
        "train.batch_size=8",
        "train.val_every=2",
        "encoder.window=32",
        "encoder.jitter=2",
        "data.val_slices=2",
    ]
    for extra in (
        ["encoder.objective=contrastive+reconstruction", "encoder.views=noise"],
        ["encoder.kind=residual", "encoder.objective=contrastive", "encoder.views=geometric"],
    ):
        out = tmp_path / extra[-1].split("=")[1]
        summary = train(tiny(out, *common, *extra), progress=False)
        assert summary["last_validation"]["val_loss"] > 0
        assert 0.0 <= summary["last_validation"]["val_top1"] <= 1.0
        model, _ = load_model(out / "best.pt", "encoder")
        assert model(torch.rand(1, 1, 32, 32)).shape == (1, 32)


def test_cli_trains_and_exports_weights_with_a_card(tmp_path):
    res = CliRunner().invoke(
        app,
        [
            "train",
            "--config",
            str(CONFIGS / "tiny.yaml"),
            "--out",
            str(tmp_path / "run"),
            "--steps",
            "4",
            "--set",
            "train.val_every=2",
            "--export",
            "tiny-test",
            "--weights-dir",
            str(tmp_path / "w"),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output[res.output.index("{") :])
    assert summary["steps"] == 4 and summary["exported"]["name"] == "tiny-test"
    assert (tmp_path / "w" / "tiny-test.pt").is_file() and (tmp_path / "w" / "tiny-test.card.json").is_file()
    res = CliRunner().invoke(app, ["train", "--config", str(CONFIGS / "tiny.yaml"), "--set", "variant=best"])
    assert res.exit_code == 2 and "unknown variant" in res.output


def test_a_25d_run_reads_neighbours_and_starts_from_2d_weights(tmp_path):
    from prosima.models.data import load_bank, noisy_copies
    from prosima.models.training import Session

    flat = train(tiny(tmp_path / "flat", "train.steps=4", "train.val_every=4"), progress=False)
    cfg = tiny(tmp_path / "deep", "generator.context=1", f"init={flat['checkpoint']}", "train.steps=2")
    session = Session(cfg)
    assert session.model.spec.context == 1 and session.links["init"]["ref"] == flat["checkpoint"]
    assert session.links["init"]["cumulative_steps"] == 4  # what the init carried, recorded at the start
    batch = session.sampler.next()
    assert batch.noisy.shape[1] == 3 and batch.clean.shape[1] == 1
    # the clean target is the middle slice of the stack the noisy input was made from
    assert float((batch.noisy[:, 1:2] - batch.clean).abs().mean()) < float(
        (batch.noisy[:, 0:1] - batch.clean).abs().mean()
    )
    v = session.validation
    assert v is not None and v["noisy"].shape[2] == 3
    flat_bank = load_bank(None, ["MNI152"], max_slices_per_volume=24).subset(2)
    deep_bank = load_bank(None, ["MNI152"], max_slices_per_volume=24, context=1).subset(2)
    np.testing.assert_array_equal(deep_bank.stacks[:, 1], flat_bank.images)
    assert noisy_copies(flat_bank, [0.1], 5).shape == (1, 2, 1, 256, 256)
    summary = train(cfg, progress=False)
    assert summary["steps"] == 2


def test_resume_accepts_a_checkpoint_from_before_a_config_field(tmp_path):
    from prosima.models.checkpoint import load_checkpoint, save_checkpoint

    cfg = tiny(tmp_path, "train.steps=4", "train.val_every=2")
    train(cfg, progress=False, stop_after=2)
    path = tmp_path / "checkpoint.pt"
    payload = load_checkpoint(path)
    del payload["config"]["generator"]["context"], payload["config"]["train"]["precision"]
    save_checkpoint(path, payload)
    assert train(cfg, resume=True, progress=False)["steps"] == 4


def test_bf16_precision_is_a_choice_and_unknown_ones_are_refused(tmp_path):
    from prosima.models.training import Session

    session = Session(
        tiny(tmp_path, "train.precision=bf16", "train.channels_last=true"), with_validation=False
    )
    assert np.isfinite(session.train_step(0)["total"])
    with pytest.raises(ConfigError, match=r"train\.precision must be one of"):
        tiny(tmp_path, "train.precision=fp8")
