import pytest
import torch

from prosima.models.encoder import SemanticEncoder, build_encoder


def tiny(kind="conv", seed=0):
    torch.manual_seed(seed)
    return SemanticEncoder(kind, (8, 16, 32), embed_dim=24)


@pytest.mark.parametrize("kind", ["conv", "residual"])
@pytest.mark.parametrize("shape", [(64, 64), (5, 7), (33, 47), (9, 11)])
def test_shapes_and_unit_norm(kind, shape):
    enc = tiny(kind).eval()
    z = enc(torch.rand(3, 1, *shape))
    assert z.shape == (3, 24)
    assert torch.allclose(z.norm(dim=-1), torch.ones(3), atol=1e-5)
    feats = enc.features(torch.rand(2, 1, *shape))
    assert [f.shape[1] for f in feats] == [8, 16, 32]


@pytest.mark.parametrize("kind", ["conv", "residual"])
def test_deterministic_and_rebuildable(kind):
    x = torch.rand(2, 1, 31, 40)
    a, b = tiny(kind, seed=3).eval(), tiny(kind, seed=3).eval()
    assert torch.equal(a(x), b(x))
    assert torch.equal(a(x), a(x))
    c = build_encoder(a.spec.to_dict())
    c.load_state_dict(a.state_dict())
    assert torch.equal(c.eval()(x), a(x))
    assert not torch.equal(tiny(kind, seed=4).eval()(x), a(x))


@pytest.mark.parametrize("kind", ["conv", "residual"])
def test_gradients_reach_every_parameter_and_the_input(kind):
    enc = tiny(kind)
    x = torch.rand(4, 1, 24, 24, requires_grad=True)
    enc(x)[:, 0].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in enc.parameters())


def test_rejects_bad_input_and_kind():
    with pytest.raises(ValueError, match="kind"):
        SemanticEncoder("vit")
    with pytest.raises(ValueError, match=r"\[B, 1, H, W\]"):
        tiny()(torch.rand(1, 2, 8, 8))
