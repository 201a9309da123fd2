"""The ledger records of images: an anchored original (Protocol 2) and a restoration (Protocol 3).

Both are canonical CBOR payloads (no floats: a number that is not a whole one is kept as its
shortest round-trip decimal text). An anchor is indexed under its whole-image pixel digest and a
restoration under its output's, so "are these exact pixels on the ledger?" is one index lookup.

An anchor's Merkle root is over one leaf per shard: ``tag | shard id | pixel digest |
fingerprint digest`` (RFC 9162 leaf hashing), so a shard's proof of membership needs no other shard.

A ledger cannot forget, so no record holds what identifies a person (HIPAA identifiers, GDPR
personal data), nor a file name (which may name one). An anchor (format v2) says in clear only how
its image was stored (``SOURCE_KEYS``: format, modality, slice index, slice axis, intensity range)
and ties it to its instance by a keyed ``link`` (``prosima.provenance.site_key``): HMAC digests of
its Study / Series / SOP Instance UIDs, or of its file name for other formats, under a site key kept
off the ledger. Both are enforced here: a record with any other source key, or an unknown link
field, is refused. A v1 anchor (identifiers and file name in clear) is still read, for its digests:
its clear identifiers are dropped on reading, so no report or export repeats them, and it carries
no link. A restoration's ``params`` no longer name its input and output files; the
``WITHHELD_PARAMS`` of older restorations are dropped on reading for the same reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from prosima.ledger.errors import LedgerError
from prosima.ledger.log.encoding import decode, encode
from prosima.ledger.log.merkle import root_hash

ANCHOR_FORMAT = "prosima.image-anchor.v2"
ANCHOR_FORMAT_V1 = "prosima.image-anchor.v1"
RESTORATION_FORMAT = "prosima.restoration.v1"
LEAF_TAG = b"prosima.shard-leaf.v1"
SOURCE_KEYS = ("format", "modality", "slice", "axis", "range")
LINK_KEYS = {"key": 8, "study": 32, "series": 32, "sop": 32, "file": 32}  # field -> digest bytes
WITHHELD_PARAMS = ("input_file", "output_file")


class RecordError(LedgerError):
    """A ledger payload that is not a well-formed image record."""


def shard_leaf(shard_id: str, pixels: bytes, fingerprint: bytes) -> bytes:
    """The Merkle leaf data of one shard."""
    return LEAF_TAG + bytes.fromhex(shard_id) + pixels + fingerprint


def _hex_list(values: list[bytes]) -> list[str]:
    return [v.hex() for v in values]


def _check_link(link: dict[str, str]) -> None:
    for name, value in link.items():
        size = LINK_KEYS.get(name)
        if size is None or len(value) != 2 * size or value.strip("0123456789abcdef"):
            raise RecordError(
                f"link field {name!r} is not one of {sorted(LINK_KEYS)} as lower-case hex digest"
            )
    if link and "key" not in link:
        raise RecordError("a link names the site key that made it ('key')")


@dataclass(frozen=True)
class AnchorRecord:
    """An anchored image: digests of its pixels and shards, its fingerprints, how it was stored
    (``source``, nothing about a person) and the keyed link to its instance (``link``)."""

    pixels: str  # hex SHA-256 of the whole image's canonical pixels
    shape: tuple[int, int]
    k: int
    shard_ids: list[str]
    shard_pixels: list[str]
    shard_fingerprints: list[str]
    fingerprint: str  # name of the fingerprint in the content-addressed store
    encoder: str  # state digest of the semantic encoder that made it
    source: dict[str, str] = field(default_factory=dict)
    link: dict[str, str] = field(default_factory=dict)  # keyed digests of its identifiers (hex)
    version: int = 2  # 1: read from a v1 record (clear identifiers dropped, no link)

    def __post_init__(self) -> None:
        n = {len(self.shard_ids), len(self.shard_pixels), len(self.shard_fingerprints)}
        if n != {self.k}:
            raise RecordError(f"an anchor of k={self.k} shards needs k ids, pixel and fingerprint digests")
        extra = sorted(set(self.source) - set(SOURCE_KEYS))
        if extra:
            raise RecordError(
                f"an anchor's source holds only {', '.join(SOURCE_KEYS)}, not {', '.join(extra)}: "
                "identifiers and file names go on the ledger only as keyed links"
            )
        _check_link(self.link)

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
        if self.version != 2:
            raise RecordError(f"a v{self.version} anchor record is read, never written again")
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
                "link": {k: bytes.fromhex(v) for k, v in self.link.items()},
            }
        )

    @classmethod
    def from_payload(cls, data: bytes) -> AnchorRecord:
        """Parse a committed payload (v2, or v1 without its clear identifiers), checking that its
        root matches its leaves."""
        fmt, body = decode_any(data, (ANCHOR_FORMAT, ANCHOR_FORMAT_V1))
        try:
            source = {str(k): str(v) for k, v in body.get("source", {}).items()}
            if fmt == ANCHOR_FORMAT_V1:
                source = {k: v for k, v in source.items() if k in SOURCE_KEYS}
            link = {str(k): v.hex() for k, v in body.get("link", {}).items()}
            record = cls(
                pixels=body["pixels"].hex(),
                shape=(int(body["shape"][0]), int(body["shape"][1])),
                k=int(body["k"]),
                shard_ids=_hex_list(body["shard_ids"]),
                shard_pixels=_hex_list(body["shard_pixels"]),
                shard_fingerprints=_hex_list(body["shard_fingerprints"]),
                fingerprint=body["fingerprint"].hex(),
                encoder=str(body["encoder"]),
                source=source,
                link=link,
                version=1 if fmt == ANCHOR_FORMAT_V1 else 2,
            )
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise RecordError(f"malformed {fmt} record: {exc}") from None
        if record.root != body.get("root"):
            raise RecordError(f"{fmt} record: its root does not match its shard leaves")
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

    def __post_init__(self) -> None:
        named = [k for k in WITHHELD_PARAMS if k in self.params]
        if named:
            raise RecordError(f"a restoration's params must not name files ({', '.join(named)})")

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
        """Parse a committed payload (the file names older ones recorded in ``params`` dropped)."""
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
                params={
                    str(k): str(v) for k, v in body.get("params", {}).items() if k not in WITHHELD_PARAMS
                },
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RecordError(f"malformed {RESTORATION_FORMAT} record: {exc}") from None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return asdict(self)


def decode_any(
    data: bytes, formats: tuple[str, ...], error: type[LedgerError] = RecordError, what: str | None = None
) -> tuple[str, dict[str, Any]]:
    """The format and CBOR map (without its ``format`` field) of a payload of one of ``formats``;
    ``error`` (naming ``what``, default the first format, when the bytes do not decode) otherwise."""
    try:
        body = decode(data)
    except LedgerError as exc:
        raise error(f"not a {what or formats[0]} record: {exc}") from None
    fmt = body.pop("format", None) if isinstance(body, dict) else None
    if not isinstance(fmt, str) or fmt not in formats:
        raise error(f"not a {' or '.join(formats)} record")
    return fmt, body


def decode_record(
    data: bytes, fmt: str, error: type[LedgerError] = RecordError, what: str | None = None
) -> dict[str, Any]:
    """The CBOR map of a committed ``fmt`` payload, without its ``format`` field; ``error`` (naming
    ``what``, default ``fmt``, when the bytes do not decode) when it is not one."""
    return decode_any(data, (fmt,), error, what)[1]
