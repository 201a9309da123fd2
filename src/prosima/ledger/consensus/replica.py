"""What one consensus node keeps of the ledger.

A full replica (the hubs, or every node under full replication) appends every block to the ledger
core's SQLite ``Store``. A partial replica checks the same chain rules (height, hash link, time,
transaction root, log root, no replay) but keeps only the headers, the certificates and the
transactions mapped to it. Both count the bytes they keep the same way: encoded header + certificate +
transactions.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from prosima.ledger.errors import StoreError
from prosima.ledger.log.block import Block, tx_leaf_hashes
from prosima.ledger.log.crypto import block_hash
from prosima.ledger.log.merkle import MerkleTree, root_hash
from prosima.ledger.log.registry import Registry
from prosima.ledger.log.store import Store
from prosima.ledger.log.transaction import Transaction
from prosima.ledger.log.verify import ChainState


class Replica(Protocol):
    """A node's copy of the chain."""

    full: bool

    @property
    def height(self) -> int:
        """Height of the last block (-1 when empty)."""
        ...

    @property
    def tip_hash(self) -> bytes:
        """Hash of the last block."""
        ...

    @property
    def tip_time(self) -> int:
        """Time of the last block."""
        ...

    @property
    def log(self) -> MerkleTree:
        """Every transaction's leaf so far."""
        ...

    def append(self, block: Block) -> None:
        """Check ``block`` extends the tip and keep it (or the node's part of it)."""
        ...

    def stored_bytes(self) -> int:
        """Bytes kept: headers, certificates and transactions."""
        ...

    def close(self) -> None:
        """Release files."""
        ...


def _block_bytes(block: Block) -> tuple[int, int]:
    raw = block.raw()
    return len(raw.header) + len(raw.qc), sum(len(t) for t in raw.txs)


class FullReplica:
    """Every block in a ledger-core ``Store`` at ``path``."""

    full = True

    def __init__(self, path: str | Path, registry: Registry) -> None:
        self.store = Store.create(path, registry)
        self._bytes = 0

    @property
    def height(self) -> int:
        """See ``Replica``."""
        return self.store.height

    @property
    def tip_hash(self) -> bytes:
        """See ``Replica``."""
        return self.store.tip_hash

    @property
    def tip_time(self) -> int:
        """See ``Replica``."""
        return self.store.tip_time

    @property
    def log(self) -> MerkleTree:
        """See ``Replica``."""
        return self.store.log

    def append(self, block: Block) -> None:
        """Append through ``Store.append``. Signatures were verified by the protocol (every
        certificate signature by this node, every transaction by a verifier set holding an honest
        node), so the store re-checks the structure only."""
        self.store.append(block, signatures=False)
        meta, txs = _block_bytes(block)
        self._bytes += meta + txs

    def stored_bytes(self) -> int:
        """See ``Replica``."""
        return self._bytes

    def close(self) -> None:
        """Close the store."""
        self.store.close()


class PartialReplica:
    """Headers, certificates, and the transactions ``keep(tx_id, tx)`` selects, after the same checks."""

    full = False

    def __init__(self, registry: Registry, keep: Callable[[bytes, Transaction], bool]) -> None:
        self.registry = registry
        self.keep = keep
        self.state = ChainState()
        self.headers: list[tuple[bytes, bytes]] = []
        self.txs: dict[bytes, bytes] = {}
        self._bytes = 0

    @classmethod
    def at_tip(
        cls, registry: Registry, keep: Callable[[bytes, Transaction], bool], state: ChainState
    ) -> PartialReplica:
        """A replica that starts at ``state`` (a chain's tip and log, kept by the replica and
        extended in place: pass a copy) instead of the empty chain; it keeps nothing from before."""
        replica = cls(registry, keep)
        replica.state = state
        return replica

    @property
    def height(self) -> int:
        """See ``Replica``."""
        return self.state.height

    @property
    def tip_hash(self) -> bytes:
        """See ``Replica``."""
        return self.state.block_hash

    @property
    def tip_time(self) -> int:
        """See ``Replica``."""
        return self.state.time

    @property
    def log(self) -> MerkleTree:
        """See ``Replica``."""
        return self.state.log

    def append(self, block: Block) -> None:
        """Check the block against the tip (height, hash link, time, transaction root, log root,
        no replayed transaction), then keep the header, the certificate and the selected
        transactions. The transactions are already-decoded objects, so nothing is decoded again."""
        state, header = self.state, block.header
        encoded = [tx.encode() for tx in block.txs]
        ids = [tx.tx_id for tx in block.txs]
        problem = None
        if header.height != state.height + 1 or header.prev_hash != state.block_hash:
            problem = "does not extend the tip"
        elif header.time < state.time or header.tx_count != len(encoded):
            problem = "time or transaction count is wrong"
        elif header.tx_root != root_hash(encoded) or header.log_size != state.log.size + len(encoded):
            problem = "transaction root or log size is wrong"
        elif len(set(ids)) != len(ids) or (state.seen is not None and not state.seen.isdisjoint(ids)):
            problem = "a transaction is replayed"
        if problem is None:
            before = state.log.size
            state.log.extend(tx_leaf_hashes(encoded))
            if state.log.root() != header.log_root:
                state.log.truncate(before)
                problem = "log root is wrong"
        if problem is not None:
            raise StoreError(f"block refused at height {header.height}: {problem}")
        if state.seen is not None:
            state.seen.update(ids)
        header_bytes = header.encode()
        state.height, state.block_hash, state.time = header.height, block_hash(header_bytes), header.time
        qc = block.qc.encode()
        self.headers.append((header_bytes, qc))
        self._bytes += len(header_bytes) + len(qc)
        for tid, tx, data in zip(ids, block.txs, encoded, strict=True):
            if self.keep(tid, tx):
                self.txs[tid] = data
                self._bytes += len(data)

    def stored_bytes(self) -> int:
        """See ``Replica``."""
        return self._bytes

    def close(self) -> None:
        """Nothing to release."""
