"""Checkpoints: one ``torch.save`` file holding a model's spec and weights, and how to rebuild it.

A training checkpoint also holds the optimiser, the sampler's random state, the step, the elapsed
time and the resolved config; exported weights hold only what inference needs. Both load with
``weights_only=True`` (tensors and plain Python values, no pickled code) and rebuild through
``build_model``. ``state_digest`` names a set of weights independently of the file format.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from prosima.errors import InputError
from prosima.models.encoder import SemanticEncoder, build_encoder
from prosima.models.unet import HybridUNet, build_generator

CHECKPOINT_FORMAT = "prosima.checkpoint.v1"
MODEL_KINDS = ("encoder", "generator")


class CheckpointError(InputError, RuntimeError):
    """A checkpoint that is missing, unreadable or not what was asked for."""


def model_kind(model: nn.Module) -> str:
    """``encoder`` or ``generator``."""
    if isinstance(model, SemanticEncoder):
        return "encoder"
    if isinstance(model, HybridUNet):
        return "generator"
    raise CheckpointError(f"not a PROSIMA model: {type(model).__name__}")


def build_model(kind: str, spec: dict[str, Any]) -> nn.Module:
    """Rebuild an untrained model of ``kind`` from its spec."""
    if kind == "encoder":
        return build_encoder(spec)
    if kind == "generator":
        return build_generator(spec)
    raise CheckpointError(f"unknown model kind {kind!r}; expected one of {MODEL_KINDS}")


def state_digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the weights as float32 (names, shapes and values, in name order)."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().to("cpu", torch.float32).contiguous()
        h.update(f"{name}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write atomically (temporary file, then rename)."""
    path = Path(path)
    for key in ("kind", "spec", "model_state"):
        if key not in payload:
            raise CheckpointError(f"a checkpoint needs '{key}'")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": CHECKPOINT_FORMAT, **payload}, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint or exported weights file (no code is unpickled)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint there")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a {CHECKPOINT_FORMAT} file")
    return payload


def load_model(path: str | Path, kind: str | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """The model in a checkpoint (float32, eval mode) and the checkpoint's payload."""
    payload = load_checkpoint(path)
    if kind is not None and payload["kind"] != kind:
        raise CheckpointError(f"{path}: holds a {payload['kind']}, not a {kind}")
    model = build_model(payload["kind"], payload["spec"])
    state = {k: v.float() if v.is_floating_point() else v for k, v in payload["model_state"].items()}
    model.load_state_dict(state)
    return model.eval(), payload
