"""Signed tree heads: a log size and root at a time, signed by a node."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prosima.ledger.crypto import (
    NODE_ID_SIZE,
    SIGN_TREE_HEAD,
    SIGNATURE_SIZE,
    NodeKey,
    node_id_of,
    verify_signature,
)
from prosima.ledger.encoding import encode
from prosima.ledger.hexjson import get_hex, get_int, require_fields
from prosima.ledger.merkle import HASH_SIZE


@dataclass(frozen=True, slots=True)
class SignedTreeHead:
    """``tree_size`` leaves with root ``root_hash`` as of ``timestamp`` (microseconds), signed."""

    tree_size: int
    root_hash: bytes
    timestamp: int
    signer: bytes
    signature: bytes

    @staticmethod
    def signing_bytes(tree_size: int, root_hash: bytes, timestamp: int) -> bytes:
        """The canonical encoding that is signed."""
        return encode({"v": 1, "tree_size": tree_size, "root_hash": root_hash, "timestamp": timestamp})

    @classmethod
    def sign(cls, key: NodeKey, tree_size: int, root_hash: bytes, timestamp: int) -> SignedTreeHead:
        """Sign a tree head with ``key``."""
        sig = key.sign(SIGN_TREE_HEAD, cls.signing_bytes(tree_size, root_hash, timestamp))
        return cls(tree_size, root_hash, timestamp, key.node_id, sig)

    def verify(self, public_key: bytes) -> bool:
        """True when ``public_key`` is the signer's (by node id) and the signature verifies."""
        if len(public_key) != 32 or node_id_of(public_key) != self.signer:
            return False
        message = self.signing_bytes(self.tree_size, self.root_hash, self.timestamp)
        return verify_signature(public_key, SIGN_TREE_HEAD, message, self.signature)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready view (bytes as lower-case hex)."""
        return {
            "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex(),
            "timestamp": self.timestamp,
            "signer": self.signer.hex(),
            "signature": self.signature.hex(),
        }

    @classmethod
    def from_json(cls, obj: object) -> SignedTreeHead:
        """Parse the JSON view strictly; raise ``ProofError`` naming the bad field."""
        d = require_fields(obj, ("tree_size", "root_hash", "timestamp", "signer", "signature"), "tree head")
        return cls(
            get_int(d, "tree_size", "tree head"),
            get_hex(d, "root_hash", "tree head", HASH_SIZE),
            get_int(d, "timestamp", "tree head"),
            get_hex(d, "signer", "tree head", NODE_ID_SIZE),
            get_hex(d, "signature", "tree head", SIGNATURE_SIZE),
        )
