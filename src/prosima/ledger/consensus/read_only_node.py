"""A read-only view of a consensus node's current round, for an observer that must not change it
(a fault injector deciding what a faulty node sends)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING

from prosima.ledger.consensus.round_state import Lock, Step
from prosima.ledger.log.transaction import Transaction

if TYPE_CHECKING:
    from prosima.ledger.consensus.protocol import ConsensusContext, ConsensusNode


class ReadOnlyNode:
    """What node ``index`` knows of its current round: values, tuples and read-only mappings, never
    the node's own containers."""

    __slots__ = ("_node",)

    def __init__(self, node: ConsensusNode) -> None:
        self._node = node

    @property
    def index(self) -> int:
        """The node's index."""
        return self._node.index

    @property
    def ctx(self) -> ConsensusContext:
        """What every node knows alike (node ids, voting power, the observer of signatures)."""
        return self._node.ctx

    @property
    def height(self) -> int:
        """Height of the round."""
        return self._node.round.height

    @property
    def view(self) -> int:
        """The round's current view."""
        return self._node.round.view

    @property
    def step(self) -> Step:
        """The step the round is at."""
        return self._node.round.step

    @property
    def my_txs(self) -> tuple[bytes, ...]:
        """The transactions the node signed this round (encoded)."""
        return tuple(self._node.round.my_txs)

    @property
    def pool(self) -> Mapping[bytes, Transaction]:
        """The pooled transactions by id."""
        return MappingProxyType(self._node.pool)

    @property
    def checked(self) -> Mapping[bytes, bool]:
        """Transaction id -> whether its signature verified, for those the node checked."""
        return MappingProxyType(self._node.round.checked)

    @property
    def accepted(self) -> tuple[bytes, tuple[bytes, ...]] | None:
        """The leader's header and transaction ids the node prepared in this view, if any."""
        return self._node.round.accepted

    @property
    def quorum(self) -> Lock | None:
        """The header that reached a prepare quorum in this view, if any."""
        return self._node.round.quorum

    @property
    def headers_seen(self) -> Mapping[bytes, bytes]:
        """Block hash -> header of every header prepared this round."""
        return MappingProxyType(self._node.round.headers_seen)

    def header_for(self, tx_ids: Sequence[bytes], when: int, proposer: bytes) -> bytes:
        """The encoded header the node would build over pooled transactions ``tx_ids``."""
        txs = [self._node.pool[t] for t in tx_ids]
        return self._node.header(txs, when, proposer).encode()
