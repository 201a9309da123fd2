"""A seeded stream of anchoring requests: one per image, made at the node that acquired it.

The ledger knows nothing of images: a request carries a 32-byte root (standing for the image's
shard-hash Merkle root) and the image's shard ids as opaque hex strings. Callers that know the
geometry pass real GFT ids; ``stand_in_shard_ids`` makes fixed ids of the same form otherwise.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass

from prosima.ledger.consensus.protocol import Request
from prosima.ledger.log.encoding import encode
from prosima.ledger.log.transaction import TxKind

START_TIME_US = 1_700_000_000_000_000
STEP_US = 1_000


def stand_in_shard_ids(k: int = 16, label: str = "prosima.ledger.stand-in") -> list[str]:
    """``k`` fixed 32-hex ids, one per grid position (the same for every image, like GFT's)."""
    return [hashlib.sha256(f"{label}|k={k}|pos={i}".encode()).hexdigest()[:32] for i in range(k)]


@dataclass(frozen=True, slots=True)
class AnchorRequest:
    """Image ``index`` acquired at node ``origin``: its root, shard ids and time (microseconds)."""

    index: int
    origin: int
    root: bytes
    shard_ids: tuple[str, ...]
    time: int

    def payload(self) -> bytes:
        """Canonical CBOR ``{"v": 1, "root": root, "shards": [16-byte ids]}``."""
        return encode({"v": 1, "root": self.root, "shards": [bytes.fromhex(s) for s in self.shard_ids]})

    def request(self) -> Request:
        """The transaction request the origin node signs."""
        return Request(TxKind.IMAGE_ANCHORED, self.payload(), self.root, self.time)


def make_workload(
    images: int, *, nodes: int, seed: int, shard_ids: Sequence[str], start: int = START_TIME_US
) -> list[AnchorRequest]:
    """``images`` requests from nodes drawn uniformly (seeded), one millisecond apart."""
    if images < 0 or nodes < 1:
        raise ValueError("need images >= 0 and nodes >= 1")
    ids = tuple(shard_ids)
    for s in ids:
        if len(s) % 2 or any(c not in "0123456789abcdef" for c in s):
            raise ValueError(f"shard id {s!r} is not lower-case hex")
    rng = random.Random(f"workload/{seed}")
    return [
        AnchorRequest(i, rng.randrange(nodes), rng.randbytes(32), ids, start + i * STEP_US)
        for i in range(images)
    ]
