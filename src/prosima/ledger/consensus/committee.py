"""A ledger directory's own nodes as a consensus committee: entries are committed by the real
protocol (``consensus.run_round``) among the registered nodes, and the decided block is appended
to the directory's store, which checks its certificate and signatures against the registry.

Every node starts at the store's tip (a ``PartialReplica`` with a copy of the tip and the log, no
transaction bodies: the store is the full copy). The setup is the simulated ``Network``'s: a
Barabasi-Albert overlay from the seed, one vote per node, GFT verifier sets; node ``i`` is the
``i``-th registered node id in sorted order, with its key from ``keys/``.

Under MPI (``transport=MpiTransport(nodes=N)``, ``mpirun -n P``), each rank hosts its block of
nodes and every rank must:

- open the same ledger directory (a shared filesystem) with ``Ledger.open`` and build a
  ``Committee`` on it with the same ``seed``, ``overlay_m`` and node count;
- call ``commit`` the same number of times with the same ``origin``; only the rank hosting the
  origin node needs the entries (the others' are ignored, so they may pass ``[]``);
- close its ledger. Only the rank hosting node 0 (rank 0) writes the store and marks it for a
  checkpoint, so that rank must open the ledger with verification (the default). Other ranks
  return the decided block without writing it; their ``ledger.store`` is not updated.

Before each round the nodes all-gather a short preflight: the origin's entry count or the reason
its entries are invalid, the writer's store tip and each node's replica tip. Every rank decides
from the same bytes, so an invalid entry raises ``LedgerError`` everywhere before anything is
signed or written, and a store tip that moved (``Ledger.append``, another committee) makes every
node re-sync to it (other ranks read it from the store file) instead of forking the chain.

``faults`` (a ``FaultInjection``, e.g. a ``prosima.ledger.sim.byzantine.FaultSchedule`` the caller
builds) makes hosted nodes misbehave as ``ledger network --byzantine`` does, to rehearse a committee
with faulty members: the rounds run over the transport it wraps, the nodes stay honest inside. More
faulty nodes than the protocol tolerates are refused.
``submit`` is ``commit`` for a possibly faulty origin: entries the rounds left out are reported, with
why, instead of failing the whole commit.
"""

from __future__ import annotations

import copy
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from prosima.ledger.consensus.events import Event, FaultEvent
from prosima.ledger.consensus.fault_injection import FaultInjection
from prosima.ledger.consensus.overlay import Overlay
from prosima.ledger.consensus.protocol import (
    PHASES,
    ConsensusContext,
    ConsensusNode,
    Request,
    RoundResult,
    run_round,
)
from prosima.ledger.consensus.read_only_node import ReadOnlyNode
from prosima.ledger.consensus.replica import PartialReplica
from prosima.ledger.consensus.transport import LocalTransport, Msg, Transport
from prosima.ledger.consensus.verifiers import verifier_sets
from prosima.ledger.consensus.voting import VotingPower
from prosima.ledger.errors import LedgerError
from prosima.ledger.log.block import Block
from prosima.ledger.log.crypto import SIGNATURE_SIZE, NodeKey
from prosima.ledger.log.directory import Entry, Ledger
from prosima.ledger.log.encoding import decode, encode
from prosima.ledger.log.store import Store
from prosima.ledger.log.transaction import Transaction, now_us
from prosima.ledger.log.verify import ChainState

WRITER = 0
STALE = -2  # the height a node reports when it must be rebuilt whatever the store's tip


# what a node's fault event says about the origin of a transaction batch, in a user's words
_DROP_REASONS = {
    FaultEvent.SILENT: "sent no transaction batch (silent)",
    FaultEvent.MALFORMED_MESSAGE: "sent a malformed transaction batch",
    FaultEvent.INVALID_TRANSACTION: "sent transactions that do not decode or are not signed as its own",
    FaultEvent.INVALID_TRANSACTION_SIGNATURE: "signed its transactions with signatures that do not verify",
}


@dataclass(frozen=True)
class Submitted:
    """What ``Committee.submit`` decided: the blocks written (in order) and the entries left out,
    as ``(entry index, reason)`` (known on the rank hosting the origin; empty elsewhere)."""

    blocks: tuple[Block, ...]
    dropped: tuple[tuple[int, str], ...]

    @property
    def block(self) -> Block | None:
        """The last block written, if any."""
        return self.blocks[-1] if self.blocks else None


