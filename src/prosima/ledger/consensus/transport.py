"""How consensus nodes exchange messages, in lockstep rounds, and the in-process transport.

Every round is one collective call made by every node (a silent node takes part and sends
``None``; inside MPI a crash can only be modelled so, because a dead rank aborts the job). A message
that is ``None`` on arrival is one that did not come before the round's timeout.

- ``allgather``: each node's one message reaches every node unchanged (MPI's Allgather gives this
  when the MPI library itself is trusted). Used for transactions, prepares and offered certificates.
- ``scatter``/``alltoall``: a message per receiver, so a faulty sender can tell different nodes
  different things. Used for proposals and commit votes.
- ``bcast``: the leader's block, the same for every receiver.

A transport hosts some nodes (``local``): all of them in process, a block of them per MPI rank.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

Msg = bytes | None


class Split:
    """A contribution to an all-gather that differs per receiver: only the in-process transport
    built with ``split_allgather=True`` accepts it (to test safety without consistent all-gathers)."""

    __slots__ = ("per_dest",)

    def __init__(self, per_dest: Sequence[Msg]) -> None:
        self.per_dest = list(per_dest)


Contribution = Msg | Split


class Transport(Protocol):
    """Lockstep collectives over ``size`` nodes, of which ``local`` live here."""

    size: int
    local: tuple[int, ...]
    split_allgather: bool

    @property
    def bytes_sent(self) -> int:
        """Bytes sent so far (a message to ``k`` other nodes counts ``k`` times)."""
        ...

    def allgather(self, sent: Mapping[int, Contribution]) -> dict[int, list[Msg]]:
        """Each local node's message to all; returns, per local node, the messages of every node."""
        ...

    def scatter(self, root: int, sent: Sequence[Msg] | None) -> dict[int, Msg]:
        """``root``'s message for each node (``sent`` is used only where ``root`` is local)."""
        ...

    def alltoall(self, sent: Mapping[int, Sequence[Msg] | None]) -> dict[int, list[Msg]]:
        """Each local node's message per receiver; returns, per local node, one message per sender."""
        ...

    def bcast(self, root: int, sent: Msg) -> dict[int, Msg]:
        """``root``'s one message to every node."""
        ...

    def gather_objects(self, obj: object) -> list[object] | None:
        """Collect one plain object per local node at node 0's host (``None`` elsewhere)."""
        ...

    def barrier(self) -> None:
        """Return once every host got here (so that no host's clock starts while another still works)."""
        ...


def _size(msg: Msg) -> int:
    return len(msg) if msg is not None else 0


class LocalTransport:
    """All nodes in one process; deterministic, for tests and the ``inproc`` backend."""

    def __init__(self, size: int, *, split_allgather: bool = False) -> None:
        self.size = size
        self.local = tuple(range(size))
        self.split_allgather = split_allgather
        self.bytes_sent = 0

    def _per_dest(self, sender: int, msg: Contribution) -> list[Msg]:
        if isinstance(msg, Split):
            if not self.split_allgather:
                raise ValueError(f"node {sender} sent a per-receiver all-gather; this transport forbids it")
            if len(msg.per_dest) != self.size:
                raise ValueError("a split contribution needs one message per node")
            return msg.per_dest
        return [msg] * self.size

    def allgather(self, sent: Mapping[int, Contribution]) -> dict[int, list[Msg]]:
        """See ``Transport.allgather``."""
        rows = [self._per_dest(i, sent.get(i)) for i in range(self.size)]
        self.bytes_sent += sum(_size(rows[i][0]) for i in range(self.size)) * (self.size - 1)
        return {d: [rows[s][d] for s in range(self.size)] for d in self.local}

    def scatter(self, root: int, sent: Sequence[Msg] | None) -> dict[int, Msg]:
        """See ``Transport.scatter``."""
        msgs = list(sent) if sent is not None else [None] * self.size
        if len(msgs) != self.size:
            raise ValueError("scatter needs one message per node")
        self.bytes_sent += sum(_size(m) for d, m in enumerate(msgs) if d != root)
        return {d: msgs[d] for d in self.local}

    def alltoall(self, sent: Mapping[int, Sequence[Msg] | None]) -> dict[int, list[Msg]]:
        """See ``Transport.alltoall``."""
        rows = []
        for s in range(self.size):
            row = sent.get(s)
            row = list(row) if row is not None else [None] * self.size
            if len(row) != self.size:
                raise ValueError("alltoall needs one message per node")
            rows.append(row)
            self.bytes_sent += sum(_size(m) for d, m in enumerate(row) if d != s)
        return {d: [rows[s][d] for s in range(self.size)] for d in self.local}

    def bcast(self, root: int, sent: Msg) -> dict[int, Msg]:
        """See ``Transport.bcast``."""
        self.bytes_sent += _size(sent) * (self.size - 1)
        return dict.fromkeys(self.local, sent)

    def barrier(self) -> None:
        """One host: nothing to wait for."""

    def gather_objects(self, obj: object) -> list[object] | None:
        """In process there is nothing to gather: the caller already holds every node."""
        return [obj]
