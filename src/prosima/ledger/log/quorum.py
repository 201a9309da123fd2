"""Quorum certificates: node ids and their signatures over a block header."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from prosima.ledger.errors import EncodingError, ProofError
from prosima.ledger.log.crypto import NODE_ID_SIZE, SIGN_BLOCK, SIGNATURE_SIZE, NodeKey
from prosima.ledger.log.encoding import decode, encode, expect_map
from prosima.ledger.log.fault import FaultKind
from prosima.ledger.log.hexjson import get_hex, require_fields
from prosima.ledger.log.registry import Registry

MAX_SIGNERS = 1024  # the registry's own limit on nodes


@dataclass(frozen=True, slots=True)
class QuorumCertificate:
    """``(node_id, signature)`` pairs sorted by node id, each signing the encoded block header."""

    signatures: tuple[tuple[bytes, bytes], ...]

    def __post_init__(self) -> None:
        ids = [node_id for node_id, _ in self.signatures]
        for node_id, sig in self.signatures:
            if not isinstance(node_id, bytes) or len(node_id) != NODE_ID_SIZE:
                raise EncodingError(f"quorum certificate: node id must be {NODE_ID_SIZE} bytes")
            if not isinstance(sig, bytes) or len(sig) != SIGNATURE_SIZE:
                raise EncodingError(f"quorum certificate: signature must be {SIGNATURE_SIZE} bytes")
        if ids != sorted(set(ids)):
            raise EncodingError("quorum certificate: node ids must be sorted and distinct")

    @classmethod
    def sign(cls, header_bytes: bytes, keys: Iterable[NodeKey]) -> QuorumCertificate:
        """Every key signs the encoded header."""
        sigs = {k.node_id: k.sign(SIGN_BLOCK, header_bytes) for k in keys}
        return cls(tuple(sorted(sigs.items())))

    @property
    def signers(self) -> list[bytes]:
        """The node ids that signed."""
        return [node_id for node_id, _ in self.signatures]

    def encode(self) -> bytes:
        """Canonical encoding ``{"v": 1, "sigs": [[id, sig], ...]}``."""
        return encode({"v": 1, "sigs": [list(pair) for pair in self.signatures]})

    @classmethod
    def decode(cls, data: bytes) -> QuorumCertificate:
        """Decode a canonical certificate; raise ``EncodingError`` for anything else."""
        value = expect_map(decode(data), {"v": int, "sigs": list}, "quorum certificate")
        if value["v"] != 1:
            raise EncodingError(f"quorum certificate: unsupported version {value['v']}")
        pairs = []
        for item in value["sigs"]:
            if not (isinstance(item, list) and len(item) == 2):
                raise EncodingError("quorum certificate: each entry must be [node id, signature]")
            pairs.append((item[0], item[1]))
        return cls(tuple(pairs))

    def check(
        self, header_bytes: bytes, registry: Registry, *, signatures: bool = True
    ) -> tuple[FaultKind, str] | None:
        """The one rule for a certificate: ``None`` when it holds at least the registry's threshold
        of distinct registered signers and (with ``signatures``) every signature verifies;
        otherwise the fault kind and a detail. Membership and the count are always checked (they
        cost nothing); only the signature arithmetic is optional, for bytes this process signed."""
        for node_id, _sig in self.signatures:
            if node_id not in registry:
                return FaultKind.UNKNOWN_SIGNER, f"quorum signer {node_id.hex()} is not in the registry"
        if len(self.signatures) < registry.threshold:
            return (
                FaultKind.QUORUM,
                f"{len(self.signatures)} distinct signers; threshold is "
                f"{registry.threshold} of {len(registry)}",
            )
        if signatures:
            for node_id, sig in self.signatures:
                if not registry.verify(node_id, SIGN_BLOCK, header_bytes, sig):
                    return FaultKind.SIGNATURE, f"quorum signature of {node_id.hex()} does not verify"
        return None

    def to_json(self) -> list[dict[str, Any]]:
        """A JSON-ready view."""
        return [{"node": n.hex(), "signature": s.hex()} for n, s in self.signatures]

    @classmethod
    def from_json(cls, obj: object) -> QuorumCertificate:
        """Parse the JSON view strictly; raise ``ProofError`` naming the bad entry."""
        if not isinstance(obj, list) or len(obj) > MAX_SIGNERS:
            raise ProofError(f"certificate must be a list of at most {MAX_SIGNERS} signatures")
        pairs = []
        for i, item in enumerate(obj):
            d = require_fields(item, ("node", "signature"), f"certificate[{i}]")
            pairs.append(
                (
                    get_hex(d, "node", f"certificate[{i}]", NODE_ID_SIZE),
                    get_hex(d, "signature", f"certificate[{i}]", SIGNATURE_SIZE),
                )
            )
        try:
            return cls(tuple(pairs))
        except EncodingError as exc:
            raise ProofError(str(exc)) from None
