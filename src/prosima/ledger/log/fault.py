"""What verification can find wrong, and where."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FaultKind(StrEnum):
    """The kinds of fault ``verify_chain`` names."""

    ENCODING = "encoding"
    MISSING_BLOCK = "missing block"
    HEIGHT = "height"
    HASH_LINK = "hash link"
    MERKLE_ROOT = "merkle root"
    LOG_ROOT = "log root"
    TIME = "out-of-order time"
    UNKNOWN_SIGNER = "unknown signer"
    SIGNATURE = "signature"
    QUORUM = "quorum below threshold"
    DUPLICATE_TX = "duplicate transaction"
    INDEX = "index"
    CHECKPOINT = "checkpoint"
    TRUNCATED = "truncated"
    REGISTRY = "registry"


@dataclass(frozen=True, slots=True)
class Fault:
    """The first thing found wrong: the height it was found at (-1: the store as a whole),
    its kind, and a detail."""

    height: int
    kind: FaultKind
    detail: str

    def __str__(self) -> str:
        where = "store" if self.height < 0 else f"height {self.height}"
        return f"{where}: {self.kind}: {self.detail}"

    def to_json(self) -> dict[str, object]:
        """A JSON-ready view."""
        return {"height": self.height, "kind": str(self.kind), "detail": self.detail}
