"""Small X-ray classifiers (a plain CNN and a ResNet-ish one, any input size through global pooling),
a seeded trainer used for the owner's surrogate and for suspicious models, and their model files.

X-Mark models are stored as model files (``prosima.models.artifact``) of kind ``xmark-classifier``
(the spec holds the ``arch``) or ``xmark-generator``; files written before that format,
``torch.save({"arch", "spec", "state", **extra})``, read as its version 0. Either loads with
``weights_only=True``, so no pickled code runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from prosima.models.artifact import Artifact, ArtifactError, load_artifact, save_artifact, state_digest

CLASSIFIER_KIND = "xmark-classifier"
GENERATOR_KIND = "xmark-generator"
XMARK_KINDS = (CLASSIFIER_KIND, GENERATOR_KIND)
_UNVERSIONED_GENERATOR_ARCH = "xmark-unet"  # the generator's ``arch`` in files without a format

ModelFileError = ArtifactError  # the name callers catch: an X-Mark model file is a model file


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class PlainCNN(nn.Module):
    """Four conv blocks (each but the last followed by 2 x 2 max pooling), global average pooling and
    a linear head. ``cam_layer`` is the last conv block."""

    arch = "cnn"

    def __init__(self, n_classes: int = 2, width: int = 16, in_channels: int = 1) -> None:
        super().__init__()
        self.spec = {"n_classes": n_classes, "width": width, "in_channels": in_channels}
        w = width
        self.features = nn.Sequential(
            _block(in_channels, w),
            nn.MaxPool2d(2),
            _block(w, 2 * w),
            nn.MaxPool2d(2),
            _block(2 * w, 4 * w),
            nn.MaxPool2d(2),
            _block(4 * w, 4 * w),
        )
        self.head = nn.Linear(4 * w, n_classes)

    @property
    def cam_layer(self) -> nn.Module:
        return self.features[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x - 0.5).mean(dim=(2, 3)))


class _Residual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.skip = (
            nn.Identity()
            if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.skip(x))


class SmallResNet(nn.Module):
    """A stem and three residual stages (strides 1, 2, 2), global average pooling, a linear head.
    ``cam_layer`` is the last stage."""

    arch = "resnet"

    def __init__(self, n_classes: int = 2, width: int = 16, in_channels: int = 1) -> None:
        super().__init__()
        self.spec = {"n_classes": n_classes, "width": width, "in_channels": in_channels}
        w = width
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU()
        )
        self.stages = nn.Sequential(_Residual(w, w, 1), _Residual(w, 2 * w, 2), _Residual(2 * w, 4 * w, 2))
        self.head = nn.Linear(4 * w, n_classes)

    @property
    def cam_layer(self) -> nn.Module:
        return self.stages[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x - 0.5)).mean(dim=(2, 3)))


ARCHS: dict[str, type[nn.Module]] = {"cnn": PlainCNN, "resnet": SmallResNet}


def build_classifier(arch: str, **spec: Any) -> nn.Module:
    """An untrained classifier of ``arch`` (``cnn`` or ``resnet``)."""
    if arch not in ARCHS:
        raise ModelFileError(f"unknown classifier arch {arch!r}; expected one of {sorted(ARCHS)}")
    return ARCHS[arch](**spec)


@dataclass(frozen=True)
class TrainConfig:
    """How a classifier is trained (Adam, cross-entropy, class-balanced loss weights); ``shift`` is
    the largest random translation in pixels (augmentation, reflect padding; 0 turns it off)."""

    epochs: int = 10
    batch: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    shift: int = 0
    balanced: bool = True
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _as_batch(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    return x[:, None] if x.ndim == 3 else x


def _shift(x: torch.Tensor, shift: int, gen: torch.Generator) -> torch.Tensor:
    if shift <= 0:
        return x
    dy, dx = (int(v) for v in torch.randint(-shift, shift + 1, (2,), generator=gen))
    padded = F.pad(x, (shift, shift, shift, shift), mode="reflect")
    h, w = x.shape[-2:]
    return padded[..., shift + dy : shift + dy + h, shift + dx : shift + dx + w]


def train_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    arch: str = "cnn",
    config: TrainConfig | None = None,
    *,
    n_classes: int | None = None,
    width: int = 16,
    model: nn.Module | None = None,
    log: Callable[[str], None] | None = None,
) -> nn.Module:
    """Train a classifier on (N, H, W) images in [0, 1]; every random choice comes from
    ``config.seed``. Pass ``model`` to fine-tune it instead (it is trained in place). Returns the model
    in eval mode."""
    cfg = config or TrainConfig()
    y = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    k = int(n_classes or (int(y.max()) + 1))
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    if model is None:
        model = build_classifier(arch, n_classes=k, width=width)
    x = _as_batch(images)
    counts = torch.bincount(y, minlength=k).float().clamp(min=1)
    weight = (counts.sum() / (k * counts)) if cfg.balanced else None
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    model.train()
    for epoch in range(cfg.epochs):
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for start in range(0, len(x), cfg.batch):
            idx = order[start : start + cfg.batch]
            if len(idx) < 2:
                continue
            loss = F.cross_entropy(model(_shift(x[idx], cfg.shift, gen)), y[idx], weight=weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        if log:
            log(f"epoch {epoch + 1}/{cfg.epochs} loss {total / len(x):.4f}")
    return model.eval()


@torch.no_grad()
def predict_proba(model: nn.Module, images: np.ndarray | torch.Tensor, batch: int = 256) -> np.ndarray:
    """Softmax probabilities (N, classes) of (N, H, W) images in [0, 1]."""
    model.eval()
    x = _as_batch(images)
    out = [F.softmax(model(x[i : i + batch]), dim=1) for i in range(0, len(x), batch)]
    return torch.cat(out).double().numpy()


def accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of ``images`` classified as their label."""
    return float(np.mean(predict_proba(model, images).argmax(1) == np.asarray(labels)))


