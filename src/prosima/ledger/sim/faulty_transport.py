"""A transport through which the faulty nodes hosted here lie.

It wraps the real transport: what a faulty local node hands to a collective is rewritten by its
``Adversary`` before it leaves, according to the step the node's round is at (its transaction batch
in ``SIGN``, the proposal in ``PROPOSE``, ...). Honest nodes' messages and anything sent outside a
round's steps pass unchanged, and the nodes themselves never know.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from prosima.ledger.consensus.read_only_node import ReadOnlyNode
from prosima.ledger.consensus.round_state import Step
from prosima.ledger.consensus.transport import Contribution, Msg, Transport
from prosima.ledger.sim.adversary import Adversary


class FaultyTransport:
    """``inner`` with the messages of the local nodes in ``adversaries`` rewritten by them;
    ``hosted(i)`` is local node ``i``'s read-only view."""

    def __init__(
        self,
        inner: Transport,
        adversaries: Mapping[int, Adversary],
        hosted: Callable[[int], ReadOnlyNode],
    ) -> None:
        remote = sorted(set(adversaries) - set(inner.local))
        if remote:
            raise ValueError(f"faulty nodes {remote} are not hosted by this transport")
        self.inner = inner
        self.adversaries = dict(adversaries)
        self.hosted = hosted
        self.size = inner.size
        self.local = inner.local
        self.split_allgather = inner.split_allgather

    @property
    def bytes_sent(self) -> int:
        """Bytes the inner transport sent."""
        return self.inner.bytes_sent

    def _faulty(self, senders: Sequence[int]) -> list[tuple[int, Adversary, ReadOnlyNode]]:
        return [(i, self.adversaries[i], self.hosted(i)) for i in senders if i in self.adversaries]

    def allgather(self, sent: Mapping[int, Contribution]) -> dict[int, list[Msg]]:
        """Transaction batches, prepares and offered certificates, rewritten as the faulty send them."""
        out = dict(sent)
        for i, adversary, node in self._faulty(list(sent)):
            if node.step is Step.SIGN:
                out[i] = adversary.txs(node, sent[i])
            elif node.step is Step.PREPARE:
                out[i] = adversary.prepare(node, sent[i])
            elif node.step is Step.OFFER:
                out[i] = adversary.offer(node, sent[i])
        return self.inner.allgather(out)

    def scatter(self, root: int, sent: Sequence[Msg] | None) -> dict[int, Msg]:
        """The leader's proposals, rewritten when the leader is faulty and hosted here."""
        for _, adversary, node in self._faulty([root]):
            if node.step is Step.PROPOSE:
                sent = adversary.proposal(node, None if sent is None else list(sent))
        return self.inner.scatter(root, sent)

    def alltoall(self, sent: Mapping[int, Sequence[Msg] | None]) -> dict[int, list[Msg]]:
        """Commit votes, rewritten as the faulty send them."""
        out = dict(sent)
        for i, adversary, node in self._faulty(list(sent)):
            if node.step is Step.COMMIT:
                row = sent[i]
                out[i] = adversary.commits(node, None if row is None else list(row))
        return self.inner.alltoall(out)

    def bcast(self, root: int, sent: Msg) -> dict[int, Msg]:
        """The leader's block, rewritten when the leader is faulty and hosted here."""
        for _, adversary, node in self._faulty([root]):
            if node.step is Step.DECIDE:
                sent = adversary.block(node, sent)
        return self.inner.bcast(root, sent)

    def gather_objects(self, obj: object) -> list[object] | None:
        """See ``Transport.gather_objects``."""
        return self.inner.gather_objects(obj)

    def barrier(self) -> None:
        """See ``Transport.barrier``."""
        self.inner.barrier()
