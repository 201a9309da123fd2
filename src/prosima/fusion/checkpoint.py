"""Fusion weights on disk and as canonical bytes (for hashing, commitments and the ledger).

``weights_to_bytes`` is deterministic: the config as sorted JSON, then every tensor of the state
dict in name order as little-endian float32, each preceded by its name and shape. The shipped
model is ``weights/fusion.pt`` in this package, trained by ``prosima fusion train``.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prosima.fusion.network import FusionConfig, FusionNet

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
    """SHA-256 (hex) of ``weights_to_bytes(model)``."""
    return hashlib.sha256(weights_to_bytes(model)).hexdigest()


def save_fusion(path: str | Path, model: FusionNet, info: dict[str, Any] | None = None) -> Path:
    """Write ``{weights: canonical bytes, info}`` with ``torch.save`` (atomic rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"weights": weights_to_bytes(model), "info": info or {}}, tmp)
    tmp.replace(path)
    return path


def load_fusion(path: str | Path | None = None) -> tuple[FusionNet, dict[str, Any]]:
    """The model and its training record from ``path`` (default: the shipped weights)."""
    path = Path(path) if path is not None else SHIPPED
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no fusion weights")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a damaged file
        raise ValueError(f"{path}: not a fusion checkpoint ({exc})") from None
    if not isinstance(blob, dict) or not isinstance(blob.get("weights"), bytes):
        raise ValueError(f"{path}: not a fusion checkpoint")
    return model_from_bytes(blob["weights"]), dict(blob.get("info", {}))