def probability_fn(model: nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    """The black-box view of ``model``: images in, class probabilities out."""
    return lambda images: predict_proba(model, images)


def label_fn(model: nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    """The label-only black-box view of ``model``: images in, predicted labels out."""
    return lambda images: predict_proba(model, images).argmax(1)


def save_classifier(path: str | Path, model: nn.Module, **extra: Any) -> Path:
    """Write an ``xmark-classifier`` model file (atomically); ``extra``: plain values only."""
    arch = getattr(model, "arch", None)
    if arch not in ARCHS:
        raise ModelFileError(f"cannot save a {type(model).__name__}: not one of {sorted(ARCHS)}")
    return save_artifact(path, CLASSIFIER_KIND, {"arch": arch, **model.spec}, model.state_dict(), **extra)


def read_unversioned_xmark(payload: dict[str, Any]) -> Artifact:
    """An X-Mark model file written before model files had a format: ``{"arch", "spec", "state",
    **extra}`` (a classifier's ``arch`` moves into its spec)."""
    for name, kind in (("arch", str), ("spec", dict), ("state", dict)):
        if not isinstance(payload.get(name), kind):
            raise ModelFileError(f"not a model file (field '{name}' missing or not a {kind.__name__})")
    arch, spec, state = payload["arch"], payload["spec"], payload["state"]
    extra = {k: v for k, v in payload.items() if k not in ("arch", "spec", "state")}
    if arch in ARCHS:
        return Artifact(CLASSIFIER_KIND, {"arch": arch, **spec}, state, extra, version=0)
    if arch == _UNVERSIONED_GENERATOR_ARCH:
        return Artifact(GENERATOR_KIND, dict(spec), state, extra, version=0)
    raise ModelFileError(f"not an X-Mark model file (arch {arch!r})")


def load_model_file(path: str | Path) -> Artifact:
    """An X-Mark model file (a classifier or a generator, in either format), ``weights_only``."""
    return load_artifact(path, XMARK_KINDS, legacy=read_unversioned_xmark)


def load_classifier(path: str | Path) -> nn.Module:
    """The classifier in a model file, in eval mode."""
    artifact = load_model_file(path)
    if artifact.kind != CLASSIFIER_KIND:
        raise ModelFileError(f"{path}: holds an {artifact.kind}, not a classifier")
    spec = dict(artifact.spec)
    arch = spec.pop("arch", None)
    try:
        model = build_classifier(str(arch), **spec)
        model.load_state_dict(artifact.state)
    except (TypeError, RuntimeError) as exc:
        raise ModelFileError(f"{path}: weights do not fit arch {arch!r} ({exc})") from None
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    return model.eval()


def weights_digest(model: nn.Module) -> str:
    """``state_digest`` of the model's weights (``prosima.models.artifact``: the one rule)."""
    return state_digest(model.state_dict())
