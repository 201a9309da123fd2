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
from typing import Any, TypeVar

from prosima.ledger.consensus.events import Event, FaultEvent
from prosima.ledger.consensus.messages import Commit, Decided, Prepare, Proposal, TxBatch
from prosima.ledger.consensus.read_only_node import ReadOnlyNode
from prosima.ledger.consensus.replica import Replica
from prosima.ledger.consensus.round_state import Lock, RoundState, Step
from prosima.ledger.consensus.transport import Contribution, Msg, Transport
from prosima.ledger.consensus.voting import VotingPower
from prosima.ledger.errors import EncodingError, LedgerError
from prosima.ledger.log.block import Block, BlockHeader, build_header
from prosima.ledger.log.crypto import SIGN_BLOCK, SIGN_TX, NodeKey, block_hash
from prosima.ledger.log.quorum import QuorumCertificate
from prosima.ledger.log.registry import Registry
from prosima.ledger.log.transaction import Transaction

V = TypeVar("V", Prepare, Commit)
MAX_SKEW_US = 1_000_000
NO_PROPOSER = bytes(16)
PHASES = ("sign", "propose", "prepare", "commit", "decide", "append")


class Stalled(LedgerError):
    """No block was decided in ``n`` views (more faulty nodes than the protocol tolerates)."""


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


