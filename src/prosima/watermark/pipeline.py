"""Train an X-Mark marker from a dataset: the surrogate classifier on the training split, then the
generator against it; optionally write ``surrogate.pt``, ``generator.pt`` and ``train.json``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prosima.watermark.classifier import (
    TrainConfig,
    accuracy,
    save_classifier,
    train_classifier,
    weights_digest,
)
from prosima.watermark.data import Split, XrayData
from prosima.watermark.generator import save_generator
from prosima.watermark.marking import XMark
from prosima.watermark.train import GeneratorConfig, train_generator


def train_xmark(
    data: XrayData,
    split: Split,
    target: int,
    generator_config: GeneratorConfig | None = None,
    surrogate_config: TrainConfig | None = None,
    *,
    arch: str = "cnn",
    width: int = 16,
    out: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[XMark, dict[str, Any]]:
    """The trained marker and what made it (configs, seeds, surrogate test accuracy, history)."""
    gcfg = generator_config or GeneratorConfig()
    scfg = surrogate_config or TrainConfig()
    t0 = time.perf_counter()
    train, test = data.subset(split.train), data.subset(split.test)
    surrogate = train_classifier(
        train.images, train.labels, arch, scfg, n_classes=len(data.classes), width=width, log=log
    )
    t1 = time.perf_counter()
    generator, history = train_generator(train.images, train.labels, surrogate, target, gcfg, log=log)
    info = {
        "dataset": {k: v for k, v in data.source.items() if k != "path"},
        "classes": data.classes,
        "target": int(target),
        "split": {
            "seed": split.seed,
            "fractions": list(split.fractions),
            "n_train": len(split.train),
            "n_test": len(split.test),
        },
        "surrogate": {
            "arch": arch,
            "width": width,
            "config": scfg.to_dict(),
            "digest": weights_digest(surrogate),
            "test_accuracy": accuracy(surrogate, test.images, test.labels),
            "seconds": t1 - t0,
        },
        "generator": {
            "config": gcfg.to_dict(),
            "digest": weights_digest(generator),
            "history": history,
            "seconds": time.perf_counter() - t1,
        },
    }
    if out is not None:
        out = Path(out)
        save_classifier(out / "surrogate.pt", surrogate)
        save_generator(out / "generator.pt", generator)
        (out / "train.json").write_text(json.dumps(info, indent=2) + "\n")
    return XMark(generator, surrogate, gcfg.mask_fraction), info
