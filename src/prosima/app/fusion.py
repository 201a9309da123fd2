"""BMIF fusion: fuse an MRI with a co-registered CT, PET or SPECT image, and train the fusion
network (the shipped weights' recipe)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prosima.errors import InputError


@dataclass(frozen=True)
class Fused:
    """A fused PNG written: colour (the other source's chroma kept) or grayscale, and its size."""

    out: Path
    colour: bool
    width: int
    height: int


def fuse_files(mri: Path, other: Path, out: Path, model: Path | None = None) -> Fused:
    """Fuse ``mri`` (grayscale PNG) with ``other`` (CT grayscale, PET / SPECT colour) into the PNG
    ``out`` (refused if it exists) with ``model`` (default: the shipped weights); colour sources
    keep their chroma (YCbCr)."""
    import numpy as np
    from PIL import Image

    from prosima.fusion.checkpoint import load_fusion
    from prosima.fusion.colour import recolour
    from prosima.fusion.data import load_pair
    from prosima.fusion.train import fuse

    if out.exists():
        raise InputError(f"{out} exists; refusing to overwrite it")
    pair = load_pair(mri, other)
    net, _ = load_fusion(model)
    rgb = recolour(fuse(net, pair.stacked()), pair.chroma)
    px = np.round(rgb * 255).astype(np.uint8)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    Image.fromarray(px).save(tmp, format="PNG")
    tmp.replace(out)
    return Fused(out, pair.chroma is not None, px.shape[1], px.shape[0])


@dataclass(frozen=True)
class TrainedFusion:
    """Fusion weights written to ``out``, their digest and the training record."""

    out: Path
    digest: str
    info: dict[str, Any]


def train_fusion_model(
    out: Path,
    data: Path | None = None,
    *,
    steps: int = 1500,
    seed: int = 0,
    select: int = 0,
    log: Callable[[str], None] | None = None,
) -> TrainedFusion:
    """Train the fusion network on the training split of all three modality pairs of the Harvard
    AANLIB root ``data`` (default: the shared copy) and write its weights to ``out``."""
    import numpy as np
    import torch

    from prosima.fusion.checkpoint import save_fusion, weights_digest
    from prosima.fusion.data import PAIRS, load_pairs, split_pairs
    from prosima.fusion.network import FusionConfig
    from prosima.fusion.train import FusionTrainConfig, train_fusion

    torch.set_num_threads(2)
    sets = {p: load_pairs(data, p) for p in PAIRS}
    splits = {p: split_pairs(len(s.names), seed) for p, s in sets.items()}
    train = np.concatenate([s.sources[splits[p].train] for p, s in sets.items()])
    net = FusionConfig(select=select)
    model, info = train_fusion(train, FusionTrainConfig(steps=steps, seed=seed), net, log=log)
    info["split"] = {
        p: {"seed": seed, "train": [sets[p].names[i] for i in sp.train]} for p, sp in splits.items()
    }
    save_fusion(out, model, info)
    return TrainedFusion(out, weights_digest(model), info)
