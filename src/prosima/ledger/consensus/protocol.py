"""Protocol 4: quorum consensus of N ledger nodes, one round per block, in lockstep.

A round at height h:

1. **sign**: every node signs the anchoring requests it received (local first) as transactions;
   the batches are all-gathered.
2. **verify**: each transaction is checked by its mapped verifiers (``f + 1`` distinct nodes from
   the placement, the signer first; with ``f`` faulty nodes at most, one is honest). A verifier
   that finds one invalid says so in its prepare; every node re-checks each claimed transaction
   itself, so a false claim costs one verification and a true one drops the transaction everywhere
   (a header holding it can then never be rebuilt, so never locked).
3. for view v = 0, 1, ...: the **leader** (degree order, rotating with h + v) checks the
   transactions it has not verified yet and proposes a header over the valid ones; every node
   **prepares** (all-gather) the valid header it got, or the value it is locked on; a header with
   a prepare quorum in this view locks its value, and each locked node **commits**:
   its Ed25519 signature over the header, sent to every node (the stored certificate's signature).
   A quorum of valid commit signatures is a certificate; the leader **broadcasts** the block with
   it; every node checks the certificate (re-using signatures it already verified) and, when the
   block is missing or wrong, the nodes all-gather the certificates they hold and take the first
   valid one. No certificate means a view change: the next leader takes over.
4. **append**: every node appends the decided block to its replica.

Safety rests on quorum intersection and the lock rule (Tendermint's argument): an honest node
signs at most one header per view, only one with a prepare quorum in that view, and a header names
its view's leader, so all signatures on a header come from one view (a height has fewer than n
views). Once a value is certified, at least Q - f honest nodes are locked on it and no other value
can reach a prepare quorum later, as long as the faulty nodes hold less than a third of the voting
power. This holds even when faulty nodes send different prepares to different nodes (tested with
split all-gathers; there, a value may be certified under two leaders' headers, never two values).
The all-gathers being consistent gives liveness: honest nodes lock alike, so a view with an honest
leader decides (at most f + 1 views per height), and every rank runs the same collectives.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple, TypeVar

from prosima.ledger.consensus.messages import Commit, Decided, Prepare, Proposal, TxBatch
from prosima.ledger.consensus.replica import Replica
from prosima.ledger.consensus.transport import Contribution, Msg, Transport
from prosima.ledger.consensus.voting import VotingPower
from prosima.ledger.errors import EncodingError, LedgerError
from prosima.ledger.log.block import Block, BlockHeader, build_header
from prosima.ledger.log.crypto import SIGN_BLOCK, SIGN_TX, NodeKey, block_hash
from prosima.ledger.log.quorum import QuorumCertificate
from prosima.ledger.log.registry import Registry
from prosima.ledger.log.transaction import Transaction

if TYPE_CHECKING:
    from prosima.ledger.sim.byzantine import Adversary

V = TypeVar("V", Prepare, Commit)
MAX_SKEW_US = 1_000_000
NO_PROPOSER = bytes(16)
PHASES = ("sign", "propose", "prepare", "commit", "decide", "append")


class Stalled(LedgerError):
    """No block was decided in ``n`` views (more faulty nodes than the protocol tolerates)."""


class Event(NamedTuple):
    """A fault a node observed: where, what, and the node it blames (-1: unknown)."""

    height: int
    view: int
    kind: str
    culprit: int


@dataclass(frozen=True, slots=True)
class Request:
    """An anchoring request a node turns into a transaction it signs."""

    kind: str
    payload: bytes
    key: bytes
    time: int


@dataclass
class ConsensusContext:
    """What every node knows alike: the registry, node ids by index, voting power, the leader
    rotation and the verifier sets. ``observer`` (tests) sees every block signature made."""

    registry: Registry
    node_ids: tuple[bytes, ...]
    power: VotingPower
    order: tuple[int, ...]
    verifier_sets: Callable[[bytes, int], tuple[int, ...]]
    max_block_txs: int = 0
    observer: Callable[[int, int, bytes, bytes], None] | None = None
    index_of: dict[bytes, int] = field(init=False)
    _verifiers: dict[bytes, frozenset[int]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.index_of = {nid: i for i, nid in enumerate(self.node_ids)}
        if len(self.index_of) != len(self.node_ids) or set(self.node_ids) != set(self.registry.members):
            raise ValueError("node ids must be the registry's, each once")
        if sorted(self.order) != list(range(self.n)) or self.power.n != self.n:
            raise ValueError("leader order and voting power must cover every node once")

    @property
    def n(self) -> int:
        """Number of nodes."""
        return len(self.node_ids)

    def leader(self, height: int, view: int) -> int:
        """The leader of ``view`` at ``height``: hubs first, rotating."""
        return self.order[(height + view) % self.n]

    def verifiers(self, tx_id: bytes, origin: int) -> frozenset[int]:
        """The nodes that verify (and partial replicas that keep) transaction ``tx_id``."""
        found = self._verifiers.get(tx_id)
        if found is None:
            found = self._verifiers[tx_id] = frozenset(self.verifier_sets(tx_id, origin))
        return found


def value_of(header: BlockHeader) -> bytes:
    """What a lock is on: the header with the proposer blanked (a re-proposal keeps it)."""
    return BlockHeader(
        header.height,
        header.prev_hash,
        header.tx_root,
        header.tx_count,
        header.log_size,
        header.log_root,
        header.time,
        NO_PROPOSER,
    ).encode()


@dataclass
class _Lock:
    value: bytes
    view: int
    header: bytes
    tx_ids: tuple[bytes, ...]


class ConsensusNode:
    """One node's protocol state and its message handlers; a driver moves nodes through a round."""

    def __init__(
        self,
        index: int,
        key: NodeKey,
        ctx: ConsensusContext,
        replica: Replica,
        fault: Adversary | None = None,
    ) -> None:
        if ctx.node_ids[index] != key.node_id:
            raise ValueError(f"node {index}'s key is not the registered one")
        self.index = index
        self.key = key
        self.ctx = ctx
        self.replica = replica
        self.fault = fault
        self.pool: dict[bytes, Transaction] = {}
        self.committed: set[bytes] = set()
        self.events: set[Event] = set()
        self.verifications = 0
        self._reset_round()

    # -- bookkeeping -----------------------------------------------------------------------

    def _reset_round(self) -> None:
        self.h = self.replica.height + 1
        self.view = 0
        self.my_txs: list[bytes] = []
        self.rejected: list[bytes] = []
        self.checked: dict[bytes, bool] = {}
        self.invalid: set[bytes] = set()
        self.accepted: tuple[bytes, tuple[bytes, ...]] | None = None
        self.lock: _Lock | None = None
        self.quorum: _Lock | None = None
        self.valid_sigs: dict[bytes, dict[int, bytes]] = {}
        self.signed_by: dict[int, set[bytes]] = {}
        self.headers_seen: dict[bytes, bytes] = {}
        self.qc: QuorumCertificate | None = None
        self.decided: Decided | None = None
        self._decided_block: Block | None = None
        self.nothing_left = False

    def _event(self, kind: str, culprit: int = -1) -> None:
        self.events.add(Event(self.h, self.view, kind, culprit))

    def _verify_tx(self, tx: Transaction) -> bool:
        self.verifications += 1
        return self.ctx.registry.verify(tx.signer, SIGN_TX, tx.signing_bytes(), tx.signature)

    def _verify_block_sig(self, signer: int, header: bytes, signature: bytes) -> bool:
        digest = block_hash(header)
        known = self.valid_sigs.get(digest, {})
        if known.get(signer) == signature:
            return True
        self.verifications += 1
        if not self.ctx.registry.verify(self.ctx.node_ids[signer], SIGN_BLOCK, header, signature):
            return False
        self.valid_sigs.setdefault(digest, {})[signer] = signature
        seen = self.signed_by.setdefault(signer, set())
        seen.add(digest)
        if len(seen) > 1:
            self._event("double signing (two headers signed at one height)", signer)
        return True

    @property
    def leader_now(self) -> int:
        """The leader of the current view."""
        return self.ctx.leader(self.h, self.view)

    # -- 1. sign ---------------------------------------------------------------------------

    def sign_requests(self, requests: Sequence[Request]) -> Contribution:
        """Sign this node's requests as transactions; the batch to all-gather."""
        self._reset_round()
        self.my_txs = [
            Transaction.create(self.key, r.kind, r.payload, r.key, r.time).encode() for r in requests
        ]
        msg = TxBatch(tuple(self.my_txs)).encode()
        return self.fault.txs(self, msg) if self.fault else msg

    # -- 2. verify -------------------------------------------------------------------------

    def on_txs(self, received: Sequence[Msg]) -> bool:
        """Take every node's batch into the pool and verify the transactions mapped here; True when
        the pool holds something to decide."""
        for sender, data in enumerate(received):
            if data is None:
                self._event("silent", sender)
                continue
            try:
                batch = TxBatch.decode(data)
            except EncodingError:
                self._event("malformed message", sender)
                continue
            for raw in batch.txs:
                try:
                    tx = Transaction.decode(raw)
                except EncodingError:
                    self._event("invalid transaction", sender)
                    continue
                tid = tx.tx_id
                if tx.signer != self.ctx.node_ids[sender] or tid in self.committed or tid in self.pool:
                    self._event("invalid transaction", sender)
                    continue
                self.pool[tid] = tx
                mapped = self.ctx.verifiers(tid, sender)  # every node asks, in the same order
                if sender != self.index and self.index in mapped:
                    self._check_tx(tid)
        return bool(self.pool)

    def _check_tx(self, tid: bytes) -> bool:
        """Verify a pooled transaction once; remember and announce an invalid one."""
        ok = self.checked.get(tid)
        if ok is None:
            ok = self.checked[tid] = self._verify_tx(self.pool[tid])
            if not ok:
                self.invalid.add(tid)
                self.rejected.append(tid)
        return ok

    def _take_claims(self, claims: Mapping[int, Sequence[bytes]]) -> None:
        """Re-check every transaction claimed invalid; drop the invalid ones from the pool."""
        for sender, ids in claims.items():
            for tid in ids:
                tx = self.pool.get(tid)
                if tx is None:
                    continue
                if self._check_tx(tid):
                    self._event("false rejection", sender)
        for tid in self.invalid & self.pool.keys():
            self._event("invalid transaction signature", self.ctx.index_of[self.pool[tid].signer])
            del self.pool[tid]

    # -- 3. views --------------------------------------------------------------------------

    def _candidate(self) -> tuple[tuple[bytes, ...], list[Transaction], int]:
        ids = tuple(tid for tid in self.pool if tid not in self.invalid)
        if self.ctx.max_block_txs:
            ids = ids[: self.ctx.max_block_txs]
        txs = [self.pool[t] for t in ids]
        return ids, txs, max([self.replica.tip_time, *(t.time for t in txs)])

    def _header(self, txs: Sequence[Transaction], when: int, proposer: bytes) -> BlockHeader:
        return build_header(
            height=self.h,
            prev_hash=self.replica.tip_hash,
            txs=txs,
            log=self.replica.log,
            time=when,
            proposer=proposer,
        )

    def propose(self, view: int) -> list[Msg] | None:
        """As the leader: the header to send each node (re-proposing the locked value, if any),
        after verifying every pooled transaction not verified yet. An empty header says that
        nothing valid is left."""
        self.view = view
        me = self.key.node_id
        for tid in list(self.pool):
            self._check_tx(tid)
        if self.lock is not None:
            ids = self.lock.tx_ids
            txs = [self.pool[t] for t in ids]
            old = BlockHeader.decode(self.lock.header)
            header = self._header(txs, old.time, me).encode()
        else:
            ids, txs, when = self._candidate()
            header = self._header(txs, when, me).encode() if txs else b""
        msg = Proposal(self.h, view, header, ids).encode()
        honest = [msg] * self.ctx.n
        return self.fault.proposal(self, view, honest) if self.fault else honest

    def _check_proposal(self, data: bytes) -> tuple[bytes, tuple[bytes, ...]] | None:
        p = Proposal.decode(data)
        if p.header == b"" and p.height == self.h:
            self.nothing_left = True
            return None
        header = BlockHeader.decode(p.header)
        if p.height != self.h or p.view != self.view or header.height != self.h:
            return None
        if header.proposer != self.ctx.node_ids[self.leader_now] or len(set(p.tx_ids)) != len(p.tx_ids):
            return None
        if any(t not in self.pool or t in self.invalid for t in p.tx_ids):
            return None
        txs = [self.pool[t] for t in p.tx_ids]
        latest = max([self.replica.tip_time, *(t.time for t in txs)])
        if not self.replica.tip_time <= header.time <= latest + MAX_SKEW_US:
            return None
        if self._header(txs, header.time, header.proposer).encode() != p.header:
            return None
        if self.lock is not None and value_of(header) != self.lock.value:
            return None
        return p.header, p.tx_ids

    def on_proposal(self, view: int, data: Msg) -> Contribution:
        """Check the leader's header; the prepare to all-gather (``None``: nothing acceptable)."""
        self.view = view
        self.accepted = None
        self.nothing_left = False
        if data is None:
            self._event("leader timeout (no proposal)", self.leader_now)
        else:
            try:
                self.accepted = self._check_proposal(data)
            except EncodingError:
                self.accepted = None
            if self.accepted is None and not self.nothing_left:
                self._event("invalid proposal", self.leader_now)
        header, ids = self.accepted if self.accepted is not None else (b"", ())
        msg = None
        if header or self.rejected:
            msg = Prepare(self.h, view, header, ids, tuple(self.rejected)).encode()
        return self.fault.prepare(self, view, msg) if self.fault else msg

    def _votes(self, kind: type[V], view: int, received: Sequence[Msg]) -> Iterator[tuple[int, V]]:
        """The decodable ``kind`` messages of this height and view, with their senders (a malformed
        one is recorded against its sender, a silent one skipped)."""
        for sender, data in enumerate(received):
            if data is None:
                continue
            try:
                vote = kind.decode(data)
            except EncodingError:
                self._event("malformed message", sender)
                continue
            if vote.height == self.h and vote.view == view:
                yield sender, vote

    def on_prepares(self, view: int, received: Sequence[Msg]) -> list[Msg] | None:
        """Count prepares; lock on a quorum's value; return the commit vote for each node."""
        voters: dict[bytes, set[int]] = {}
        info: dict[bytes, list[Prepare]] = {}
        claims: dict[int, Sequence[bytes]] = {}
        prepares = []
        for sender, p in self._votes(Prepare, view, received):
            if p.rejected:
                claims[sender] = p.rejected
            if p.header:
                prepares.append((sender, p))
        self._take_claims(claims)
        for sender, p in prepares:
            digest = block_hash(p.header)
            voters.setdefault(digest, set()).add(sender)
            info.setdefault(digest, []).append(p)
            self.headers_seen[digest] = p.header
        leader_id = self.ctx.node_ids[self.leader_now]
        fresh = 0
        self.quorum = None
        for digest, who in voters.items():
            try:
                header = BlockHeader.decode(info[digest][0].header)
            except EncodingError:
                continue
            if header.proposer != leader_id:
                continue
            fresh += 1
            if self.ctx.power.is_quorum(who) and header.height == self.h:
                ids = self._ids_for(header, info[digest])
                if ids is not None:
                    self.quorum = _Lock(value_of(header), view, info[digest][0].header, ids)
        if fresh > 1:
            self._event("conflicting proposals", self.leader_now)
        msg = None
        if self.quorum is not None:
            self.lock = self.quorum
            sig = self.key.sign(SIGN_BLOCK, self.quorum.header)
            digest = block_hash(self.quorum.header)
            self.valid_sigs.setdefault(digest, {})[self.index] = sig
            self.signed_by.setdefault(self.index, set()).add(digest)
            if self.ctx.observer is not None:
                self.ctx.observer(self.h, self.index, self.quorum.header, sig)
            msg = Commit(self.h, view, digest, sig).encode()
        honest = None if msg is None else [msg] * self.ctx.n
        return self.fault.commits(self, view, honest) if self.fault else honest

    def _ids_for(self, header: BlockHeader, prepares: list[Prepare]) -> tuple[bytes, ...] | None:
        """The first announced id list that rebuilds ``header`` from this node's pool (a header
        holding a transaction found invalid cannot be rebuilt)."""
        if self.accepted is not None and self.accepted[0] == prepares[0].header:
            if all(t in self.pool for t in self.accepted[1]):
                return self.accepted[1]
            return None
        for p in prepares:
            if all(t in self.pool for t in p.tx_ids) and len(set(p.tx_ids)) == len(p.tx_ids):
                txs = [self.pool[t] for t in p.tx_ids]
                if self._header(txs, header.time, header.proposer).encode() == p.header:
                    return p.tx_ids
        return None

    def on_commits(self, view: int, received: Sequence[Msg]) -> None:
        """Verify commit signatures until they form a quorum certificate."""
        self.qc = None
        target = self.quorum.header if self.quorum is not None else None
        digest = block_hash(target) if target is not None else b""
        valid = self.valid_sigs.setdefault(digest, {}) if target is not None else {}
        for sender, c in self._votes(Commit, view, received):
            if target is not None and c.block_hash == digest:
                if sender in valid and valid[sender] == c.signature:
                    continue
                if self.ctx.power.is_quorum(valid):
                    continue
                if not self._verify_block_sig(sender, target, c.signature):
                    self._event("invalid commit signature", sender)
                continue
            other = self.headers_seen.get(c.block_hash)
            if other is None:
                self._event("commit for an unknown header", sender)
            elif not self._verify_block_sig(sender, other, c.signature):
                self._event("invalid commit signature", sender)
        if target is not None and self.ctx.power.is_quorum(valid):
            self.qc = QuorumCertificate(tuple(sorted((self.ctx.node_ids[i], s) for i, s in valid.items())))

    def _decided_msg(self) -> Msg:
        if self.qc is None or self.quorum is None:
            return None
        return Decided(self.h, self.quorum.header, self.quorum.tx_ids, self.qc.encode()).encode()

    def block_message(self, view: int) -> Msg:
        """As the leader: the block with its certificate to broadcast (``None``: no certificate)."""
        msg = self._decided_msg()
        return self.fault.block(self, view, msg) if self.fault else msg

    def _check_decided(self, data: bytes) -> Decided | None:
        d = Decided.decode(data)
        header = BlockHeader.decode(d.header)
        if d.height != self.h or header.height != self.h or header.prev_hash != self.replica.tip_hash:
            return None
        if any(t not in self.pool for t in d.tx_ids) or len(set(d.tx_ids)) != len(d.tx_ids):
            return None
        qc = QuorumCertificate.decode(d.qc)
        signers = [self.ctx.index_of.get(nid) for nid in qc.signers]
        if any(i is None for i in signers) or not self.ctx.power.is_quorum(signers):  # type: ignore[arg-type]
            return None
        known = self.quorum is not None and (d.header, d.tx_ids) == (self.quorum.header, self.quorum.tx_ids)
        if not known:  # a header this node did not see a quorum for: rebuild it from the pool
            txs = [self.pool[t] for t in d.tx_ids]
            if self._header(txs, header.time, header.proposer).encode() != d.header:
                return None
        for i, (_, sig) in zip(signers, qc.signatures, strict=True):
            if not self._verify_block_sig(i, d.header, sig):  # type: ignore[arg-type]
                return None
        self._decided_block = Block(header, tuple(self.pool[t] for t in d.tx_ids), qc)
        return d

    def on_block(self, view: int, data: Msg) -> bool:
        """Check the leader's block; True when it is decided."""
        if data is None:
            self._event("leader block missing (timeout)", self.leader_now)
            return False
        try:
            self.decided = self._check_decided(data)
        except EncodingError:
            self.decided = None
        if self.decided is None:
            self._event("leader block invalid", self.leader_now)
        return self.decided is not None

    def offer_message(self, view: int) -> Contribution:
        """The certificate this node holds, offered when the leader's block failed."""
        msg = self._decided_msg()
        return self.fault.offer(self, view, msg) if self.fault else msg

    def on_offers(self, view: int, received: Sequence[Msg]) -> bool:
        """Take the first valid certificate offered (rank order); True when one is found."""
        for sender, data in enumerate(received):
            if data is None:
                continue
            try:
                self.decided = self._check_decided(data)
            except EncodingError:
                self.decided = None
            if self.decided is not None:
                return True
            self._event("invalid certificate offered", sender)
        self._event("view change", self.leader_now)
        return False

    # -- 4. append -------------------------------------------------------------------------

    def append_decided(self) -> Block:
        """Append the decided block to the replica and drop its transactions from the pool."""
        if self.decided is None or self._decided_block is None:
            raise LedgerError("no block was decided this round")
        d, block = self.decided, self._decided_block
        self.replica.append(block)
        for t in d.tx_ids:
            del self.pool[t]
            self.committed.add(t)
        self._reset_round()
        return block


