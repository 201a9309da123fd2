"""Loaders give [0, 1] arrays with folder labels and file ids; the split is by file, seeded,
stratified and independent of the order of the files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from prosima.watermark.data import (
    DataError,
    load_covid_xray,
    load_dataset,
    load_pneumoniamnist,
    shared_data_root,
    split_by_file,
)


def test_split_is_by_file_seeded_and_order_free():
    ids = [f"f{i:03d}" for i in range(200)]
    labels = np.array([0] * 150 + [1] * 50)
    s = split_by_file(ids, labels, (0.6, 0.2, 0.2), seed=3)
    parts = [set(s.train), set(s.val), set(s.test)]
    assert sum(map(len, parts)) == 200 and set.union(*parts) == set(range(200))
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert np.bincount(labels[s.test]).tolist() == [30, 10]  # stratified
    perm = np.random.default_rng(0).permutation(200)
    s2 = split_by_file([ids[i] for i in perm], labels[perm], (0.6, 0.2, 0.2), seed=3)
    assert sorted(ids[perm[i]] for i in s2.test) == sorted(ids[i] for i in s.test)
    assert set(split_by_file(ids, labels, (0.6, 0.2, 0.2), seed=4).test) != parts[2]
    with pytest.raises(ValueError, match="fractions"):
        split_by_file(ids, labels, (0.5, 0.2, 0.2))
    with pytest.raises(DataError, match="unique"):
        split_by_file(["a", "a"], np.array([0, 1]))


def test_covid_layout_loader(tmp_path):
    rng = np.random.default_rng(0)
    for cls, n in (("Covid-19", 2), ("No_findings", 3)):
        (tmp_path / cls).mkdir()
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (40, 40), dtype=np.uint8)).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "FILES.tsv").write_text("path\n")
    data = load_covid_xray(tmp_path, size=16)
    assert data.images.shape == (5, 16, 16) and data.images.dtype == np.float32
    assert data.classes == ["Covid-19", "No_findings"] and data.labels.tolist() == [0, 0, 1, 1, 1]
    assert data.ids[0] == "Covid-19/0.png" and data.images.min() >= 0 and data.images.max() <= 1
    full = load_dataset(tmp_path, size=None)
    assert full.images.shape == (5, 40, 40) and np.all(full.images * 255 == np.rint(full.images * 255))
    with pytest.raises(DataError, match="no class folders"):
        load_covid_xray(tmp_path / "Covid-19" / "nothing")


def test_npz_loader_and_root(tmp_path, monkeypatch):
    arrays = {
        f"{s}_images": np.full((n, 28, 28), 255, np.uint8) for s, n in (("train", 3), ("val", 1), ("test", 2))
    }
    arrays |= {f"{s}_labels": np.zeros((n, 1), np.uint8) for s, n in (("train", 3), ("val", 1), ("test", 2))}
    np.savez(tmp_path / "p.npz", **arrays)
    data = load_pneumoniamnist(tmp_path / "p.npz")
    assert data.images.shape == (6, 28, 28) and data.images.max() == 1.0 and data.ids[-1] == "test/00001"
    assert load_pneumoniamnist(tmp_path / "p.npz", splits=("val",)).ids == ["val/00000"]
    with pytest.raises(DataError, match="no PneumoniaMNIST"):
        load_pneumoniamnist(tmp_path / "missing.npz")
    monkeypatch.setenv("PROSIMA_SHARED_DATA", str(tmp_path))
    assert shared_data_root() == tmp_path and shared_data_root("x").name == "x"


@pytest.mark.shared_data
def test_real_sets_load(shared_data):
    mnist = load_pneumoniamnist(shared_data)
    assert mnist.images.shape[1:] == (28, 28) and set(np.unique(mnist.labels)) == {0, 1}
    covid = load_covid_xray(shared_data, size=64)
    assert covid.images.shape == (1124, 64, 64) and covid.classes == ["Covid-19", "No_findings", "Pneumonia"]
    assert np.bincount(covid.labels).tolist() == [124, 500, 500] and covid.source["size"] == 64
