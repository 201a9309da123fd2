import json

import pytest

from prosima.bench.denoise import run_denoise_bench


def test_bench_on_embedded_default_writes_json_and_figure(tmp_path):
    out = run_denoise_bench(
        None, ["noisy", "tv"], [0.05, 0.1], max_slices=2, json_path=tmp_path / "r.json", progress=False
    )
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["results"] == out["results"]
    assert (tmp_path / "r.png").stat().st_size > 10_000
    rows = {(r["method"], r["sigma"]): r for r in saved["results"]}
    assert set(rows) == {("noisy", 0.05), ("tv", 0.05), ("noisy", 0.1), ("tv", 0.1)}
    for r in rows.values():
        assert r["n_slices"] == 2
        for key in ("psnr", "ssim", "psnr_brain", "seconds_per_image"):
            assert key in r and f"{key}_std" in r
    # unclipped Gaussian noise: the noisy input scores 20 log10(1 / sigma) over the whole slice
    assert rows[("noisy", 0.05)]["psnr"] == pytest.approx(26.02, abs=0.1)
    assert rows[("tv", 0.1)]["psnr"] > rows[("noisy", 0.1)]["psnr"] + 5
    assert rows[("tv", 0.05)]["psnr_brain"] < rows[("tv", 0.05)]["psnr"]
    assert len(saved["slices"]) == 2 and saved["seed"] == 0


def test_bench_is_reproducible(tmp_path):
    a = run_denoise_bench(None, ["noisy"], [0.05], max_slices=1, progress=False)
    b = run_denoise_bench(None, ["noisy"], [0.05], max_slices=1, progress=False)
    assert a["results"][0]["psnr"] == b["results"][0]["psnr"]
