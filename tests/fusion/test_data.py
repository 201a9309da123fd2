"""Loading pairs: the Harvard layout, colour in YCbCr, the seeded split and clear errors."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from prosima.fusion.colour import recolour, rgb_to_ycbcr, ycbcr_to_rgb
from prosima.fusion.data import FusionDataError, harvard_root, load_pair, load_pairs, pair_files, split_pairs


def _gray(path: Path, size=(12, 10), seed=0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, size[::-1], dtype=np.uint8)).save(path)
    return path


def _rgb(path: Path, size=(12, 10), seed=0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (*size[::-1], 3), dtype=np.uint8)).save(path)
    return path


def test_ycbcr_round_trip_and_gray_axis():
    rgb = np.random.default_rng(0).random((5, 6, 3)).astype(np.float32)
    assert np.allclose(ycbcr_to_rgb(rgb_to_ycbcr(rgb)), rgb, atol=1e-5)
    gray = np.full((2, 2, 3), 0.3, np.float32)
    ycc = rgb_to_ycbcr(gray)
    assert np.allclose(ycc[..., 0], 0.3, atol=1e-6) and np.allclose(ycc[..., 1:], 0.5, atol=1e-6)
    assert recolour(np.full((2, 2), 0.3, np.float32), ycc[..., 1:]).shape == (2, 2, 3)
    with pytest.raises(ValueError, match="does not fit"):
        recolour(np.zeros((3, 3), np.float32), ycc[..., 1:])


def test_gray_and_colour_pairs(tmp_path):
    ct = load_pair(_gray(tmp_path / "m.png"), _gray(tmp_path / "c.png", seed=1))
    assert ct.chroma is None and ct.stacked().shape == (2, 10, 12)
    pet = load_pair(_gray(tmp_path / "m.png"), _rgb(tmp_path / "p.png", seed=2))
    assert pet.chroma.shape == (10, 12, 2)
    rgb = np.asarray(Image.open(tmp_path / "p.png"), np.float32) / 255
    assert np.allclose(recolour(pet.other, pet.chroma), rgb, atol=1e-5)


def test_bad_pairs_refused(tmp_path):
    mri = _gray(tmp_path / "m.png")
    with pytest.raises(FusionDataError, match="differs in size"):
        load_pair(mri, _gray(tmp_path / "big.png", size=(13, 10)))
    with pytest.raises(FusionDataError, match="MRI must be grayscale"):
        load_pair(_rgb(tmp_path / "colour_mri.png"), mri)
    with pytest.raises(FusionDataError, match="no such file"):
        load_pair(tmp_path / "absent.png", mri)
    trunc = tmp_path / "trunc.png"
    trunc.write_bytes(mri.read_bytes()[:40])
    with pytest.raises(FusionDataError, match="not a readable image"):
        load_pair(trunc, mri)


def test_layout_and_missing_partner(tmp_path):
    for i in range(4):
        _gray(tmp_path / "CT-MRI" / "MRI" / f"{i}.png", seed=i)
        _gray(tmp_path / "CT-MRI" / "CT" / f"{i}.png", seed=10 + i)
    ps = load_pairs(tmp_path, "ct")
    assert ps.names == ["0", "1", "2", "3"] and ps.sources.shape == (4, 2, 10, 12)
    assert ps.subset([2]).names == ["2"]
    _gray(tmp_path / "CT-MRI" / "MRI" / "9.png")
    with pytest.raises(FusionDataError, match=r"MRI/9.png has no partner"):
        pair_files(tmp_path, "ct")
    with pytest.raises(FusionDataError, match="missing"):
        load_pairs(tmp_path, "pet")
    with pytest.raises(FusionDataError, match="unknown modality pair"):
        load_pairs(tmp_path, "xray")


def test_split_is_seeded_and_disjoint():
    a, b = split_pairs(50, seed=3), split_pairs(50, seed=3)
    assert all(
        np.array_equal(x, y) for x, y in zip((a.train, a.val, a.test), (b.train, b.val, b.test), strict=True)
    )
    allidx = np.concatenate([a.train, a.val, a.test])
    assert sorted(allidx) == list(range(50)) and len(a.train) == 35
    assert not np.array_equal(split_pairs(50, seed=4).train, a.train)
    with pytest.raises(FusionDataError):
        split_pairs(2)


@pytest.mark.shared_data
def test_real_harvard_pairs():
    root = harvard_root()
    if not root.is_dir():
        pytest.skip("../shared/data/fusion/harvard_aanlib absent")
    assert len(pair_files(root, "ct")) == 184
    pet = load_pairs(root, "pet", limit=2)
    assert pet.sources.shape == (2, 2, 256, 256) and pet.chroma[0].shape == (256, 256, 2)
