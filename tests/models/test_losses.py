import pytest
import torch

from prosima.models.encoder import SemanticEncoder
from prosima.models.losses import RestorationLoss, perceptual_loss, pixel_loss, semantic_loss, tiles
from prosima.models.perceptual import EncoderFeatures, VGGFeatures, feature_network, vgg16_features


def encoder():
    torch.manual_seed(0)
    return SemanticEncoder("conv", (8, 16), embed_dim=16)


def clean_image():
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(2, 1, 32, 32)
    x[:, :, 8:24, 8:24] = 0.6 + 0.2 * torch.rand(2, 1, 16, 16, generator=g)
    return x


def noisy(x, sigma, seed=1):
    g = torch.Generator().manual_seed(seed)
    return x + sigma * torch.randn(x.shape, generator=g)


LOSSES = {
    "l1": lambda a, b: pixel_loss(a, b, "l1"),
    "l2": lambda a, b: pixel_loss(a, b, "l2"),
    "perceptual": lambda a, b: perceptual_loss(EncoderFeatures(encoder()), a, b),
    "semantic": lambda a, b: semantic_loss(encoder(), a, b, tile=16),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_zero_for_identical_and_growing_with_the_difference(name):
    fn = LOSSES[name]
    x = clean_image()
    with torch.no_grad():
        assert float(fn(x.clone(), x)) == pytest.approx(0.0, abs=1e-6)
        values = [float(fn(noisy(x, s), x)) for s in (0.01, 0.05, 0.2)]
    assert 0 < values[0] < values[1] < values[2]


def test_gradients_reach_the_image_but_not_the_frozen_networks():
    enc = encoder()
    loss = RestorationLoss("l1", 0.5, 0.5, EncoderFeatures(enc), enc, tile=16)
    x = clean_image()
    r = noisy(x, 0.05).requires_grad_(True)
    total, parts = loss(r, x)
    total.backward()
    assert r.grad is not None and r.grad.abs().sum() > 0
    assert all(p.grad is None for p in enc.parameters())
    assert set(parts) == {"pixel", "perceptual", "semantic", "total"}
    assert parts["total"] == pytest.approx(
        parts["pixel"] + 0.5 * parts["perceptual"] + 0.5 * parts["semantic"]
    )


def test_zero_weights_skip_the_networks_and_bad_settings_are_refused():
    loss = RestorationLoss("l2")
    _, parts = loss(clean_image(), clean_image())
    assert set(parts) == {"pixel", "total"}
    with pytest.raises(ValueError, match="feature network"):
        RestorationLoss("l1", lambda1=0.1)
    with pytest.raises(ValueError, match="semantic encoder"):
        RestorationLoss("l1", lambda2=0.1)
    with pytest.raises(ValueError, match="pixel"):
        RestorationLoss("l3")


def test_tiles_cover_the_image():
    x = torch.arange(2 * 8 * 12, dtype=torch.float32).reshape(2, 1, 8, 12)
    t = tiles(x, 4)
    assert t.shape == (2 * 2 * 3, 1, 4, 4)
    assert torch.equal(t[1], x[0, :, 0:4, 4:8])
    assert tiles(x, 64).shape == (2, 1, 8, 12)


def test_local_vgg_weights_file_is_used_and_checked(tmp_path):
    torch.manual_seed(0)
    net = vgg16_features("relu1_2")
    path = tmp_path / "vgg16.pth"
    state = {f"features.{k}": v for k, v in net.state_dict().items()}
    torch.save(state | {"classifier.0.weight": torch.zeros(1)}, path)  # a torchvision-style whole-model dict
    feats = VGGFeatures.from_file(path, ("relu1_2",))
    x = clean_image()
    out = feats(x)
    assert len(out) == 1 and out[0].shape == (2, 64, 32, 32)
    assert float(perceptual_loss(feats, x, x)) == 0.0
    assert float(perceptual_loss(feats, noisy(x, 0.1), x)) > 0.0
    with pytest.raises(ValueError, match="lack"):
        feature_network(str(path), None)  # default layers reach relu3_3, which this file lacks
    with pytest.raises(FileNotFoundError):
        VGGFeatures.from_file(tmp_path / "none.pth")
    assert isinstance(feature_network("encoder", encoder()), EncoderFeatures)


def test_aux_batch_limits_the_network_terms_to_the_first_samples():
    enc = encoder()
    loss = RestorationLoss("l1", 0.05, 1.0, EncoderFeatures(enc), enc, tile=16)
    clean = torch.cat([clean_image(), clean_image().flip(-1)])
    restored = noisy(clean, 0.1)
    total, parts = loss(restored, clean, aux_batch=1)
    _, first = loss(restored[:1], clean[:1])
    _, every = loss(restored, clean)
    assert parts["pixel"] == pytest.approx(every["pixel"])  # the pixel term sees the whole batch
    assert parts["perceptual"] == pytest.approx(first["perceptual"])
    assert parts["semantic"] == pytest.approx(first["semantic"])
    assert parts["perceptual"] != pytest.approx(every["perceptual"])
    assert float(total) == pytest.approx(parts["pixel"] + 0.05 * parts["perceptual"] + parts["semantic"])
