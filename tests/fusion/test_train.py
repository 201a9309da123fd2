"""Training lowers the unsupervised loss; the score is deterministic; the loss's terms behave."""

import numpy as np
import pytest
import torch

from prosima.fusion.loss import FusionLoss, sobel_magnitude
from prosima.fusion.network import FusionNet
from prosima.fusion.train import FusionTrainConfig, fuse, score, train_fusion, train_steps


def _pairs(n=4, size=24, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    out = []
    for _ in range(n):
        a = 0.5 + 0.4 * np.sin(6 * xx + rng.random() * 6) * (xx > 0.3)
        b = np.clip(0.8 * (np.hypot(xx - rng.random(), yy - rng.random()) < 0.3), 0, 1)
        out.append(np.stack([a, b]))
    return np.clip(np.asarray(out, np.float32), 0, 1)


def test_loss_terms():
    x = torch.as_tensor(_pairs(2))
    loss = FusionLoss()
    v = loss(x.amax(1, keepdim=True), x)
    assert loss.terms["intensity"] == pytest.approx(0.0, abs=1e-7)
    assert float(v) > 0 and set(loss.terms) == {"ssim", "intensity", "gradient"}
    flat = torch.ones(1, 1, 5, 5)
    assert float(sobel_magnitude(flat).abs().max()) == 0.0


def test_training_lowers_the_loss_and_is_seeded():
    torch.set_num_threads(1)
    pairs = _pairs()
    net = FusionNet()
    before = score(net, pairs)
    a = train_steps(net, pairs, 30, seed=0, lr=3e-3, crop=16)
    b = train_steps(net, pairs, 30, seed=0, lr=3e-3, crop=16)
    assert score(a, pairs) > before
    assert all(
        torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )
    assert score(a, pairs) == score(b, pairs)


def test_train_fusion_record_and_fuse():
    model, info = train_fusion(_pairs(), FusionTrainConfig(steps=50, batch=2, crop=16))
    assert info["train"]["seed"] == 0 and info["history"][-1]["step"] == 50
    out = fuse(model, _pairs(1)[0])
    assert out.shape == (24, 24) and out.min() >= 0 and out.max() <= 1


def test_bad_sources_refused():
    bad = _pairs(1)
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        score(FusionNet(), bad)
    with pytest.raises(ValueError, match=r"\(N, 2, H, W\)"):
        train_steps(FusionNet(), np.zeros((1, 3, 8, 8), np.float32), 1, seed=0)
