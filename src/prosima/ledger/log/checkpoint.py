"""Signed store checkpoints, so that opening a store need not re-verify every signature.

A checkpoint records the height up to which the store was fully verified, that block's hash
and log head, and a running digest over every block hash and quorum certificate up to it. It
is signed by a registered node. Opening the store re-hashes the rows below the checkpoint
(cheap) and verifies signatures only above it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from prosima.ledger.errors import EncodingError
from prosima.ledger.log.crypto import (
    CHECKPOINT_DOMAIN,
    NODE_ID_SIZE,
    SIGN_CHECKPOINT,
    SIGNATURE_SIZE,
    NodeKey,
)
from prosima.ledger.log.encoding import decode, encode, expect_map
from prosima.ledger.log.merkle import HASH_SIZE
from prosima.ledger.log.registry import Registry

EMPTY_DIGEST = bytes(HASH_SIZE)


def digest_step(digest: bytes, block_hash: bytes, qc_bytes: bytes) -> bytes:
    """Fold one block (its hash and its stored certificate) into the running digest."""
    return hashlib.sha256(
        CHECKPOINT_DOMAIN + digest + block_hash + hashlib.sha256(qc_bytes).digest()
    ).digest()


_FIELDS = {
    "v": int,
    "height": int,
    "hash": bytes,
    "log_size": int,
    "log_root": bytes,
    "digest": bytes,
    "signer": bytes,
    "sig": bytes,
}


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Blocks 0..``height`` were verified; they fold to ``digest``."""

    height: int
    block_hash: bytes
    log_size: int
    log_root: bytes
    digest: bytes
    signer: bytes
    signature: bytes

    def _body(self) -> dict[str, object]:
        return {
            "v": 1,
            "height": self.height,
            "hash": self.block_hash,
            "log_size": self.log_size,
            "log_root": self.log_root,
            "digest": self.digest,
            "signer": self.signer,
        }

    @classmethod
    def sign(
        cls, key: NodeKey, height: int, block_hash: bytes, log_size: int, log_root: bytes, digest: bytes
    ) -> Checkpoint:
        """A checkpoint signed by ``key``."""
        unsigned = cls(height, block_hash, log_size, log_root, digest, key.node_id, bytes(SIGNATURE_SIZE))
        return cls(
            height,
            block_hash,
            log_size,
            log_root,
            digest,
            key.node_id,
            key.sign(SIGN_CHECKPOINT, encode(unsigned._body())),
        )

    def verify(self, registry: Registry) -> bool:
        """True when a registered node signed it."""
        return registry.verify(self.signer, SIGN_CHECKPOINT, encode(self._body()), self.signature)

    def encode(self) -> bytes:
        """Canonical encoding."""
        return encode(self._body() | {"sig": self.signature})

    @classmethod
    def decode(cls, data: bytes) -> Checkpoint:
        """Decode strictly; raise ``EncodingError`` for anything else."""
        v = expect_map(decode(data), _FIELDS, "checkpoint")
        if v["v"] != 1 or len(v["signer"]) != NODE_ID_SIZE or len(v["sig"]) != SIGNATURE_SIZE:
            raise EncodingError("checkpoint: bad version, signer or signature length")
        return cls(v["height"], v["hash"], v["log_size"], v["log_root"], v["digest"], v["signer"], v["sig"])
