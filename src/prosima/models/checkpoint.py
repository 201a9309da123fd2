"""Checkpoints of restorers and encoders: model files (``prosima.models.artifact``) of kind
``generator`` or ``encoder``, and how to rebuild the model they hold.

A training checkpoint also holds the optimiser, the sampler's random state, the step, the elapsed
time and the resolved config; exported weights hold only what inference needs. Callers see one dict,
``model_state`` beside the metadata, whichever format version the file was written in (checkpoints
written before the model-file format read as its version 1). ``state_digest`` names a set of weights
independently of the file format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from prosima.models.artifact import ArtifactError, load_artifact, save_artifact
from prosima.models.artifact import state_digest as state_digest
from prosima.models.encoder import SemanticEncoder, build_encoder
from prosima.models.unet import HybridUNet, build_generator

MODEL_KINDS = ("encoder", "generator")
_FIELDS = ("kind", "spec", "model_state")

CheckpointError = ArtifactError  # the name callers catch: a checkpoint is a model file


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


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (``kind``, ``spec``, ``model_state`` and plain metadata) as a model file,
    atomically; a ``format`` key in it (from a loaded checkpoint) is not kept."""
    missing = [key for key in _FIELDS if key not in payload]
    if missing:
        raise CheckpointError(f"{path}: a checkpoint needs '{missing[0]}'")
    if payload["kind"] not in MODEL_KINDS:
        kind = payload["kind"]
        raise CheckpointError(f"{path}: unknown model kind {kind!r}; expected one of {MODEL_KINDS}")
    meta = {k: v for k, v in payload.items() if k not in (*_FIELDS, "format")}
    return save_artifact(path, payload["kind"], payload["spec"], payload["model_state"], **meta)


def load_checkpoint(path: str | Path, kind: str | None = None) -> dict[str, Any]:
    """A checkpoint or exported weights file (of ``kind``, if given) as one dict: ``kind``, ``spec``,
    ``model_state`` and the metadata (no code is unpickled)."""
    artifact = load_artifact(path, kind or MODEL_KINDS, what="checkpoint")
    return {"kind": artifact.kind, "spec": artifact.spec, "model_state": artifact.state, **artifact.meta}


def load_model(path: str | Path, kind: str | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """The model in a checkpoint (float32, eval mode) and the checkpoint's payload."""
    payload = load_checkpoint(path, kind)
    try:
        model = build_model(payload["kind"], payload["spec"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: its spec does not describe a {payload['kind']} ({exc})") from None
    state = {k: v.float() if v.is_floating_point() else v for k, v in payload["model_state"].items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path}: its weights do not fit its spec ({first})") from None
    return model.eval(), payload
