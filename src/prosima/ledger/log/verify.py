"""Chain verification: walk stored blocks in order and name the first fault."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from prosima.ledger.errors import EncodingError
from prosima.ledger.log.block import GENESIS_PREV, BlockHeader, RawBlock, tx_leaf_hashes
from prosima.ledger.log.crypto import SIGN_TX, block_hash, tx_hash
from prosima.ledger.log.fault import Fault, FaultKind
from prosima.ledger.log.merkle import MerkleTree, root_hash
from prosima.ledger.log.quorum import QuorumCertificate
from prosima.ledger.log.registry import Registry
from prosima.ledger.log.transaction import Transaction


@dataclass
class ChainState:
    """Where verification stands: the last good block and the log up to it.

    ``seen`` holds every transaction id so far (for duplicate detection); ``None`` skips that check.
    """

    height: int = -1
    block_hash: bytes = GENESIS_PREV
    time: int = 0
    log: MerkleTree = field(default_factory=MerkleTree)
    seen: set[bytes] | None = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The outcome of ``verify_chain``: how far it got and the first fault, if any."""

    fault: Fault | None
    blocks: int
    transactions: int
    height: int
    tip_hash: bytes

    @property
    def ok(self) -> bool:
        """True when no fault was found."""
        return self.fault is None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "ok": self.ok,
            "blocks": self.blocks,
            "transactions": self.transactions,
            "height": self.height,
            "tip_hash": self.tip_hash.hex(),
            "fault": None if self.fault is None else self.fault.to_json(),
        }


def verify_block(
    raw: RawBlock, state: ChainState, registry: Registry, *, signatures: bool = True
) -> Fault | None:
    """Check one stored block against ``state``; on success advance ``state`` and return ``None``."""
    h = state.height + 1
    if raw.position != h:
        if raw.position > h:
            return Fault(
                h, FaultKind.MISSING_BLOCK, f"no block at height {h}; the next stored is {raw.position}"
            )
        return Fault(
            h, FaultKind.HEIGHT, f"block stored at height {raw.position} after height {state.height}"
        )
    try:
        header = BlockHeader.decode(raw.header)
    except EncodingError as exc:
        return Fault(h, FaultKind.ENCODING, f"header: {exc}")
    try:
        qc = QuorumCertificate.decode(raw.qc)
    except EncodingError as exc:
        return Fault(h, FaultKind.ENCODING, f"quorum certificate: {exc}")
    txs: list[Transaction] = []
    for i, data in enumerate(raw.txs):
        try:
            txs.append(Transaction.decode(data))
        except EncodingError as exc:
            return Fault(h, FaultKind.ENCODING, f"transaction {i}: {exc}")
    if header.height != h:
        return Fault(h, FaultKind.HEIGHT, f"block stored at height {h} says it is height {header.height}")
    if header.prev_hash != state.block_hash:
        return Fault(
            h,
            FaultKind.HASH_LINK,
            f"previous hash {header.prev_hash.hex()[:16]}... is not "
            f"block {h - 1}'s hash {state.block_hash.hex()[:16]}...",
        )
    if header.time < state.time:
        return Fault(h, FaultKind.TIME, f"time {header.time} is before block {h - 1}'s {state.time}")
    if header.tx_count != len(raw.txs):
        return Fault(
            h, FaultKind.MERKLE_ROOT, f"header counts {header.tx_count} transactions, {len(raw.txs)} stored"
        )
    if header.tx_root != root_hash(raw.txs):
        return Fault(h, FaultKind.MERKLE_ROOT, "transactions do not hash to the header's Merkle root")
    fault = _check_log(header, raw, state)
    if fault is not None:
        return fault
    ids = [tx_hash(d) for d in raw.txs]
    fault = _check_ids(h, raw, ids, state)
    if fault is None:
        fault = _check_signers(h, header, raw.header, txs, qc, registry, signatures=signatures)
    if fault is not None:
        state.log.truncate(header.log_size - header.tx_count)
        return fault
    if state.seen is not None:
        state.seen.update(ids)
    state.height, state.block_hash, state.time = h, block_hash(raw.header), header.time
    return None


def _check_log(header: BlockHeader, raw: RawBlock, state: ChainState) -> Fault | None:
    before = state.log.size
    if header.log_size != before + len(raw.txs):
        return Fault(
            header.height,
            FaultKind.LOG_ROOT,
            f"log size {header.log_size} is not {before} + {len(raw.txs)} transactions",
        )
    state.log.extend(tx_leaf_hashes(raw.txs))
    if state.log.root() != header.log_root:
        state.log.truncate(before)
        return Fault(header.height, FaultKind.LOG_ROOT, "log root after this block does not match the header")
    return None


def _check_ids(h: int, raw: RawBlock, ids: list[bytes], state: ChainState) -> Fault | None:
    if raw.tx_ids is not None and list(raw.tx_ids) != ids:
        return Fault(h, FaultKind.INDEX, "stored transaction ids do not match the transactions")
    if raw.tx_heights is not None and any(x != h for x in raw.tx_heights):
        return Fault(h, FaultKind.INDEX, "stored transaction heights do not match the block")
    first = state.log.size - len(ids)
    if raw.tx_seqs is not None and list(raw.tx_seqs) != list(range(first, first + len(ids))):
        return Fault(h, FaultKind.INDEX, "stored log indices of the transactions are not consecutive")
    if len(set(ids)) != len(ids) or (state.seen is not None and not state.seen.isdisjoint(ids)):
        return Fault(h, FaultKind.DUPLICATE_TX, "a transaction appears twice in the chain (replay)")
    return None


def _check_signers(
    h: int,
    header: BlockHeader,
    header_bytes: bytes,
    txs: list[Transaction],
    qc: QuorumCertificate,
    registry: Registry,
    *,
    signatures: bool,
) -> Fault | None:
    """Registered signers and a quorum of distinct ones always; the signatures themselves with
    ``signatures`` (skipped only for blocks covered by a verified checkpoint or signed here)."""
    for i, tx in enumerate(txs):
        if tx.signer not in registry:
            return Fault(
                h, FaultKind.UNKNOWN_SIGNER, f"transaction {i} signer {tx.signer.hex()} is not registered"
            )
        if signatures and not registry.verify(tx.signer, SIGN_TX, tx.signing_bytes(), tx.signature):
            return Fault(h, FaultKind.SIGNATURE, f"transaction {i} signature does not verify")
    if header.proposer not in registry:
        return Fault(h, FaultKind.UNKNOWN_SIGNER, f"proposer {header.proposer.hex()} is not registered")
    problem = qc.check(header_bytes, registry, signatures=signatures)
    if problem is not None:
        return Fault(h, problem[0], problem[1])
    return None


def verify_chain(
    blocks: Iterable[RawBlock],
    registry: Registry,
    state: ChainState | None = None,
    *,
    signatures: bool = True,
) -> ChainReport:
    """Verify ``blocks`` in order from ``state`` (default: an empty chain); stop at the first fault."""
    state = ChainState() if state is None else state
    n_blocks = n_txs = 0
    fault = None
    for raw in blocks:
        fault = verify_block(raw, state, registry, signatures=signatures)
        if fault is not None:
            break
        n_blocks += 1
        n_txs += len(raw.txs)
    return ChainReport(fault, n_blocks, n_txs, state.height, state.block_hash)
