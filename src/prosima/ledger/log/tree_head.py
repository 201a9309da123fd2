"""Tree heads that a third party can rely on: the log's size and root after a block, certified by
that block's quorum.

A block header already carries the whole log's tree head (``log_size``, ``log_root``) and is signed
by a quorum certificate, so the tree head after block ``h`` *is* block ``h``'s header with its
certificate: forging one takes the same threshold of node keys as forging a block, and there is
one rule for both (``QuorumCertificate.check``). The empty log (height -1) has no header and needs
no signature: it claims nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prosima.ledger.errors import EncodingError, ProofError
from prosima.ledger.log.block import BlockHeader
from prosima.ledger.log.hexjson import get_hex, get_int, require_fields
from prosima.ledger.log.merkle import EMPTY_ROOT, HASH_SIZE
from prosima.ledger.log.quorum import QuorumCertificate
from prosima.ledger.log.registry import Registry

TREE_HEAD_FIELDS = ("height", "tree_size", "root_hash", "timestamp", "header", "certificate")


@dataclass(frozen=True, slots=True)
class SignedTreeHead:
    """The tree head after block ``height``: ``tree_size`` leaves with root ``root_hash`` as of
    ``timestamp`` (microseconds), from ``header`` (encoded) under ``certificate``."""

    height: int
    tree_size: int
    root_hash: bytes
    timestamp: int
    header: bytes | None
    certificate: QuorumCertificate | None

    @classmethod
    def empty(cls) -> SignedTreeHead:
        """The head of the empty log."""
        return cls(-1, 0, EMPTY_ROOT, 0, None, None)

    @classmethod
    def of_block(cls, header_bytes: bytes, certificate: QuorumCertificate) -> SignedTreeHead:
        """The head after the block whose encoded header and certificate are given."""
        header = BlockHeader.decode(header_bytes)
        return cls(header.height, header.log_size, header.log_root, header.time, header_bytes, certificate)

    def check(self, registry: Registry) -> str | None:
        """``None`` when the certificate meets ``registry``'s quorum rule; else the problem."""
        if self.header is None or self.certificate is None:
            return None  # the empty head (from_json refuses any other head without a header)
        problem = self.certificate.check(self.header, registry)
        return None if problem is None else problem[1]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready view (bytes as lower-case hex); the size, root and time are repeated from
        the header for readers, and a parser refuses them when they disagree with it."""
        return {
            "height": self.height,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex(),
            "timestamp": self.timestamp,
            "header": None if self.header is None else self.header.hex(),
            "certificate": [] if self.certificate is None else self.certificate.to_json(),
        }

    @classmethod
    def from_json(cls, obj: object) -> SignedTreeHead:
        """Parse the JSON view strictly; raise ``ProofError`` naming the bad field."""
        what = "tree head"
        d = require_fields(obj, TREE_HEAD_FIELDS, what)
        if d["header"] is None:
            empty = d["height"] == -1 and type(d["height"]) is int and d["certificate"] == []
            sized = (get_int(d, "tree_size", what), get_int(d, "timestamp", what)) == (0, 0)
            if not (empty and sized and get_hex(d, "root_hash", what, HASH_SIZE) == EMPTY_ROOT):
                raise ProofError("tree head: a head with no header must be the empty log's")
            return cls.empty()
        try:
            header_bytes = get_hex(d, "header", what)
            certificate = QuorumCertificate.from_json(d["certificate"])
            head = cls.of_block(header_bytes, certificate)
        except EncodingError as exc:
            raise ProofError(f"tree head: {exc}") from None
        stated = (
            get_int(d, "height", what),
            get_int(d, "tree_size", what),
            get_hex(d, "root_hash", what, HASH_SIZE),
            get_int(d, "timestamp", what),
        )
        if stated != (head.height, head.tree_size, head.root_hash, head.timestamp):
            raise ProofError("tree head: height, size, root or time differ from its certified header")
        return head