def _keep_nothing(_tx_id: bytes, _tx: Transaction) -> bool:
    return False


def state_at(store: Store, height: int) -> ChainState | None:
    """A copy of ``store``'s tip and log as they were after block ``height`` (``None``: the store
    does not reach it). The log is copied as bytes, with no hashing."""
    if height > store.height:
        return None
    if height < 0:
        return ChainState(seen=None)
    log = copy.deepcopy(store.log)
    if height == store.height:
        return ChainState(store.height, store.tip_hash, store.tip_time, log, seen=None)
    header = store.header(height)
    log.truncate(header.log_size)
    return ChainState(height, header.hash, header.time, log, seen=None)


class Committee:
    """The consensus nodes of ``ledger`` hosted here (all of them in process, the rank's block
    under MPI) and the commit of entries through them into ``ledger.store``."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        seed: int = 0,
        transport: Transport | None = None,
        overlay_m: int = 2,
        faults: FaultInjection | None = None,
    ) -> None:
        self.ledger = ledger
        self.seed = seed
        node_ids = tuple(ledger.registry.members)
        n = len(node_ids)
        self.transport = transport or LocalTransport(n)
        if self.transport.size != n:
            raise LedgerError(f"the transport has {self.transport.size} nodes, the registry {n}")
        self.overlay = Overlay.barabasi_albert(n, overlay_m, seed)
        self.power = VotingPower.make("count", self.overlay.degrees)
        self.ctx = ConsensusContext(
            ledger.registry, node_ids, self.power, self.overlay.by_degree, verifier_sets("gft", n, seed)
        )
        by_id = {k.node_id: k for k in ledger.keys}
        self.keys: dict[int, NodeKey] = {}
        for i in self.transport.local:
            key = by_id.get(node_ids[i])
            if key is None:
                raise LedgerError(
                    f"node {i} ({node_ids[i].hex()}) is hosted here but its key is not in "
                    f"{ledger.path / 'keys'}; a committee needs the key of every node it hosts"
                )
            self.keys[i] = key
        self.faulty = faults.nodes if faults is not None else frozenset()
        bad = sorted(i for i in self.faulty if not 0 <= i < n)
        if bad:
            raise LedgerError(f"faulty node {bad[0]} is not a node index between 0 and {n - 1}")
        if not self.power.tolerates(self.faulty):
            raise LedgerError(
                f"{len(self.faulty)} faulty nodes of {n} exceed what consensus tolerates "
                f"(at most {self.power.f}); refused, so that they cannot certify a block"
            )
        # the rounds' transport, built once: a crashed faulty leader stays crashed across rebuilds
        self.wire = self.transport
        if faults is not None:
            self.wire = faults.wrap(self.transport, self._read_only, self.keys, seed)
        self.default_origin = self.ctx.index_of[ledger.local.node_id]
        self.writer = WRITER in self.transport.local
        self.nodes: dict[int, ConsensusNode] = {}
        self._stale = False
        start = state_at(ledger.store, ledger.store.height)
        assert start is not None
        self._build(start)
        self.last_seconds = 0.0
        self.last_rounds: list[RoundResult] = []
        self.last_blocks: list[Block] = []
        self.last_phases: dict[str, float] = dict.fromkeys(PHASES, 0.0)
        self.last_critical: dict[str, float] = dict.fromkeys(PHASES, 0.0)
        self.last_write_seconds = 0.0

    @property
    def n(self) -> int:
        """Number of nodes in the committee (every registered node)."""
        return self.ctx.n

    @property
    def height(self) -> int:
        """Height of the hosted nodes' chain."""
        return next(iter(self.nodes.values())).replica.height

    def _build(self, state: ChainState) -> None:
        """Fresh nodes (empty pools) whose replicas start at ``state`` (one copy of the log each)."""
        self.nodes = {}
        for k, i in enumerate(self.transport.local):
            own = state if k == 0 else copy.deepcopy(state)
            replica = PartialReplica.at_tip(self.ctx.registry, _keep_nothing, own)
            self.nodes[i] = ConsensusNode(i, self.keys[i], self.ctx, replica)
        self._stale = False

    def _read_only(self, index: int) -> ReadOnlyNode:
        """Hosted node ``index``'s read-only view (of the node as it is now: rebuilds replace it)."""
        return self.nodes[index].read_only()

    # -- preflight -------------------------------------------------------------------------

    def _check_entries(self, entries: Sequence[Entry], origin: int) -> str:
        """Why ``entries`` cannot become transactions ('' when they can), without signing them."""
        signer = self.ctx.node_ids[origin]
        for k, e in enumerate(entries):
            try:
                Transaction(e.kind, bytes(e.payload), bytes(e.key), now_us(), signer, bytes(SIGNATURE_SIZE))
            except (LedgerError, TypeError, ValueError, AttributeError) as exc:
                return f"entry {k} is invalid: {exc}"
        return ""

    def _preflight(self, entries: Sequence[Entry], origin: int) -> list[dict]:
        """All-gather every node's replica tip, the writer's store tip and the origin's entries'
        count or problem; every rank gets the same list (one map per node)."""
        sent: dict[int, Msg] = {}
        for i, node in self.nodes.items():
            msg: dict[str, object] = {
                "h": STALE if self._stale else node.replica.height,
                "tip": node.replica.tip_hash,
            }
            if i == WRITER:
                store = self.ledger.store
                msg |= {"store_h": store.height, "store_tip": store.tip_hash}
            if i == origin:
                msg |= {"count": len(entries), "error": self._check_entries(entries, origin)}
            sent[i] = encode(msg)
        got = self.transport.allgather(sent)
        rows = got[next(iter(self.nodes))]
        return [decode(m) if m is not None else {} for m in rows]

    def _resync(self, height: int, tip: bytes) -> bool:
        """Rebuild the hosted nodes at the writer's store tip; False when it cannot be reached."""
        if self.writer:
            state = state_at(self.ledger.store, height)
        else:  # this rank's store object is stale: read the file the writer appends to
            with Store.open(Path(self.ledger.store.path), self.ledger.registry, verify="none") as store:
                state = state_at(store, height)
        if state is None or state.block_hash != tip:
            return False
        self._build(state)
        return True

    def _sync(self, rows: list[dict]) -> None:
        """Bring every node to the writer's store tip (the same decision on every rank)."""
        height, tip = rows[WRITER]["store_h"], rows[WRITER]["store_tip"]
        behind = {i for i, r in enumerate(rows) if (r["h"], r["tip"]) != (height, tip)}
        if not behind:
            return
        ok = True
        if behind & set(self.nodes):
            ok = self._resync(height, tip)
        flags = self.transport.allgather({i: b"\x01" if ok else b"\x00" for i in self.nodes})
        if any(f != b"\x01" for f in flags[next(iter(self.nodes))]):
            self._stale = True
            raise LedgerError(
                f"the committee could not re-sync to the store's tip at height {height} "
                f"({tip.hex()[:16]}...); is every rank reading the same ledger directory?"
            )

    # -- commit ----------------------------------------------------------------------------

    def commit(self, entries: Sequence[Entry], *, origin: int | None = None) -> Block | None:
        """Commit ``entries`` as transactions signed by node ``origin`` (default: the node of
        ``ledger.local``) through consensus rounds, then append the decided block to the store
        (on the writer: this process, or the rank hosting node 0). Returns the block holding the
        entries, ``None`` when there are none; raises ``LedgerError`` for an invalid entry, a round
        that decides nothing, or a store the nodes cannot re-sync to, with nothing written."""
        return self._run(entries, origin, partial=False).block

    def submit(self, entries: Sequence[Entry], *, origin: int | None = None) -> Submitted:
        """As ``commit``, but entries the rounds leave out (a faulty origin that sends nothing or
        signs garbage) are reported with the reason the honest nodes saw, and the blocks that were
        decided are written; the nodes then start afresh from the store's tip."""
        return self._run(entries, origin, partial=True)

    def _run(self, entries: Sequence[Entry], origin: int | None, *, partial: bool) -> Submitted:
        origin = self.default_origin if origin is None else origin
        if not 0 <= origin < self.n:
            raise LedgerError(f"origin must be a node index between 0 and {self.n - 1}, got {origin}")
        self.last_rounds, self.last_blocks, self.last_write_seconds = [], [], 0.0
        self.last_phases = dict.fromkeys(PHASES, 0.0)
        self.last_critical = dict.fromkeys(PHASES, 0.0)
        start = time.perf_counter()
        try:
            return self._commit(entries, origin, partial)
        finally:
            self.last_seconds = time.perf_counter() - start

    def _commit(self, entries: Sequence[Entry], origin: int, partial: bool) -> Submitted:
        rows = self._preflight(entries, origin)
        if rows[origin]["error"]:
            raise LedgerError(f"nothing committed: {rows[origin]['error']}")
        count = rows[origin]["count"]
        if count == 0:
            return Submitted((), ())
        self._sync(rows)
        requests: Mapping[int, Sequence[Request]] = {}
        if origin in self.nodes:
            tip_time = self.nodes[origin].replica.tip_time
            requests = {
                origin: [
                    Request(e.kind, bytes(e.payload), bytes(e.key), max(now_us(), tip_time)) for e in entries
                ]
            }
        seen = {i: set(node.events) for i, node in self.nodes.items()}
        first_height = self.height + 1
        try:
            blocks = self._decide(requests, count, partial)
        except BaseException:
            self._stale = True  # pools and replicas may be half-way through a round
            raise
        if self.writer:
            t = time.perf_counter()
            for block in blocks:
                self.ledger.store.append(block, signatures=True)
                self.ledger._dirty = True
            self.last_write_seconds = time.perf_counter() - t
        dropped: tuple[tuple[int, str], ...] = ()
        if sum(len(b.txs) for b in blocks) != count:
            self._stale = True  # what the rounds left in the pools must not reach a later block
            new = {e for i, node in self.nodes.items() for e in node.events - seen[i] if i not in self.faulty}
            why = _drop_reason(new, origin, range(first_height, first_height + len(self.last_rounds)))
            dropped = tuple((k, why) for k in _left_out(entries, blocks, self.ctx.node_ids[origin]))
        return Submitted(tuple(blocks), dropped)

    def _decide(self, requests: Mapping[int, Sequence[Request]], count: int, partial: bool) -> list[Block]:
        """Rounds until the pool is empty (one without faults); the blocks, holding ``count``
        transactions in all, or ``LedgerError`` (fewer are fine when ``partial``)."""
        blocks: list[Block] = []
        for _ in range(count):
            result = run_round(self.nodes, self.wire, requests)
            requests = {}
            self.last_rounds.append(result)
            for p in PHASES:
                self.last_phases[p] += result.phases[p]
                self.last_critical[p] += result.critical[p]
            if result.block is None:
                break
            blocks.append(result.block)
            if not any(node.pool for node in self.nodes.values()):
                break
        self.last_blocks = blocks
        decided = sum(len(b.txs) for b in blocks)
        if decided != count and not partial:
            raise LedgerError(
                f"consensus decided {decided} of the {count} transactions in {len(blocks)} block(s); "
                "nothing was written"
            )
        return blocks


def _left_out(entries: Sequence[Entry], blocks: Sequence[Block], signer: bytes) -> list[int]:
    """Indices of the ``entries`` no block holds as a transaction signed by ``signer``."""
    held = Counter((tx.kind, tx.payload, tx.key) for b in blocks for tx in b.txs if tx.signer == signer)
    out = []
    for k, e in enumerate(entries):
        item = (e.kind, bytes(e.payload), bytes(e.key))
        if held[item] > 0:
            held[item] -= 1
        else:
            out.append(k)
    return out


def _drop_reason(events: set[Event], origin: int, heights: range) -> str:
    """Why the honest nodes left the origin's transactions out, from the faults they recorded."""
    kinds = sorted({e.kind for e in events if e.culprit == origin and e.height in heights})
    said = [_DROP_REASONS[k] for k in kinds if k in _DROP_REASONS]
    if not said:
        return f"origin node {origin}'s transactions were left out of every decided block"
    return f"origin node {origin} " + " and ".join(said)
