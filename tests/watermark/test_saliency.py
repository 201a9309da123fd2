"""EigenCAM is deterministic and finds a planted feature; the mask holds exactly the top fraction."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from prosima.watermark.classifier import PlainCNN, SmallResNet
from prosima.watermark.saliency import eigen_projection, eigencam, top_fraction_mask


class SpotNet(nn.Module):
    """Fixed filters: three box filters of different sizes (bright-spot detectors) and a constant."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 5, padding=2)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.bias.zero_()
            for c, r in enumerate((0, 1, 2)):
                self.conv.weight[c, 0, 2 - r : 3 + r, 2 - r : 3 + r] = 1.0 / (2 * r + 1) ** 2
            self.conv.bias[3] = 0.1
        self.act = nn.ReLU()
        self.cam_layer = self.act
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(self.conv(x)).mean(dim=(2, 3)))


def _planted(seed: int, n: int = 6, size: int = 32) -> tuple[np.ndarray, list[tuple[int, int]]]:
    rng = np.random.default_rng(seed)
    images = 0.1 * rng.random((n, size, size)).astype(np.float32)
    where = []
    for i in range(n):
        r, c = (int(v) for v in rng.integers(4, size - 9, 2))
        images[i, r : r + 5, c : c + 5] = 1.0
        where.append((r, c))
    return images, where


def test_eigencam_highlights_a_planted_square_and_is_deterministic():
    net = SpotNet()
    images, where = _planted(0)
    cam = eigencam(net, images)
    assert cam.shape == images.shape and cam.min() >= 0 and np.isclose(cam.max(), 1.0)
    for i, (r, c) in enumerate(where):
        peak = np.unravel_index(cam[i].argmax(), cam[i].shape)
        assert r - 1 <= peak[0] <= r + 5 and c - 1 <= peak[1] <= c + 5
        square = np.zeros(cam[i].shape, dtype=bool)
        square[r : r + 5, c : c + 5] = True
        assert cam[i][square].mean() > 5 * cam[i][~square].mean()
    assert np.array_equal(cam, eigencam(copy.deepcopy(net), images))
    mask = top_fraction_mask(cam, 25 / 1024)
    for i, (r, c) in enumerate(where):
        assert mask[i, r : r + 5, c : c + 5].sum() >= 20


def test_sign_follows_the_activation_not_the_svd():
    acts = torch.rand(2, 8, 6, 6, dtype=torch.float64)
    acts[:, :, 2, 3] += 5.0  # one hot spot
    proj = eigen_projection(acts)
    assert all(np.unravel_index(int(p.argmax()), p.shape) == (2, 3) for p in proj)
    assert torch.allclose(eigen_projection(acts * 2.0), 2.0 * proj)


@pytest.mark.parametrize("arch", [PlainCNN, SmallResNet])
def test_classifiers_have_a_cam_layer_at_any_size(arch):
    torch.manual_seed(0)
    net = arch(n_classes=3, width=4)
    for size in (28, 40):
        cam = eigencam(net, np.random.default_rng(0).random((3, size, size)))
        assert cam.shape == (3, size, size) and np.isfinite(cam).all()


def test_top_fraction_mask_counts_and_ties():
    sal = np.zeros((2, 10, 10))
    sal[0, 0, :5] = 1.0
    mask = top_fraction_mask(sal, 0.1)
    assert mask.sum(axis=(1, 2)).tolist() == [10, 10]
    assert mask[0, 0, :5].all()
    assert np.array_equal(mask, top_fraction_mask(sal, 0.1))
    with pytest.raises(ValueError, match="mask fraction"):
        top_fraction_mask(sal, 0.0)
