"""What a decided round puts on the ledger: every proposal with the validators' verdict, the
messages dropped unattributed, and the winner; canonical CBOR for the ledger, JSON for reports."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from prosima.ledger.errors import EncodingError
from prosima.ledger.log.encoding import decode, encode
from prosima.ledger.useful_work.scores import finite_or_none, score_text, score_value

RECORD_FORMAT = "prosima.pouw-round.v1"


@dataclass(frozen=True)
class Proposal:
    """One committing node's proposal and the validators' verdict on it."""

    node: int
    node_id: bytes
    tick: int
    commitment: bytes
    train_seed: bytes
    salt: bytes | None = None
    weights: bytes | None = None  # SHA-256 of the revealed weights
    claimed: float | None = None
    score: float | None = None  # as re-evaluated by the validators
    status: str = "refused"  # "winner", "valid" or "refused"
    code: str = ""  # a Refusal when refused
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The fields as the record encodes them (scores as text)."""
        return {
            "node": self.node,
            "node_id": self.node_id,
            "tick": self.tick,
            "commitment": self.commitment,
            "train_seed": self.train_seed,
            "salt": self.salt,
            "weights": self.weights,
            "claimed": score_text(self.claimed),
            "score": score_text(self.score),
            "status": self.status,
            "code": self.code,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Proposal:
        """The proposal ``to_dict`` wrote."""
        return cls(**(dict(d) | {"claimed": score_value(d["claimed"]), "score": score_value(d["score"])}))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready view (bytes as hex)."""
        return _hexed(self.to_dict() | {"claimed": self.claimed, "score": self.score})


@dataclass(frozen=True)
class Dropped:
    """A message refused before it could be attributed to its node."""

    kind: str  # "commit" or "reveal"
    node_id: bytes  # the node it names (unproven)
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """The fields as the record encodes them."""
        return {"kind": self.kind, "node_id": self.node_id, "reason": self.reason}


@dataclass(frozen=True)
class RoundRecord:
    """What a decided round puts on the ledger."""

    round: int
    seed: int
    prev_weights: bytes
    validation_seed: bytes
    deadline: int
    min_score: float
    score_tolerance: float
    copy_distance: float
    chain_score: float
    threshold: float
    proposals: tuple[Proposal, ...]
    dropped: tuple[Dropped, ...] = ()
    absent: tuple[int, ...] = ()  # nodes that sent no valid commit
    winner: int | None = None
    proposer: bytes | None = None
    score: float | None = None
    weights: bytes = b""  # the chain model's hash after the round
    format: str = field(default=RECORD_FORMAT)

    @property
    def refusals(self) -> list[Proposal]:
        """The refused proposals, in commitment order."""
        return [p for p in self.proposals if p.status == "refused"]

    def proposal(self, node: int) -> Proposal | None:
        """Node ``node``'s proposal, if it committed."""
        return next((p for p in self.proposals if p.node == node), None)

    def to_dict(self) -> dict[str, Any]:
        """The fields as the payload encodes them (scores as text)."""
        return {
            "format": self.format,
            "round": self.round,
            "seed": self.seed,
            "prev_weights": self.prev_weights,
            "validation_seed": self.validation_seed,
            "deadline": self.deadline,
            "min_score": score_text(self.min_score),
            "score_tolerance": score_text(self.score_tolerance),
            "copy_distance": score_text(self.copy_distance),
            "chain_score": score_text(self.chain_score),
            "threshold": score_text(self.threshold),
            "proposals": [p.to_dict() for p in self.proposals],
            "dropped": [d.to_dict() for d in self.dropped],
            "absent": list(self.absent),
            "winner": self.winner,
            "proposer": self.proposer,
            "score": score_text(self.score),
            "weights": self.weights,
        }

    def to_payload(self) -> bytes:
        """The canonical CBOR payload of the ledger transaction."""
        return encode(self.to_dict())

    @classmethod
    def from_payload(cls, data: bytes) -> RoundRecord:
        """Decode a payload written by ``to_payload``; ``EncodingError`` when it is not one."""
        d = decode(data)
        if not isinstance(d, dict) or d.get("format") != RECORD_FORMAT:
            raise EncodingError(f"not a {RECORD_FORMAT} record")
        try:
            floats = ("min_score", "score_tolerance", "copy_distance", "chain_score", "threshold", "score")
            return cls(
                **(
                    d
                    | {k: score_value(d[k]) for k in floats}
                    | {
                        "proposals": tuple(Proposal.from_dict(p) for p in d["proposals"]),
                        "dropped": tuple(Dropped(**x) for x in d["dropped"]),
                        "absent": tuple(d["absent"]),
                    }
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise EncodingError(f"malformed {RECORD_FORMAT} record: {exc}") from None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready view (bytes as hex, scores as numbers)."""
        floats = ("min_score", "score_tolerance", "copy_distance", "chain_score", "threshold", "score")
        out = _hexed(self.to_dict() | {k: finite_or_none(getattr(self, k)) for k in floats})
        out["proposals"] = [p.to_json() for p in self.proposals]
        return out


def _hexed(d: Mapping[str, Any]) -> dict[str, Any]:
    def conv(v: Any) -> Any:
        if isinstance(v, bytes):
            return v.hex()
        if isinstance(v, list):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        return v

    return {k: conv(v) for k, v in d.items()}
