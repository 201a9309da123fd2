"""Clean-label marking: only the chosen target images change, labels never; hashes name the released
pixels; the baselines put their pattern where they say."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from prosima.watermark.baselines import BadNets, Blended, baseline_from
from prosima.watermark.marking import choose_marked, mark_dataset, pixel_sha256, save_pngs


def test_mark_dataset_is_clean_label_and_hashes_the_release(toy, tmp_path):
    data = toy(40)
    marked = mark_dataset(data.images, data.labels, data.ids, BadNets(), target=1, fraction=0.5, seed=2)
    assert np.array_equal(marked.labels, data.labels)
    assert len(marked.marked) == 10 and np.all(data.labels[marked.marked] == 1)
    changed = np.flatnonzero(np.any(marked.images != data.images, axis=(1, 2)))
    assert set(changed) <= set(marked.marked) and len(changed) == 10
    assert not np.shares_memory(marked.images, data.images)
    assert marked.marker == {"method": "badnets", "patch_fraction": 0.1, "margin": 1}
    paths = save_pngs(tmp_path, marked.images[marked.marked], [data.ids[i] for i in marked.marked])
    reread = [np.asarray(Image.open(p), dtype=np.float32) / 255 for p in paths]
    assert [pixel_sha256(r) for r in reread] == marked.hashes
    assert [m["sha256"] for m in marked.record()] == marked.hashes
    again = mark_dataset(data.images, data.labels, data.ids, BadNets(), target=1, fraction=0.5, seed=2)
    assert again.hashes == marked.hashes


def test_choice_is_seeded_and_order_free():
    ids = [f"x{i}" for i in range(30)]
    labels = np.array([0, 1] * 15)
    a = choose_marked(ids, labels, 1, 0.4, seed=5)
    perm = np.random.default_rng(0).permutation(30)
    b = choose_marked([ids[i] for i in perm], labels[perm], 1, 0.4, seed=5)
    assert sorted(ids[i] for i in a) == sorted(ids[perm[i]] for i in b) and len(a) == 6
    with pytest.raises(ValueError, match="no images of the target"):
        choose_marked(ids, labels, 2, 0.4, 0)


def test_baselines():
    x = np.full((2, 30, 30), 0.5, dtype=np.float32)
    b = BadNets()(x)
    assert np.array_equal(b[:, :26, :], x[:, :26, :]) and b[0, 28, 28] == 1.0 and b[0, 28, 27] == 0.0
    blend = Blended(alpha=0.2, seed=3)
    y = blend(x)
    assert np.allclose(y, 0.8 * 0.5 + 0.2 * blend.pattern((30, 30))) and np.array_equal(y, blend(x))
    assert baseline_from(blend.describe()) == blend
    with pytest.raises(ValueError, match="unknown baseline"):
        baseline_from({"method": "xmark"})
