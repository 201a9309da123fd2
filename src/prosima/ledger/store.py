"""The durable block store: SQLite in WAL mode, ``synchronous=FULL``, one SQL transaction per block.

Tables: ``blocks`` (by height), ``txs`` (by log index, with indexes on transaction id, payload
key and height) and ``meta`` (format, registry digest, checkpoint). Opening a store verifies
the chain, fully or from a signed checkpoint, and refuses one that was edited.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from prosima.ledger.block import Block, BlockHeader, RawBlock
from prosima.ledger.checkpoint import EMPTY_DIGEST, Checkpoint, digest_step
from prosima.ledger.crypto import NodeKey, block_hash, tx_hash
from prosima.ledger.errors import EncodingError, StoreError, TamperedStoreError
from prosima.ledger.fault import Fault, FaultKind
from prosima.ledger.merkle import MerkleTree, leaf_hash
from prosima.ledger.quorum import QuorumCertificate
from prosima.ledger.registry import Registry
from prosima.ledger.transaction import Transaction
from prosima.ledger.verify import ChainReport, ChainState, verify_block, verify_chain

FORMAT = b"prosima-ledger-store/1"
VerifyMode = Literal["full", "incremental", "none"]

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE blocks (height INTEGER PRIMARY KEY, header BLOB NOT NULL, qc BLOB NOT NULL);
CREATE TABLE txs (
    seq INTEGER PRIMARY KEY,
    id BLOB NOT NULL,
    height INTEGER NOT NULL,
    key BLOB,
    data BLOB NOT NULL
);
CREATE UNIQUE INDEX txs_by_id ON txs (id);
CREATE INDEX txs_by_key ON txs (key) WHERE key IS NOT NULL;
CREATE INDEX txs_by_height ON txs (height);
"""


def _connect(path: Path, mode: str) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode={mode}", uri=True, isolation_level=None)
        journal = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        conn.execute("PRAGMA synchronous=FULL")
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open store {path.name}: {exc}") from None
    if journal.lower() != "wal":
        conn.close()
        raise StoreError(f"store {path.name} could not be put in WAL mode (got {journal})")
    return conn


