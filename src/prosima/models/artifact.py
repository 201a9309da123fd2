"""Model files: one on-disk form for every PROSIMA model, and one digest that names its weights.

A model file is a ``torch.save`` archive of ``{"format", "kind", "spec", "state", "meta"}``: the
format version, what the model is (``generator`` for a restorer, ``encoder``, ``xmark-classifier``,
``xmark-generator``, ``fusion``), its architecture spec, its state dict, and plain metadata (a
training checkpoint's optimiser and step, an export's name and links, a training record).

``save_artifact`` writes atomically: a temporary file in the same folder, fsync, ``os.replace``.
``load_artifact`` refuses a file above a size limit, anything but an uncompressed torch archive,
pickled objects other than tensors and plain values (``weights_only``: no code is unpickled), a
tensor larger than the bytes it was read from, an unknown format version and a model of another
kind. Format version 1 is the restorers' earlier checkpoint (``prosima.checkpoint.v1``: the same
fields with ``model_state`` for ``state`` and the metadata beside them); a file without a format key
(version 0, X-Mark and fusion files written before this format) is read by the caller's ``legacy``
reader.

``state_digest`` is the name of a set of weights wherever a model version is named or anchored.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import secrets
import zipfile
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import torch

from prosima.errors import InputError

FORMAT_VERSION = 2
ARTIFACT_FORMAT = f"prosima.artifact.v{FORMAT_VERSION}"
CHECKPOINT_V1_FORMAT = "prosima.checkpoint.v1"
DEFAULT_MAX_BYTES = 512 * 2**20
MAX_NESTING = 64
_VERSIONED = re.compile(r"prosima\.(?:artifact|checkpoint)\.v(\d+)")
_PLAIN = (type(None), bool, int, float, str, bytes, torch.Tensor)


class ArtifactError(InputError, ValueError):
    """A model file that is missing, too large, unreadable, of an unknown format or of another kind."""


@dataclass(frozen=True)
class Artifact:
    """What a model file holds; ``version`` is the format version it was read as."""

    kind: str
    spec: dict[str, Any]
    state: dict[str, torch.Tensor]
    meta: dict[str, Any] = field(default_factory=dict)
    version: int = FORMAT_VERSION

    @property
    def digest(self) -> str:
        """``state_digest`` of the weights."""
        return state_digest(self.state)


LegacyReader = Callable[[dict[str, Any]], Artifact]


def state_digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 (hex) over the tensors in name order, each as ``name|shape|`` (the shape as a Python
    tuple) followed by its values as little-endian float32. Every tensor counts by its float32 values
    whatever dtype it is stored in, so float16 exported weights, their float32 copy in memory and any
    re-saved file share one name (integer tensors, such as batch-norm counters, are exact as float32
    below 2**24)."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().to("cpu", torch.float32).contiguous()
        h.update(f"{name}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().astype("<f4", copy=False).tobytes())
    return h.hexdigest()


def _check_plain(value: Any, where: str, depth: int = 0) -> None:
    """Refuse anything a ``weights_only`` load would not read back (or nesting past ``MAX_NESTING``)."""
    if depth > MAX_NESTING:
        raise ArtifactError(f"{where}: nested more than {MAX_NESTING} levels deep")
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str | int):
                raise ArtifactError(f"{where}: key {k!r} is a {type(k).__name__}, not a str or int")
            _check_plain(v, f"{where}.{k}", depth + 1)
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]", depth + 1)
    elif not isinstance(value, _PLAIN):
        raise ArtifactError(f"{where} is a {type(value).__name__}, not a plain value or tensor")


def _check_state(state: Any) -> dict[str, torch.Tensor]:
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ArtifactError("field 'state' is not a dict of named tensors")
    return state


def save_artifact(
    path: str | Path, kind: str, spec: dict[str, Any], state: dict[str, torch.Tensor], **meta: Any
) -> Path:
    """Write a model file atomically: a reader sees the old file or the whole new one, never a part.
    ``meta``: plain values and tensors only (checked before anything is written)."""
    path = Path(path)
    if not isinstance(kind, str) or not kind:
        raise ArtifactError(f"{path}: a model file needs a kind, got {kind!r}")
    if not isinstance(spec, dict):
        raise ArtifactError(f"{path}: field 'spec' is a {type(spec).__name__}, not a dict")
    try:
        _check_state(state)
        _check_plain(spec, "spec")
        _check_plain(meta, "meta")
    except ArtifactError as exc:
        raise ArtifactError(f"{path}: cannot save {exc}") from None
    payload = {"format": ARTIFACT_FORMAT, "kind": kind, "spec": spec, "state": state, "meta": meta}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)
    return path


def _sync_folder(folder: Path) -> None:
    """Make the rename durable (where the platform lets a folder be fsynced)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def _read_archive(fh: IO[bytes], what: str, max_bytes: int) -> Any:
    """The payload of an open torch archive, after checking its size and its entries."""
    size = os.fstat(fh.fileno()).st_size
    if size > max_bytes:
        raise ArtifactError(f"{_mib(size)}, above the {_mib(max_bytes)} limit for a {what}")
    try:
        entries = zipfile.ZipFile(fh).infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise ArtifactError(f"not a readable {what} (not a torch archive)") from None
    if any(e.compress_type != zipfile.ZIP_STORED for e in entries):
        raise ArtifactError(f"not a readable {what} (compressed entries; torch writes none)")
    unpacked = sum(e.file_size for e in entries)
    if unpacked > max_bytes:
        raise ArtifactError(f"unpacks to {_mib(unpacked)}, above the {_mib(max_bytes)} limit for a {what}")
    fh.seek(0)
    try:
        return torch.load(fh, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ArtifactError(
            f"not a readable {what} (it holds pickled objects other than tensors and plain values, "
            "which are never loaded)"
        ) from None
    except Exception as exc:  # torch raises many kinds for a damaged archive
        first = (str(exc).splitlines() or [""])[0][:160]
        raise ArtifactError(f"not a readable {what} ({type(exc).__name__}: {first})") from None


def _check_tensors(value: Any, where: str, depth: int = 0) -> None:
    """Refuse a tensor claiming more elements than its storage holds (a stride-0 view that would
    blow up when copied) and nesting past ``MAX_NESTING``."""
    if depth > MAX_NESTING:
        raise ArtifactError(f"{where}: nested more than {MAX_NESTING} levels deep")
    if isinstance(value, torch.Tensor):
        claimed = value.numel() * value.element_size()
        held = value.untyped_storage().nbytes()
        if claimed > held:
            raise ArtifactError(f"tensor {where} claims {claimed} bytes but its storage holds {held}")
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_tensors(v, f"{where}.{k}", depth + 1)
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _check_tensors(v, f"{where}[{i}]", depth + 1)


def _parse(payload: Any, what: str, legacy: LegacyReader | None) -> Artifact:
    if not isinstance(payload, dict):
        raise ArtifactError(f"not a {what} (it holds a {type(payload).__name__}, not a dict)")
    fmt = payload.get("format")
    if fmt is None:
        if legacy is None:
            raise ArtifactError(f"not a {what} (no format version)")
        return legacy(payload)
    if fmt == ARTIFACT_FORMAT:
        kind, spec, state, meta = (payload.get(k) for k in ("kind", "spec", "state", "meta"))
        version = FORMAT_VERSION
    elif fmt == CHECKPOINT_V1_FORMAT:
        kind, spec, state = (payload.get(k) for k in ("kind", "spec", "model_state"))
        meta = {k: v for k, v in payload.items() if k not in ("format", "kind", "spec", "model_state")}
        version = 1
    else:
        versioned = _VERSIONED.fullmatch(fmt) if isinstance(fmt, str) else None
        if versioned:
            raise ArtifactError(
                f"model-file format version {versioned.group(1)} ({fmt}) is not one this PROSIMA reads "
                f"(versions 0 to {FORMAT_VERSION}); it was written by a newer PROSIMA"
            )
        raise ArtifactError(f"not a {what} (format {fmt!r})")
    if not isinstance(kind, str) or not kind:
        raise ArtifactError(f"not a {what} (field 'kind' missing or not a string)")
    if not isinstance(spec, dict):
        raise ArtifactError(f"not a {what} (field 'spec' missing or not a dict)")
    if not isinstance(meta, dict):
        raise ArtifactError(f"not a {what} (field 'meta' is not a dict)")
    return Artifact(kind, spec, _check_state(state), meta, version)


def load_artifact(
    path: str | Path,
    kind: str | Collection[str] | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    what: str = "model file",
    legacy: LegacyReader | None = None,
) -> Artifact:
    """Read a model file: ``kind`` (one or several) is what the caller accepts, ``what`` names the
    file in messages, ``legacy`` reads a file without a format key (else it is refused).
    ``ArtifactError`` names the problem."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: no {what} there")
    try:
        with path.open("rb") as fh:
            payload = _read_archive(fh, what, max_bytes)
        _check_tensors(payload, "payload")
        artifact = _parse(payload, what, legacy)
    except ArtifactError as exc:
        raise ArtifactError(f"{path}: {exc}") from None
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    wanted = (kind,) if isinstance(kind, str) else tuple(kind) if kind is not None else None
    if wanted is not None and artifact.kind not in wanted:
        expected = f"a {wanted[0]}" if len(wanted) == 1 else f"one of {', '.join(wanted)}"
        raise ArtifactError(f"{path}: holds a {artifact.kind}, not {expected}")
    return artifact
