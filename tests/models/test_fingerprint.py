import numpy as np
import pytest
import torch

from prosima.imaging.shards import plan_shards
from prosima.models.encoder import SemanticEncoder
from prosima.models.fingerprint import (
    Fingerprint,
    compute_fingerprints,
    dequantise,
    inference,
    quantise,
    shard_index_map,
)


def encoder(seed=0):
    torch.manual_seed(seed)
    return SemanticEncoder("conv", (8, 16), embed_dim=20)


def test_quantise_round_trip_is_within_half_a_step():
    z = np.random.default_rng(0).normal(size=(6, 20)).astype(np.float32)
    z[2] = 0.0
    codes, scales = quantise(z)
    assert codes.dtype == np.int8 and scales.dtype == np.float32
    assert np.abs(codes).max() <= 127
    assert np.all(np.abs(dequantise(codes, scales) - z) <= scales[:, None] / 2 + 1e-7)
    assert not codes[2].any()


@pytest.mark.parametrize("shape", [(64, 64), (61, 47)])
def test_fingerprints_are_int8_per_shard_and_deterministic(shape):
    img = np.random.default_rng(1).random(shape).astype(np.float32)
    enc = encoder()
    a = compute_fingerprints(enc, img, k=16)
    b = compute_fingerprints(enc, img, k=16)
    assert a.codes.shape == (16, 20) and a.codes.dtype == np.int8
    assert np.array_equal(a.codes, b.codes) and np.array_equal(a.scales, b.scales)
    assert a.shape == shape and a.k == 16
    assert len(a.shard_bytes(0)) == 20 + 4
    deq = a.dequantise()
    assert np.allclose(np.linalg.norm(deq, axis=1), 1.0, atol=0.05)
    other = compute_fingerprints(encoder(seed=1), img, k=16)
    assert not np.array_equal(other.codes, a.codes)


def test_fingerprint_follows_the_content_of_its_shard_only():
    rng = np.random.default_rng(2)
    img = rng.random((64, 64)).astype(np.float32)
    edited = img.copy()
    edited[:16, :16] = 0.0  # inside shard 0 of a 4x4 grid
    a, b = compute_fingerprints(encoder(), img, 16), compute_fingerprints(encoder(), edited, 16)
    changed = [i for i in range(16) if a.shard_bytes(i) != b.shard_bytes(i)]
    assert changed == [0]


def test_index_map_marks_each_shard_core():
    grid = plan_shards((10, 13), 4)
    m = shard_index_map(grid)
    assert m.shape == (10, 13) and set(np.unique(m)) == {0, 1, 2, 3}
    for shard in grid.shards:
        assert (m[tuple(slice(a, b) for a, b in shard.core)] == shard.index).all()


def test_inference_context_restores_mode_and_flag():
    enc = encoder().train()
    before = torch.are_deterministic_algorithms_enabled()
    with inference(enc):
        assert not enc.training and torch.are_deterministic_algorithms_enabled()
    assert enc.training and torch.are_deterministic_algorithms_enabled() == before


def test_fingerprint_validates_its_arrays():
    with pytest.raises(ValueError, match="int8"):
        Fingerprint(np.zeros((4, 3), np.float32), np.ones(4, np.float32), (8, 8), 4)
    with pytest.raises(ValueError, match="scales"):
        Fingerprint(np.zeros((4, 3), np.int8), np.ones(3, np.float32), (8, 8), 4)
