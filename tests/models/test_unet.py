import numpy as np
import pytest
import torch

from prosima.models.fingerprint import Fingerprint, quantise
from prosima.models.inference import restore, restore_by_shards
from prosima.models.unet import HybridUNet, build_generator, count_parameters


def tiny(fp_dim=0, attention=1, seed=0, film_scale=0.0):
    torch.manual_seed(seed)
    m = HybridUNet((8, 16, 32), attention_blocks=attention, heads=2, fingerprint_dim=fp_dim, cond_channels=8)
    torch.nn.init.normal_(m.tail.conv.weight, std=0.05)  # the tail starts at zero
    if film_scale and m.film is not None:
        for layer in m.film:
            torch.nn.init.normal_(layer.weight, std=film_scale)
    return m.eval()


@pytest.mark.parametrize("shape", [(32, 32), (5, 7), (33, 47), (64, 18), (1, 1)])
@pytest.mark.parametrize("attention", [0, 1])
def test_any_size_in_same_size_out(shape, attention):
    m = tiny(attention=attention)
    with torch.no_grad():
        y = m(torch.rand(2, 1, *shape))
    assert y.shape == (2, 1, *shape) and torch.isfinite(y).all()


def test_conditioned_shapes_with_odd_sizes_and_per_sample_maps():
    m = tiny(fp_dim=12, film_scale=0.1)
    x = torch.rand(3, 1, 37, 29)
    fps = torch.randn(3, 4, 12)
    idx = torch.randint(0, 4, (3, 37, 29))
    with torch.no_grad():
        y = m(x, fps, idx)
        shared = m(x, fps, idx[0])
    assert y.shape == x.shape and shared.shape == x.shape


def test_deterministic_and_rebuildable():
    x = torch.rand(1, 1, 48, 40)
    a, b = tiny(seed=1), tiny(seed=1)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))
        c = build_generator(a.spec.to_dict()).eval()
        c.load_state_dict(a.state_dict())
        assert torch.equal(c(x), a(x))


def test_gradients_flow_to_every_parameter():
    m = tiny(fp_dim=12, film_scale=0.1).train()
    x = torch.rand(2, 1, 32, 32)
    y = m(x, torch.randn(2, 4, 12), torch.randint(0, 4, (32, 32)))
    ((y - x) ** 2).mean().backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing


def test_film_starts_as_identity_and_none_or_dropped_means_unconditioned():
    m = tiny(fp_dim=12)
    x, fps, idx = torch.rand(2, 1, 32, 32), torch.randn(2, 4, 12), torch.randint(0, 4, (32, 32))
    with torch.no_grad():
        assert torch.allclose(m(x, fps, idx), m(x))
        m2 = tiny(fp_dim=12, film_scale=0.5)
        assert not torch.allclose(m2(x, fps, idx), m2(x))
        dropped = m2(x, fps, idx, keep=torch.tensor([0.0, 1.0]))
        assert torch.allclose(dropped[0], m2(x)[0], atol=1e-6)
        assert torch.allclose(dropped[1], m2(x, fps, idx)[1], atol=1e-6)


def test_bad_conditioning_is_refused():
    m = tiny(fp_dim=12)
    x = torch.rand(1, 1, 16, 16)
    with pytest.raises(ValueError, match="shard_index"):
        m(x, torch.randn(1, 4, 12))
    with pytest.raises(ValueError, match=r"0\.\.3"):
        m(x, torch.randn(1, 4, 12), torch.full((16, 16), 4))
    with pytest.raises(ValueError, match="fingerprints must be"):
        m(x, torch.randn(1, 4, 5), torch.zeros(16, 16, dtype=torch.long))


def test_an_untrained_residual_generator_returns_its_input():
    x = torch.rand(1, 1, 20, 28)
    with torch.no_grad():
        assert torch.equal(HybridUNet((8, 16), attention_blocks=0)(x), x)


def test_default_generator_stays_within_the_parameter_budget():
    n = count_parameters(HybridUNet(fingerprint_dim=128))
    assert 1_000_000 <= n <= 4_000_000


