"""Wire messages of the consensus protocol: each a CBOR array ``[kind, fields...]`` (``encoding``);
an empty transaction batch is the empty byte string.

Envelopes are never hashed or signed, so receivers skip the canonical-form check on them; what
they carry that is hashed or signed (transactions, headers, certificates) is decoded strictly where
it is used. Anything malformed raises ``EncodingError`` and counts as a fault of the sender.
Transactions travel in their canonical encoding; a block travels as its header, the ids of its
transactions (every node already holds them) and its quorum certificate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from prosima.ledger.errors import EncodingError
from prosima.ledger.log.crypto import SIGNATURE_SIZE
from prosima.ledger.log.encoding import decode, encode
from prosima.ledger.log.merkle import HASH_SIZE

MAX_IDS = 1 << 16


def _pack_ids(ids: tuple[bytes, ...]) -> bytes:
    """Ids (32 bytes each) as one byte string."""
    if any(len(i) != HASH_SIZE for i in ids):
        raise EncodingError(f"every id must be {HASH_SIZE} bytes")
    return b"".join(ids)


def _ids(value: Any, what: str) -> tuple[bytes, ...]:
    """Split a byte string of concatenated 32-byte ids."""
    if type(value) is not bytes or len(value) % HASH_SIZE or len(value) > MAX_IDS * HASH_SIZE:
        raise EncodingError(f"{what}: expected at most {MAX_IDS} ids of {HASH_SIZE} bytes")
    return tuple(value[i : i + HASH_SIZE] for i in range(0, len(value), HASH_SIZE))


def _unpack(data: bytes, kind: str, types: tuple[type, ...]) -> list[Any]:
    """The fields of a ``[kind, fields...]`` message, each of exactly the given type."""
    if type(data) is not bytes:
        raise EncodingError(f"{kind} message: expected bytes")
    value = decode(data, canonical=False)
    if type(value) is not list or len(value) != len(types) + 1 or value[0] != kind:
        raise EncodingError(f"expected a {kind} message of {len(types)} fields")
    fields = value[1:]
    for item, kind_ in zip(fields, types, strict=True):
        if type(item) is not kind_:
            raise EncodingError(f"{kind} message: a field is {type(item).__name__}, not {kind_.__name__}")
    return fields


@dataclass(frozen=True, slots=True)
class TxBatch:
    """The transactions one node signed for this round (canonical encodings)."""

    KIND: ClassVar[str] = "txs"
    txs: tuple[bytes, ...]

    def encode(self) -> bytes:
        """The encoding (empty bytes for an empty batch)."""
        return encode([self.KIND, list(self.txs)]) if self.txs else b""

    @classmethod
    def decode(cls, data: bytes) -> TxBatch:
        """Strict decoding of the envelope."""
        if data == b"":
            return cls(())
        (txs,) = _unpack(data, cls.KIND, (list,))
        if len(txs) > MAX_IDS or any(type(t) is not bytes for t in txs):
            raise EncodingError("txs message: expected a list of encoded transactions")
        return cls(tuple(txs))


@dataclass(frozen=True, slots=True)
class Proposal:
    """The leader's block header for (height, view) and the ids of its transactions in order."""

    KIND: ClassVar[str] = "proposal"
    height: int
    view: int
    header: bytes
    tx_ids: tuple[bytes, ...]

    def encode(self) -> bytes:
        """The encoding."""
        return encode([self.KIND, self.height, self.view, self.header, _pack_ids(self.tx_ids)])

    @classmethod
    def decode(cls, data: bytes) -> Proposal:
        """Strict decoding of the envelope."""
        h, view, header, ids = _unpack(data, cls.KIND, (int, int, bytes, bytes))
        return cls(h, view, header, _ids(ids, "proposal"))


@dataclass(frozen=True, slots=True)
class Prepare:
    """A node's first-phase vote: the header it accepted in this view (empty: none) with its
    transaction ids, and the ids of transactions it verified and found invalid (anyone can check the
    claim). Unsigned: the transport authenticates the sender (its rank), and prepares never leave
    the round."""

    KIND: ClassVar[str] = "prepare"
    height: int
    view: int
    header: bytes
    tx_ids: tuple[bytes, ...]
    rejected: tuple[bytes, ...] = ()

    def encode(self) -> bytes:
        """The encoding."""
        return encode(
            [self.KIND, self.height, self.view, self.header, _pack_ids(self.tx_ids), _pack_ids(self.rejected)]
        )

    @classmethod
    def decode(cls, data: bytes) -> Prepare:
        """Strict decoding of the envelope."""
        h, view, header, ids, rejected = _unpack(data, cls.KIND, (int, int, bytes, bytes, bytes))
        return cls(h, view, header, _ids(ids, "prepare"), _ids(rejected, "prepare"))


@dataclass(frozen=True, slots=True)
class Commit:
    """A node's second-phase vote: its Ed25519 signature over the header (what the stored quorum
    certificate holds), for the header with hash ``block_hash``."""

    KIND: ClassVar[str] = "commit"
    height: int
    view: int
    block_hash: bytes
    signature: bytes

    def encode(self) -> bytes:
        """The encoding."""
        return encode([self.KIND, self.height, self.view, self.block_hash, self.signature])

    @classmethod
    def decode(cls, data: bytes) -> Commit:
        """Strict decoding of the envelope."""
        h, view, digest, sig = _unpack(data, cls.KIND, (int, int, bytes, bytes))
        if len(digest) != HASH_SIZE or len(sig) != SIGNATURE_SIZE:
            raise EncodingError("commit message: bad hash or signature size")
        return cls(h, view, digest, sig)


@dataclass(frozen=True, slots=True)
class Decided:
    """A block with its certificate: the leader's broadcast, or a node's offer when that fails."""

    KIND: ClassVar[str] = "decided"
    height: int
    header: bytes
    tx_ids: tuple[bytes, ...]
    qc: bytes

    def encode(self) -> bytes:
        """The encoding."""
        return encode([self.KIND, self.height, self.header, _pack_ids(self.tx_ids), self.qc])

    @classmethod
    def decode(cls, data: bytes) -> Decided:
        """Strict decoding of the envelope."""
        h, header, ids, qc = _unpack(data, cls.KIND, (int, bytes, bytes, bytes))
        return cls(h, header, _ids(ids, "decided"), qc)
