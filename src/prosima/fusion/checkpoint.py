"""Fusion weights on disk (a model file of kind ``fusion``) and as canonical bytes (what the
proof-of-useful-work chain trains, commits to and hashes).

``weights_to_bytes`` is deterministic: the config as sorted JSON, then every tensor of the state
dict in name order as little-endian float32, each preceded by its name and shape. A model file
(``prosima.models.artifact``) holds the config as its spec and the state dict; files written before
that format, ``{"weights": canonical bytes, "info"}``, read as its version 0. The shipped model is
``weights/fusion.pt`` in this package (such an earlier file), trained by ``prosima fusion train``.
A fusion model is named, like every model, by ``state_digest`` of its weights.
"""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prosima.fusion.network import FusionConfig, FusionNet
from prosima.models.artifact import Artifact, ArtifactError, load_artifact, save_artifact, state_digest

KIND = "fusion"
SHIPPED = Path(__file__).resolve().parent / "weights" / "fusion.pt"
_MAGIC = b"PROSIMA-FUSION-W1\n"


def weights_to_bytes(model: FusionNet) -> bytes:
    """The canonical bytes of ``model``'s config and weights."""
    out = io.BytesIO()
    out.write(_MAGIC)
    cfg = json.dumps(model.config.to_dict(), sort_keys=True).encode()
    out.write(struct.pack("<I", len(cfg)) + cfg)
    for name, t in sorted(model.state_dict().items()):
        arr = np.ascontiguousarray(t.detach().cpu().numpy(), dtype="<f4")
        key = name.encode()
        out.write(struct.pack("<I", len(key)) + key + struct.pack("<I", arr.ndim))
        out.write(struct.pack(f"<{arr.ndim}I", *arr.shape) + arr.tobytes())
    return out.getvalue()


def model_from_bytes(data: bytes, config: FusionConfig | None = None) -> FusionNet:
    """The model whose canonical bytes are ``data`` (``config``, if given, must match them)."""
    view = memoryview(data)
    if bytes(view[: len(_MAGIC)]) != _MAGIC:
        raise ValueError("not fusion weights (bad header)")
    pos = len(_MAGIC)
    try:
        (n,) = struct.unpack_from("<I", view, pos)
        cfg = FusionConfig.from_dict(json.loads(bytes(view[pos + 4 : pos + 4 + n])))
        pos += 4 + n
        if config is not None and config != cfg:
            raise ValueError(f"fusion weights are for {cfg}, not {config}")
        model = FusionNet(cfg)
        state = {}
        while pos < len(view):
            (k,) = struct.unpack_from("<I", view, pos)
            name = bytes(view[pos + 4 : pos + 4 + k]).decode()
            pos += 4 + k
            (nd,) = struct.unpack_from("<I", view, pos)
            shape = struct.unpack_from(f"<{nd}I", view, pos + 4)
            pos += 4 + 4 * nd
            size = 4 * int(np.prod(shape, dtype=np.int64))
            if pos + size > len(view):
                raise ValueError(f"fusion weights truncated in {name}")
            state[name] = torch.from_numpy(
                np.frombuffer(view[pos : pos + size], dtype="<f4").reshape(shape).copy()
            )
            pos += size
    except (struct.error, json.JSONDecodeError, KeyError, UnicodeDecodeError) as exc:
        raise ValueError(f"fusion weights malformed ({exc})") from None
    missing = set(model.state_dict()) ^ set(state)
    if missing:
        raise ValueError(f"fusion weights do not fit the network: {sorted(missing)}")
    model.load_state_dict(state)
    return model.eval()


def weights_digest(model: FusionNet) -> str:
    """``state_digest`` of the model's weights (``prosima.models.artifact``: the one rule)."""
    return state_digest(model.state_dict())


def save_fusion(path: str | Path, model: FusionNet, info: dict[str, Any] | None = None) -> Path:
    """Write a ``fusion`` model file (atomically): the config, the weights and the training record."""
    return save_artifact(path, KIND, model.config.to_dict(), model.state_dict(), info=info or {})


def read_unversioned_fusion(payload: dict[str, Any]) -> Artifact:
    """A fusion file written before model files had a format: ``{"weights": canonical bytes, "info"}``."""
    if not isinstance(payload.get("weights"), bytes):
        raise ArtifactError("not a fusion checkpoint (no canonical weight bytes)")
    try:
        model = model_from_bytes(payload["weights"])
    except ValueError as exc:
        raise ArtifactError(f"not a fusion checkpoint ({exc})") from None
    info = payload.get("info", {})
    meta = {"info": dict(info) if isinstance(info, dict) else {}}
    return Artifact(KIND, model.config.to_dict(), model.state_dict(), meta, version=0)


def load_fusion(path: str | Path | None = None) -> tuple[FusionNet, dict[str, Any]]:
    """The model and its training record from ``path`` (default: the shipped weights)."""
    path = Path(path) if path is not None else SHIPPED
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no fusion weights")
    artifact = load_artifact(path, KIND, what="fusion checkpoint", legacy=read_unversioned_fusion)
    try:
        model = FusionNet(FusionConfig.from_dict(artifact.spec))
        model.load_state_dict(artifact.state)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ArtifactError(f"{path}: weights do not fit the fusion network ({exc})") from None
    info = artifact.meta.get("info", {})
    return model.eval(), dict(info) if isinstance(info, dict) else {}
