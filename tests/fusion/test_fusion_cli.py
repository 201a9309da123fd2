"""``prosima fuse`` and ``prosima bench fusion`` on small synthetic pairs in the Harvard layout."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from prosima.cli import app

runner = CliRunner()


def _save(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def _gray(seed: int, size: int = 32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    blob = (np.hypot(yy - rng.integers(8, 24), xx - rng.integers(8, 24)) < 8) * 180
    return np.clip(blob + rng.integers(0, 40, (size, size)), 0, 255).astype(np.uint8)


def _colour(seed: int, size: int = 32) -> np.ndarray:
    g = _gray(seed, size).astype(np.int32)
    return np.stack([g, g // 2, 255 - g], -1).astype(np.uint8)


@pytest.fixture
def harvard(tmp_path):
    root = tmp_path / "harvard"
    for i in range(6):
        _save(root / "CT-MRI" / "MRI" / f"{i}.png", _gray(i))
        _save(root / "CT-MRI" / "CT" / f"{i}.png", _gray(100 + i))
        for folder, name in (("PET-MRI", "PET"), ("SPECT-MRI", "SPECT")):
            _save(root / folder / "MRI" / f"{i}.png", _gray(i))
            _save(root / folder / name / f"{i}.png", _colour(200 + i))
    return root


def test_fuse_gray_and_colour(harvard, tmp_path):
    out = tmp_path / "ct.png"
    res = runner.invoke(
        app, ["fuse", str(harvard / "CT-MRI/MRI/0.png"), str(harvard / "CT-MRI/CT/0.png"), "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert Image.open(out).mode == "L" and Image.open(out).size == (32, 32)
    out2 = tmp_path / "pet.png"
    res = runner.invoke(
        app,
        ["fuse", str(harvard / "PET-MRI/MRI/0.png"), str(harvard / "PET-MRI/PET/0.png"), "--out", str(out2)],
    )
    assert res.exit_code == 0, res.output
    assert Image.open(out2).mode == "RGB"


def test_fuse_bad_inputs_exit_2_and_write_nothing(harvard, tmp_path):
    mri = harvard / "CT-MRI/MRI/0.png"
    big = _save(tmp_path / "big.png", _gray(1, 40))
    cases = [
        ([str(mri), str(big)], "differs in size"),
        ([str(harvard / "PET-MRI/PET/0.png"), str(mri)], "MRI must be grayscale"),
        ([str(mri), str(tmp_path / "absent.png")], "no such file"),
    ]
    for args, message in cases:
        out = tmp_path / "never.png"
        res = runner.invoke(app, ["fuse", *args, "--out", str(out)])
        assert res.exit_code == 2 and message in res.output, res.output
        assert not out.exists()
    exists = _save(tmp_path / "exists.png", _gray(3))
    res = runner.invoke(app, ["fuse", str(mri), str(mri), "--out", str(exists)])
    assert res.exit_code == 2 and "exists" in res.output


def test_bench_fusion_without_he(harvard, tmp_path):
    out = tmp_path / "bench.json"
    res = runner.invoke(
        app,
        [
            "bench",
            "fusion",
            "--data",
            str(harvard),
            "--he-images",
            "0",
            "--he-train-steps",
            "0",
            "--json",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert set(doc["pairs"]) == {"ct", "pet", "spect"}
    methods = doc["pairs"]["ct"]["methods"]
    assert {"ours", "average", "maximum", "laplacian_pyramid", "wavelet"} <= set(methods)
    assert all(np.isfinite(v) for m in methods.values() for v in m.values())
    assert "closer_to_cddfuse_mri_ct" in doc["aims"]
    assert out.with_suffix(".png").is_file()
