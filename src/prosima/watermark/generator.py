"""The X-Mark generator: a small conditional U-Net that takes an image and its saliency map and
returns a perturbation confined to the salient region.

``delta = eps * tanh(u(image, saliency)) * mask``, so ``|delta| <= eps`` (L-infinity, in [0, 1]
units; default 8/255) and ``delta == 0`` outside ``mask`` by construction. Clamping the marked image
to [0, 1] only shrinks ``|delta|``. With 8-bit originals and ``eps`` a multiple of 1/255, rounding the
marked image to 8 bits keeps both properties. Its model file is of kind ``xmark-generator``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from prosima.models.artifact import save_artifact
from prosima.watermark.classifier import GENERATOR_KIND, ModelFileError, load_model_file

DEFAULT_EPS = 8 / 255
ARCH = "xmark-unet"


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1),
        nn.GroupNorm(1, cout),
        nn.SiLU(),
        nn.Conv2d(cout, cout, 3, padding=1),
        nn.GroupNorm(1, cout),
        nn.SiLU(),
    )


class MarkGenerator(nn.Module):
    """U-Net with ``depth`` down/up levels (widths ``width * 2**level``); inputs of any size are
    reflect-padded to a multiple of ``2**depth`` and cropped back."""

    arch = ARCH

    def __init__(self, eps: float = DEFAULT_EPS, width: int = 16, depth: int = 2) -> None:
        super().__init__()
        if not 0.0 < eps <= 1.0:
            raise ValueError(f"eps must be in (0, 1], got {eps}")
        self.eps = float(eps)
        self.depth = depth
        self.spec = {"eps": float(eps), "width": width, "depth": depth}
        widths = [width * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList([_double_conv(2, widths[0])])
        self.down.extend(_double_conv(widths[i], widths[i + 1]) for i in range(depth))
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], 2, 2) for i in reversed(range(depth))
        )
        self.merge = nn.ModuleList(_double_conv(2 * widths[i], widths[i]) for i in reversed(range(depth)))
        self.out = nn.Conv2d(widths[0], 1, 1)

    def raw(self, image: torch.Tensor, saliency: torch.Tensor) -> torch.Tensor:
        """The unbounded U-Net output (N, 1, H, W) of (N, 1, H, W) image and saliency."""
        h, w = image.shape[-2:]
        m = 2**self.depth
        ph, pw = (-h) % m, (-w) % m
        x = torch.cat([image - 0.5, saliency - 0.5], dim=1)
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect" if min(h, w) > max(ph, pw) else "replicate")
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips[:-1]), strict=True):
            x = merge(torch.cat([up(x), skip], dim=1))
        return self.out(x)[..., :h, :w]

    def forward(self, image: torch.Tensor, saliency: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The perturbation ``eps * tanh(raw) * mask`` (N, 1, H, W)."""
        return self.eps * torch.tanh(self.raw(image, saliency)) * mask.to(image.dtype)


def apply_delta(image: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """The marked image, clamped to [0, 1]."""
    return (image + delta).clamp(0.0, 1.0)


def save_generator(path: str | Path, model: MarkGenerator, **extra: Any) -> Path:
    """Write an ``xmark-generator`` model file (atomically); ``extra``: plain values only."""
    return save_artifact(path, GENERATOR_KIND, dict(model.spec), model.state_dict(), **extra)


def load_generator(path: str | Path) -> MarkGenerator:
    """The generator in a file written by ``save_generator`` (or before model files had a format),
    in eval mode."""
    artifact = load_model_file(path)
    if artifact.kind != GENERATOR_KIND:
        raise ModelFileError(f"{path}: holds an {artifact.kind}, not an {ARCH}")
    try:
        model = MarkGenerator(**artifact.spec)
        model.load_state_dict(artifact.state)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"{path}: weights do not fit the {ARCH} spec ({exc})") from None
    return model.eval()
