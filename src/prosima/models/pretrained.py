"""Shipped weights: export a checkpoint with its model card, and load it back after checking SHA-256.

Weights live in the package folder ``prosima/models/weights/`` as ``NAME.pt`` beside ``NAME.card.json``
(and ``NAME.md``). ``load_pretrained`` refuses a file whose SHA-256 differs from its card's. Nothing is
ever downloaded.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import torch
from torch import nn

from prosima.models.artifact import state_digest
from prosima.models.checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint
from prosima.models.model_card import ModelCard, card_paths, read_model_card, sha256_file, write_model_card

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
PRETRAINED_PREFIX = "pretrained:"


class PretrainedError(CheckpointError):
    """Shipped weights that are missing or do not match their model card."""


def _dir(weights_dir: str | Path | None) -> Path:
    return Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR


def available_pretrained(weights_dir: str | Path | None = None) -> list[str]:
    """Names that have a model card in the weights folder."""
    d = _dir(weights_dir)
    return sorted(p.name.removesuffix(".card.json") for p in d.glob("*.card.json")) if d.is_dir() else []


def verify_pretrained(name: str, weights_dir: str | Path | None = None) -> tuple[Path, ModelCard]:
    """The weights file of ``name`` and its card, after checking the file's SHA-256 against the card."""
    d = _dir(weights_dir)
    card_path, _ = card_paths(d, name)
    if not card_path.is_file():
        have = available_pretrained(d)
        raise PretrainedError(
            f"no shipped weights named {name!r} (have: {have or 'none'}); train them with "
            f"'prosima train --config configs/<...>.yaml --export {name}'"
        )
    card = read_model_card(card_path)
    path = d / card.file
    if not path.is_file():
        raise PretrainedError(f"{path}: weights named by the model card of {name!r} are missing")
    digest = sha256_file(path)
    if digest != card.sha256:
        raise PretrainedError(f"{path}: SHA-256 {digest} does not match the model card's {card.sha256}")
    return path, card


def load_pretrained(name: str, weights_dir: str | Path | None = None) -> nn.Module:
    """The shipped model ``name`` in eval mode (float32), after checking its SHA-256."""
    path, card = verify_pretrained(name, weights_dir)
    model, _ = load_model(path, card.kind)
    return model


