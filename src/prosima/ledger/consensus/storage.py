"""Storage accounting: bytes per node, replication factor and the node losses the data survives.

Items are added by category (``ledger``, ``payload``, ``directory``); each item has a unique size,
the bytes each holder keeps of it, and how many holders are needed to rebuild it (1 for full copies,
``k`` for a ``(k, m)`` erasure code). The replication factor is stored bytes / unique data bytes
(directory bytes count as stored overhead, never as data). An item survives ``holders - need``
arbitrary node losses; the network survives the minimum over its items.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

DATA_CATEGORIES = ("ledger", "payload")


class StorageAccount:
    """Running totals for ``n`` nodes."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.stored: dict[str, list[int]] = {}
        self.unique: dict[str, int] = {}
        self.items: dict[str, int] = {}
        self.survives: dict[str, int] = {}

    def _row(self, category: str) -> list[int]:
        return self.stored.setdefault(category, [0] * self.n)

    def add(self, category: str, size: int, holders: Mapping[int, int], need: int = 1) -> None:
        """One item of ``size`` unique bytes; ``holders`` maps node -> bytes kept there."""
        if need < 1 or len(holders) < need:
            raise ValueError(f"an item needs at least {need} holders, got {len(holders)}")
        row = self._row(category)
        for node, nbytes in holders.items():
            row[node] += nbytes
        self.unique[category] = self.unique.get(category, 0) + size
        self.items[category] = self.items.get(category, 0) + 1
        margin = len(holders) - need
        self.survives[category] = min(self.survives.get(category, margin), margin)

    def add_copies(self, category: str, size: int, nodes: Iterable[int]) -> None:
        """One item kept whole on each of ``nodes``."""
        self.add(category, size, dict.fromkeys(nodes, size))

    def add_overhead(self, category: str, per_node: Mapping[int, int]) -> None:
        """Bytes that are not data (a lookup directory, say) kept on some nodes."""
        row = self._row(category)
        for node, nbytes in per_node.items():
            row[node] += nbytes

    def per_node(self) -> list[int]:
        """Total bytes on each node."""
        return [sum(row[i] for row in self.stored.values()) for i in range(self.n)]

    def replication(self, category: str | None = None) -> float | None:
        """Stored / unique bytes of one data category, or of all data plus overhead (``None``)."""
        if category is not None:
            unique = self.unique.get(category, 0)
            return sum(self.stored.get(category, [])) / unique if unique else None
        unique = sum(self.unique.get(c, 0) for c in DATA_CATEGORIES)
        return sum(self.per_node()) / unique if unique else None

    def losses_survived(self, category: str | None = None) -> int | None:
        """Arbitrary node losses every item of ``category`` (default: all data) survives."""
        cats = [category] if category is not None else [c for c in DATA_CATEGORIES if c in self.survives]
        values = [self.survives[c] for c in cats if c in self.survives]
        return min(values) if values else None

    def to_json(self) -> dict[str, Any]:
        """Per-node bytes by category, unique bytes, replication factors and losses survived."""
        per_node = self.per_node()
        return {
            "per_node_bytes": per_node,
            "per_node_by_category": {c: list(v) for c, v in self.stored.items()},
            "unique_bytes": dict(self.unique),
            "items": dict(self.items),
            "stored_bytes": sum(per_node),
            "replication": self.replication(),
            "replication_by_category": {c: self.replication(c) for c in self.unique},
            "losses_survived": self.losses_survived(),
            "losses_survived_by_category": dict(self.survives),
            "max_node_bytes": max(per_node) if per_node else 0,
            "mean_node_bytes": sum(per_node) / self.n if self.n else 0,
        }
