"""How a simulated node plays a PoUW round (honest or one of the cheats), and reading the cheats
from a ``--byzantine`` spec (the grammar the consensus simulator reads too: ``byzantine_spec``)."""

from __future__ import annotations

from enum import StrEnum

from prosima.ledger.consensus.byzantine_spec import parse_spec

EXAMPLE = "'2:copy,5:inflated_score'"


class Behaviour(StrEnum):
    """How a simulated node plays a round."""

    HONEST = "honest"
    BAD_REVEAL = "bad_reveal"  # reveals weights other than those it committed to
    INFLATED_SCORE = "inflated_score"  # claims a better score than its weights earn
    COPY = "copy"  # submits another node's weights (stolen), committing after it
    NEAR_COPY = "near_copy"  # the same, nudged so the hash differs
    COPY_CHAIN = "copy_chain"  # resubmits the chain model without training
    LATE = "late"  # commits after the deadline
    SILENT = "silent"  # commits and never reveals


def parse_byzantine(spec: str, nodes: int) -> dict[int, Behaviour]:
    """Read a ``--byzantine`` spec naming each cheat's node, ``NODE:BEHAVIOUR[,...]`` (e.g.
    ``"2:copy,5:inflated_score,7:bad_reveal"``; ``copy@2`` is the same) into node index ->
    behaviour; ``ValueError`` naming the problem for anything else. A cheat plays every round, so
    counts, ``hub``/``any`` targets and start heights are refused."""
    out: dict[int, Behaviour] = {}
    for entry in parse_spec(spec, example=EXAMPLE):
        behaviour = entry.behaviour(Behaviour)
        node = entry.target
        if not isinstance(node, int) or entry.count != 1 or entry.start:
            raise ValueError(
                f"{entry.item!r} in --byzantine: a PoUW cheat is one node, named by its index, for every "
                f"round (NODE:BEHAVIOUR), e.g. {EXAMPLE}"
            )
        if not 0 <= node < nodes:
            raise ValueError(f"node {node} is out of range: the {nodes} nodes are 0..{nodes - 1}")
        if node in out:
            raise ValueError(f"node {node} is given twice")
        out[node] = behaviour
    return out
