"""Train the fusion network without ground truth (``loss.FusionLoss``) on random crops of the
training pairs, and score a model deterministically (``score``, used by proof-of-useful-work
validators). Every random choice (initialisation, crop positions, batch order) is seeded."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from prosima.fusion.loss import FusionLoss, LossWeights
from prosima.fusion.network import FusionConfig, FusionNet


@dataclass(frozen=True)
class FusionTrainConfig:
    """Adam steps on batches of random ``crop`` x ``crop`` windows (0: whole images)."""

    steps: int = 1500
    batch: int = 8
    crop: int = 64
    lr: float = 3e-3
    seed: int = 0
    weights: LossWeights = field(default_factory=LossWeights)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _as_sources(pairs: np.ndarray | torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(pairs, dtype=np.float32))
    if x.ndim != 4 or x.shape[1] != 2:
        raise ValueError(f"expected (N, 2, H, W) source pairs, got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("source pairs contain NaN or infinite values")
    return x


def _batch(x: torch.Tensor, size: int, crop: int, gen: torch.Generator) -> torch.Tensor:
    idx = torch.randint(0, len(x), (size,), generator=gen)
    if crop <= 0 or crop >= min(x.shape[-2:]):
        return x[idx]
    h, w = x.shape[-2:]
    ys = torch.randint(0, h - crop + 1, (size,), generator=gen)
    xs = torch.randint(0, w - crop + 1, (size,), generator=gen)
    return torch.stack([x[i, :, y : y + crop, z : z + crop] for i, y, z in zip(idx, ys, xs, strict=True)])


def train_steps(
    model: FusionNet,
    pairs: np.ndarray | torch.Tensor,
    steps: int,
    *,
    seed: int,
    lr: float = 1e-3,
    batch: int = 4,
    crop: int = 64,
    weights: LossWeights | None = None,
    log: Callable[[int, dict[str, float]], None] | None = None,
) -> FusionNet:
    """A trained copy of ``model``: ``steps`` Adam steps on seeded random crops of ``pairs``."""
    x = _as_sources(pairs)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    out = copy.deepcopy(model).train()
    loss_fn = FusionLoss(weights)
    opt = torch.optim.Adam(out.parameters(), lr=lr)
    for step in range(steps):
        src = _batch(x, batch, crop, gen)
        loss = loss_fn(out(src), src)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if log is not None:
            log(step, {"loss": float(loss.detach()), **loss_fn.terms})
    return out.eval()


@torch.no_grad()
def score(model: FusionNet, pairs: np.ndarray | torch.Tensor, weights: LossWeights | None = None) -> float:
    """``1 - mean fusion loss`` over whole ``pairs`` (higher is better), in float64 on one thread
    so that every validator computes the same value."""
    x = _as_sources(pairs).double()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        m = copy.deepcopy(model).double().eval()
        loss_fn = FusionLoss(weights)
        losses = [float(loss_fn(m(x[i : i + 1]).clamp(0, 1), x[i : i + 1])) for i in range(len(x))]
    finally:
        torch.set_num_threads(threads)
    return 1.0 - float(np.mean(losses))


def train_fusion(
    pairs: np.ndarray | torch.Tensor,
    config: FusionTrainConfig | None = None,
    net: FusionConfig | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[FusionNet, dict[str, Any]]:
    """Train a new network on (N, 2, H, W) ``pairs``; returns it and a record of what made it
    (configs, seed, loss history every 50 steps, seconds)."""
    cfg = config or FusionTrainConfig()
    torch.manual_seed(cfg.seed)
    model = FusionNet(net)
    history: list[dict[str, float]] = []
    t0 = time.perf_counter()
    acc: dict[str, float] = {}

    def record(step: int, terms: dict[str, float]) -> None:
        for k, v in terms.items():
            acc[k] = acc.get(k, 0.0) + v
        if (step + 1) % 50 == 0 or step + 1 == cfg.steps:
            n = (step % 50) + 1
            row = {"step": step + 1, **{k: v / n for k, v in acc.items()}}
            history.append(row)
            acc.clear()
            if log:
                log(
                    f"step {step + 1}/{cfg.steps} "
                    + " ".join(f"{k} {v:.4f}" for k, v in row.items() if k != "step")
                )

    model = train_steps(
        model,
        pairs,
        cfg.steps,
        seed=cfg.seed,
        lr=cfg.lr,
        batch=cfg.batch,
        crop=cfg.crop,
        weights=cfg.weights,
        log=record,
    )
    info = {
        "network": model.config.to_dict(),
        "train": cfg.to_dict(),
        "n_pairs": len(pairs),
        "history": history,
        "seconds": time.perf_counter() - t0,
    }
    return model, info


@torch.no_grad()
def fuse(model: FusionNet, sources: np.ndarray) -> np.ndarray:
    """The fused luminance (H, W) of one stacked pair (2, H, W), clamped to [0, 1]."""
    x = _as_sources(np.asarray(sources)[None])
    return model.eval()(x)[0, 0].clamp(0, 1).numpy().astype(np.float32)