def load_model_ref(ref: str, kind: str | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """A model from ``pretrained:NAME`` (SHA-256 checked) or from a checkpoint path."""
    if ref.startswith(PRETRAINED_PREFIX):
        path, card = verify_pretrained(ref.removeprefix(PRETRAINED_PREFIX))
        return load_model(path, kind or card.kind)
    return load_model(ref, kind)


def _curve_row(row: dict[str, Any], offset: int) -> dict[str, Any]:
    keep = {k: v for k, v in row.items() if k.startswith("val_") and isinstance(v, int | float)}
    return {"step": int(row["step"]) + offset, **keep}


def _card_lineage(card: ModelCard) -> dict[str, Any]:
    """Cumulative steps, seconds and curve of shipped weights (a card from before curves: its best row)."""
    t, best = card.training, (card.validation or {}).get("best") or {}
    steps = int(t.get("cumulative_steps", t.get("steps") or 0))
    start = [_curve_row(best, steps - int(best["step"]))] if "step" in best else []
    return {
        "cumulative_steps": steps,
        "cumulative_seconds": float(t.get("cumulative_seconds", t.get("seconds") or 0.0)),
        "curve": list(t.get("curve") or start),
    }


def training_lineage(payload: dict[str, Any], run_dir: Path, weights_dir: Path) -> dict[str, Any]:
    """Cumulative steps, seconds and validation curve of a checkpoint, counting the weights it started
    from (``init``: shipped weights or another run's checkpoint, followed back and recognised by their
    weights digest) and the run's own validations (its ``metrics.jsonl``), so a campaign over many
    sessions and restarts keeps one learning curve."""
    steps, seconds = int(payload.get("step") or 0), float(payload.get("elapsed_s", 0.0))
    init = payload.get("links", {}).get("init")
    lineage: dict[str, Any] = {}
    before: dict[str, Any] = {"cumulative_steps": 0, "cumulative_seconds": 0.0, "curve": []}
    if init and "cumulative_steps" in init:  # captured when training started (init_lineage)
        lineage["started_from"] = {k: init[k] for k in ("ref", "state_digest") if k in init}
        before = init
    elif init:
        lineage["started_from"] = init
        ref = str(init.get("ref", ""))
        if ref.startswith(PRETRAINED_PREFIX):
            card_path = card_paths(weights_dir, ref.removeprefix(PRETRAINED_PREFIX))[0]
            card = read_model_card(card_path) if card_path.is_file() else None
            if card is not None and card.state_digest == init.get("state_digest"):
                before = _card_lineage(card)
        elif Path(ref).is_file():
            source = load_checkpoint(ref)
            if state_digest(source["model_state"]) == init.get("state_digest"):
                before = training_lineage(source, Path(ref).parent, weights_dir)
    base_steps = int(before["cumulative_steps"])
    curve = list(before.get("curve") or [])
    rows: dict[int, dict[str, Any]] = {}
    metrics = run_dir / "metrics.jsonl"
    if metrics.is_file():
        for line in metrics.read_text().splitlines():
            row = json.loads(line) if line.strip() else {}
            if row.get("type") == "val" and 0 < int(row["step"]) <= steps:
                rows[int(row["step"])] = row  # a resumed run repeats steps: the last row wins
    curve += [_curve_row(rows[k], base_steps) for k in sorted(rows)]
    lineage |= {
        "cumulative_steps": base_steps + steps,
        "cumulative_seconds": round(float(before["cumulative_seconds"]) + seconds, 1),
        "curve": curve,
    }
    return lineage


def init_lineage(ref: str, weights_dir: str | Path | None = None) -> dict[str, Any]:
    """What the weights ``ref`` already carry, recorded when a run starts from them: cumulative steps,
    seconds and curve (so later exports over the same name cannot change the count)."""
    if ref.startswith(PRETRAINED_PREFIX):
        _, card = verify_pretrained(ref.removeprefix(PRETRAINED_PREFIX), weights_dir)
        return _card_lineage(card)
    payload = load_checkpoint(ref)
    lineage = training_lineage(payload, Path(ref).parent, _dir(weights_dir))
    return {k: lineage[k] for k in ("cumulative_steps", "cumulative_seconds", "curve")}


def export_pretrained(
    checkpoint: str | Path,
    name: str,
    weights_dir: str | Path | None = None,
    *,
    dtype: str = "float16",
    notes: str = "",
) -> ModelCard:
    """Write the weights of a training checkpoint as ``NAME.pt`` (inference only) with its model card."""
    if dtype not in ("float16", "float32"):
        raise ValueError(f"dtype must be float16 or float32, got {dtype!r}")
    payload = load_checkpoint(checkpoint)
    model, _ = load_model(checkpoint)
    state = model.state_dict()
    torch_dtype = getattr(torch, dtype)
    stored = {k: v.to(torch_dtype) if v.is_floating_point() else v for k, v in state.items()}
    d = _dir(weights_dir)
    path = d / f"{name}.pt"
    exported = {
        "kind": payload["kind"],
        "spec": payload["spec"],
        "model_state": stored,
        "name": name,
        "links": payload.get("links", {}),
    }
    save_checkpoint(path, exported)
    config = payload.get("config", {})
    data = config.get("data", {})
    card = ModelCard(
        name=name,
        kind=payload["kind"],
        file=path.name,
        sha256=sha256_file(path),
        state_digest=state_digest(stored),  # by float32 values: the loaded model's digest too
        parameters=sum(v.numel() for v in state.values() if v.is_floating_point()),
        dtype=dtype,
        spec=payload["spec"],
        data={k: data.get(k) for k in ("root", "contrasts", "min_brain_fraction", "max_slices_per_volume")},
        split=payload.get("split", {}),
        config=config,
        training={
            "steps": payload.get("step"),
            "seconds": round(float(payload.get("elapsed_s", 0.0)), 1),
            **training_lineage(payload, Path(checkpoint).parent, d),
            "threads": config.get("threads"),
            "torch": torch.__version__,
            "machine": platform.machine(),
            "processor": platform.processor() or None,
            "source_checkpoint_step": payload.get("step"),
        },
        validation={"best": payload.get("best"), "last": payload.get("last_validation")},
        links=payload.get("links", {}),
        notes=notes,
    )
    write_model_card(card, d)
    return card
