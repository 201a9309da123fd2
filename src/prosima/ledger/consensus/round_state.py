"""One node's state in one consensus round, and the step the round is in.

A round moves through ``Step`` in order (a failed view goes back to ``PROPOSE`` in the next view).
Every handler of ``ConsensusNode`` names the step it belongs to and is refused (``OutOfStep``) in
any other, so a driver that calls handlers out of order fails at once instead of acting on another
step's state. What a round learns lives here and is dropped with it when the next round starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from prosima.ledger.consensus.messages import Decided
from prosima.ledger.log.block import Block
from prosima.ledger.log.quorum import QuorumCertificate


class Step(StrEnum):
    """Where a node's round is (what it sends in that step, if anything, in brackets)."""

    IDLE = "idle"  # no round started at this height yet
    SIGN = "sign"  # signed its requests [its transaction batch]; takes every node's batch
    PROPOSE = "propose"  # pool checked; the view's leader proposes [proposal], every node takes it
    PREPARE = "prepare"  # took the proposal [its prepare]; counts the prepares
    COMMIT = "commit"  # counted the prepares [its commit votes]; counts the commit votes
    DECIDE = "decide"  # counted the commits; the leader [block] broadcasts, every node checks it
    OFFER = "offer"  # the leader's block failed [the certificate it holds]; takes the first valid one
    APPEND = "append"  # a block was decided; appends it


class OutOfStep(RuntimeError):
    """A handler was called in a step of the round it does not belong to (a driver bug)."""


@dataclass(frozen=True, slots=True)
class Lock:
    """A header that reached a prepare quorum: the value locked on (``value_of`` the header), the
    view it was locked in, the header and the ids of its transactions."""

    value: bytes
    view: int
    header: bytes
    tx_ids: tuple[bytes, ...]


@dataclass
class RoundState:
    """What a node knows of the round at ``height``, in view ``view``, at step ``step``."""

    height: int
    step: Step = Step.IDLE
    view: int = 0
    my_txs: list[bytes] = field(default_factory=list)  # the batch this node signed
    rejected: list[bytes] = field(default_factory=list)  # ids it found invalid, announced in prepares
    checked: dict[bytes, bool] = field(default_factory=dict)  # id -> signature verified
    invalid: set[bytes] = field(default_factory=set)
    accepted: tuple[bytes, tuple[bytes, ...]] | None = None  # the leader's (header, ids) it prepared
    lock: Lock | None = None
    quorum: Lock | None = None  # the header with a prepare quorum in this view
    valid_sigs: dict[bytes, dict[int, bytes]] = field(default_factory=dict)  # block hash -> signer -> sig
    signed_by: dict[int, set[bytes]] = field(default_factory=dict)  # signer -> block hashes it signed
    headers_seen: dict[bytes, bytes] = field(default_factory=dict)  # block hash -> header
    qc: QuorumCertificate | None = None
    decided: Decided | None = None
    decided_block: Block | None = None
    nothing_left: bool = False  # the leader said nothing valid is left to propose

    def expect(self, step: Step, handler: str, view: int | None = None) -> None:
        """Refuse ``handler`` unless the round is at ``step`` (and in ``view``, when given)."""
        if self.step is not step or (view is not None and view != self.view):
            where = f"step {self.step}, view {self.view}"
            wanted = f"step {step}" + ("" if view is None else f", view {view}")
            raise OutOfStep(f"{handler} belongs to {wanted}; the round at height {self.height} is at {where}")
