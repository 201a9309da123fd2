"""The adversary of one faulty node: it rewrites what the node sends, one hook per outgoing
message, from a read-only view of the node's round (``ReadOnlyNode``) and the keys of every faulty
node (the coalition, with which it signs the headers it forges). Its random choices are drawn from
the run's seed, so a run is reproducible."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping

from prosima.ledger.consensus.messages import Commit, Decided, Prepare, Proposal, TxBatch
from prosima.ledger.consensus.read_only_node import ReadOnlyNode
from prosima.ledger.consensus.transport import Contribution, Msg, Split
from prosima.ledger.errors import EncodingError
from prosima.ledger.log.block import BlockHeader
from prosima.ledger.log.crypto import SIGN_BLOCK, SIGNATURE_SIZE, NodeKey, block_hash
from prosima.ledger.log.quorum import QuorumCertificate
from prosima.ledger.log.transaction import Transaction
from prosima.ledger.sim.behaviour import Behaviour, Fault

_RANDOM_CHOICES: tuple[Behaviour | None, ...] = (
    None,
    Behaviour.SILENT,
    Behaviour.GARBAGE,
    Behaviour.DOUBLE_SIGN,
    Behaviour.EQUIVOCATE,
)

_DECIDED_LIES = frozenset({Behaviour.SILENT, Behaviour.GARBAGE, Behaviour.EQUIVOCATE})


def _rng(seed: int, *parts: object) -> random.Random:
    text = "/".join(str(p) for p in (seed, *parts))
    return random.Random(hashlib.sha256(text.encode()).digest())


def _alt_header(header: bytes) -> bytes:
    """A conflicting header: the same block one microsecond later (honest nodes accept either)."""
    h = BlockHeader.decode(header)
    return BlockHeader(
        h.height, h.prev_hash, h.tx_root, h.tx_count, h.log_size, h.log_root, h.time + 1, h.proposer
    ).encode()


class Adversary:
    """Rewrites one faulty node's messages; ``coalition`` holds every faulty node's key (its own
    among them)."""

    def __init__(
        self, fault: Fault, coalition: Mapping[int, NodeKey], seed: int, *, split_prepares: bool = False
    ) -> None:
        if fault.node not in coalition:
            raise ValueError(f"faulty node {fault.node}'s key is not in its coalition")
        self.fault = fault
        self.coalition = dict(coalition)
        self.seed = seed
        self.split_prepares = split_prepares
        self.crashed = False

    @property
    def key(self) -> NodeKey:
        """The faulty node's own key."""
        return self.coalition[self.fault.node]

    def _mode(self, node: ReadOnlyNode, phase: str, view: int = 0) -> Behaviour | None:
        if node.height < self.fault.start:
            return None
        if self.crashed:
            return Behaviour.SILENT
        b = self.fault.behaviour
        if b is Behaviour.RANDOM:
            return _rng(self.seed, self.fault.node, node.height, view, phase, "mode").choice(_RANDOM_CHOICES)
        return b

    def _garbage(self, node: ReadOnlyNode, phase: str) -> bytes:
        return _rng(self.seed, self.fault.node, node.height, node.view, phase, "junk").randbytes(48)

    def _observe(self, node: ReadOnlyNode, signer: int, header: bytes, sig: bytes) -> None:
        if node.ctx.observer is not None:
            node.ctx.observer(node.height, signer, header, sig)

    def _split(self, node: ReadOnlyNode, a: Msg, b: Msg) -> list[Msg]:
        return [a if d % 2 == 0 else b for d in range(node.ctx.n)]

    # -- hooks, one per outgoing message ---------------------------------------------------

    def txs(self, node: ReadOnlyNode, msg: Contribution) -> Contribution:
        """The transaction batch."""
        mode = self._mode(node, "txs")
        if mode is Behaviour.SILENT:
            return None
        if mode is Behaviour.GARBAGE and node.my_txs:
            rng = _rng(self.seed, self.fault.node, node.height, "txsig")
            bad = []
            for raw in node.my_txs:
                t = Transaction.decode(raw)
                bad.append(
                    Transaction(
                        t.kind, t.payload, t.key, t.time, t.signer, rng.randbytes(SIGNATURE_SIZE)
                    ).encode()
                )
            return TxBatch(tuple(bad)).encode()
        return msg

    def proposal(self, node: ReadOnlyNode, honest: list[Msg] | None) -> list[Msg] | None:
        """As leader: crash (before proposing, or later before the broadcast), stay silent, send
        garbage, or send conflicting proposals."""
        view = node.view
        crash = self.fault.behaviour is Behaviour.CRASH_LEADER and node.height >= self.fault.start
        if crash and _rng(self.seed, self.fault.node, node.height, view, "crash").random() < 0.5:
            self.crashed = True
        mode = self._mode(node, "proposal", view)
        if mode is Behaviour.SILENT:
            return None
        if mode is Behaviour.GARBAGE:
            return [self._garbage(node, "proposal")] * node.ctx.n
        if mode is Behaviour.EQUIVOCATE and honest is not None and honest[0] is not None:
            p = Proposal.decode(honest[0])
            if not p.header:
                return honest
            rng = _rng(self.seed, self.fault.node, node.height, view, "equivocate")
            if len(p.tx_ids) > 1 and rng.random() < 0.5:
                ids = p.tx_ids[:-1]
                header = BlockHeader.decode(p.header)
                alt = node.header_for(ids, header.time, header.proposer)
            else:
                ids, alt = p.tx_ids, _alt_header(p.header)
            b = Proposal(p.height, p.view, alt, ids).encode()
            return self._split(node, honest[0], b)
        return honest

    def prepare(self, node: ReadOnlyNode, msg: Contribution) -> Contribution:
        """The prepare: silent, garbage (a junk header and false claims that every valid
        transaction it checked is invalid), or for a conflicting header (split when allowed)."""
        view = node.view
        mode = self._mode(node, "prepare", view)
        if mode is Behaviour.SILENT:
            return None
        if mode is Behaviour.GARBAGE:
            valid = tuple(t for t, ok in node.checked.items() if ok)
            return Prepare(node.height, view, self._garbage(node, "prepare"), (), valid).encode()
        if mode in (Behaviour.DOUBLE_SIGN, Behaviour.EQUIVOCATE) and isinstance(msg, bytes):
            p = Prepare.decode(msg)
            if not p.header:
                return msg
            b = Prepare(p.height, p.view, _alt_header(p.header), p.tx_ids, p.rejected).encode()
            if self.split_prepares:
                return Split(self._split(node, msg, b))
            return msg if _rng(self.seed, self.fault.node, node.height, view, "pick").random() < 0.5 else b
        return msg

    def _known_header(self, node: ReadOnlyNode) -> bytes | None:
        """A well-formed header of this round to conflict with, if the node has seen one."""
        if node.quorum is not None:
            return node.quorum.header
        if node.accepted is not None:
            return node.accepted[0]
        for header in node.headers_seen.values():
            try:
                BlockHeader.decode(header)
            except EncodingError:
                continue
            return header
        return None

    def commits(self, node: ReadOnlyNode, honest: list[Msg] | None) -> list[Msg] | None:
        """Commit votes: silent, invalid signatures, or two conflicting signed headers."""
        view = node.view
        mode = self._mode(node, "commit", view)
        if mode is Behaviour.SILENT:
            return None
        header = self._known_header(node)
        if mode is Behaviour.GARBAGE:
            digest = block_hash(header) if header is not None else bytes(32)
            junk = _rng(self.seed, self.fault.node, node.height, view, "csig").randbytes(SIGNATURE_SIZE)
            return [Commit(node.height, view, digest, junk).encode()] * node.ctx.n
        if mode in (Behaviour.DOUBLE_SIGN, Behaviour.EQUIVOCATE) and header is not None:
            alt = _alt_header(header)
            msgs = []
            for h in (header, alt):
                sig = self.key.sign(SIGN_BLOCK, h)
                self._observe(node, self.fault.node, h, sig)
                msgs.append(Commit(node.height, view, block_hash(h), sig).encode())
            return self._split(node, msgs[0], msgs[1])
        return honest

    def _forged(self, node: ReadOnlyNode) -> Msg:
        """A block for a conflicting header certified by every faulty node (too few to verify)."""
        header = self._known_header(node)
        if header is None:
            return None
        alt = _alt_header(header)
        pairs = []
        for i, key in sorted(self.coalition.items()):
            sig = key.sign(SIGN_BLOCK, alt)
            self._observe(node, i, alt, sig)
            pairs.append((key.node_id, sig))
        ids = node.quorum.tx_ids if node.quorum is not None else (node.accepted[1] if node.accepted else ())
        qc = QuorumCertificate(tuple(sorted(pairs)))
        return Decided(node.height, alt, tuple(ids), qc.encode()).encode()

    def block(self, node: ReadOnlyNode, msg: Msg) -> Msg:
        """As leader, the block broadcast: crash, silence, garbage, or a forged block."""
        if self.fault.behaviour is Behaviour.CRASH_LEADER and node.height >= self.fault.start:
            self.crashed = True
        mode = self._mode(node, "block", node.view)
        return self._decided_lie(node, "block", mode) if mode in _DECIDED_LIES else msg

    def offer(self, node: ReadOnlyNode, msg: Contribution) -> Contribution:
        """The certificate offered after a failed broadcast."""
        mode = self._mode(node, "offer", node.view)
        return self._decided_lie(node, "offer", mode) if mode in _DECIDED_LIES else msg

    def _decided_lie(self, node: ReadOnlyNode, phase: str, mode: Behaviour | None) -> Msg:
        """A decided block as this fault sends it: silence, garbage or a forgery."""
        if mode is Behaviour.SILENT:
            return None
        if mode is Behaviour.GARBAGE:
            return self._garbage(node, phase)
        try:
            return self._forged(node)
        except EncodingError:
            return None
