"""How faulty behaviour reaches consensus nodes without the protocol knowing of it.

The node handlers are always honest. A ``FaultInjection`` (a simulator builds one, e.g.
``prosima.ledger.sim.byzantine.FaultSchedule``; consensus never imports it) wraps the transport the
rounds run over: what a faulty node hosted here hands to a collective is rewritten, dropped or
duplicated on its way out, from a read-only view of that node's round.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from prosima.ledger.consensus.read_only_node import ReadOnlyNode
from prosima.ledger.consensus.transport import Transport
from prosima.ledger.log.crypto import NodeKey


class FaultInjection(Protocol):
    """Which nodes are faulty, and the transport through which the hosted ones misbehave."""

    @property
    def nodes(self) -> frozenset[int]:
        """The faulty nodes (hosted here or not)."""
        ...

    def wrap(
        self,
        transport: Transport,
        hosted: Callable[[int], ReadOnlyNode],
        keys: Mapping[int, NodeKey],
        seed: int,
    ) -> Transport:
        """``transport`` with the outgoing messages of the faulty nodes it hosts rewritten.
        ``hosted(i)`` is hosted node ``i``'s read-only view (asked at each message, since a node may
        be rebuilt), ``keys`` the node keys at hand (the faulty nodes among them collude) and
        ``seed`` the run's seed (faulty choices are drawn from it)."""
        ...
