"""The evidence a verdict or a record page shows, as rows a template lists: the inclusion proof
(leaf, tree head, path), the quorum certificate (who signed, against which threshold) and the
shards of a 2-D image that differ from its record, each with its place in the image."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prosima.imaging.shards import plan_shards


@dataclass(frozen=True)
class ProofSummary:
    """An inclusion proof document and whether it checked out (``problems`` otherwise)."""

    tx: str
    leaf_index: int
    tree_size: int
    tree_height: int
    root_hash: str
    timestamp: int
    path: list[str]
    head_signers: list[str]
    ok: bool
    problems: list[str]


def proof_summary(document: dict[str, Any], ok: bool, problems: list[str]) -> ProofSummary:
    """The parts of an inclusion proof document a reader checks by eye."""
    head = document.get("tree_head") or {}
    return ProofSummary(
        tx=str(document.get("tx_id", "")),
        leaf_index=int(document.get("leaf_index", -1)),
        tree_size=int(head.get("tree_size", 0)),
        tree_height=int(head.get("height", -1)),
        root_hash=str(head.get("root_hash", "")),
        timestamp=int(head.get("timestamp", 0)),
        path=[str(p) for p in document.get("inclusion_path", [])],
        head_signers=[str(c.get("node", "")) for c in head.get("certificate", [])],
        ok=ok,
        problems=list(problems),
    )


@dataclass(frozen=True)
class QuorumSummary:
    """A block's quorum certificate: its signers and signatures, the registry's size and threshold,
    and whether it holds (``problem`` otherwise)."""

    height: int
    signatures: list[dict[str, str]]
    threshold: int
    nodes: int
    ok: bool
    problem: str | None

    @property
    def signed(self) -> int:
        return len(self.signatures)


def quorum_summary(block: dict[str, Any]) -> QuorumSummary:
    """From a verdict's ``block`` (``provenance.verify``'s evidence of the record's block)."""
    return QuorumSummary(
        height=int(block.get("height", -1)),
        signatures=list(block.get("quorum_certificate") or []),
        threshold=int(block.get("threshold", 0)),
        nodes=int(block.get("nodes", 0)),
        ok=bool(block.get("quorum_ok")),
        problem=block.get("quorum_problem"),
    )


@dataclass(frozen=True)
class ShardRow:
    """One shard that differs: its number, the rows and columns it covers, its cosine to the
    original (``None`` where not judged) and whether that meaning still holds."""

    index: int
    rows: tuple[int, int]
    columns: tuple[int, int]
    cosine: float | None
    faithful: bool | None


def differing_shards(verdict: dict[str, Any]) -> list[ShardRow]:
    """The differing shards of a 2-D verdict with their places (rows and columns, end exclusive)."""
    differing = verdict.get("differing_shards") or []
    cosines = verdict.get("shard_cosines")
    shape = verdict.get("shape") or []
    if not differing or len(shape) != 2 or not cosines:
        return []
    grid = plan_shards(shape, len(cosines))
    unfaithful = set(verdict.get("unfaithful_shards") or [])
    background = set((verdict.get("faithfulness") or {}).get("background", []))
    rows = []
    for i in differing:
        (r0, r1), (c0, c1) = grid.shards[i].core
        judged = i not in background
        rows.append(ShardRow(i, (r0, r1), (c0, c1), cosines[i], (i not in unfaithful) if judged else None))
    return rows
