"""The MPI transport: consensus nodes spread over the ranks of ``mpirun`` (``mpi4py``, Open MPI here).

With N nodes on P ranks, rank r hosts a contiguous block of about N / P nodes (one each when
``mpirun -n N``). Every collective moves byte strings only: each rank sends the messages of its
nodes as one framed bundle (lengths first, then the bytes). ``mpirun`` aborts the whole job when a
rank dies, so a crashed node is modelled as a silent one (it still joins every collective, with
``None``). Waits are non-blocking tests with short sleeps, because with more ranks than free cores
spinning ranks take the CPU from the ones still working; ``PROSIMA_MPI_WAIT=spin`` uses MPI's own
(spinning) waits instead, which is faster when every rank has a core of its own.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Mapping, Sequence
from typing import Any

from prosima.ledger.consensus.transport import Contribution, Msg, Split
from prosima.optional import require

_LAUNCH_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS")
POLL_S = 20e-6
MAX_POLL_S = 1e-3
_LEN = struct.Struct("<i")


def launched_by_mpirun() -> bool:
    """True when this process was started by ``mpirun``/``mpiexec`` (Open MPI, MPICH, PMIx)."""
    return any(v in os.environ for v in _LAUNCH_VARS)


def world() -> Any:
    """``MPI.COMM_WORLD`` (initialises MPI on first use)."""
    return require("mpi4py.MPI", "mpi").COMM_WORLD


def hosted(nodes: int, ranks: int, rank: int) -> tuple[int, ...]:
    """The contiguous block of nodes rank ``rank`` hosts (sizes differ by at most one)."""
    if not 1 <= ranks <= nodes:
        raise ValueError(f"{nodes} nodes cannot be spread over {ranks} MPI ranks (need nodes >= ranks)")
    base, extra = divmod(nodes, ranks)
    start = rank * base + min(rank, extra)
    return tuple(range(start, start + base + (rank < extra)))


def _frame(msgs: Sequence[Msg]) -> bytes:
    """Length-prefixed messages (-1: none)."""
    parts = []
    for m in msgs:
        parts.append(_LEN.pack(-1 if m is None else len(m)))
        if m:
            parts.append(m)
    return b"".join(parts)


def _unframe(data: bytes | bytearray | memoryview, count: int) -> list[Msg]:
    out: list[Msg] = []
    pos = 0
    view = memoryview(data)
    for _ in range(count):
        (n,) = _LEN.unpack_from(view, pos)
        pos += _LEN.size
        if n < 0:
            out.append(None)
        else:
            out.append(bytes(view[pos : pos + n]))
            pos += n
    return out


def _size(msg: Msg) -> int:
    return len(msg) if msg is not None else 0


class MpiTransport:
    """The ``Transport`` of one rank: it hosts ``local`` of the ``size`` nodes."""

    split_allgather = False

    def __init__(
        self,
        comm: Any = None,
        *,
        nodes: int | None = None,
        poll_s: float = POLL_S,
        max_poll_s: float = MAX_POLL_S,
    ) -> None:
        self.comm = comm if comm is not None else world()
        self.ranks = int(self.comm.Get_size())
        self.rank = int(self.comm.Get_rank())
        self.size = self.ranks if nodes is None else nodes
        self.blocks = [hosted(self.size, self.ranks, r) for r in range(self.ranks)]
        self.local = self.blocks[self.rank]
        self.owner = [r for r, block in enumerate(self.blocks) for _ in block]
        self.bytes_sent = 0
        self.poll_s = poll_s
        self.max_poll_s = max_poll_s
        self.spin = os.environ.get("PROSIMA_MPI_WAIT", "poll") == "spin"
        self._mpi = require("mpi4py.MPI", "mpi")
        self._np = require("numpy", "mpi")

    def _wait(self, request: Any) -> None:
        if self.spin:
            request.Wait()
            return
        pause = self.poll_s
        while not request.Test():
            time.sleep(pause)
            pause = min(pause * 2, self.max_poll_s)

    def _displs(self, counts: Any) -> Any:
        displs = self._np.zeros_like(counts)
        if len(counts) > 1:
            displs[1:] = self._np.cumsum(counts)[:-1]
        return displs

    def _allgatherv(self, data: bytes) -> tuple[bytearray, Any, Any]:
        np, mpi = self._np, self._mpi
        counts = np.empty(self.ranks, dtype=np.int64)
        self._wait(self.comm.Iallgather(np.array([len(data)], dtype=np.int64), counts))
        displs = self._displs(counts)
        buf = bytearray(int(counts.sum()))
        self._wait(self.comm.Iallgatherv([data, len(data), mpi.BYTE], [buf, counts, displs, mpi.BYTE]))
        return buf, counts, displs

    def allgather(self, sent: Mapping[int, Contribution]) -> dict[int, list[Msg]]:
        """See ``Transport.allgather``; MPI's all-gather is the same for every receiver."""
        mine: list[Msg] = []
        for i in self.local:
            msg = sent.get(i)
            if isinstance(msg, Split):
                raise ValueError("an MPI all-gather cannot send different messages to different ranks")
            mine.append(msg)
            self.bytes_sent += _size(msg) * (self.size - 1)
        buf, counts, displs = self._allgatherv(_frame(mine))
        every: list[Msg] = []
        for r, block in enumerate(self.blocks):
            start = int(displs[r])
            every += _unframe(buf[start : start + int(counts[r])], len(block))
        return {d: every for d in self.local}

    def _exchange(self, bundles: Sequence[bytes]) -> list[bytes]:
        """One byte string to each rank and one from each (all-to-all of variable sizes)."""
        np, mpi = self._np, self._mpi
        scounts = np.array([len(b) for b in bundles], dtype=np.int64)
        rcounts = np.empty(self.ranks, dtype=np.int64)
        self._wait(self.comm.Ialltoall(scounts, rcounts))
        rdispls = self._displs(rcounts)
        buf = bytearray(int(rcounts.sum()))
        data = b"".join(bundles)
        self._wait(
            self.comm.Ialltoallv(
                [data, scounts, self._displs(scounts), mpi.BYTE], [buf, rcounts, rdispls, mpi.BYTE]
            )
        )
        return [bytes(buf[int(rdispls[r]) : int(rdispls[r]) + int(rcounts[r])]) for r in range(self.ranks)]

    def scatter(self, root: int, sent: Sequence[Msg] | None) -> dict[int, Msg]:
        """See ``Transport.scatter`` (an all-to-all in which only the root's host sends)."""
        bundles = [b""] * self.ranks
        if root in self.local:
            msgs = list(sent) if sent is not None else [None] * self.size
            self.bytes_sent += sum(_size(m) for d, m in enumerate(msgs) if d != root)
            bundles = [_frame([msgs[d] for d in block]) for block in self.blocks]
        got = self._exchange(bundles)[self.owner[root]]
        return dict(zip(self.local, _unframe(got, len(self.local)), strict=True))

    def alltoall(self, sent: Mapping[int, Sequence[Msg] | None]) -> dict[int, list[Msg]]:
        """See ``Transport.alltoall``."""
        rows = {}
        for s in self.local:
            row = sent.get(s)
            rows[s] = list(row) if row is not None else [None] * self.size
            self.bytes_sent += sum(_size(m) for d, m in enumerate(rows[s]) if d != s)
        bundles = [_frame([rows[s][d] for s in self.local for d in block]) for block in self.blocks]
        got = self._exchange(bundles)
        out: dict[int, list[Msg]] = {d: [None] * self.size for d in self.local}
        for r, block in enumerate(self.blocks):
            msgs = _unframe(got[r], len(block) * len(self.local))
            k = 0
            for s in block:
                for d in self.local:
                    out[d][s] = msgs[k]
                    k += 1
        return out

    def bcast(self, root: int, sent: Msg) -> dict[int, Msg]:
        """See ``Transport.bcast``."""
        np, mpi = self._np, self._mpi
        host = self.owner[root]
        mine = self.rank == host
        if mine:
            self.bytes_sent += _size(sent) * (self.size - 1)
        length = np.array([-1 if not mine or sent is None else len(sent)], dtype=np.int64)
        self._wait(self.comm.Ibcast(length, root=host))
        n = int(length[0])
        buf = bytearray(sent) if (mine and sent is not None) else bytearray(max(n, 0))
        if n > 0:
            self._wait(self.comm.Ibcast([buf, n, mpi.BYTE], root=host))
        msg = None if n < 0 else bytes(buf)
        return dict.fromkeys(self.local, msg)

    def barrier(self) -> None:
        """Every rank reached this point."""
        self._wait(self.comm.Ibarrier())

    def gather_objects(self, obj: object) -> list[object] | None:
        """Every rank's ``obj`` at rank 0, in rank order (``None`` on other ranks)."""
        return self.comm.gather(obj, root=0)
