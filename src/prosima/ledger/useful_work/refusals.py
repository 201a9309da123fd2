"""Why a proposal cannot win, and the checks that decide it, in order: equivocation, late,
no reveal, bad reveal, copy, invalid weights, score mismatch, below threshold."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from prosima.ledger.useful_work.commitments import commitment, weights_hash
from prosima.ledger.useful_work.config import RoundConfig
from prosima.ledger.useful_work.record import Proposal
from prosima.ledger.useful_work.scores import claimed_score
from prosima.ledger.useful_work.work import UsefulWork, evaluate


class Refusal(StrEnum):
    """Why a proposal cannot win."""

    EQUIVOCATION = "equivocation"
    LATE = "late"
    NO_REVEAL = "no_reveal"
    BAD_REVEAL = "bad_reveal"
    COPY = "copy"
    INVALID_WEIGHTS = "invalid_weights"
    SCORE_MISMATCH = "score_mismatch"
    BELOW_THRESHOLD = "below_threshold"


@dataclass(frozen=True)
class VerdictContext:
    """What every verdict of a round shares: the work, the rules and the round's chain model,
    validation seed, threshold and deadline."""

    work: UsefulWork
    config: RoundConfig
    round_no: int
    chain_weights: bytes
    prev: bytes
    validation_seed: bytes
    threshold: float
    deadline: int


def judge(
    ctx: VerdictContext,
    p: Proposal,
    reveal: Mapping[str, Any] | None,
    opened: Sequence[tuple[int, bytes, bytes]],
    equivocal: bool,
) -> Proposal:
    """``p`` with its verdict, the refusals checked in the documented order (``reveal``: its opened
    reveal, if any; ``opened``: (node, weights hash, weights) of the earlier opened commitments;
    ``equivocal``: it sent two different commits or reveals)."""

    def refuse(code: Refusal, reason: str, **more: Any) -> Proposal:
        return replace(p, **more, status="refused", code=str(code), reason=reason)

    if equivocal:
        return refuse(Refusal.EQUIVOCATION, "sent two different signed commits or reveals this round")
    if p.tick > ctx.deadline:
        return refuse(Refusal.LATE, f"commitment arrived at tick {p.tick}, after the deadline {ctx.deadline}")
    if reveal is None:
        return refuse(Refusal.NO_REVEAL, "committed but never revealed")
    weights, digest = reveal["weights"], weights_hash(reveal["weights"])
    claimed = claimed_score(reveal["score"])
    if commitment(ctx.round_no, p.node_id, digest, reveal["salt"]) != p.commitment:
        return refuse(
            Refusal.BAD_REVEAL, "revealed weights and salt do not open the commitment", claimed=claimed
        )
    if digest == ctx.prev:
        return refuse(Refusal.COPY, "the weights are the current chain model's", claimed=claimed)
    for j, other, _ in opened:
        if other == digest:
            return refuse(Refusal.COPY, f"the same weights as node {j}'s earlier commitment", claimed=claimed)
    near = _nearest(ctx.work, weights, ctx.chain_weights, opened)
    if isinstance(near, str):
        return refuse(Refusal.INVALID_WEIGHTS, near, claimed=claimed)
    limit = ctx.config.copy_distance
    if near is not None and near[1] < limit:
        whose = "the chain model" if near[0] is None else f"node {near[0]}'s earlier commitment"
        return refuse(
            Refusal.COPY,
            f"within L2 distance {near[1]:.3g} of {whose} (copies are below {limit:g})",
            claimed=claimed,
        )
    score = evaluate(ctx.work, weights, ctx.validation_seed)
    if isinstance(score, str):
        return refuse(Refusal.INVALID_WEIGHTS, score, claimed=claimed)
    tol = ctx.config.score_tolerance
    if claimed is None or not abs(claimed - score) <= tol:
        return refuse(
            Refusal.SCORE_MISMATCH,
            f"claimed score {reveal['score']} does not reproduce: re-evaluated {score!r} (tolerance {tol:g})",
            claimed=claimed,
            score=score,
        )
    if score < ctx.threshold:
        return refuse(
            Refusal.BELOW_THRESHOLD,
            f"score {score:.6g} is below the threshold {ctx.threshold:.6g}",
            claimed=claimed,
            score=score,
        )
    return replace(p, claimed=claimed, score=score, status="valid")


def _nearest(
    work: UsefulWork, weights: bytes, chain_weights: bytes, opened: Sequence[tuple[int, bytes, bytes]]
) -> tuple[int | None, float] | str | None:
    """(node or None for the chain model, distance) of the nearest earlier weights; a string when
    the work cannot measure them."""
    best: tuple[int | None, float] | None = None
    for j, w in [(None, chain_weights), *((j, w) for j, _, w in opened)]:
        try:
            d = float(work.distance(weights, w))
        except (ValueError, TypeError) as exc:
            return f"the work cannot measure the weights: {exc}"
        if best is None or d < best[1]:
            best = (j, d)
    return best