# -- the driver ----------------------------------------------------------------------------


@dataclass
class RoundResult:
    """One round: the block decided (``None``: nothing to decide), views used, per-phase seconds.

    ``critical`` is the round's critical path per phase: the slowest local node's handler time,
    what the phase would take with a core per node and no wire delay (``phases`` is the wall time
    of this host, which runs its nodes one after another)."""

    block: Block | None
    height: int
    views: int
    seconds: float
    phases: dict[str, float]
    critical: dict[str, float]


def _agree(values: Mapping[int, bool], what: str) -> bool:
    distinct = set(values.values())
    if len(distinct) != 1:
        raise RuntimeError(f"nodes disagree on {what}: {dict(values)} (a protocol bug)")
    return distinct.pop()


def run_round(
    nodes: Mapping[int, ConsensusNode], net: Transport, requests: Mapping[int, Sequence[Request]]
) -> RoundResult:
    """Drive the local ``nodes`` through one round; every host calls this in step."""
    phases = dict.fromkeys(PHASES, 0.0)
    critical = dict.fromkeys(PHASES, 0.0)
    start = mark = time.perf_counter()

    def tick(phase: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        phases[phase] += now - mark
        mark = now

    def each(phase: str, method: str, *args: object, per_node: Mapping[int, object] | None = None) -> dict:
        """``method`` of every local node (``per_node[i]`` appended to node i's arguments), timed one
        by one: the slowest node is the phase's critical path."""
        out, slowest = {}, 0.0
        for i, n in nodes.items():
            t = time.perf_counter()
            out[i] = getattr(n, method)(*args, *(() if per_node is None else (per_node[i],)))
            slowest = max(slowest, time.perf_counter() - t)
        critical[phase] += slowest
        return out

    def leader_does(phase: str, method: str, *args: object) -> object:
        t = time.perf_counter()
        out = getattr(nodes[leader], method)(*args)
        critical[phase] += time.perf_counter() - t
        return out

    def result(block: Block | None, views: int) -> RoundResult:
        return RoundResult(block, height, views, time.perf_counter() - start, phases, critical)

    any_node = next(iter(nodes.values()))
    height, ctx = any_node.h, any_node.ctx
    got = net.allgather(each("sign", "sign_requests", per_node={i: requests.get(i, ()) for i in nodes}))
    busy = _agree(each("sign", "on_txs", per_node=got), "the pool")
    tick("sign")
    if not busy:
        return result(None, 0)
    for view in range(ctx.n):
        leader = ctx.leader(height, view)
        sent = leader_does("propose", "propose", view) if leader in nodes else None
        got = net.scatter(leader, sent)
        tick("propose")
        prepares = net.allgather(each("prepare", "on_proposal", view, per_node=got))
        votes = each("prepare", "on_prepares", view, per_node=prepares)
        if not _agree({i: bool(n.pool) for i, n in nodes.items()}, "the pool"):
            tick("prepare")
            return result(None, view + 1)
        tick("prepare")
        commits = net.alltoall(votes)
        each("commit", "on_commits", view, per_node=commits)
        tick("commit")
        message = leader_does("decide", "block_message", view) if leader in nodes else None
        block = net.bcast(leader, message)
        done = _agree(each("decide", "on_block", view, per_node=block), "the leader's block")
        if not done:
            offers = net.allgather({i: n.offer_message(view) for i, n in nodes.items()})
            done = _agree(each("decide", "on_offers", view, per_node=offers), "the certificates")
        tick("decide")
        if done:
            blocks = each("append", "append_decided")
            tick("append")
            hashes = {b.hash for b in blocks.values()}
            if len(hashes) != 1:
                raise RuntimeError("nodes appended different blocks (a protocol bug)")
            return result(next(iter(blocks.values())), view + 1)
    raise Stalled(f"no block decided at height {height} in {ctx.n} views")
