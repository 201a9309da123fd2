"""Train a model from a config (and export its best weights with a model card), or train the
generator by FedAvg over sites with every round's weights anchored on a ledger."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def train_from_config(
    config: Path,
    overrides: Sequence[str] = (),
    *,
    resume: bool = False,
    steps: int | None = None,
    out: Path | None = None,
    export: str | None = None,
    weights_dir: Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train an encoder or a restoration generator from the YAML ``config`` with ``overrides``
    (``section.field=VALUE``); ``steps`` and ``out`` override ``train.steps`` and ``out_dir``. With
    ``export``, the best weights are exported under that name (into ``weights_dir``). The summary."""
    from prosima.models.config import load_config
    from prosima.models.pretrained import export_pretrained
    from prosima.models.training import train

    extra = list(overrides)
    if steps is not None:
        extra.append(f"train.steps={steps}")
    if out is not None:
        extra.append(f"out_dir={out}")
    summary: dict[str, Any] = train(load_config(config, extra), resume=resume, progress=progress)
    if export:
        source = summary["best_checkpoint"] or summary["checkpoint"]
        card = export_pretrained(source, export, weights_dir)
        summary["exported"] = {"name": card.name, "file": card.file, "sha256": card.sha256}
    return summary


def train_federated(
    config: Path, ledger: Path, overrides: Sequence[str] = (), *, out: Path | None = None
) -> dict[str, Any]:
    """Protocol 1: FedAvg over the config's sites on NVIDIA FLARE's simulator, every round's
    aggregated weights anchored on ``ledger`` as a model version. The per-round summary."""
    from prosima.federated.job import run_federated
    from prosima.models.config import load_config

    summary: dict[str, Any] = run_federated(load_config(config, list(overrides)), ledger, out_dir=out)
    return summary
