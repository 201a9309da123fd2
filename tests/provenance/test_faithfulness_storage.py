"""Faithfulness does not depend on how intensities are stored: an int16 slice restored from the same
noise, clipped to its range or not, verifies either way; background shards of the original (no
anatomy) are listed as skipped and never decide; the restoration is made in the range its original
was anchored with."""

from __future__ import annotations

import numpy as np
import pytest

from prosima.imaging.io import read_image
from prosima.provenance.anchor import anchor_images, read_inputs
from prosima.provenance.model_versions import anchor_model
from prosima.provenance.restore import restore_file
from prosima.provenance.semantic import judge
from prosima.provenance.verify import verify_loaded

GENERATOR = "pretrained:prosima-full"
SCALE = 1000.0


@pytest.fixture(scope="module")
def int16_world(tmp_path_factory, brain_slices, helpers):
    root = tmp_path_factory.mktemp("int16")
    w = helpers.make_world(root, [])
    files = []
    for i, image in enumerate(brain_slices[:2]):
        files.append(root / f"slice{i}.npy")
        np.save(files[-1], np.rint(image * SCALE).astype(np.int16), allow_pickle=False)
    anchored = anchor_images(w.prov, read_inputs(files))
    anchor_model(w.ledger, GENERATOR)
    yield w, files, anchored
    w.ledger.close()


@pytest.mark.parametrize("clip", [True, False])
@pytest.mark.parametrize("by_record", [True, False])
def test_an_int16_slice_restores_faithfully_clipped_or_not(int16_world, generator, tmp_path, clip, by_record):
    w, files, anchored = int16_world
    original = read_image(files[0]).array
    hi = float(original.max())
    noisy = original / hi + np.random.default_rng(4).normal(0.0, 0.10, original.shape)
    if clip:
        noisy = np.clip(noisy, 0.0, 1.0)
    path = tmp_path / "noisy.npy"
    np.save(path, np.rint(noisy * hi).astype(np.int16), allow_pickle=False)
    record = anchored[0].tx if by_record else None
    done = restore_file(w.prov, path, tmp_path / "restored.npy", generator, record_tx=record)
    assert done.record.original == anchored[0].tx
    assert done.record.params["range"] == f"{0.0!r},{hi!r}"  # the original's, not the noise-widened one
    assert done.record.params["range_from"] == ("input" if clip else "original")  # clipped: the same
    verdict = verify_loaded(w.prov, read_image(done.out))
    assert verdict.status == "recorded-restoration"
    assert verdict.ok, verdict.reasons
    f = verdict.faithfulness
    assert f["faithful"] and f["background"] and not f["unfaithful"]
    assert min(verdict.shard_cosines[i] for i in f["judged"]) >= f["threshold"]


def test_background_shards_never_decide_and_an_all_background_original_is_not_judged():
    cos = np.array([0.3, 0.95, 0.99, 0.2])
    background = np.array([True, False, False, True])
    result = judge(cos, background)
    assert result.faithful and result.judged == [1, 2] and result.background == [0, 3]
    assert result.min_judged == pytest.approx(0.95)
    assert not judge(cos, np.array([False, False, False, True])).faithful  # shard 0 judged: 0.3
    nothing = judge(cos, np.ones(4, bool))
    assert not nothing.faithful and nothing.judged == []
