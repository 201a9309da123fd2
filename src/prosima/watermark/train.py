"""Train the X-Mark generator against a frozen surrogate classifier (see ``objective``).

Saliency maps and masks come from the frozen surrogate once, before training. Two modes:

- ``learnable=False`` (the paper's efficacy term as stated): marked non-target images must read as
  the target class to the frozen surrogate. Such a mark is an adversarial perturbation of the
  surrogate, and it partly transfers to clean models that never saw it.
- ``learnable=True`` (default): a copy of the surrogate is fine-tuned, each epoch, on the training
  set with its target-class images marked by the current generator (clean labels: what a thief's
  model sees); efficacy is measured on that poisoned copy while the specificity term keeps the frozen
  clean surrogate right on the marked images. The mark becomes a pattern that is learnt from the
  release rather than one that fools every model.

Every random choice (initialisation, batch order) comes from ``GeneratorConfig.seed``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from prosima.watermark.generator import DEFAULT_EPS, MarkGenerator, apply_delta
from prosima.watermark.objective import ObjectiveWeights, mark_loss
from prosima.watermark.saliency import eigencam, top_fraction_mask


@dataclass(frozen=True)
class GeneratorConfig:
    """The mark's budget (``eps``, L-infinity in [0, 1] units; ``mask_fraction`` of the pixels, the
    most salient) and how the generator is trained."""

    eps: float = DEFAULT_EPS
    mask_fraction: float = 0.25
    width: int = 16
    depth: int = 2
    epochs: int = 10
    batch: int = 32
    lr: float = 1e-3
    learnable: bool = True
    poison_lr: float = 1e-3
    seed: int = 0
    weights: ObjectiveWeights = field(default_factory=ObjectiveWeights)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def saliency_inputs(
    surrogate: nn.Module, images: np.ndarray, mask_fraction: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(N, 1, H, W) tensors of the images, their EigenCAM maps and top-fraction masks."""
    sal = eigencam(surrogate, images)
    mask = top_fraction_mask(sal, mask_fraction)
    as_t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32))[:, None]  # noqa: E731
    return as_t(images), as_t(sal), as_t(mask)


def train_generator(
    images: np.ndarray,
    labels: np.ndarray,
    surrogate: nn.Module,
    target: int,
    config: GeneratorConfig | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[MarkGenerator, list[dict[str, float]]]:
    """Train a generator on the non-target images of (N, H, W) ``images``; returns it (eval mode)
    and one dict of mean loss terms (and the surrogate's success rate) per epoch."""
    cfg = config or GeneratorConfig()
    labels = np.asarray(labels)
    others = np.flatnonzero(labels != target)
    if len(others) == 0:
        raise ValueError("no non-target images to train the generator on")
    surrogate.eval()
    for p in surrogate.parameters():
        p.requires_grad_(False)
    x_all, sal_all, mask_all = saliency_inputs(surrogate, images, cfg.mask_fraction)
    y_all = torch.as_tensor(labels, dtype=torch.long)
    is_target = y_all == target
    x, sal, mask, y = x_all[others], sal_all[others], mask_all[others], y_all[others]
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = MarkGenerator(cfg.eps, cfg.width, cfg.depth)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    poisoned = copy.deepcopy(surrogate) if cfg.learnable else None
    history = []
    try:
        for epoch in range(cfg.epochs):
            if poisoned is not None:
                _poison_pass(poisoned, model, x_all, sal_all, mask_all, y_all, is_target, cfg, gen)
            model.train()
            order = torch.randperm(len(x), generator=gen)
            sums: dict[str, float] = {}
            hits = 0
            for start in range(0, len(x), cfg.batch):
                idx = order[start : start + cfg.batch]
                delta = model(x[idx], sal[idx], mask[idx])
                marked = apply_delta(x[idx], delta)
                clean_logits = surrogate(marked)
                if poisoned is None:
                    logits, extra = clean_logits, {}
                else:
                    logits, extra = poisoned(marked), {"clean_logits": clean_logits, "labels": y[idx]}
                loss, terms = mark_loss(logits, target, x[idx], marked, delta, cfg.weights, **extra)
                opt.zero_grad()
                loss.backward()
                opt.step()
                hits += int((clean_logits.argmax(1) == target).sum())
                for name, value in {"loss": loss.item(), **terms}.items():
                    sums[name] = sums.get(name, 0.0) + value * len(idx)
            row = {name: value / len(x) for name, value in sums.items()} | {"surrogate_wsr": hits / len(x)}
            history.append(row)
            if log:
                log(f"epoch {epoch + 1}/{cfg.epochs} " + " ".join(f"{k} {v:.4f}" for k, v in row.items()))
    finally:
        for p in surrogate.parameters():
            p.requires_grad_(True)
    return model.eval(), history


def _poison_pass(
    poisoned: nn.Module,
    model: MarkGenerator,
    x: torch.Tensor,
    sal: torch.Tensor,
    mask: torch.Tensor,
    y: torch.Tensor,
    is_target: torch.Tensor,
    cfg: GeneratorConfig,
    gen: torch.Generator,
) -> None:
    """One epoch of fine-tuning ``poisoned`` on the training set with its target images marked by the
    current generator (labels untouched); leaves it in eval mode with frozen parameters."""
    for p in poisoned.parameters():
        p.requires_grad_(True)
    opt = torch.optim.Adam(poisoned.parameters(), lr=cfg.poison_lr)
    model.eval()
    poisoned.train()
    order = torch.randperm(len(x), generator=gen)
    for start in range(0, len(x), cfg.batch):
        idx = order[start : start + cfg.batch]
        if len(idx) < 2:
            continue
        batch = x[idx]
        with torch.no_grad():
            marked = apply_delta(batch, model(batch, sal[idx], mask[idx]))
        batch = torch.where(is_target[idx][:, None, None, None], marked, batch)
        loss = F.cross_entropy(poisoned(batch), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    poisoned.eval()
    for p in poisoned.parameters():
        p.requires_grad_(False)