def _fingerprint(image, k=16, dim=12, seed=0):
    z = np.random.default_rng(seed).normal(size=(k, dim)).astype(np.float32)
    codes, scales = quantise(z)
    return Fingerprint(codes, scales, image.shape, k)


def test_shard_restoration_matches_whole_slice_conditioning():
    m = tiny(fp_dim=12, film_scale=0.3)
    rng = np.random.default_rng(0)
    image = rng.random((64, 64)).astype(np.float32)
    fp = _fingerprint(image)
    whole = restore(m, image, fp)
    assert whole.shape == image.shape and whole.dtype == np.float32
    one = restore_by_shards(m, image, fp, k=1, overlap=0)
    np.testing.assert_allclose(one, whole, atol=1e-5)
    shards = restore_by_shards(m, image, fp, k=4, overlap=16)
    wrong = restore_by_shards(m, image, _fingerprint(image, seed=1), k=4, overlap=16)
    assert np.abs(shards - whole).mean() < 0.5 * np.abs(wrong - whole).mean()


def test_fingerprint_for_another_shape_is_refused():
    m = tiny(fp_dim=12)
    with pytest.raises(ValueError, match="shape"):
        restore(m, np.zeros((32, 32), np.float32), _fingerprint(np.zeros((64, 64))))


def tiny_volume(fp_dim=0, seed=0):
    """A 2.5-D generator (one neighbour each side) started from ``tiny``'s 2-D weights."""
    from prosima.models.unet import inflate_state

    flat = tiny(fp_dim, seed=seed)
    spec = flat.spec.to_dict() | {"context": 1}
    deep = build_generator(spec)
    deep.load_state_dict(inflate_state(flat.state_dict(), deep.spec))
    return flat, deep.eval()


def test_a_25d_generator_starts_exactly_as_its_2d_source():
    from prosima.models.inference import restore_volume

    flat, deep = tiny_volume()
    volume = np.random.default_rng(0).random((5, 24, 20)).astype(np.float32)
    by_slice = np.stack([restore(flat, plane) for plane in volume])
    np.testing.assert_allclose(restore_volume(deep, volume), by_slice, atol=1e-5)
    np.testing.assert_allclose(restore_volume(flat, volume, batch=2), by_slice, atol=1e-5)
    # once the neighbours' weights move, they change the middle slice's output
    with torch.no_grad():
        deep.stem.conv.weight[:, :4].normal_(std=0.2)
    assert np.abs(restore_volume(deep, volume) - by_slice).max() > 1e-3
    assert restore(deep, volume[:3]).shape == (24, 20)


def test_25d_inputs_are_checked():
    from prosima.models.inference import restore_volume

    flat, deep = tiny_volume()
    with pytest.raises(ValueError, match=r"expected \[B, 3, H, W\]"):
        deep(torch.zeros(1, 1, 16, 16))
    with pytest.raises(ValueError, match="reads 3 slices, got 2"):
        restore(deep, np.zeros((2, 16, 16), np.float32))
    with pytest.raises(ValueError, match="restores volumes"):
        restore_by_shards(deep, np.zeros((16, 16), np.float32))
    with pytest.raises(ValueError, match="context must be >= 0"):
        HybridUNet((8, 16), attention_blocks=0, context=-1)
    with pytest.raises(ValueError, match="2 fingerprints for a volume of 3 slices"):
        restore_volume(flat, np.zeros((3, 16, 16), np.float32), [None, None])


def test_a_blind_generator_started_from_a_conditioned_one_is_that_network_run_blind():
    from prosima.models.unet import blind_state

    cond = tiny(fp_dim=12).eval()
    blind = build_generator(cond.spec.to_dict() | {"fingerprint_dim": 0}).eval()
    blind.load_state_dict(blind_state(cond.state_dict()))
    x = np.random.default_rng(1).random((24, 20)).astype(np.float32)
    assert np.array_equal(restore(blind, x), restore(cond, x))
