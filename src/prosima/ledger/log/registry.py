"""The node registry: node id -> Ed25519 public key, and the quorum threshold it implies."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from functools import cached_property
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from prosima.ledger.errors import EncodingError
from prosima.ledger.log.crypto import PUBLIC_KEY_SIZE, SIGNATURE_SIZE, node_id_of
from prosima.ledger.log.encoding import decode, encode, expect_map

# Signatures verified good, remembered so that the nodes of one committee sharing this registry in
# one process (20 in-process nodes each checking the same 20 commit votes) verify each once: the
# idea of Bitcoin Core's signature cache. Only successes are kept, keyed by every byte verified
# (node id, context, message, signature), so a hit is exactly a repeat of a verification that passed.
VERIFIED_CACHE_SIZE = 8192


def quorum_threshold(n: int) -> int:
    """BFT quorum by count: ``ceil((n + f + 1) / 2)`` with ``f = floor((n - 1) / 3)``.

    Any two quorums then share at least ``f + 1`` nodes, so at least one honest node, for every n.
    For ``n = 3f + 1`` this is the familiar ``2f + 1``; for other n (20 nodes: f = 6) plain ``2f + 1``
    (13) would let two quorums overlap in only f nodes, all of which could be Byzantine.
    """
    if n < 1:
        raise ValueError("a registry needs at least one node")
    f = (n - 1) // 3
    return (n + f + 2) // 2


class Registry:
    """An immutable set of node public keys; ids are derived from the keys, never chosen."""

    def __init__(self, public_keys: Iterable[bytes]) -> None:
        keys = list(public_keys)
        members: dict[bytes, bytes] = {}
        for pk in keys:
            if not isinstance(pk, bytes) or len(pk) != PUBLIC_KEY_SIZE:
                raise ValueError("every public key must be 32 raw bytes")
            members[node_id_of(pk)] = pk
        if len(members) != len(keys):
            raise ValueError("registry lists the same public key twice")
        if not members:
            raise ValueError("a registry needs at least one node")
        self._members = dict(sorted(members.items()))
        self._verifiers: dict[bytes, Ed25519PublicKey] = {}
        self._verified: OrderedDict[tuple[bytes, bytes, bytes, bytes], None] = OrderedDict()

    @property
    def members(self) -> Mapping[bytes, bytes]:
        """Node id -> public key, sorted by id."""
        return dict(self._members)

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._members

    @property
    def threshold(self) -> int:
        """Signatures a quorum certificate needs."""
        return quorum_threshold(len(self))

    def public_key(self, node_id: bytes) -> bytes | None:
        """The node's public key, or ``None`` when it is not registered."""
        return self._members.get(node_id)

    def verify(self, node_id: bytes, context: bytes, message: bytes, signature: bytes) -> bool:
        """True when ``node_id`` is registered and ``signature`` is its signature of the message."""
        pk = self._members.get(node_id)
        if pk is None or not isinstance(signature, bytes) or len(signature) != SIGNATURE_SIZE:
            return False
        key = (node_id, context, bytes(message), signature)
        if key in self._verified:
            self._verified.move_to_end(key)
            return True
        verifier = self._verifiers.get(node_id)
        if verifier is None:
            verifier = self._verifiers[node_id] = Ed25519PublicKey.from_public_bytes(pk)
        try:
            verifier.verify(signature, context + message)
        except InvalidSignature:
            return False
        self._verified[key] = None
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return True

    def to_bytes(self) -> bytes:
        """Canonical encoding: ``{"v": 1, "keys": [public keys sorted by node id]}``."""
        return encode({"v": 1, "keys": list(self._members.values())})

    @cached_property
    def digest(self) -> bytes:
        """SHA-256 of the canonical encoding."""
        return hashlib.sha256(self.to_bytes()).digest()

    @classmethod
    def from_bytes(cls, data: bytes) -> Registry:
        """Decode a canonical registry; raise ``EncodingError`` when malformed."""
        value = expect_map(decode(data), {"v": int, "keys": list}, "registry")
        if value["v"] != 1:
            raise EncodingError(f"registry: unsupported version {value['v']}")
        try:
            registry = cls(value["keys"])
        except ValueError as exc:
            raise EncodingError(f"registry: {exc}") from None
        if registry.to_bytes() != bytes(data):
            raise EncodingError("registry: keys are not sorted by node id")
        return registry

    def save(self, path: str | Path) -> None:
        """Write the canonical encoding to ``path``."""
        Path(path).write_bytes(self.to_bytes())

    @classmethod
    def load(cls, path: str | Path) -> Registry:
        """Read a registry file (a regular file of at most 64 KiB: 1024 keys take 33 KiB)."""
        from prosima.ledger.log.input_files import read_bounded

        return cls.from_bytes(read_bounded(path, 64 << 10, "registry file"))
