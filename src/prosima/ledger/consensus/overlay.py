"""The scale-free overlay: a seeded Barabasi-Albert graph over the N ledger nodes.

Degree decides roles, never votes by itself: the highest-degree nodes (hubs) keep the full ledger
and lead first; placement and quorum weights live in their own modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property


@dataclass(frozen=True)
class Overlay:
    """An undirected graph over nodes ``0 .. n-1``; ``m`` edges attach each new node (BA model)."""

    n: int
    m: int
    seed: int
    edges: tuple[tuple[int, int], ...]

    @classmethod
    def barabasi_albert(cls, n: int, m: int = 2, seed: int = 0) -> Overlay:
        """The networkx Barabasi-Albert graph for ``seed`` (``m`` is lowered to ``n - 1`` for tiny n)."""
        import networkx as nx

        if n < 1:
            raise ValueError(f"an overlay needs at least one node, got {n}")
        if m < 1:
            raise ValueError(f"m must be >= 1, got {m}")
        m_eff = min(m, n - 1)
        graph = nx.empty_graph(n) if m_eff < 1 else nx.barabasi_albert_graph(n, m_eff, seed=seed)
        edges = tuple(sorted((min(a, b), max(a, b)) for a, b in graph.edges()))
        return cls(n, m_eff, seed, edges)

    @cached_property
    def degrees(self) -> tuple[int, ...]:
        """Degree of each node."""
        deg = [0] * self.n
        for a, b in self.edges:
            deg[a] += 1
            deg[b] += 1
        return tuple(deg)

    @cached_property
    def by_degree(self) -> tuple[int, ...]:
        """Nodes by decreasing degree (ties: lower index first); the leader rotation follows it."""
        return tuple(sorted(range(self.n), key=lambda i: (-self.degrees[i], i)))

    def hubs(self, count: int) -> tuple[int, ...]:
        """The ``count`` highest-degree nodes."""
        if not 0 <= count <= self.n:
            raise ValueError(f"hub count must be between 0 and {self.n}, got {count}")
        return self.by_degree[:count]

    def neighbours(self, node: int) -> tuple[int, ...]:
        """Nodes adjacent to ``node``."""
        return tuple(
            sorted({b for a, b in self.edges if a == node} | {a for a, b in self.edges if b == node})
        )

    def degree_share(self, nodes: tuple[int, ...] | list[int] | set[int]) -> float:
        """Fraction of all degree held by ``nodes`` (what a degree-weighted vote would give them)."""
        total = sum(self.degrees)
        return sum(self.degrees[i] for i in set(nodes)) / total if total else 0.0

    def to_json(self) -> dict[str, object]:
        """A JSON-ready summary."""
        top = self.by_degree[:3]
        return {
            "model": "barabasi-albert",
            "n": self.n,
            "m": self.m,
            "seed": self.seed,
            "edges": len(self.edges),
            "degrees": list(self.degrees),
            "top3_degree_share": self.degree_share(top),
        }
