"""Voting power: who must sign for a quorum.

Three rules, all with the threshold ``quorum_threshold(total)`` of the ledger core (any two quorums
overlap in more than a third of the total):

- ``count``: one node, one vote (the ledger store's own rule). The default.
- ``degree-capped``: the paper's degree weighting with a cap on every node's weight, chosen so that
  any ``f = floor((n-1)/3)`` nodes, the top hubs included, hold less than a third of the weight. A
  quorum must also reach the count threshold, so the store accepts every certificate it produces
  and safety holds if the faulty nodes are below a third by count *or* by weight.
- ``degree``: the paper's uncapped degree weighting. Unsafe (on 20-node BA graphs the top 3 hubs
  often hold over a third of all degree); kept only to show why in tests and benchmarks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from prosima.ledger.log.registry import quorum_threshold

Rule = Literal["count", "degree-capped", "degree"]
RULES: tuple[str, ...] = ("count", "degree-capped", "degree")


def max_faulty(n: int) -> int:
    """``f = floor((n - 1) / 3)``: the faulty nodes (by count) BFT tolerates among ``n``."""
    return (n - 1) // 3


def capped_weights(degrees: Sequence[int]) -> tuple[tuple[int, ...], int]:
    """Degrees capped at the largest integer ``C`` for which any ``f`` nodes hold under a third of
    the total; returns the weights and ``C``. ``C = 1`` (one node, one vote) always qualifies."""
    n = len(degrees)
    f = max_faulty(n)
    for cap in range(max(max(degrees, default=1), 1), 0, -1):
        weights = sorted((max(1, min(d, cap)) for d in degrees), reverse=True)
        total = sum(weights)
        if sum(weights[:f]) <= (total - 1) // 3:
            return tuple(max(1, min(d, cap)) for d in degrees), cap
    raise AssertionError("cap 1 always qualifies")  # unreachable


@dataclass(frozen=True)
class VotingPower:
    """Integer weights per node index and the quorum rule over them."""

    rule: str
    weights: tuple[int, ...]
    cap: int | None = None

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"voting rule must be one of {', '.join(RULES)}, got {self.rule!r}")
        if not self.weights or any(w < 1 for w in self.weights):
            raise ValueError("every node needs a positive weight")

    @classmethod
    def make(cls, rule: str, degrees: Sequence[int]) -> VotingPower:
        """The voting power of ``rule`` for nodes with these overlay degrees."""
        if rule == "count":
            return cls("count", (1,) * len(degrees))
        if rule == "degree-capped":
            weights, cap = capped_weights(degrees)
            return cls("degree-capped", weights, cap)
        return cls(rule, tuple(max(1, d) for d in degrees))

    @property
    def n(self) -> int:
        """Number of nodes."""
        return len(self.weights)

    @property
    def f(self) -> int:
        """Faulty nodes tolerated by count."""
        return max_faulty(self.n)

    @property
    def total(self) -> int:
        """Sum of all weights."""
        return sum(self.weights)

    @property
    def threshold(self) -> int:
        """Weight a quorum needs."""
        return quorum_threshold(self.total)

    @property
    def count_threshold(self) -> int:
        """Signers a quorum needs under the count rule (the store's own threshold)."""
        return quorum_threshold(self.n)

    @property
    def weight_bound(self) -> int:
        """Most weight the faulty nodes may hold: the largest integer below a third of the total."""
        return (self.total - 1) // 3

    def weight(self, nodes: Iterable[int]) -> int:
        """Total weight of the distinct ``nodes``."""
        return sum(self.weights[i] for i in set(nodes))

    def is_quorum(self, nodes: Iterable[int]) -> bool:
        """True when the distinct ``nodes`` form a quorum under this rule."""
        members = set(nodes)
        if self.rule != "degree" and len(members) < self.count_threshold:
            return False
        return self.rule == "count" or self.weight(members) >= self.threshold

    def tolerates(self, faulty: Iterable[int]) -> bool:
        """True when safety and liveness are guaranteed with ``faulty`` nodes Byzantine."""
        bad = set(faulty)
        if self.rule == "degree":
            return self.weight(bad) <= self.weight_bound
        by_count = len(bad) <= self.f
        return by_count if self.rule == "count" else by_count and self.weight(bad) <= self.weight_bound

    def share(self, nodes: Iterable[int]) -> float:
        """Fraction of the total weight held by ``nodes``."""
        return self.weight(nodes) / self.total

    def to_json(self) -> dict[str, object]:
        """A JSON-ready summary."""
        return {
            "rule": self.rule,
            "weights": list(self.weights),
            "cap": self.cap,
            "total": self.total,
            "threshold": self.threshold,
            "count_threshold": self.count_threshold if self.rule != "degree" else None,
            "f": self.f,
            "max_node_share": max(self.weights) / self.total,
        }
