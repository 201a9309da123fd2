"""The ledger records of images: an anchored original (Protocol 2) and a restoration (Protocol 3).

Both are canonical CBOR payloads (no floats: a number that is not a whole one is kept as its
shortest round-trip decimal text). An anchor is indexed under its whole-image pixel digest and a
restoration under its output's, so "are these exact pixels on the ledger?" is one index lookup.

An anchor's Merkle root is over one leaf per shard: ``tag | shard id | pixel digest |
fingerprint digest`` (RFC 9162 leaf hashing), so a shard's proof of membership needs no other shard.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from prosima.ledger.encoding import decode, encode
from prosima.ledger.errors import LedgerError
from prosima.ledger.merkle import root_hash

ANCHOR_FORMAT = "prosima.image-anchor.v1"
RESTORATION_FORMAT = "prosima.restoration.v1"
LEAF_TAG = b"prosima.shard-leaf.v1"


class RecordError(LedgerError):
    """A ledger payload that is not a well-formed image record."""


def shard_leaf(shard_id: str, pixels: bytes, fingerprint: bytes) -> bytes:
    """The Merkle leaf data of one shard."""
    return LEAF_TAG + bytes.fromhex(shard_id) + pixels + fingerprint


def _hex_list(values: list[bytes]) -> list[str]:
    return [v.hex() for v in values]


@dataclass(frozen=True)
class AnchorRecord:
    """An anchored image: digests of its pixels and shards, its fingerprints, where it came from."""

    pixels: str  # hex SHA-256 of the whole image's canonical pixels
    shape: tuple[int, int]
    k: int
    shard_ids: list[str]
    shard_pixels: list[str]
    shard_fingerprints: list[str]
    fingerprint: str  # name of the fingerprint in the content-addressed store
    encoder: str  # state digest of the semantic encoder that made it
    source: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = {len(self.shard_ids), len(self.shard_pixels), len(self.shard_fingerprints)}
        if n != {self.k}:
            raise RecordError(f"an anchor of k={self.k} shards needs k ids, pixel and fingerprint digests")

    @property
    def root(self) -> bytes:
        """Merkle root over the shard leaves."""
        return root_hash(
            [
                shard_leaf(i, bytes.fromhex(p), bytes.fromhex(f))
                for i, p, f in zip(self.shard_ids, self.shard_pixels, self.shard_fingerprints, strict=True)
            ]
        )

    def payload(self) -> bytes:
        """Canonical CBOR committed to the ledger (digests as bytes, root included)."""
        return encode(
            {
                "format": ANCHOR_FORMAT,
                "pixels": bytes.fromhex(self.pixels),
                "root": self.root,
                "shape": list(self.shape),
                "k": self.k,
                "shard_ids": [bytes.fromhex(s) for s in self.shard_ids],
                "shard_pixels": [bytes.fromhex(s) for s in self.shard_pixels],
                "shard_fingerprints": [bytes.fromhex(s) for s in self.shard_fingerprints],
                "fingerprint": bytes.fromhex(self.fingerprint),
                "encoder": self.encoder,
                "source": dict(self.source),
            }
        )

    @classmethod
    def from_payload(cls, data: bytes) -> AnchorRecord:
        """Parse a committed payload, checking that its root matches its leaves."""
        body = decode_record(data, ANCHOR_FORMAT)
        try:
            record = cls(
                pixels=body["pixels"].hex(),
                shape=(int(body["shape"][0]), int(body["shape"][1])),
                k=int(body["k"]),
                shard_ids=_hex_list(body["shard_ids"]),
                shard_pixels=_hex_list(body["shard_pixels"]),
                shard_fingerprints=_hex_list(body["shard_fingerprints"]),
                fingerprint=body["fingerprint"].hex(),
                encoder=str(body["encoder"]),
                source={str(k): str(v) for k, v in body.get("source", {}).items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise RecordError(f"malformed {ANCHOR_FORMAT} record: {exc}") from None
        if record.root != body.get("root"):
            raise RecordError(f"{ANCHOR_FORMAT} record: its root does not match its shard leaves")
        return record

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready view, root included."""
        return asdict(self) | {"root": self.root.hex(), "shape": list(self.shape)}


@dataclass(frozen=True)
class RestorationRecord:
    """One restoration: what went in, what came out, which model made it from which original."""

    input_pixels: str
    output_pixels: str
    output_shard_pixels: list[str]
    original: str  # tx id (hex) of the anchor whose fingerprints conditioned it
    model: str  # state digest of the generator's weights
    model_name: str
    encoder: str
    params: dict[str, str] = field(default_factory=dict)

    def payload(self) -> bytes:
        """Canonical CBOR committed to the ledger."""
        return encode(
            {
                "format": RESTORATION_FORMAT,
                "input_pixels": bytes.fromhex(self.input_pixels),
                "output_pixels": bytes.fromhex(self.output_pixels),
                "output_shard_pixels": [bytes.fromhex(s) for s in self.output_shard_pixels],
                "original": bytes.fromhex(self.original),
                "model": self.model,
                "model_name": self.model_name,
                "encoder": self.encoder,
                "params": dict(self.params),
            }
        )

    @classmethod
    def from_payload(cls, data: bytes) -> RestorationRecord:
        """Parse a committed payload."""
        body = decode_record(data, RESTORATION_FORMAT)
        try:
            return cls(
                input_pixels=body["input_pixels"].hex(),
                output_pixels=body["output_pixels"].hex(),
                output_shard_pixels=_hex_list(body["output_shard_pixels"]),
                original=body["original"].hex(),
                model=str(body["model"]),
                model_name=str(body["model_name"]),
                encoder=str(body["encoder"]),
                params={str(k): str(v) for k, v in body.get("params", {}).items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RecordError(f"malformed {RESTORATION_FORMAT} record: {exc}") from None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return asdict(self)


def decode_record(
    data: bytes, fmt: str, error: type[LedgerError] = RecordError, what: str | None = None
) -> dict[str, Any]:
    """The CBOR map of a committed ``fmt`` payload, without its ``format`` field; ``error`` (naming
    ``what``, default ``fmt``, when the bytes do not decode) when it is not one."""
    try:
        body = decode(data)
    except LedgerError as exc:
        raise error(f"not a {what or fmt} record: {exc}") from None
    if not isinstance(body, dict) or body.pop("format", None) != fmt:
        raise error(f"not a {fmt} record")
    return body
