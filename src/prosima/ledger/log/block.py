"""Blocks: a header (height, previous hash, Merkle roots, time, proposer) plus transactions
and the quorum certificate over the header."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from prosima.ledger.errors import EncodingError
from prosima.ledger.log.crypto import NODE_ID_SIZE, NodeKey, block_hash
from prosima.ledger.log.encoding import decode, encode, expect_map
from prosima.ledger.log.merkle import HASH_SIZE, MerkleTree, leaf_hash, root_hash
from prosima.ledger.log.quorum import QuorumCertificate
from prosima.ledger.log.transaction import Transaction

GENESIS_PREV = bytes(HASH_SIZE)

_FIELDS = {
    "v": int,
    "height": int,
    "prev": bytes,
    "tx_root": bytes,
    "tx_count": int,
    "log_size": int,
    "log_root": bytes,
    "time": int,
    "proposer": bytes,
}


@dataclass(frozen=True, slots=True)
class BlockHeader:
    """What a quorum signs. ``tx_root`` is the RFC 9162 root over this block's transactions;
    ``log_size``/``log_root`` are the whole log's tree head after the block."""

    height: int
    prev_hash: bytes
    tx_root: bytes
    tx_count: int
    log_size: int
    log_root: bytes
    time: int
    proposer: bytes

    def __post_init__(self) -> None:
        for name in ("height", "tx_count", "log_size", "time"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
                raise EncodingError(f"block header: {name} must be a non-negative 63-bit integer")
        for name in ("prev_hash", "tx_root", "log_root"):
            value = getattr(self, name)
            if not isinstance(value, bytes) or len(value) != HASH_SIZE:
                raise EncodingError(f"block header: {name} must be {HASH_SIZE} bytes")
        if not isinstance(self.proposer, bytes) or len(self.proposer) != NODE_ID_SIZE:
            raise EncodingError(f"block header: proposer must be {NODE_ID_SIZE} bytes")

    def encode(self) -> bytes:
        """Canonical encoding (what is hashed and signed)."""
        return encode(
            {
                "v": 1,
                "height": self.height,
                "prev": self.prev_hash,
                "tx_root": self.tx_root,
                "tx_count": self.tx_count,
                "log_size": self.log_size,
                "log_root": self.log_root,
                "time": self.time,
                "proposer": self.proposer,
            }
        )

    @property
    def hash(self) -> bytes:
        """Domain-separated SHA-256 of the encoding."""
        return block_hash(self.encode())

    @classmethod
    def decode(cls, data: bytes) -> BlockHeader:
        """Decode a canonical header; raise ``EncodingError`` for anything else."""
        v = expect_map(decode(data), _FIELDS, "block header")
        if v["v"] != 1:
            raise EncodingError(f"block header: unsupported version {v['v']}")
        return cls(
            v["height"],
            v["prev"],
            v["tx_root"],
            v["tx_count"],
            v["log_size"],
            v["log_root"],
            v["time"],
            v["proposer"],
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "height": self.height,
            "hash": self.hash.hex(),
            "prev_hash": self.prev_hash.hex(),
            "tx_root": self.tx_root.hex(),
            "tx_count": self.tx_count,
            "log_size": self.log_size,
            "log_root": self.log_root.hex(),
            "time": self.time,
            "proposer": self.proposer.hex(),
        }


@dataclass(frozen=True, slots=True)
class Block:
    """A header, its transactions in log order, and its quorum certificate."""

    header: BlockHeader
    txs: tuple[Transaction, ...]
    qc: QuorumCertificate

    @property
    def hash(self) -> bytes:
        """The header's hash."""
        return self.header.hash

    @classmethod
    def build(
        cls,
        *,
        height: int,
        prev_hash: bytes,
        txs: Sequence[Transaction],
        log: MerkleTree,
        time: int,
        proposer: bytes,
        signers: Sequence[NodeKey],
    ) -> Block:
        """Assemble the header over ``txs`` (``log`` is the log before them, left unchanged)
        and have every key in ``signers`` sign it."""
        header = build_header(
            height=height, prev_hash=prev_hash, txs=txs, log=log, time=time, proposer=proposer
        )
        return cls(header, tuple(txs), QuorumCertificate.sign(header.encode(), signers))

    def raw(self) -> RawBlock:
        """The stored form."""
        return RawBlock(
            self.header.height, self.header.encode(), self.qc.encode(), tuple(t.encode() for t in self.txs)
        )


def build_header(
    *,
    height: int,
    prev_hash: bytes,
    txs: Sequence[Transaction],
    log: MerkleTree,
    time: int,
    proposer: bytes,
) -> BlockHeader:
    """The header of a block of ``txs`` after ``log`` (the log before them, left unchanged)."""
    leaves = [tx.encode() for tx in txs]
    before = log.size
    log.extend(tx_leaf_hashes(leaves))
    try:
        log_root, log_size = log.root(), log.size
    finally:
        log.truncate(before)
    return BlockHeader(height, prev_hash, root_hash(leaves), len(leaves), log_size, log_root, time, proposer)


def tx_leaf_hashes(leaves: Sequence[bytes]) -> list[bytes]:
    """RFC 9162 leaf hashes of encoded transactions."""
    return [leaf_hash(d) for d in leaves]


@dataclass(frozen=True, slots=True)
class RawBlock:
    """A block as stored: the height it is stored at, and the encoded header, certificate and
    transactions. ``tx_ids``, ``tx_heights`` and ``tx_seqs`` are the store's index columns
    (id, block height, log index), checked when given."""

    position: int
    header: bytes
    qc: bytes
    txs: tuple[bytes, ...]
    tx_ids: tuple[bytes, ...] | None = None
    tx_heights: tuple[int, ...] | None = None
    tx_seqs: tuple[int, ...] | None = None
