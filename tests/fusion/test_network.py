"""The fusion network: shapes on odd sizes, the stem as one linear map over its taps, weights bytes."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from prosima.fusion.checkpoint import (
    load_fusion,
    model_from_bytes,
    save_fusion,
    weights_digest,
    weights_to_bytes,
)
from prosima.fusion.network import (
    FusionConfig,
    FusionNet,
    QuadAct,
    polynomial_max,
    sign_step,
    stem_tap_weights,
    tap_offsets,
)
from prosima.models.artifact import load_artifact, state_digest


@pytest.mark.parametrize("shape", [(1, 1), (5, 7), (13, 17), (32, 32)])
def test_shapes_on_tiny_and_odd_inputs(shape):
    torch.manual_seed(0)
    net = FusionNet()
    x = torch.rand(2, 2, *shape)
    y = net(x)
    assert y.shape == (2, 1, *shape)
    assert torch.isfinite(y).all()


def test_untrained_output_is_the_mean_of_the_sources():
    net = FusionNet()
    x = torch.rand(1, 2, 9, 11)
    assert torch.allclose(net(x), x.mean(1, keepdim=True))


def test_wrong_input_refused():
    with pytest.raises(ValueError, match=r"\(N, 2, H, W\)"):
        FusionNet()(torch.rand(1, 3, 8, 8))


def test_taps_cover_every_branch():
    taps = tap_offsets(FusionConfig())
    assert len(taps) == len(set(taps)) == 33  # 5x5 dense + the 8 outer taps of the 3x3 dilated by 4
    assert (0, 0) in taps and (4, -4) in taps and (3, 3) not in taps


def test_stem_equals_its_tap_weighted_sum():
    torch.manual_seed(1)
    net = FusionNet()
    x = torch.rand(1, 2, 11, 14)
    w, b = stem_tap_weights(net)
    p = net.reach
    xp = F.pad(x, (p, p, p, p), mode="replicate")
    shifted = torch.stack(
        [xp[:, :, p + dy : p + dy + 11, p + dx : p + dx + 14] for dy, dx in tap_offsets(net.config)], -1
    )
    expect = torch.einsum("cst,nshwt->nchw", w, shifted) + b[None, :, None, None]
    assert torch.allclose(net.stem_features(x), expect, atol=1e-5)


def test_quadratic_activation():
    act = QuadAct(2, init=0.5)
    x = torch.tensor([[[[2.0]], [[-1.0]]]])
    assert torch.allclose(act(x), torch.tensor([[[[4.0]], [[-0.5]]]]))


def test_weights_bytes_round_trip_and_digest(tmp_path):
    torch.manual_seed(2)
    net = FusionNet()
    with torch.no_grad():
        net.out.weight.normal_()
    data = weights_to_bytes(net)
    assert weights_to_bytes(net) == data
    back = model_from_bytes(data)
    x = torch.rand(1, 2, 6, 6)
    assert torch.equal(back(x), net(x))
    assert weights_digest(back) == weights_digest(net)
    save_fusion(tmp_path / "f.pt", net, {"seed": 2})
    loaded, info = load_fusion(tmp_path / "f.pt")
    assert info == {"seed": 2} and weights_digest(loaded) == weights_digest(net)


def test_damaged_weights_refused(tmp_path):
    data = weights_to_bytes(FusionNet())
    with pytest.raises(ValueError, match="bad header"):
        model_from_bytes(b"x" + data)
    with pytest.raises(ValueError, match=r"truncated|malformed"):
        model_from_bytes(data[:-10])
    with pytest.raises(ValueError, match="not"):
        model_from_bytes(data, FusionConfig(hidden=4))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable fusion checkpoint"):
        load_fusion(bad)
    with pytest.raises(FileNotFoundError):
        load_fusion(tmp_path / "missing.pt")


def test_fusion_files_from_before_the_format_still_load(tmp_path):
    torch.manual_seed(3)
    net = FusionNet(FusionConfig(hidden=4))
    torch.save({"weights": weights_to_bytes(net), "info": {"seed": 3}}, tmp_path / "old.pt")
    loaded, info = load_fusion(tmp_path / "old.pt")
    assert info == {"seed": 3} and weights_to_bytes(loaded) == weights_to_bytes(net)
    assert weights_digest(loaded) == state_digest(net.state_dict())
    saved = load_artifact(save_fusion(tmp_path / "new.pt", loaded, info))
    assert (saved.kind, saved.version, saved.spec["hidden"]) == ("fusion", 2, 4)
    assert saved.digest == weights_digest(net)
    torch.save({"weights": b"PROSIMA-FUSION-W1\n", "info": {}}, tmp_path / "torn.pt")
    with pytest.raises(ValueError, match="not a fusion checkpoint"):
        load_fusion(tmp_path / "torn.pt")


def test_shipped_weights_load():
    net, info = load_fusion()
    assert info["train"]["seed"] == 0
    y = net(torch.rand(1, 2, 16, 16))
    assert np.isfinite(y.detach().numpy()).all()


def test_the_sign_polynomial_is_odd_fixed_at_one_and_sharpens():
    x = torch.linspace(-1, 1, 2001, dtype=torch.float64)
    assert torch.allclose(sign_step(-x), -sign_step(x)) and float(sign_step(torch.tensor(1.0))) == 1.0
    s = x
    errors = []
    for _ in range(5):
        s = sign_step(s)
        assert float(s.abs().max()) <= 1.0 + 1e-12  # stays in [-1, 1]: safe to compose
        errors.append(float((s - torch.sign(x))[x.abs() > 0.1].abs().max()))
    assert errors == sorted(errors, reverse=True) and errors[-1] < 5e-3


def test_the_polynomial_maximum_is_close_to_the_maximum_and_exact_where_sources_differ():
    g = torch.Generator().manual_seed(0)
    a, b = (
        torch.rand(4, 1, 32, 32, generator=g, dtype=torch.float64),
        torch.rand(4, 1, 32, 32, generator=g, dtype=torch.float64),
    )
    approx, exact = polynomial_max(a, b, 5), torch.maximum(a, b)
    assert float((approx - exact).abs().max()) < 0.01  # the error lives where a and b are nearly equal
    far = (a - b).abs() > 0.1
    assert float((approx - exact)[far].abs().max()) < 1e-3


def test_a_selecting_network_starts_as_the_polynomial_maximum_and_old_configs_read_as_mean():
    net = FusionNet(FusionConfig(select=5))
    x = torch.rand(2, 2, 16, 16)
    assert torch.allclose(net(x), polynomial_max(x[:, :1], x[:, 1:2], 5))
    old = FusionConfig().to_dict()
    del old["select"]
    assert FusionConfig.from_dict(old).select == 0
    with pytest.raises(ValueError, match="select"):
        FusionNet(FusionConfig(select=-1))
