"""One validator's verdict on a round, a pure function of the messages it received."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from prosima.ledger.errors import LedgerError
from prosima.ledger.log.registry import Registry
from prosima.ledger.useful_work.commitments import train_seed, validation_seed, weights_hash
from prosima.ledger.useful_work.config import RoundConfig
from prosima.ledger.useful_work.messages import (
    COMMIT_FIELDS,
    REVEAL_FIELDS,
    SIGN_COMMIT,
    SIGN_REVEAL,
    Delivery,
    Signed,
    named_node,
    open_message,
)
from prosima.ledger.useful_work.record import Dropped, Proposal, RoundRecord
from prosima.ledger.useful_work.refusals import Refusal, VerdictContext, judge
from prosima.ledger.useful_work.work import UsefulWork, evaluate


def decide(
    work: UsefulWork,
    registry: Registry,
    *,
    round_no: int,
    seed: int,
    chain_weights: bytes,
    commits: Sequence[Delivery],
    reveals: Sequence[Signed],
    config: RoundConfig,
) -> RoundRecord:
    """One validator's verdict on a round: a pure, deterministic function of the messages (see
    ``refusals`` for the order of the checks)."""
    node_ids = list(registry.members)
    index_of = {nid: i for i, nid in enumerate(node_ids)}
    prev = weights_hash(chain_weights)
    deadline = config.deadline(len(node_ids))
    dropped: list[Dropped] = []

    def drop(kind: str, msg: Signed, reason: str) -> None:
        dropped.append(Dropped(kind, named_node(msg), reason))

    commit_of: dict[int, tuple[int, bytes]] = {}  # node -> (tick, commitment) of its first commit
    equivocal: set[int] = set()
    for d in sorted(commits, key=lambda d: d.tick):
        value = open_message(d.message, SIGN_COMMIT, COMMIT_FIELDS, registry, round_no)
        if isinstance(value, dict) and value["prev"] != prev:
            value = f"commits on chain model {value['prev'].hex()[:16]}..., not {prev.hex()[:16]}..."
        if isinstance(value, str):
            drop("commit", d.message, value)
            continue
        i = index_of[value["node"]]
        if i in commit_of and commit_of[i][1] != value["commitment"]:
            equivocal.add(i)
        commit_of.setdefault(i, (d.tick, value["commitment"]))
    on_time = [c for i, (t, c) in commit_of.items() if t <= deadline]
    v = validation_seed(round_no, prev, on_time)

    reveal_of: dict[int, dict[str, Any]] = {}
    for msg in reveals:
        value = open_message(msg, SIGN_REVEAL, REVEAL_FIELDS, registry, round_no)
        if isinstance(value, str):
            drop("reveal", msg, value)
            continue
        i = index_of[value["node"]]
        if i not in commit_of:
            drop("reveal", msg, "no commitment from this node")
        elif i in reveal_of and reveal_of[i] != value:
            equivocal.add(i)
        else:
            reveal_of[i] = value

    chain_score = evaluate(work, chain_weights, v)
    if isinstance(chain_score, str):
        raise LedgerError(f"round {round_no}: the chain model cannot be scored: {chain_score}")
    threshold = max(config.min_score, chain_score)
    ctx = VerdictContext(work, config, round_no, chain_weights, prev, v, threshold, deadline)

    proposals: list[Proposal] = []
    opened: list[tuple[int, bytes, bytes]] = []  # (node, weights hash, weights) of opened commitments
    for i in sorted(commit_of, key=lambda i: (commit_of[i][0], i)):
        tick, c = commit_of[i]
        base = Proposal(i, node_ids[i], tick, c, train_seed(seed, round_no, i))
        r = reveal_of.get(i)
        if r is not None:
            base = replace(base, salt=r["salt"], weights=weights_hash(r["weights"]))
        verdict = judge(ctx, base, r, opened, i in equivocal)
        proposals.append(verdict)
        if verdict.code not in (Refusal.EQUIVOCATION, Refusal.LATE, Refusal.NO_REVEAL, Refusal.BAD_REVEAL):
            assert r is not None
            opened.append((i, weights_hash(r["weights"]), r["weights"]))

    valid = [p for p in proposals if p.status == "valid"]
    best = max(valid, key=lambda p: (p.score, -p.tick, -p.node), default=None)
    if best is not None:
        proposals = [replace(p, status="winner") if p is best else p for p in proposals]
    absent = tuple(i for i in range(len(node_ids)) if i not in commit_of)
    return RoundRecord(
        round=round_no,
        seed=seed,
        prev_weights=prev,
        validation_seed=v,
        deadline=deadline,
        min_score=config.min_score,
        score_tolerance=config.score_tolerance,
        copy_distance=config.copy_distance,
        chain_score=chain_score,
        threshold=threshold,
        proposals=tuple(proposals),
        dropped=tuple(dropped),
        absent=absent,
        winner=None if best is None else best.node,
        proposer=None if best is None else best.node_id,
        score=None if best is None else best.score,
        weights=prev if best is None or best.weights is None else best.weights,
    )
