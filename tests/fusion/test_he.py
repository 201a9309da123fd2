"""Encrypted (CKKS) fusion: the node's pass and one encrypted training step match plaintext, the node
cannot decrypt, and bad inputs are refused. Tiny models and images keep it to seconds."""

import numpy as np
import pytest
import torch

ts = pytest.importorskip("tenseal")

from prosima.fusion import he, he_training  # noqa: E402
from prosima.fusion.network import FusionConfig, FusionNet  # noqa: E402
from prosima.imaging.metrics import psnr  # noqa: E402


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    net = FusionNet(FusionConfig(branch_channels=2, hidden=3))
    with torch.no_grad():
        net.act1.a.uniform_(-0.3, 0.3)
        net.act2.a.uniform_(-0.3, 0.3)
        net.out.weight.normal_(0.0, 0.2)
        net.out.bias.fill_(0.02)
    return net


@pytest.fixture(scope="module")
def keys():
    return he.make_context(he.INFERENCE_PARAMS)


@pytest.fixture(scope="module")
def node(keys):
    return he.NodeContext.from_bytes(keys.public_bytes())


def _pair(shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random(shape), rng.random(shape)


def test_parameters_fit_the_depth_at_128_bit_security():
    p, t = he.INFERENCE_PARAMS, he_training.TRAINING_PARAMS
    assert (p.poly_modulus_degree, p.total_bits, p.depth, p.security_bits) == (8192, 218, 5, 128)
    assert (t.poly_modulus_degree, t.total_bits, t.depth, t.security_bits) == (16384, 360, 6, 128)
    assert he.HEParams(16384, (60, 40, 40, 60), 40).security_bits == 256
    with pytest.raises(ValueError, match="128-bit security"):
        he.HEParams(8192, (36, 30, 30, 30, 30, 30, 34), 30)
    with pytest.raises(ValueError, match="scale_bits"):
        he.HEParams(8192, (34, 30, 29, 34), 30)
    with pytest.raises(ValueError, match="rescalings"):
        he.HEParams(8192, (60, 40, 40, 60), 40).require_depth(he.INFERENCE_DEPTH)


def test_encrypted_forward_matches_plaintext(model, keys, node):
    a, b = _pair((7, 9))
    sent = he.encrypt_sources(keys, a, b, model).serialize()
    out = he.encrypted_forward(model, he.EncryptedPair.from_bytes(sent, node))  # public context only
    fused = he.decrypt_fused(keys, out, a.shape)
    ref = he.plain_forward(model, a, b)
    assert np.ptp(ref) > 0.1  # a non-trivial output
    assert np.abs(fused - np.clip(ref, 0, 1)).max() < 1e-4
    assert psnr(np.clip(ref, 0, 1), fused, data_range=1.0) > 80


def test_he_fuse_streams_chunks(model):
    a, b = _pair((65, 64), seed=1)  # 4160 pixels: a full chunk of 4096 slots and a partial one
    fused, stats = he.he_fuse(model, a, b)
    ref = np.clip(he.plain_forward(model, a, b), 0, 1)
    assert fused.shape == (65, 64) and np.abs(fused - ref).max() < 1e-4
    assert stats.n_chunks == 2 and stats.ciphertexts_up == 2 * 2 * 33
    assert stats.bytes_up > stats.bytes_down > 0 and stats.bytes_context > 0
    assert stats.security_bits == 128 and stats.seconds_compute > 0


def test_symmetric_site_keys_work_without_a_public_key(model):
    a, b = _pair((3, 4), seed=4)
    fused, _ = he.he_fuse(model, a, b, keys=he.make_context(symmetric=True))
    assert np.abs(fused - np.clip(he.plain_forward(model, a, b), 0, 1)).max() < 1e-4


def test_node_cannot_decrypt(keys, node):
    assert keys.context.has_secret_key() and not node.context.has_secret_key()
    vec = ts.ckks_vector_from(node.context, ts.ckks_vector(keys.context, [0.25, 0.5]).serialize())
    with pytest.raises(ValueError, match="secret"):
        vec.decrypt()
    with_secret = keys.context.serialize(save_secret_key=True)
    leaked = he._pack({"kind": "context", "params": keys.params.to_dict()}, [with_secret])
    with pytest.raises(ValueError, match="secret key"):
        he.NodeContext.from_bytes(leaked)


def test_one_encrypted_training_step_matches_plaintext(model):
    pairs = [_pair((5, 7), seed=s) for s in (2, 3)]
    layer, hist, stats = he_training.he_fit_output_layer(
        model, pairs, steps=1, lr=0.5, serialize_context=False
    )
    ref, ref_hist = he_training.plain_fit_output_layer(model, pairs, steps=1, lr=0.5)
    assert np.abs(hist[0].grad - ref_hist[0].grad).max() < 1e-5
    assert abs(hist[0].grad_bias - ref_hist[0].grad_bias) < 1e-5
    assert np.abs(layer.weight - ref.weight).max() < 1e-5 and abs(layer.bias - ref.bias) < 1e-5
    assert np.abs(ref.weight - he_training.OutputLayer.of(model).weight).max() > 1e-3  # it moved
    assert stats["numbers_decrypted"] == 3 + 1 and stats["n_pixels"] == 70
    loss0 = ref_hist[0].loss
    assert he_training.output_layer_loss(model, pairs, None, ref) < loss0


def test_bad_inputs_are_refused(model, keys, node):
    a, b = _pair((7, 9))
    with pytest.raises(ValueError, match="differ in shape"):
        he.encrypt_sources(keys, a, b[:6], model)
    bad = a.copy()
    bad[2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        he.encrypt_sources(keys, bad, b, model)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        he.encrypt_sources(keys, a * 2, b, model)
    with pytest.raises(ValueError, match="FusionNet"):
        he.encrypt_sources(keys, a, b, torch.nn.Conv2d(2, 1, 1))
    with pytest.raises(ValueError, match="FusionNet"):
        he.he_fuse("not a model", a, b)
    enc = he.encrypt_sources(keys, a, b, model)
    other = FusionNet(FusionConfig(branch_channels=2, hidden=3, branches=((1, 1), (3, 1))))
    with pytest.raises(ValueError, match="taps of another stem"):
        he.encrypted_forward(other, enc)
    out = he.encrypted_forward(model, enc)
    with pytest.raises(ValueError, match="different shape"):
        he.decrypt_fused(keys, out, (8, 9))
    with pytest.raises(ValueError, match="only aggregates"):
        he_training.decrypt_aggregates(keys, out)
    with pytest.raises(ValueError, match="target 0 has shape"):
        he_training.plain_fit_output_layer(model, [(a, b)], [a[:5]], steps=1)
    with pytest.raises(ValueError, match="Galois"):
        he_training.he_fit_output_layer(
            model, [(a, b)], steps=1, keys=he.make_context(he_training.TRAINING_PARAMS)
        )
