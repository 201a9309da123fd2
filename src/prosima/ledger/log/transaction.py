"""Transactions: a kind, a payload, an optional payload key, a time, the signer and its signature."""

from __future__ import annotations

import re
import time as _time
from dataclasses import dataclass, field
from typing import Any

from prosima.ledger.errors import EncodingError
from prosima.ledger.log.crypto import NODE_ID_SIZE, SIGN_TX, SIGNATURE_SIZE, NodeKey, tx_hash
from prosima.ledger.log.encoding import decode, encode, expect_map

MAX_PAYLOAD = 1 << 20
MAX_KEY = 64
_KIND = re.compile(r"[a-z][a-z0-9_.-]{0,63}")


class TxKind:
    """Well-known transaction kinds; any lower-case dotted name of up to 64 characters is allowed."""

    DATA = "data"
    IMAGE_ANCHORED = "image.anchored"
    IMAGE_RESTORED = "image.restored"
    MODEL_VERSION = "model.version"
    KEY_REGISTERED = "key.registered"


def now_us() -> int:
    """Wall-clock time in integer microseconds since the Unix epoch (the ledger's time unit)."""
    return _time.time_ns() // 1000


_FIELDS = {"v": int, "kind": str, "payload": bytes, "key": bytes, "time": int, "signer": bytes, "sig": bytes}


@dataclass(frozen=True, slots=True)
class Transaction:
    """A signed transaction. ``key`` indexes the payload (for example an image's fingerprint root)."""

    kind: str
    payload: bytes
    key: bytes
    time: int
    signer: bytes
    signature: bytes
    _encoded: bytes = field(default=b"", repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or not _KIND.fullmatch(self.kind):
            raise EncodingError(f"transaction kind {self.kind!r} is not a lower-case dotted name")
        for name in ("payload", "key", "signer", "signature"):
            if not isinstance(getattr(self, name), bytes):
                raise EncodingError(f"transaction {name} must be bytes")
        if not isinstance(self.time, int) or isinstance(self.time, bool):
            raise EncodingError("transaction time must be an integer")
        if len(self.payload) > MAX_PAYLOAD:
            raise EncodingError(f"payload of {len(self.payload)} bytes exceeds {MAX_PAYLOAD}")
        if len(self.key) > MAX_KEY:
            raise EncodingError(f"payload key of {len(self.key)} bytes exceeds {MAX_KEY}")
        if not 0 <= self.time < 2**63:
            raise EncodingError(f"transaction time {self.time} is out of range")
        if len(self.signer) != NODE_ID_SIZE:
            raise EncodingError(f"signer id must be {NODE_ID_SIZE} bytes, got {len(self.signer)}")
        if len(self.signature) != SIGNATURE_SIZE:
            raise EncodingError(f"signature must be {SIGNATURE_SIZE} bytes, got {len(self.signature)}")
        if not self._encoded:
            object.__setattr__(self, "_encoded", encode(self._body() | {"sig": self.signature}))

    def _body(self) -> dict[str, Any]:
        return {
            "v": 1,
            "kind": self.kind,
            "payload": self.payload,
            "key": self.key,
            "time": self.time,
            "signer": self.signer,
        }

    @classmethod
    def create(
        cls, signer: NodeKey, kind: str, payload: bytes, key: bytes = b"", time: int | None = None
    ) -> Transaction:
        """Build and sign a transaction."""
        t = now_us() if time is None else time
        unsigned = cls(kind, bytes(payload), bytes(key), t, signer.node_id, bytes(SIGNATURE_SIZE))
        sig = signer.sign(SIGN_TX, unsigned.signing_bytes())
        return cls(kind, bytes(payload), bytes(key), t, signer.node_id, sig)

    def signing_bytes(self) -> bytes:
        """The canonical encoding of everything but the signature (what the signer signs)."""
        return encode(self._body())

    def encode(self) -> bytes:
        """The canonical encoding, which is also the transaction's log leaf."""
        return self._encoded

    @property
    def tx_id(self) -> bytes:
        """Domain-separated SHA-256 of the canonical encoding."""
        return tx_hash(self._encoded)

    @classmethod
    def decode(cls, data: bytes) -> Transaction:
        """Decode a canonical transaction; raise ``EncodingError`` for anything else."""
        value = expect_map(decode(data), _FIELDS, "transaction")
        if value["v"] != 1:
            raise EncodingError(f"transaction: unsupported version {value['v']}")
        return cls(
            value["kind"],
            value["payload"],
            value["key"],
            value["time"],
            value["signer"],
            value["sig"],
            _encoded=bytes(data),
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready view (bytes as hex)."""
        return {
            "id": self.tx_id.hex(),
            "kind": self.kind,
            "payload_size": len(self.payload),
            "payload": self.payload.hex(),
            "key": self.key.hex(),
            "time": self.time,
            "signer": self.signer.hex(),
            "signature": self.signature.hex(),
        }
