"""Frozen feature networks for the perceptual loss.

No ImageNet VGG can be downloaded here, so the default feature network is the project's own frozen
semantic encoder (its per-stage feature maps). A user who has VGG-16 weights on disk (a torchvision
``vgg16`` state dict, whole model or ``features`` only) can point the loss at that file instead; the
network is rebuilt in plain torch, so torchvision is not needed.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
VGG_LAYERS = {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_3": 22}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def freeze(model: nn.Module) -> nn.Module:
    """Eval mode and no gradients for the parameters (the input can still carry gradients)."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


class EncoderFeatures(nn.Module):
    """The per-stage feature maps of a frozen ``SemanticEncoder``."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = freeze(encoder)

    def train(self, mode: bool = True) -> EncoderFeatures:  # stays frozen
        return super().train(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.encoder.features(x)


def vgg16_features(upto: str = "relu3_3") -> nn.Sequential:
    """VGG-16's convolutional stack up to and including the named ReLU (torchvision layer indices)."""
    layers: list[nn.Module] = []
    prev = 3
    for v in VGG16_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(prev, int(v), 3, padding=1), nn.ReLU(inplace=False)]
            prev = int(v)
    return nn.Sequential(*layers[: VGG_LAYERS[upto] + 1])


class VGGFeatures(nn.Module):
    """Frozen VGG-16 feature maps of a grey image in [0, 1] (repeated to RGB, ImageNet-normalised)."""

    def __init__(
        self, state_dict: dict[str, torch.Tensor], layers: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3")
    ) -> None:
        super().__init__()
        unknown = sorted(set(layers) - set(VGG_LAYERS))
        if unknown:
            raise ValueError(f"unknown VGG layers {unknown}; choose from {sorted(VGG_LAYERS)}")
        self.taps = sorted(VGG_LAYERS[n] for n in layers)
        self.net = vgg16_features(max(layers, key=VGG_LAYERS.__getitem__))
        feats = {
            k.removeprefix("features."): v for k, v in state_dict.items() if not k.startswith("classifier.")
        }
        wanted = self.net.state_dict().keys()
        missing = sorted(set(wanted) - set(feats))
        if missing:
            raise ValueError(f"VGG-16 weights lack {missing[:4]}{'...' if len(missing) > 4 else ''}")
        self.net.load_state_dict({k: feats[k] for k in wanted})
        freeze(self.net)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    @classmethod
    def from_file(
        cls, path: str | Path, layers: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3")
    ) -> VGGFeatures:
        """Load a local VGG-16 state dict file (never downloads)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no VGG-16 weights file there")
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise ValueError(f"{path}: expected a state dict")
        return cls(state, layers)

    def train(self, mode: bool = True) -> VGGFeatures:  # stays frozen
        return super().train(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = (x.expand(-1, 3, -1, -1) - self.mean) / self.std
        out = []
        for i, layer in enumerate(self.net):
            h = layer(h)
            if i in self.taps:
                out.append(h)
        return out


def feature_network(spec: str, encoder: nn.Module | None) -> nn.Module:
    """``"encoder"`` (the frozen semantic encoder's features) or a path to a local VGG-16 weights file."""
    if spec == "encoder":
        if encoder is None:
            raise ValueError("the perceptual loss on 'encoder' features needs a semantic encoder")
        return EncoderFeatures(encoder)
    return VGGFeatures.from_file(spec)
