import json

import pytest
import torch
from typer.testing import CliRunner

from prosima.bench.restore import DEFAULT_METHODS, LEARNED, run_restore_bench
from prosima.cli import app
from prosima.imaging.validation import ImageError
from prosima.models.checkpoint import CheckpointError, save_checkpoint, state_digest
from prosima.models.encoder import SemanticEncoder
from prosima.models.unet import HybridUNet


def _save(path, model, kind, links=None):
    save_checkpoint(
        path,
        {"kind": kind, "spec": model.spec.to_dict(), "model_state": model.state_dict(), "links": links or {}},
    )


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Untrained tiny models under the benchmark's names: enough to check the plumbing, not the figures."""
    d = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    semantic = SemanticEncoder("conv", (8, 16), embed_dim=16)
    torch.manual_seed(1)
    evaluation = SemanticEncoder("residual", (8, 16), embed_dim=16)
    _save(d / "semantic-encoder.pt", semantic, "encoder")
    _save(d / "eval-encoder.pt", evaluation, "encoder")
    link = {"semantic_encoder": {"state_digest": state_digest(semantic.state_dict())}}
    for i, name in enumerate(LEARNED):
        torch.manual_seed(10 + i)
        fp_dim = 16 if name == "prosima-full" else 0
        attention = 1 if name.startswith("prosima") else 0
        g = HybridUNet(
            (8, 16, 32), attention_blocks=attention, heads=2, fingerprint_dim=fp_dim, cond_channels=8
        )
        _save(d / f"{name}.pt", g, "generator", link)
    torch.manual_seed(20)
    volume = HybridUNet(
        (8, 16, 32), attention_blocks=1, heads=2, fingerprint_dim=16, cond_channels=8, context=1
    )
    _save(d / "prosima-volume.pt", volume, "generator", link)
    return d


def test_bench_writes_denoise_shaped_json_and_a_figure(weights, tmp_path):
    out = run_restore_bench(
        None,
        DEFAULT_METHODS,
        [0.1],
        max_slices=1,
        weights=weights,
        threads=1,
        json_path=tmp_path / "r.json",
        progress=False,
    )
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["results"] == out["results"]
    assert (tmp_path / "r.png").stat().st_size > 10_000
    rows = {(r["method"], r["sigma"]): r for r in saved["results"]}
    assert set(rows) == {(m, 0.1) for m in DEFAULT_METHODS}
    for r in rows.values():
        assert r["n_slices"] == 1
        for key in ("psnr", "ssim", "cosine", "seconds_per_image", "psnr_brain"):
            assert key in r and f"{key}_std" in r
        assert -1.0 <= r["cosine"] <= 1.0
    assert rows[("bm3d", 0.1)]["psnr"] > 28.0
    assert "evaluation encoder" in saved["cosine"] and "independently" in saved["cosine"]
    assert saved["paper"]["tables_2_3"]["prosima-full"]["psnr"] == 28.2
    assert saved["fingerprint_seconds_per_image"] > 0
    assert set(saved["models"]) == set(LEARNED)


def test_bench_refuses_a_mismatched_semantic_encoder(weights, tmp_path):
    for f in weights.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    torch.manual_seed(99)
    _save(tmp_path / "semantic-encoder.pt", SemanticEncoder("conv", (8, 16), embed_dim=16), "encoder")
    with pytest.raises(CheckpointError, match="semantic encoder"):
        run_restore_bench(None, ["prosima-full"], [0.05], max_slices=1, weights=tmp_path, progress=False)
    with pytest.raises(CheckpointError, match="no weights"):
        run_restore_bench(
            None, ["unet-pixel"], [0.05], max_slices=1, weights=tmp_path / "nowhere", progress=False
        )


def test_cli_bench_restore(weights, tmp_path):
    res = CliRunner().invoke(
        app,
        [
            "bench",
            "restore",
            "--weights",
            str(weights),
            "--methods",
            "noisy,nlm,prosima-full",
            "--sigmas",
            "0.05",
            "--max-slices",
            "1",
            "--threads",
            "1",
            "--json",
            str(tmp_path / "r.json"),
        ],
    )
    assert res.exit_code == 0, res.output
    methods = {r["method"] for r in json.loads((tmp_path / "r.json").read_text())["results"]}
    assert methods == {"noisy", "nlm", "prosima-full"}
    res = CliRunner().invoke(app, ["bench", "restore", "--weights", str(weights), "--methods", "magic"])
    assert res.exit_code == 2 and "unknown methods" in res.output


def test_rician_rows_and_volume_rows_beside_the_slice_rows(weights, tmp_path):
    out = run_restore_bench(
        None,
        ["noisy", "prosima-full"],
        [0.05],
        max_slices=1,
        weights=weights,
        threads=1,
        noises=("gaussian", "rician"),
        volume_slices=3,
        volume_methods=("noisy", "prosima-full", "prosima-volume"),
        json_path=tmp_path / "r.json",
        progress=False,
    )
    rows = {(r["method"], r["noise"]): r for r in out["results"]}
    assert set(rows) == {(m, n) for m in ("noisy", "prosima-full") for n in ("gaussian", "rician")}
    # Rician noise is biased upwards: the noisy copy scores lower than with Gaussian noise
    assert rows[("noisy", "rician")]["psnr"] < rows[("noisy", "gaussian")]["psnr"]
    volumes = json.loads((tmp_path / "r.json").read_text())["volumes"]
    assert volumes["depth"] == 3 and len(volumes["blocks"]) == 1
    by_method = {r["method"]: r for r in volumes["results"]}
    assert set(by_method) == {"noisy", "prosima-full", "prosima-volume"}
    assert abs(by_method["noisy"]["psnr"] - 26.0) < 0.2
    assert volumes["models"]["prosima-volume"]["context"] == 1
    with pytest.raises(ImageError, match="unknown noise"):
        run_restore_bench(None, ["noisy"], [0.05], max_slices=1, weights=weights, noises=("poisson",))
