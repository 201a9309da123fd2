"""A ledger directory: node keys (``keys/``), the node registry (``registry.cbor``) and the
store (``ledger.db``), with the operations the command line offers."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prosima.ledger.errors import LedgerError, NodeKeyFileError, StoreError
from prosima.ledger.log.block import Block
from prosima.ledger.log.crypto import NodeKey
from prosima.ledger.log.proof import consistency_document, inclusion_document
from prosima.ledger.log.quorum import QuorumCertificate
from prosima.ledger.log.registry import Registry
from prosima.ledger.log.store import Store, VerifyMode
from prosima.ledger.log.transaction import Transaction, TxKind, now_us
from prosima.ledger.log.tree_head import SignedTreeHead
from prosima.ledger.log.verify import ChainReport

KEYS_DIR = "keys"
REGISTRY_FILE = "registry.cbor"
STORE_FILE = "ledger.db"


@dataclass(frozen=True, slots=True)
class Entry:
    """One payload to append: its bytes, kind and optional index key."""

    payload: bytes
    kind: str = TxKind.DATA
    key: bytes = b""


def _load_keys(keys_dir: Path, registry: Registry) -> list[NodeKey]:
    if not keys_dir.is_dir():
        return []
    mode = stat.S_IMODE(keys_dir.stat().st_mode)
    if mode & 0o077:
        raise NodeKeyFileError(f"key directory {keys_dir.name}/ has mode {mode:04o}; it must be 0700")
    keys: dict[bytes, tuple[str, NodeKey]] = {}
    for path in sorted(keys_dir.glob("*.key")):
        key = NodeKey.load(path)
        if key.node_id not in registry:
            raise NodeKeyFileError(
                f"key file {path.name} holds node {key.node_id.hex()}, which is not registered"
            )
        if key.node_id in keys:
            # two files of one key would sign a certificate as two nodes and count once
            raise NodeKeyFileError(
                f"key files {keys[key.node_id][0]} and {path.name} hold the same node key; "
                "each node needs its own key"
            )
        keys[key.node_id] = (path.name, key)
    return [key for _, (_, key) in sorted(keys.items())]


class Ledger:
    """An open ledger directory. The first local key (by node id) proposes blocks, signs
    transactions and tree heads; every local key signs the quorum certificate."""

    def __init__(self, path: Path, registry: Registry, keys: list[NodeKey], store: Store) -> None:
        self.path = path
        self.registry = registry
        self.keys = keys
        self.store = store
        self._dirty = False
        self._closed = False

    @classmethod
    def init(cls, path: str | Path, nodes: int = 4) -> Ledger:
        """Create ``nodes`` node keys, their registry and an empty store in a new or empty directory."""
        path = Path(path)
        if not 1 <= nodes <= 1024:
            raise LedgerError(f"--nodes must be between 1 and 1024, got {nodes}")
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise LedgerError(f"{path} exists and is not an empty directory")
        path.mkdir(parents=True, exist_ok=True)
        keys_dir = path / KEYS_DIR
        keys_dir.mkdir(mode=0o700)
        os.chmod(keys_dir, 0o700)
        keys = [NodeKey.generate() for _ in range(nodes)]
        keys.sort(key=lambda k: k.node_id)
        for i, key in enumerate(keys):
            key.save(keys_dir / f"node-{i:02d}.key")
        registry = Registry(k.public_key for k in keys)
        registry.save(path / REGISTRY_FILE)
        store = Store.create(path / STORE_FILE, registry)
        return cls(path, registry, keys, store)

    @classmethod
    def open(
        cls, path: str | Path, *, verify: VerifyMode = "incremental", lock_timeout: float | None = None
    ) -> Ledger:
        """Open a ledger directory, verifying its store; writers wait up to ``lock_timeout``
        seconds for each other (see ``Store.open``)."""
        path = Path(path)
        if not (path / REGISTRY_FILE).is_file():
            raise LedgerError(
                f"{path} is not a ledger directory (no {REGISTRY_FILE}); run 'prosima ledger init'"
            )
        registry = Registry.load(path / REGISTRY_FILE)
        keys = _load_keys(path / KEYS_DIR, registry)
        store = Store.open(path / STORE_FILE, registry, verify=verify, lock_timeout=lock_timeout)
        ledger = cls(path, registry, keys, store)
        if verify != "none" and keys:
            try:
                cp = store.checkpoint()
                if cp is None or cp.height < store.height:
                    store.write_checkpoint(keys[0])  # under the write lock, at the newest tip
            except BaseException:
                store.close()
                raise
        return ledger

    def close(self) -> None:
        """Write a checkpoint when blocks were appended, then close the store (again: nothing)."""
        dirty, self._dirty = self._dirty, False
        if self._closed:
            return
        self._closed = True
        try:
            if dirty and self.keys:
                self.store.write_checkpoint(self.keys[0])
        finally:
            self.store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def local(self) -> NodeKey:
        """The key that proposes and signs here."""
        if not self.keys:
            raise NodeKeyFileError(f"no node keys in {KEYS_DIR}/; this operation needs one")
        return self.keys[0]

    def append(self, entries: Sequence[Entry], *, verify_signatures: bool = False) -> Block:
        """Sign ``entries`` as transactions, put them in one block signed by every local key, commit.

        The block is built under the store's write lock on the newest tip, after the blocks other
        processes committed meanwhile were verified. The signatures were just made by registered
        keys, so by default only the block's structure is re-verified before the commit;
        ``verify_signatures`` checks every signature as well."""
        if len(self.keys) < self.registry.threshold:
            raise LedgerError(
                f"only {len(self.keys)} local keys; a quorum needs "
                f"{self.registry.threshold} of {len(self.registry)}"
            )
        local = self.local
        txs = [Transaction.create(local, e.kind, e.payload, e.key) for e in entries]
        store = self.store
        with store.writing():
            block = Block.build(
                height=store.height + 1,
                prev_hash=store.tip_hash,
                txs=txs,
                log=store.log,
                time=max(now_us(), store.tip_time),
                proposer=local.node_id,
                signers=self.keys,
            )
            store.append(block, signatures=verify_signatures)
        self._dirty = True
        return block

    def tree_head(self, height: int | None = None) -> SignedTreeHead:
        """The log's tree head after block ``height`` (default: the tip): that block's header
        under its quorum certificate (the empty log's head before the first block)."""
        height = self.store.height if height is None else height
        if height < 0:
            return SignedTreeHead.empty()
        raws = list(self.store.raw_blocks(height, height + 1))
        if not raws:
            raise StoreError(f"no block at height {height}")
        return SignedTreeHead.of_block(raws[0].header, QuorumCertificate.decode(raws[0].qc))

    def inclusion_proof(self, tx_id: bytes) -> dict[str, Any]:
        """The inclusion proof document for ``tx_id`` against the current tree head."""
        tx, _height, index = self.store.find_tx(tx_id)
        head = self.tree_head()
        path = self.store.log.inclusion_proof(index, head.tree_size)
        return inclusion_document(tx, index, path, head, self.registry)

    def consistency_proof(self, old_height: int, new_height: int | None = None) -> dict[str, Any]:
        """The consistency proof document between the tree heads after two heights."""
        new_height = self.store.height if new_height is None else new_height
        if not -1 <= old_height <= new_height <= self.store.height:
            raise StoreError(f"heights must satisfy -1 <= old <= new <= {self.store.height}")
        old, new = self.tree_head(old_height), self.tree_head(new_height)
        path = self.store.log.consistency_proof(old.tree_size, new.tree_size)
        return consistency_document(old, new, path, self.registry)

    def extension_of(self, kept: SignedTreeHead) -> tuple[SignedTreeHead, list[bytes]]:
        """The current tree head and the consistency path from a head a client kept (empty when
        the log is now smaller than that head: the caller reports the rollback)."""
        head = self.tree_head()
        if kept.tree_size > head.tree_size:
            return head, []
        return head, self.store.log.consistency_proof(kept.tree_size, head.tree_size)

    def verify(self) -> ChainReport:
        """Verify every block, hash and signature from scratch."""
        return self.store.verify()

    def stats(self) -> dict[str, Any]:
        """Store statistics plus the registry size and threshold."""
        return self.store.stats() | {
            "height": self.store.height,
            "nodes": len(self.registry),
            "threshold": self.registry.threshold,
        }