class ConsensusNode:
    """One node's protocol state and its message handlers; a driver moves nodes through a round.

    The handlers are honest and each belongs to one step of the round (``round.step``); a faulty
    node is rehearsed by rewriting what it sends (``fault_injection``), never in here."""

    def __init__(self, index: int, key: NodeKey, ctx: ConsensusContext, replica: Replica) -> None:
        if ctx.node_ids[index] != key.node_id:
            raise ValueError(f"node {index}'s key is not the registered one")
        self.index = index
        self.key = key
        self.ctx = ctx
        self.replica = replica
        self.pool: dict[bytes, Transaction] = {}
        self.committed: set[bytes] = set()
        self.events: set[Event] = set()
        self.verifications = 0
        self.round = RoundState(replica.height + 1)

    # -- bookkeeping -----------------------------------------------------------------------

    @property
    def height(self) -> int:
        """Height of the current (or next) round."""
        return self.round.height

    @property
    def leader_now(self) -> int:
        """The leader of the current view."""
        return self.ctx.leader(self.round.height, self.round.view)

    def read_only(self) -> ReadOnlyNode:
        """A read-only view of this node's round."""
        return ReadOnlyNode(self)

    def _event(self, kind: FaultEvent, culprit: int = -1) -> None:
        self.events.add(Event(self.round.height, self.round.view, kind, culprit))

    def _verify_tx(self, tx: Transaction) -> bool:
        self.verifications += 1
        return self.ctx.registry.verify(tx.signer, SIGN_TX, tx.signing_bytes(), tx.signature)

    def _verify_block_sig(self, signer: int, header: bytes, signature: bytes) -> bool:
        r = self.round
        digest = block_hash(header)
        known = r.valid_sigs.get(digest, {})
        if known.get(signer) == signature:
            return True
        self.verifications += 1
        if not self.ctx.registry.verify(self.ctx.node_ids[signer], SIGN_BLOCK, header, signature):
            return False
        r.valid_sigs.setdefault(digest, {})[signer] = signature
        seen = r.signed_by.setdefault(signer, set())
        seen.add(digest)
        if len(seen) > 1:
            self._event(FaultEvent.DOUBLE_SIGNING, signer)
        return True

    # -- 1. sign ---------------------------------------------------------------------------

    def sign_requests(self, requests: Sequence[Request]) -> Contribution:
        """Start the round at the next height (whatever step the last one stopped at: a round with
        nothing to decide stops early) and sign this node's requests as transactions; the batch
        to all-gather."""
        self.round = r = RoundState(self.replica.height + 1, Step.SIGN)
        r.my_txs = [Transaction.create(self.key, q.kind, q.payload, q.key, q.time).encode() for q in requests]
        return TxBatch(tuple(r.my_txs)).encode()

    # -- 2. verify -------------------------------------------------------------------------

    def on_txs(self, received: Sequence[Msg]) -> bool:
        """Take every node's batch into the pool and verify the transactions mapped here; True when
        the pool holds something to decide."""
        self.round.expect(Step.SIGN, "on_txs")
        for sender, data in enumerate(received):
            if data is None:
                self._event(FaultEvent.SILENT, sender)
                continue
            try:
                batch = TxBatch.decode(data)
            except EncodingError:
                self._event(FaultEvent.MALFORMED_MESSAGE, sender)
                continue
            for raw in batch.txs:
                try:
                    tx = Transaction.decode(raw)
                except EncodingError:
                    self._event(FaultEvent.INVALID_TRANSACTION, sender)
                    continue
                tid = tx.tx_id
                if tx.signer != self.ctx.node_ids[sender] or tid in self.committed or tid in self.pool:
                    self._event(FaultEvent.INVALID_TRANSACTION, sender)
                    continue
                self.pool[tid] = tx
                mapped = self.ctx.verifiers(tid, sender)  # every node asks, in the same order
                if sender != self.index and self.index in mapped:
                    self._check_tx(tid)
        self.round.step = Step.PROPOSE
        return bool(self.pool)

    def _check_tx(self, tid: bytes) -> bool:
        """Verify a pooled transaction once; remember and announce an invalid one."""
        r = self.round
        ok = r.checked.get(tid)
        if ok is None:
            ok = r.checked[tid] = self._verify_tx(self.pool[tid])
            if not ok:
                r.invalid.add(tid)
                r.rejected.append(tid)
        return ok

    def _take_claims(self, claims: Mapping[int, Sequence[bytes]]) -> None:
        """Re-check every transaction claimed invalid; drop the invalid ones from the pool."""
        for sender, ids in claims.items():
            for tid in ids:
                tx = self.pool.get(tid)
                if tx is None:
                    continue
                if self._check_tx(tid):
                    self._event(FaultEvent.FALSE_REJECTION, sender)
        for tid in self.round.invalid & self.pool.keys():
            culprit = self.ctx.index_of[self.pool[tid].signer]
            self._event(FaultEvent.INVALID_TRANSACTION_SIGNATURE, culprit)
            del self.pool[tid]

    # -- 3. views --------------------------------------------------------------------------

    def _candidate(self) -> tuple[tuple[bytes, ...], list[Transaction], int]:
        ids = tuple(tid for tid in self.pool if tid not in self.round.invalid)
        if self.ctx.max_block_txs:
            ids = ids[: self.ctx.max_block_txs]
        txs = [self.pool[t] for t in ids]
        return ids, txs, max([self.replica.tip_time, *(t.time for t in txs)])

    def header(self, txs: Sequence[Transaction], when: int, proposer: bytes) -> BlockHeader:
        """The header of this round's block over ``txs`` at time ``when``, proposed by ``proposer``."""
        return build_header(
            height=self.round.height,
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
        r = self.round
        r.expect(Step.PROPOSE, "propose", view)
        me = self.key.node_id
        for tid in list(self.pool):
            self._check_tx(tid)
        if r.lock is not None:
            ids = r.lock.tx_ids
            txs = [self.pool[t] for t in ids]
            old = BlockHeader.decode(r.lock.header)
            header = self.header(txs, old.time, me).encode()
        else:
            ids, txs, when = self._candidate()
            header = self.header(txs, when, me).encode() if txs else b""
        return [Proposal(r.height, view, header, ids).encode()] * self.ctx.n

    def _check_proposal(self, data: bytes) -> tuple[bytes, tuple[bytes, ...]] | None:
        r = self.round
        p = Proposal.decode(data)
        if p.header == b"" and p.height == r.height:
            r.nothing_left = True
            return None
        header = BlockHeader.decode(p.header)
        if p.height != r.height or p.view != r.view or header.height != r.height:
            return None
        if header.proposer != self.ctx.node_ids[self.leader_now] or len(set(p.tx_ids)) != len(p.tx_ids):
            return None
        if any(t not in self.pool or t in r.invalid for t in p.tx_ids):
            return None
        txs = [self.pool[t] for t in p.tx_ids]
        latest = max([self.replica.tip_time, *(t.time for t in txs)])
        if not self.replica.tip_time <= header.time <= latest + MAX_SKEW_US:
            return None
        if self.header(txs, header.time, header.proposer).encode() != p.header:
            return None
        if r.lock is not None and value_of(header) != r.lock.value:
            return None
        return p.header, p.tx_ids

    def on_proposal(self, view: int, data: Msg) -> Contribution:
        """Check the leader's header; the prepare to all-gather (``None``: nothing acceptable)."""
        r = self.round
        r.expect(Step.PROPOSE, "on_proposal", view)
        r.accepted = None
        r.nothing_left = False
        if data is None:
            self._event(FaultEvent.LEADER_TIMEOUT, self.leader_now)
        else:
            try:
                r.accepted = self._check_proposal(data)
            except EncodingError:
                r.accepted = None
            if r.accepted is None and not r.nothing_left:
                self._event(FaultEvent.INVALID_PROPOSAL, self.leader_now)
        r.step = Step.PREPARE
        header, ids = r.accepted if r.accepted is not None else (b"", ())
        if header or r.rejected:
            return Prepare(r.height, view, header, ids, tuple(r.rejected)).encode()
        return None

    def _votes(self, kind: type[V], view: int, received: Sequence[Msg]) -> Iterator[tuple[int, V]]:
        """The decodable ``kind`` messages of this height and view, with their senders (a malformed
        one is recorded against its sender, a silent one skipped)."""
        for sender, data in enumerate(received):
            if data is None:
                continue
            try:
                vote = kind.decode(data)
            except EncodingError:
                self._event(FaultEvent.MALFORMED_MESSAGE, sender)
                continue
            if vote.height == self.round.height and vote.view == view:
                yield sender, vote

    def on_prepares(self, view: int, received: Sequence[Msg]) -> list[Msg] | None:
        """Count prepares; lock on a quorum's value; return the commit vote for each node."""
        r = self.round
        r.expect(Step.PREPARE, "on_prepares", view)
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
            r.headers_seen[digest] = p.header
        leader_id = self.ctx.node_ids[self.leader_now]
        fresh = 0
        r.quorum = None
        for digest, who in voters.items():
            try:
                header = BlockHeader.decode(info[digest][0].header)
            except EncodingError:
                continue
            if header.proposer != leader_id:
                continue
            fresh += 1
            if self.ctx.power.is_quorum(who) and header.height == r.height:
                ids = self._ids_for(header, info[digest])
                if ids is not None:
                    r.quorum = Lock(value_of(header), view, info[digest][0].header, ids)
        if fresh > 1:
            self._event(FaultEvent.CONFLICTING_PROPOSALS, self.leader_now)
        r.step = Step.COMMIT
        if r.quorum is None:
            return None
        r.lock = r.quorum
        sig = self.key.sign(SIGN_BLOCK, r.quorum.header)
        digest = block_hash(r.quorum.header)
        r.valid_sigs.setdefault(digest, {})[self.index] = sig
        r.signed_by.setdefault(self.index, set()).add(digest)
        if self.ctx.observer is not None:
            self.ctx.observer(r.height, self.index, r.quorum.header, sig)
        return [Commit(r.height, view, digest, sig).encode()] * self.ctx.n

    def _ids_for(self, header: BlockHeader, prepares: list[Prepare]) -> tuple[bytes, ...] | None:
        """The first announced id list that rebuilds ``header`` from this node's pool (a header
        holding a transaction found invalid cannot be rebuilt)."""
        accepted = self.round.accepted
        if accepted is not None and accepted[0] == prepares[0].header:
            if all(t in self.pool for t in accepted[1]):
                return accepted[1]
            return None
        for p in prepares:
            if all(t in self.pool for t in p.tx_ids) and len(set(p.tx_ids)) == len(p.tx_ids):
                txs = [self.pool[t] for t in p.tx_ids]
                if self.header(txs, header.time, header.proposer).encode() == p.header:
                    return p.tx_ids
        return None

    def on_commits(self, view: int, received: Sequence[Msg]) -> None:
        """Verify commit signatures until they form a quorum certificate."""
        r = self.round
        r.expect(Step.COMMIT, "on_commits", view)
        r.qc = None
        target = r.quorum.header if r.quorum is not None else None
        digest = block_hash(target) if target is not None else b""
        valid = r.valid_sigs.setdefault(digest, {}) if target is not None else {}
        for sender, c in self._votes(Commit, view, received):
            if target is not None and c.block_hash == digest:
                if sender in valid and valid[sender] == c.signature:
                    continue
                if self.ctx.power.is_quorum(valid):
                    continue
                if not self._verify_block_sig(sender, target, c.signature):
                    self._event(FaultEvent.INVALID_COMMIT_SIGNATURE, sender)
                continue
            other = r.headers_seen.get(c.block_hash)
            if other is None:
                self._event(FaultEvent.UNKNOWN_HEADER_COMMIT, sender)
            elif not self._verify_block_sig(sender, other, c.signature):
                self._event(FaultEvent.INVALID_COMMIT_SIGNATURE, sender)
        if target is not None and self.ctx.power.is_quorum(valid):
            r.qc = QuorumCertificate(tuple(sorted((self.ctx.node_ids[i], s) for i, s in valid.items())))
        r.step = Step.DECIDE

    def _decided_msg(self) -> Msg:
        r = self.round
        if r.qc is None or r.quorum is None:
            return None
        return Decided(r.height, r.quorum.header, r.quorum.tx_ids, r.qc.encode()).encode()

    def block_message(self, view: int) -> Msg:
        """As the leader: the block with its certificate to broadcast (``None``: no certificate)."""
        self.round.expect(Step.DECIDE, "block_message", view)
        return self._decided_msg()

    def _check_decided(self, data: bytes) -> Decided | None:
        r = self.round
        d = Decided.decode(data)
        header = BlockHeader.decode(d.header)
        if d.height != r.height or header.height != r.height or header.prev_hash != self.replica.tip_hash:
            return None
        if any(t not in self.pool for t in d.tx_ids) or len(set(d.tx_ids)) != len(d.tx_ids):
            return None
        qc = QuorumCertificate.decode(d.qc)
        signers = [self.ctx.index_of.get(nid) for nid in qc.signers]
        if any(i is None for i in signers) or not self.ctx.power.is_quorum(signers):  # type: ignore[arg-type]
            return None
        known = r.quorum is not None and (d.header, d.tx_ids) == (r.quorum.header, r.quorum.tx_ids)
        if not known:  # a header this node did not see a quorum for: rebuild it from the pool
            txs = [self.pool[t] for t in d.tx_ids]
            if self.header(txs, header.time, header.proposer).encode() != d.header:
                return None
        for i, (_, sig) in zip(signers, qc.signatures, strict=True):
            if not self._verify_block_sig(i, d.header, sig):  # type: ignore[arg-type]
                return None
        r.decided_block = Block(header, tuple(self.pool[t] for t in d.tx_ids), qc)
        return d

    def _take_decided(self, data: bytes) -> bool:
        """Check a decided block; True (and the round at ``APPEND``) when it is valid."""
        r = self.round
        try:
            r.decided = self._check_decided(data)
        except EncodingError:
            r.decided = None
        if r.decided is not None:
            r.step = Step.APPEND
        return r.decided is not None

    def on_block(self, view: int, data: Msg) -> bool:
        """Check the leader's block; True when it is decided (otherwise certificates are offered)."""
        self.round.expect(Step.DECIDE, "on_block", view)
        self.round.step = Step.OFFER
        if data is None:
            self._event(FaultEvent.LEADER_BLOCK_MISSING, self.leader_now)
            return False
        if self._take_decided(data):
            return True
        self._event(FaultEvent.LEADER_BLOCK_INVALID, self.leader_now)
        return False

    def offer_message(self, view: int) -> Contribution:
        """The certificate this node holds, offered when the leader's block failed."""
        self.round.expect(Step.OFFER, "offer_message", view)
        return self._decided_msg()

    def on_offers(self, view: int, received: Sequence[Msg]) -> bool:
        """Take the first valid certificate offered (rank order); True when one is found, otherwise
        the view changes (the round goes back to ``PROPOSE`` in the next view)."""
        r = self.round
        r.expect(Step.OFFER, "on_offers", view)
        for sender, data in enumerate(received):
            if data is None:
                continue
            if self._take_decided(data):
                return True
            self._event(FaultEvent.INVALID_CERTIFICATE_OFFERED, sender)
        self._event(FaultEvent.VIEW_CHANGE, self.leader_now)
        r.view, r.step = view + 1, Step.PROPOSE
        return False

    # -- 4. append -------------------------------------------------------------------------

    def append_decided(self) -> Block:
        """Append the decided block to the replica and drop its transactions from the pool."""
        r = self.round
        if r.step is not Step.APPEND or r.decided is None or r.decided_block is None:
            raise LedgerError("no block was decided this round")
        self.replica.append(r.decided_block)
        for t in r.decided.tx_ids:
            del self.pool[t]
            self.committed.add(t)
        self.round = RoundState(self.replica.height + 1)
        return r.decided_block


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

    def leader_does(phase: str, method: str, *args: object) -> Any:
        t = time.perf_counter()
        out = getattr(nodes[leader], method)(*args)
        critical[phase] += time.perf_counter() - t
        return out

    def result(block: Block | None, views: int) -> RoundResult:
        return RoundResult(block, height, views, time.perf_counter() - start, phases, critical)

    any_node = next(iter(nodes.values()))
    height, ctx = any_node.height, any_node.ctx
    got = net.allgather(each("sign", "sign_requests", per_node={i: requests.get(i, ()) for i in nodes}))
    busy = _agree(each("sign", "on_txs", per_node=got), "the pool")
    tick("sign")
    if not busy:
        return result(None, 0)
    for view in range(ctx.n):
        leader = ctx.leader(height, view)
        sent = leader_does("propose", "propose", view) if leader in nodes else None
        proposals = net.scatter(leader, sent)
        tick("propose")
        prepares = net.allgather(each("prepare", "on_proposal", view, per_node=proposals))
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
