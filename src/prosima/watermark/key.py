"""The owner's watermark key: everything needed to re-create the marks and to show which released
images were marked, written as ``key.json`` beside the marker's weight files and the query set.

Fields: ``format``, ``method`` (xmark, badnets, blended), ``marker`` (what rebuilds it: eps and mask
fraction for X-Mark), ``target``, ``classes``, ``marked_fraction``, ``marked`` ([{id, sha256}] of
the released marked images' 8-bit pixels), ``files`` ({role: {path, sha256}}: generator, surrogate,
queries; paths relative to the key), ``weights`` ({role: weights digest}), ``seeds``, ``dataset``,
``verify`` ({tau, alpha}). ``digest`` is the SHA-256 of the canonical JSON of all fields (sorted
keys, no spaces, floats by their shortest round-trip repr): what a ledger commits.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from prosima.errors import InputError
from prosima.models.model_card import sha256_file

KEY_FORMAT = "prosima.watermark-key.v1"
METHODS = ("xmark", "badnets", "blended")
_HEX = set("0123456789abcdef")


class WatermarkKeyFileError(InputError, ValueError):
    """A key file that is unreadable or malformed; the message names the field."""


def _is_digest(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= _HEX


@dataclass(frozen=True)
class WatermarkKey:
    """See the module note."""

    method: str
    marker: dict[str, Any]
    target: int
    classes: list[str]
    marked_fraction: float
    marked: list[dict[str, str]]
    files: dict[str, dict[str, str]] = field(default_factory=dict)
    weights: dict[str, str] = field(default_factory=dict)
    seeds: dict[str, int] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)
    verify: dict[str, float] = field(default_factory=dict)
    format: str = KEY_FORMAT

    def __post_init__(self) -> None:
        check_fields(asdict(self))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def digest(self) -> str:
        """SHA-256 (hex) of the canonical JSON of the key."""
        text = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def marked_hashes(self) -> list[str]:
        return [m["sha256"] for m in self.marked]

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n")
        return path

    def file_path(self, role: str, key_path: str | Path) -> Path:
        """Where the ``role`` file of a key read from ``key_path`` lies; ``WatermarkKeyFileError``
        when absent."""
        if role not in self.files:
            raise WatermarkKeyFileError(f"key field 'files' has no '{role}' entry")
        return Path(key_path).parent / self.files[role]["path"]

    def check_files(self, key_path: str | Path) -> None:
        """``WatermarkKeyFileError`` unless every listed file exists with its recorded SHA-256."""
        for role, entry in self.files.items():
            path = self.file_path(role, key_path)
            if not path.is_file():
                raise WatermarkKeyFileError(f"key field 'files.{role}': {path} is missing")
            if sha256_file(path) != entry["sha256"]:
                raise WatermarkKeyFileError(
                    f"key field 'files.{role}': {path} does not match its recorded sha256"
                )


def _need(body: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    if name not in body:
        raise WatermarkKeyFileError(f"key field '{name}' is missing")
    value = body[name]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        want = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise WatermarkKeyFileError(f"key field '{name}' must be {want}, got {type(value).__name__}")
    return value


def check_fields(body: dict[str, Any]) -> None:
    """``WatermarkKeyFileError`` naming the first malformed field of a key's JSON body."""
    if _need(body, "format", str) != KEY_FORMAT:
        raise WatermarkKeyFileError(f"key field 'format' is {body['format']!r}, not {KEY_FORMAT!r}")
    if _need(body, "method", str) not in METHODS:
        raise WatermarkKeyFileError(f"key field 'method' is {body['method']!r}; expected one of {METHODS}")
    _need(body, "marker", dict)
    classes = _need(body, "classes", list)
    if not classes or not all(isinstance(c, str) for c in classes):
        raise WatermarkKeyFileError("key field 'classes' must be a non-empty list of names")
    target = _need(body, "target", int)
    if not 0 <= target < len(classes):
        raise WatermarkKeyFileError(f"key field 'target' is {target}; there are {len(classes)} classes")
    fraction = _need(body, "marked_fraction", (int, float))
    if not 0 < fraction <= 1:
        raise WatermarkKeyFileError(f"key field 'marked_fraction' is {fraction}; expected (0, 1]")
    for i, m in enumerate(_need(body, "marked", list)):
        if not isinstance(m, dict) or not isinstance(m.get("id"), str) or not _is_digest(m.get("sha256")):
            raise WatermarkKeyFileError(f"key field 'marked[{i}]' must be {{id, sha256 (64 hex digits)}}")
    for role, entry in _need(body, "files", dict).items():
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("path"), str)
            or not _is_digest(entry.get("sha256"))
        ):
            raise WatermarkKeyFileError(f"key field 'files.{role}' must be {{path, sha256 (64 hex digits)}}")
    for role, digest in _need(body, "weights", dict).items():
        if not _is_digest(digest):
            raise WatermarkKeyFileError(f"key field 'weights.{role}' must be 64 hex digits")
    for name, seed in _need(body, "seeds", dict).items():
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise WatermarkKeyFileError(f"key field 'seeds.{name}' must be an integer")
    _need(body, "dataset", dict)
    for name, value in _need(body, "verify", dict).items():
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise WatermarkKeyFileError(f"key field 'verify.{name}' must be a number")
    if body["method"] == "xmark":
        marker = body["marker"]
        for name in ("eps", "mask_fraction"):
            if not isinstance(marker.get(name), int | float) or not 0 < marker[name] <= 1:
                raise WatermarkKeyFileError(f"key field 'marker.{name}' must be a number in (0, 1]")
        for role in ("generator", "surrogate"):
            if role not in body["files"]:
                raise WatermarkKeyFileError(f"key field 'files' has no '{role}' entry (needed by xmark)")


def load_key(path: str | Path) -> WatermarkKey:
    """Read and check ``key.json``; ``WatermarkKeyFileError`` naming the problem."""
    path = Path(path)
    if not path.is_file():
        raise WatermarkKeyFileError(f"{path}: no key file there")
    try:
        body = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WatermarkKeyFileError(f"{path}: not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise WatermarkKeyFileError(f"{path}: a key file is a JSON object")
    known = set(WatermarkKey.__dataclass_fields__)
    if extra := sorted(set(body) - known):
        raise WatermarkKeyFileError(f"{path}: unknown key field '{extra[0]}'")
    try:
        check_fields(body)
    except WatermarkKeyFileError as exc:
        raise WatermarkKeyFileError(f"{path}: {exc}") from None
    return WatermarkKey(**body)
