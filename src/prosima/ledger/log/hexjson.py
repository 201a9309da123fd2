"""Strict reading of JSON proof documents: exact fields, integers that are not bools, lower-case hex."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from prosima.ledger.errors import ProofError

_HEX = re.compile(r"(?:[0-9a-f]{2})*")
MAX_DOCUMENT = 16 << 20


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ProofError(f"duplicate JSON field {key!r}")
        out[key] = value
    return out


def _no_constant(name: str) -> None:
    raise ProofError(f"JSON constant {name} is not allowed")


def loads(text: str | bytes) -> Any:
    """Parse JSON, refusing duplicate fields, NaN/Infinity and oversized documents."""
    if not isinstance(text, str | bytes | bytearray):
        raise ProofError(f"expected JSON text, got {type(text).__name__}")
    if len(text) > MAX_DOCUMENT:
        raise ProofError(f"document larger than {MAX_DOCUMENT} bytes")
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except ProofError:
        raise
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ProofError(f"not valid JSON: {exc}") from None


def require_fields(obj: object, fields: Sequence[str], what: str) -> dict[str, Any]:
    """``obj`` must be an object with exactly ``fields``."""
    if not isinstance(obj, dict):
        raise ProofError(f"{what}: expected a JSON object, got {type(obj).__name__}")
    missing = [f for f in fields if f not in obj]
    extra = sorted(set(obj) - set(fields))
    if missing or extra:
        raise ProofError(f"{what}: missing fields {missing}, unexpected fields {extra}")
    return obj


def get_int(d: dict[str, Any], name: str, what: str) -> int:
    """A non-negative integer field below 2**63."""
    value = d[name]
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
        raise ProofError(f"{what}: {name} must be a non-negative integer")
    return value


def parse_hex(value: object, what: str, size: int | None = None) -> bytes:
    """Lower-case even-length hex, optionally of exactly ``size`` bytes."""
    if not isinstance(value, str) or not _HEX.fullmatch(value):
        raise ProofError(f"{what} must be lower-case hex")
    data = bytes.fromhex(value)
    if size is not None and len(data) != size:
        raise ProofError(f"{what} must be {size} bytes, got {len(data)}")
    return data


def get_hex(d: dict[str, Any], name: str, what: str, size: int | None = None) -> bytes:
    """A hex field, optionally of exactly ``size`` bytes."""
    return parse_hex(d[name], f"{what}: {name}", size)


def get_hex_list(d: dict[str, Any], name: str, what: str, size: int) -> list[bytes]:
    """A list of hex strings of ``size`` bytes each (at most 64 entries)."""
    value = d[name]
    if not isinstance(value, list) or len(value) > 64:
        raise ProofError(f"{what}: {name} must be a list of at most 64 hashes")
    return [parse_hex(v, f"{what}: {name}[{i}]", size) for i, v in enumerate(value)]
