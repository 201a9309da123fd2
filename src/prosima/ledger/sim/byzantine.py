"""Faulty nodes: named behaviours, a seeded schedule of who misbehaves from when, and the
adversary that rewrites a faulty node's outgoing messages.

Behaviours (a faulty node keeps the honest node's state and only lies in what it sends):

- ``silent``: sends nothing (a crash, as MPI allows it to be modelled).
- ``garbage``: signs garbage: transactions and commit votes with invalid signatures, malformed
  proposals, blocks and prepares, and false claims that valid transactions are invalid.
- ``double-sign``: signs two different headers at one height and sends each to half the nodes.
- ``equivocate``: as leader, proposes conflicting blocks to different nodes and broadcasts a
  forged block; otherwise double-signs.
- ``crash-leader``: honest until it is first leader, then silent for good (the next leader takes
  over after the timeout).
- ``random``: one of the above (or honest) per message, drawn from the seed.

The faulty nodes collude: each knows the keys of all of them (keys come from the network seed) and
signs conflicting headers with all of them when it forges a block.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from prosima.ledger.consensus.messages import Commit, Decided, Prepare, Proposal, TxBatch
from prosima.ledger.consensus.transport import Contribution, Msg, Split
from prosima.ledger.errors import EncodingError
from prosima.ledger.log.block import BlockHeader
from prosima.ledger.log.crypto import SIGN_BLOCK, SIGNATURE_SIZE, NodeKey, block_hash
from prosima.ledger.log.quorum import QuorumCertificate
from prosima.ledger.log.transaction import Transaction

if TYPE_CHECKING:
    from prosima.ledger.consensus.protocol import ConsensusNode


class Behaviour(StrEnum):
    """The named faulty behaviours."""

    SILENT = "silent"
    GARBAGE = "garbage"
    DOUBLE_SIGN = "double-sign"
    EQUIVOCATE = "equivocate"
    CRASH_LEADER = "crash-leader"
    RANDOM = "random"


_RANDOM_CHOICES: tuple[Behaviour | None, ...] = (
    None,
    Behaviour.SILENT,
    Behaviour.GARBAGE,
    Behaviour.DOUBLE_SIGN,
    Behaviour.EQUIVOCATE,
)


@dataclass(frozen=True)
class Fault:
    """Node ``node`` behaves as ``behaviour`` from height ``start`` on."""

    node: int
    behaviour: Behaviour
    start: int = 0

    def to_json(self) -> dict[str, object]:
        """A JSON-ready view."""
        return {"node": self.node, "behaviour": str(self.behaviour), "from_height": self.start}


_ITEM = re.compile(r"(?:(\d+)x)?([a-z-]+)(?:@(hub|any|\d+))?(?::(\d+))?")


@dataclass(frozen=True)
class FaultSchedule:
    """Who is faulty, how, and from which height."""

    faults: tuple[Fault, ...] = ()

    def __post_init__(self) -> None:
        nodes = [f.node for f in self.faults]
        if len(set(nodes)) != len(nodes):
            raise ValueError("a node can have only one faulty behaviour")

    @property
    def nodes(self) -> frozenset[int]:
        """The faulty nodes."""
        return frozenset(f.node for f in self.faults)

    def of(self, node: int) -> Fault | None:
        """The fault of ``node``, if any."""
        return next((f for f in self.faults if f.node == node), None)

    @classmethod
    def parse(cls, spec: str, *, n: int, by_degree: Sequence[int], seed: int = 0) -> FaultSchedule:
        """Parse ``ITEM[,ITEM...]`` with ``ITEM = [COUNTx]BEHAVIOUR[@TARGET][:FROM_HEIGHT]``;
        ``TARGET`` is a node index, ``hub`` (the highest-degree node not yet faulty) or ``any``
        (a seeded random node not yet faulty, the default). Example: ``3xequivocate@hub,silent@any``."""
        rng = random.Random(f"faults/{seed}")
        taken: list[int] = []
        faults = []
        for item in (s.strip() for s in spec.split(",") if s.strip()):
            m = _ITEM.fullmatch(item)
            if m is None:
                raise ValueError(f"cannot read fault {item!r}; expected e.g. '2xsilent@hub:3'")
            count, name, target, start = int(m[1] or 1), m[2], m[3] or "any", int(m[4] or 0)
            try:
                behaviour = Behaviour(name)
            except ValueError:
                names = ", ".join(b.value for b in Behaviour)
                raise ValueError(f"unknown behaviour {name!r}; choose from {names}") from None
            for _ in range(count):
                free = [i for i in range(n) if i not in taken]
                if not free:
                    raise ValueError(f"more faulty nodes than the {n} nodes")
                if target == "hub":
                    node = next(i for i in by_degree if i not in taken)
                elif target == "any":
                    node = rng.choice(free)
                else:
                    node = int(target)
                    if not 0 <= node < n or node in taken:
                        raise ValueError(f"node {node} is not a free node index in 0..{n - 1}")
                taken.append(node)
                faults.append(Fault(node, behaviour, start))
        return cls(tuple(faults))

    @classmethod
    def random(
        cls,
        n: int,
        count: int,
        *,
        seed: int,
        by_degree: Sequence[int] = (),
        hubs: bool = False,
        behaviours: Sequence[Behaviour] = tuple(Behaviour),
        max_start: int = 0,
    ) -> FaultSchedule:
        """``count`` faulty nodes (the top hubs when ``hubs``) with behaviours drawn from the seed."""
        rng = random.Random(f"random-faults/{seed}")
        nodes = list(by_degree[:count]) if hubs else rng.sample(range(n), count)
        return cls(tuple(Fault(i, rng.choice(list(behaviours)), rng.randint(0, max_start)) for i in nodes))

    def to_json(self) -> list[dict[str, object]]:
        """A JSON-ready view."""
        return [f.to_json() for f in self.faults]


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
    """Rewrites one faulty node's messages; ``coalition`` holds every faulty node's key."""

    def __init__(
        self, fault: Fault, coalition: Mapping[int, NodeKey], seed: int, *, split_prepares: bool = False
    ) -> None:
        self.fault = fault
        self.coalition = dict(coalition)
        self.seed = seed
        self.split_prepares = split_prepares
        self.crashed = False

    def _mode(self, node: ConsensusNode, phase: str, view: int = 0) -> Behaviour | None:
        if node.h < self.fault.start:
            return None
        if self.crashed:
            return Behaviour.SILENT
        b = self.fault.behaviour
        if b is Behaviour.RANDOM:
            return _rng(self.seed, self.fault.node, node.h, view, phase, "mode").choice(_RANDOM_CHOICES)
        return b

    def _garbage(self, node: ConsensusNode, view: int, phase: str) -> bytes:
        return _rng(self.seed, self.fault.node, node.h, view, phase, "junk").randbytes(48)

    def _observe(self, node: ConsensusNode, signer: int, header: bytes, sig: bytes) -> None:
        if node.ctx.observer is not None:
            node.ctx.observer(node.h, signer, header, sig)

    def _split(self, node: ConsensusNode, a: Msg, b: Msg) -> list[Msg]:
        return [a if d % 2 == 0 else b for d in range(node.ctx.n)]

    # -- hooks, one per outgoing message ---------------------------------------------------

    def txs(self, node: ConsensusNode, msg: Msg) -> Contribution:
        """The transaction batch."""
        mode = self._mode(node, "txs")
        if mode is Behaviour.SILENT:
            return None
        if mode is Behaviour.GARBAGE and node.my_txs:
            rng = _rng(self.seed, self.fault.node, node.h, "txsig")
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

    def proposal(self, node: ConsensusNode, view: int, honest: list[Msg]) -> list[Msg] | None:
        """As leader: crash (before proposing, or later before the broadcast), stay silent, send
        garbage, or send conflicting proposals."""
        crash = self.fault.behaviour is Behaviour.CRASH_LEADER and node.h >= self.fault.start
        if crash and _rng(self.seed, self.fault.node, node.h, view, "crash").random() < 0.5:
            self.crashed = True
        mode = self._mode(node, "proposal", view)
        if mode is Behaviour.SILENT:
            return None
        if mode is Behaviour.GARBAGE:
            return [self._garbage(node, view, "proposal")] * node.ctx.n
        if mode is Behaviour.EQUIVOCATE and honest[0] is not None:
            p = Proposal.decode(honest[0])
            if not p.header:
                return honest
            rng = _rng(self.seed, self.fault.node, node.h, view, "equivocate")
            if len(p.tx_ids) > 1 and rng.random() < 0.5:
                ids = p.tx_ids[:-1]
                header = BlockHeader.decode(p.header)
                alt = node._header([node.pool[t] for t in ids], header.time, header.proposer).encode()
            else:
                ids, alt = p.tx_ids, _alt_header(p.header)
            b = Proposal(p.height, p.view, alt, ids).encode()
            return self._split(node, honest[0], b)
        return honest

    def prepare(self, node: ConsensusNode, view: int, msg: Msg) -> Contribution:
        """The prepare: silent, garbage (a junk header and false claims that every valid
        transaction it checked is invalid), or for a conflicting header (split when allowed)."""
        mode = self._mode(node, "prepare", view)
        if mode is Behaviour.SILENT:
            return None
        if mode is Behaviour.GARBAGE:
            valid = tuple(t for t, ok in node.checked.items() if ok)
            return Prepare(node.h, view, self._garbage(node, view, "prepare"), (), valid).encode()
        if mode in (Behaviour.DOUBLE_SIGN, Behaviour.EQUIVOCATE) and msg is not None:
            p = Prepare.decode(msg)
            if not p.header:
                return msg
            b = Prepare(p.height, p.view, _alt_header(p.header), p.tx_ids, p.rejected).encode()
            if self.split_prepares:
                return Split(self._split(node, msg, b))
            return msg if _rng(self.seed, self.fault.node, node.h, view, "pick").random() < 0.5 else b
        return msg

    def _known_header(self, node: ConsensusNode) -> bytes | None:
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

    def commits(self, node: ConsensusNode, view: int, honest: list[Msg] | None) -> list[Msg] | None:
        """Commit votes: silent, invalid signatures, or two conflicting signed headers."""
        mode = self._mode(node, "commit", view)
        if mode is Behaviour.SILENT:
            return None
        header = self._known_header(node)
        if mode is Behaviour.GARBAGE:
            digest = block_hash(header) if header is not None else bytes(32)
            junk = _rng(self.seed, self.fault.node, node.h, view, "csig").randbytes(SIGNATURE_SIZE)
            return [Commit(node.h, view, digest, junk).encode()] * node.ctx.n
        if mode in (Behaviour.DOUBLE_SIGN, Behaviour.EQUIVOCATE) and header is not None:
            alt = _alt_header(header)
            msgs = []
            for h in (header, alt):
                sig = node.key.sign(SIGN_BLOCK, h)
                self._observe(node, self.fault.node, h, sig)
                msgs.append(Commit(node.h, view, block_hash(h), sig).encode())
            return self._split(node, msgs[0], msgs[1])
        return honest

    def _forged(self, node: ConsensusNode, view: int) -> Msg:
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
        return Decided(node.h, alt, tuple(ids), qc.encode()).encode()

    def block(self, node: ConsensusNode, view: int, msg: Msg) -> Msg:
        """As leader, the block broadcast: crash, silence, garbage, or a forged block."""
        if self.fault.behaviour is Behaviour.CRASH_LEADER and node.h >= self.fault.start:
            self.crashed = True
        return self._decided(node, view, "block", msg)

    def offer(self, node: ConsensusNode, view: int, msg: Msg) -> Contribution:
        """The certificate offered after a failed broadcast."""
        return self._decided(node, view, "offer", msg)

    def _decided(self, node: ConsensusNode, view: int, phase: str, msg: Msg) -> Msg:
        """A decided block as this fault sends it: silence, garbage, a forgery, or as it is."""
        mode = self._mode(node, phase, view)
        if mode is Behaviour.SILENT:
            return None
        if mode is Behaviour.GARBAGE:
            return self._garbage(node, view, phase)
        if mode is Behaviour.EQUIVOCATE:
            try:
                return self._forged(node, view)
            except EncodingError:
                return None
        return msg
