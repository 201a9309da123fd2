"""The perturbation never exceeds eps and is zero outside the mask, by construction, for any weights
and sizes, and after 8-bit rounding; generator files round-trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from prosima.models.artifact import load_artifact
from prosima.watermark.classifier import (
    ModelFileError,
    PlainCNN,
    SmallResNet,
    load_classifier,
    save_classifier,
    weights_digest,
)
from prosima.watermark.generator import MarkGenerator, apply_delta, load_generator, save_generator
from prosima.watermark.marking import quantise


def _inputs(seed: int, n: int = 4, h: int = 28, w: int = 28) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 1, h, w), generator=g).float() / 255
    sal = torch.rand(n, 1, h, w, generator=g)
    mask = (torch.rand(n, 1, h, w, generator=g) < 0.3).float()
    return x, sal, mask


@pytest.mark.parametrize(("eps", "scale", "shape"), [(4 / 255, 1.0, (28, 28)), (8 / 255, 1e4, (27, 33))])
def test_delta_is_bounded_and_masked(eps, scale, shape):
    torch.manual_seed(1)
    gen = MarkGenerator(eps=eps, width=4, depth=2)
    with torch.no_grad():
        gen.out.weight.mul_(scale)  # saturate tanh
    x, sal, mask = _inputs(2, h=shape[0], w=shape[1])
    with torch.no_grad():
        delta = gen(x, sal, mask)
    assert delta.shape == x.shape
    assert float(delta.abs().max()) <= eps + 1e-7
    assert torch.all(delta[mask == 0] == 0)
    if scale > 1:
        assert float(delta.abs().max()) > 0.99 * eps  # the bound is reached, not just respected
    marked = apply_delta(x, delta)
    assert float(marked.min()) >= 0 and float(marked.max()) <= 1
    assert float((marked - x).abs().max()) <= eps + 1e-7 and torch.all(marked[mask == 0] == x[mask == 0])
    rounded = quantise(marked[:, 0].numpy())
    step = np.abs(rounded - x[:, 0].numpy())
    assert step.max() <= eps + 1e-6 and np.all(step[mask[:, 0].numpy() == 0] == 0)


def test_generator_file_round_trip(tmp_path):
    torch.manual_seed(0)
    gen = MarkGenerator(eps=4 / 255, width=4, depth=1)
    path = save_generator(tmp_path / "g.pt", gen)
    again = load_generator(path)
    x, sal, mask = _inputs(0)
    with torch.no_grad():
        assert torch.equal(gen.eval()(x, sal, mask), again(x, sal, mask))
    assert again.eps == 4 / 255
    save_classifier(tmp_path / "c.pt", PlainCNN(width=4))
    with pytest.raises(ModelFileError, match="not an xmark-unet"):
        load_generator(tmp_path / "c.pt")
    with pytest.raises(ValueError, match="eps"):
        MarkGenerator(eps=0.0)


def test_model_files_from_before_the_format_still_load_with_the_same_digest(tmp_path):
    torch.manual_seed(0)
    gen, cnn = MarkGenerator(eps=4 / 255, width=4, depth=1).eval(), SmallResNet(width=4).eval()
    torch.save({"arch": "xmark-unet", "spec": dict(gen.spec), "state": gen.state_dict()}, tmp_path / "g.pt")
    torch.save(
        {"arch": "resnet", "spec": dict(cnn.spec), "state": cnn.state_dict(), "note": "x"}, tmp_path / "c.pt"
    )
    again_gen, again_cnn = load_generator(tmp_path / "g.pt"), load_classifier(tmp_path / "c.pt")
    assert weights_digest(again_gen) == weights_digest(gen) and weights_digest(again_cnn) == weights_digest(
        cnn
    )
    assert isinstance(again_cnn, SmallResNet) and again_gen.eps == 4 / 255
    # re-saved in the current format: the kind and spec say what it is, the digest is unchanged
    resaved = load_artifact(save_classifier(tmp_path / "c2.pt", again_cnn, note="x"))
    assert (resaved.kind, resaved.spec["arch"], resaved.version, resaved.meta) == (
        "xmark-classifier",
        "resnet",
        2,
        {"note": "x"},
    )
    assert resaved.digest == weights_digest(cnn)
    torch.save({"arch": "vit", "spec": {}, "state": {}}, tmp_path / "vit.pt")
    with pytest.raises(ModelFileError, match="not an X-Mark model file"):
        load_classifier(tmp_path / "vit.pt")
    with pytest.raises(ModelFileError, match="not a classifier"):
        load_classifier(tmp_path / "g.pt")
