"""Canonical byte encoding: deterministic CBOR (RFC 8949 section 4.2) and a strict decoder.

Only a small data model is allowed: ints (64-bit range), bytes, text, bools, None, lists,
and maps with text keys. The decoder re-encodes what it read and refuses any input that
does not come back byte for byte, so each value has exactly one accepted encoding.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cbor2

from prosima.ledger.errors import EncodingError

MAX_DEPTH = 16
_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1


_LEAF_TYPES = frozenset({bytes, str, bool, type(None)})


def _check(value: Any, depth: int = 0) -> None:
    kind = type(value)
    if kind in _LEAF_TYPES:
        return
    if kind is int and _INT_MIN <= value <= _INT_MAX:
        return
    if depth > MAX_DEPTH:
        raise EncodingError(f"value nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, bool | bytes | str):
        return
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise EncodingError(f"integer {value} is outside the 64-bit range")
        return
    if isinstance(value, list | tuple):
        for item in value:
            _check(item, depth + 1)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise EncodingError(f"map key {key!r} is not text")
            _check(item, depth + 1)
        return
    raise EncodingError(f"type {type(value).__name__} cannot be encoded canonically")


def encode(value: Any) -> bytes:
    """The deterministic CBOR encoding of ``value`` (tuples encode as lists)."""
    _check(value)
    return cbor2.dumps(value, canonical=True)


def _refuse_tag(_decoder: object, tag: object) -> None:
    raise EncodingError(f"CBOR tag {getattr(tag, 'tag', tag)} is not allowed")


def decode(data: bytes, *, canonical: bool = True) -> Any:
    """Decode canonical CBOR; raise ``EncodingError`` for anything non-canonical or malformed.

    ``canonical=False`` is for message envelopes whose bytes are never hashed, signed or stored:
    it skips the canonical-form and deep type checks (tags, indefinite lengths, duplicate keys and
    excessive nesting are still refused)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise EncodingError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise EncodingError("empty input")
    try:
        value = cbor2.loads(
            data,
            tag_hook=_refuse_tag,
            semantic_decoders={},
            allow_indefinite=False,
            allow_duplicate_keys=False,
            max_depth=MAX_DEPTH + 1,
        )
    except EncodingError:
        raise
    except Exception as exc:  # cbor2 raises several types on garbage
        raise EncodingError(f"malformed CBOR: {exc}") from None
    if not canonical:
        return value
    _check(value)
    if cbor2.dumps(value, canonical=True) != data:
        raise EncodingError("non-canonical CBOR (trailing bytes, key order, or a longer form than needed)")
    return value


def expect_map(value: Any, fields: Mapping[str, type | tuple[type, ...]], what: str) -> dict[str, Any]:
    """Check that ``value`` is a map with exactly ``fields`` of the given types; return it."""
    if not isinstance(value, dict):
        raise EncodingError(f"{what}: expected a map, got {type(value).__name__}")
    if set(value) != set(fields):
        missing = sorted(set(fields) - set(value))
        extra = sorted(set(value) - set(fields))
        raise EncodingError(f"{what}: missing fields {missing}, unexpected fields {extra}")
    for name, kind in fields.items():
        item = value[name]
        if isinstance(item, bool) and kind is not bool and not (isinstance(kind, tuple) and bool in kind):
            raise EncodingError(f"{what}: field {name!r} must be {_kind_name(kind)}, not bool")
        if not isinstance(item, kind):
            raise EncodingError(
                f"{what}: field {name!r} must be {_kind_name(kind)}, not {type(item).__name__}"
            )
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    if isinstance(kind, tuple):
        return " or ".join(k.__name__ for k in kind)
    return kind.__name__
