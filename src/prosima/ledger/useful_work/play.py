"""A simulated round: every node trains, commits and reveals as its behaviour says, over an
in-process network that stamps commit ticks, then the validators decide."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from prosima.ledger.errors import LedgerError
from prosima.ledger.log.block import Block
from prosima.ledger.log.crypto import NodeKey
from prosima.ledger.log.registry import Registry
from prosima.ledger.useful_work.behaviour import Behaviour
from prosima.ledger.useful_work.commitments import (
    commitment,
    perturb_seed,
    salt_for,
    train_seed,
    validation_seed,
    weights_hash,
)
from prosima.ledger.useful_work.config import RoundConfig
from prosima.ledger.useful_work.decide import decide
from prosima.ledger.useful_work.messages import Delivery, Signed, make_commit, make_reveal
from prosima.ledger.useful_work.record import RoundRecord
from prosima.ledger.useful_work.work import UsefulWork


@dataclass
class RoundOutcome:
    """A decided round: the record, the chain model after it, the block that holds the record
    (once committed) and where the time went."""

    record: RoundRecord
    weights: bytes
    block: Block | None = None
    seconds: dict[str, float] = field(default_factory=dict)


_COPIERS = frozenset({Behaviour.COPY, Behaviour.NEAR_COPY, Behaviour.COPY_CHAIN})


def _copy_target(i: int, behaviours: Mapping[int, Behaviour], n: int) -> int | None:
    """Whose weights copier ``i`` steals: the first honest node, else the first that reveals them
    (inflated score), else the first that trains (``None``: nobody trains: the chain model)."""
    trains = [j for j in range(n) if j != i and behaviours.get(j, Behaviour.HONEST) not in _COPIERS]
    for wanted in (Behaviour.HONEST, Behaviour.INFLATED_SCORE):
        picks = [j for j in trains if behaviours.get(j, Behaviour.HONEST) == wanted]
        if picks:
            return picks[0]
    return trains[0] if trains else None


def play_round(
    work: UsefulWork,
    keys: Sequence[NodeKey],
    registry: Registry,
    *,
    round_no: int,
    seed: int,
    chain_weights: bytes,
    behaviours: Mapping[int, Behaviour] | None = None,
    config: RoundConfig | None = None,
) -> RoundOutcome:
    """Simulate one round among the nodes holding ``keys`` (in registry order): each trains, commits
    and reveals as its behaviour says (default honest), then ``config.validators`` nodes run
    ``decide`` independently; ``LedgerError`` if they disagree (the work is not deterministic).

    The simulated network delivers node ``i``'s commit at tick ``i``, a copier's at ``n + i``
    (after the node it copies) and a late node's at ``deadline + 1 + i``."""
    config = config or RoundConfig()
    behaviours = dict(behaviours or {})
    n = len(keys)
    if [k.node_id for k in keys] != list(registry.members):
        raise LedgerError("play_round needs the key of every registered node, in registry (node id) order")
    unknown = sorted(set(behaviours) - set(range(n)))
    if unknown:
        raise LedgerError(f"behaviours name nodes {unknown}, outside 0..{n - 1}")
    prev = weights_hash(chain_weights)
    deadline = config.deadline(n)
    t0 = time.perf_counter()

    def role(i: int) -> Behaviour:
        return behaviours.get(i, Behaviour.HONEST)

    trained = {
        i: work.train(i, round_no, chain_weights, train_seed(seed, round_no, i))
        for i in range(n)
        if role(i) not in _COPIERS
    }
    committed: dict[int, bytes] = dict(trained)
    for i in range(n):
        if role(i) in _COPIERS:
            target = None if role(i) == Behaviour.COPY_CHAIN else _copy_target(i, behaviours, n)
            stolen = chain_weights if target is None else trained[target]
            if role(i) == Behaviour.NEAR_COPY:
                stolen = work.perturb(stolen, perturb_seed(seed, round_no, i))
            committed[i] = stolen
    t1 = time.perf_counter()

    salts = {i: salt_for(keys[i], round_no, prev) for i in range(n)}
    commits: list[Delivery] = []
    on_time: list[bytes] = []  # what every node sees at the deadline
    for i in range(n):
        c = commitment(round_no, keys[i].node_id, weights_hash(committed[i]), salts[i])
        ticks = {Behaviour.LATE: deadline + 1 + i, Behaviour.COPY: n + i, Behaviour.NEAR_COPY: n + i}
        tick = ticks.get(role(i), i)
        commits.append(Delivery(make_commit(keys[i], round_no, prev, c), tick))
        if tick <= deadline:
            on_time.append(c)
    v = validation_seed(round_no, prev, on_time)

    reveals: list[Signed] = []
    for i in range(n):
        if role(i) == Behaviour.SILENT:
            continue
        shown = committed[i]
        if role(i) == Behaviour.BAD_REVEAL:
            shown = work.perturb(shown, perturb_seed(seed, round_no, i, "reveal"))
        claimed = float(work.score(shown, v))
        if role(i) == Behaviour.INFLATED_SCORE:
            claimed += max(0.05, 1000 * config.score_tolerance)
        reveals.append(make_reveal(keys[i], round_no, shown, salts[i], claimed))
    t2 = time.perf_counter()

    count = n if config.validators is None else min(n, config.validators)
    records = [
        decide(
            work,
            registry,
            round_no=round_no,
            seed=seed,
            chain_weights=chain_weights,
            commits=commits,
            reveals=reveals,
            config=config,
        )
        for _ in range(count)
    ]
    payloads = {r.to_payload() for r in records}
    if len(payloads) != 1:
        raise LedgerError(
            f"round {round_no}: the {count} validators reached {len(payloads)} different records"
        )
    record = records[0]
    if record.validation_seed != v:
        raise LedgerError(f"round {round_no}: the validators' validation seed is not the nodes'")
    weights = chain_weights if record.winner is None else committed[record.winner]
    t3 = time.perf_counter()
    seconds = {"train": t1 - t0, "commit_reveal": t2 - t1, "validate": t3 - t2, "total": t3 - t0}
    return RoundOutcome(record, weights, None, seconds)