class Store:
    """An open store. Use ``Store.create`` or ``Store.open``; close it (or use ``with``)."""

    def __init__(self, conn: sqlite3.Connection, path: Path, registry: Registry) -> None:
        self._conn = conn
        self.path = path
        self.registry = registry
        self._state: ChainState | None = None
        self._digest: bytes | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @classmethod
    def create(cls, path: str | Path, registry: Registry) -> Store:
        """Create an empty store bound to ``registry``; refuse an existing file."""
        path = Path(path)
        if path.exists():
            raise StoreError(f"store {path.name} already exists")
        conn = _connect(path, "rwc")
        try:
            conn.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [("format", FORMAT), ("registry", registry.digest)],
            )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"cannot create store {path.name}: {exc}") from None
        store = cls(conn, path, registry)
        store._state, store._digest = ChainState(seen=None), EMPTY_DIGEST
        return store

    @classmethod
    def open(cls, path: str | Path, registry: Registry, *, verify: VerifyMode = "incremental") -> Store:
        """Open an existing store; verify it (``full``, ``incremental`` from the checkpoint, or
        ``none``) and raise ``TamperedStoreError`` naming the first fault."""
        path = Path(path)
        if not path.is_file():
            raise StoreError(f"store {path.name} does not exist")
        store = cls(_connect(path, "rw"), path, registry)
        try:
            store._check_meta()
            if verify != "none":
                fault = store._verify_on_open(verify)
                if fault is not None:
                    raise TamperedStoreError(fault)
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _meta(self, key: str) -> bytes | None:
        try:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"store {self.path.name} is unreadable: {exc}") from None
        return None if row is None else bytes(row[0])

    def _check_meta(self) -> None:
        if self._meta("format") != FORMAT:
            raise StoreError(f"{self.path.name} is not a ledger store of format {FORMAT.decode()}")
        if self._meta("registry") != self.registry.digest:
            raise TamperedStoreError(
                Fault(-1, FaultKind.REGISTRY, "the node registry is not the one the store was made with")
            )

    # -- verification ----------------------------------------------------------------------

    def checkpoint(self) -> Checkpoint | None:
        """The stored checkpoint, if any (``EncodingError`` when it is garbled)."""
        data = self._meta("checkpoint")
        return None if data is None else Checkpoint.decode(data)

    def _verify_on_open(self, mode: VerifyMode) -> Fault | None:
        try:
            return self._verify_rows(mode)
        except sqlite3.Error as exc:
            return Fault(-1, FaultKind.ENCODING, f"unreadable rows: {exc}")

    def _verify_rows(self, mode: VerifyMode) -> Fault | None:
        try:
            cp = self.checkpoint()
        except EncodingError as exc:
            return Fault(-1, FaultKind.CHECKPOINT, str(exc))
        if cp is not None and not cp.verify(self.registry):
            return Fault(-1, FaultKind.CHECKPOINT, "checkpoint signature does not verify")
        state, digest = ChainState(), EMPTY_DIGEST
        for raw in self.raw_blocks():
            trusted = mode == "incremental" and cp is not None and raw.position <= cp.height
            fault = verify_block(raw, state, self.registry, signatures=not trusted)
            if fault is not None:
                return fault
            digest = digest_step(digest, state.block_hash, raw.qc)
            if cp is not None and raw.position == cp.height:
                here = (state.block_hash, state.log.size, state.log.root(), digest)
                if here != (cp.block_hash, cp.log_size, cp.log_root, cp.digest):
                    return Fault(cp.height, FaultKind.CHECKPOINT, "blocks up to the checkpoint were changed")
        stored = self._conn.execute("SELECT count(*) FROM txs").fetchone()[0]
        if stored != state.log.size:
            return Fault(-1, FaultKind.INDEX, f"{stored - state.log.size} transactions belong to no block")
        if cp is not None and state.height < cp.height:
            return Fault(
                state.height + 1,
                FaultKind.TRUNCATED,
                f"store ends at height {state.height}, checkpoint is at {cp.height}",
            )
        state.seen = None
        self._state, self._digest = state, digest
        return None

    def verify(self) -> ChainReport:
        """Verify the whole chain from scratch (every hash and signature), then the stored
        checkpoint against it; never raises for faults."""
        try:
            report = verify_chain(self.raw_blocks(), self.registry)
            fault = self._check_after_chain(report) if report.ok else None
        except sqlite3.Error as exc:
            return ChainReport(Fault(-1, FaultKind.ENCODING, f"unreadable rows: {exc}"), 0, 0, -1, b"")
        if fault is None:
            return report
        return ChainReport(fault, report.blocks, report.transactions, report.height, report.tip_hash)

    def _check_after_chain(self, report: ChainReport) -> Fault | None:
        stored = self._conn.execute("SELECT count(*) FROM txs").fetchone()[0]
        if stored != report.transactions:
            return Fault(
                -1, FaultKind.INDEX, f"{stored - report.transactions} transactions belong to no block"
            )
        try:
            cp = self.checkpoint()
        except EncodingError as exc:
            return Fault(-1, FaultKind.CHECKPOINT, str(exc))
        if cp is None:
            return None
        if not cp.verify(self.registry):
            return Fault(-1, FaultKind.CHECKPOINT, "checkpoint signature does not verify")
        if cp.height > report.height:
            return Fault(report.height + 1, FaultKind.TRUNCATED, f"checkpoint is at height {cp.height}")
        row = self._conn.execute("SELECT header FROM blocks WHERE height = ?", (cp.height,)).fetchone()
        if block_hash(bytes(row[0])) != cp.block_hash:
            return Fault(
                cp.height, FaultKind.CHECKPOINT, "block at the checkpoint height is not the one signed"
            )
        return None

    def write_checkpoint(self, key: NodeKey) -> Checkpoint:
        """Sign and store a checkpoint at the current tip (the chain up to it has been verified)."""
        state = self._loaded_state()
        if self._digest is None:
            raise StoreError("a checkpoint needs a store opened with verification")
        cp = Checkpoint.sign(
            key, state.height, state.block_hash, state.log.size, state.log.root(), self._digest
        )
        self._conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('checkpoint', ?)", (cp.encode(),)
        )
        return cp

    # -- reading ---------------------------------------------------------------------------

    def raw_blocks(self, start: int = 0, end: int | None = None) -> Iterator[RawBlock]:
        """Stored blocks with heights in ``[start, end)`` in height order, as stored."""
        end = 2**63 - 1 if end is None else end
        rows = self._conn.execute(
            "SELECT height, header, qc FROM blocks WHERE height >= ? AND height < ? ORDER BY height",
            (start, end),
        ).fetchall()
        for height, header, qc in rows:
            txs = self._conn.execute(
                "SELECT seq, id, height, data FROM txs WHERE height = ? ORDER BY seq", (height,)
            ).fetchall()
            yield RawBlock(
                height,
                bytes(header),
                bytes(qc),
                tuple(bytes(r[3]) for r in txs),
                tx_ids=tuple(bytes(r[1]) for r in txs),
                tx_heights=tuple(r[2] for r in txs),
                tx_seqs=tuple(r[0] for r in txs),
            )

    def _loaded_state(self) -> ChainState:
        """The tip and log, rebuilt without verification for stores opened with ``verify="none"``."""
        if self._state is None:
            state = ChainState(seen=None)
            row = self._conn.execute("SELECT header FROM blocks ORDER BY height DESC LIMIT 1").fetchone()
            if row is not None:
                header = BlockHeader.decode(bytes(row[0]))
                state.height, state.block_hash, state.time = (
                    header.height,
                    block_hash(bytes(row[0])),
                    header.time,
                )
            cur = self._conn.execute("SELECT data FROM txs ORDER BY seq")
            state.log.extend(leaf_hash(bytes(r[0])) for r in cur)
            self._state = state
        return self._state

    @property
    def height(self) -> int:
        """Height of the last block (-1 when empty)."""
        return self._loaded_state().height

    @property
    def tip_hash(self) -> bytes:
        """Hash of the last block (32 zero bytes when empty)."""
        return self._loaded_state().block_hash

    @property
    def tip_time(self) -> int:
        """Time of the last block (0 when empty)."""
        return self._loaded_state().time

    @property
    def log(self) -> MerkleTree:
        """The log of every transaction in order (do not modify)."""
        return self._loaded_state().log

    def header(self, height: int) -> BlockHeader:
        """The header at ``height``; ``StoreError`` when there is none."""
        row = self._conn.execute("SELECT header FROM blocks WHERE height = ?", (height,)).fetchone()
        if row is None:
            raise StoreError(f"no block at height {height}")
        return BlockHeader.decode(bytes(row[0]))

    def block(self, height: int) -> Block:
        """The decoded block at ``height``."""
        raws = list(self.raw_blocks(height, height + 1))
        if not raws:
            raise StoreError(f"no block at height {height}")
        raw = raws[0]
        return Block(
            BlockHeader.decode(raw.header),
            tuple(Transaction.decode(d) for d in raw.txs),
            QuorumCertificate.decode(raw.qc),
        )

    def find_tx(self, tx_id: bytes) -> tuple[Transaction, int, int]:
        """``(transaction, height, log index)`` for ``tx_id``; ``StoreError`` when absent or corrupt."""
        row = self._conn.execute("SELECT seq, height, data FROM txs WHERE id = ?", (tx_id,)).fetchone()
        if row is None:
            raise StoreError(f"no transaction with id {tx_id.hex()}")
        data = bytes(row[2])
        if tx_hash(data) != tx_id:
            raise TamperedStoreError(
                Fault(row[1], FaultKind.INDEX, f"transaction {tx_id.hex()} does not hash to its id")
            )
        return Transaction.decode(data), row[1], row[0]

    def txs_by_key(self, key: bytes) -> list[tuple[bytes, int, int]]:
        """``(tx id, height, log index)`` of every transaction whose payload key is ``key``."""
        rows = self._conn.execute(
            "SELECT id, height, seq FROM txs WHERE key = ? ORDER BY seq", (key,)
        ).fetchall()
        return [(bytes(r[0]), r[1], r[2]) for r in rows]

    def stats(self) -> dict[str, Any]:
        """Blocks, transactions, payload and on-disk bytes."""
        blocks = self._conn.execute("SELECT count(*) FROM blocks").fetchone()[0]
        txs, payload = self._conn.execute(
            "SELECT count(*), coalesce(sum(length(data)), 0) FROM txs"
        ).fetchone()
        disk = sum(p.stat().st_size for p in self.files() if p.exists())
        return {
            "blocks": blocks,
            "transactions": txs,
            "tx_bytes": payload,
            "bytes_on_disk": disk,
            "bytes_per_transaction": disk / txs if txs else None,
        }

    def files(self) -> list[Path]:
        """The database file and its WAL and shared-memory files."""
        return [self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")]

    def compact_wal(self) -> None:
        """Copy the WAL into the main file and truncate it (for measuring size on disk)."""
        self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- writing ---------------------------------------------------------------------------

    def append(self, block: Block, *, signatures: bool = True) -> None:
        """Commit ``block`` atomically after checking that it extends the tip with correct heights,
        hash link, time and Merkle roots and, with ``signatures``, that every transaction signature
        and the quorum certificate verify. On any failure raise ``StoreError``; the store is unchanged."""
        state = self._loaded_state()
        raw = block.raw()
        saved = (state.height, state.block_hash, state.time, state.log.size)
        fault = verify_block(raw, state, self.registry, signatures=signatures)
        if fault is not None:
            raise StoreError(f"block refused: {fault}")
        rows = [
            (saved[3] + i, tx.tx_id, raw.position, tx.key or None, data)
            for i, (tx, data) in enumerate(zip(block.txs, raw.txs, strict=True))
        ]
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                top = conn.execute("SELECT max(height) FROM blocks").fetchone()[0]
                if (-1 if top is None else top) != saved[0]:
                    raise StoreError("the store was changed by another writer; reopen it")
                conn.execute(
                    "INSERT INTO blocks (height, header, qc) VALUES (?, ?, ?)",
                    (raw.position, raw.header, raw.qc),
                )
                conn.executemany("INSERT INTO txs (seq, id, height, key, data) VALUES (?, ?, ?, ?, ?)", rows)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except BaseException as exc:
            state.height, state.block_hash, state.time = saved[:3]
            state.log.truncate(saved[3])
            if isinstance(exc, sqlite3.IntegrityError):
                raise StoreError(f"block refused: a transaction is already in the store ({exc})") from None
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"block not committed: {exc}") from None
            raise
        if self._digest is not None:
            self._digest = digest_step(self._digest, state.block_hash, raw.qc)
