"""Generator training in both modes is seeded (same seed, same weights) and reports its terms."""

from __future__ import annotations

import pytest

from prosima.watermark.classifier import PlainCNN, weights_digest
from prosima.watermark.train import GeneratorConfig, train_generator


@pytest.mark.parametrize("learnable", [True, False])
def test_training_is_seeded_and_reports_terms(toy, learnable):
    data = toy(48, 16, seed=1)
    surrogate = PlainCNN(width=4).eval()
    cfg = GeneratorConfig(eps=8 / 255, width=4, depth=1, epochs=1, batch=16, learnable=learnable, seed=3)
    a, history = train_generator(data.images, data.labels, surrogate, 0, cfg)
    b, _ = train_generator(data.images, data.labels, surrogate, 0, cfg)
    assert weights_digest(a) == weights_digest(b)
    assert ("specificity" in history[0]) is learnable and 0 <= history[0]["surrogate_wsr"] <= 1
    assert all(p.requires_grad for p in surrogate.parameters())  # the surrogate is handed back intact
