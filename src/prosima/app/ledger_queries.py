"""The ledger's own actions: create a ledger, append payloads, show a block, a transaction or the
transactions under a key, audit the chain, make and check proofs, keep tree heads, witness the log,
and its statistics.

The reads take an open ``Ledger``, so the command line (which opens the ledger for one command) and
the service (which holds it open) answer with the same functions. What they are asked for and do
not find (a transaction, a block, a tree head) is ``NotFound``: refused input, a 404 in the
service; a tampered row is refused as tampered, never as missing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prosima.errors import InputError, NegativeVerdict, NotFound
from prosima.ledger.errors import EncodingError, LedgerError, StoreError, TamperedStoreError
from prosima.ledger.log.block import Block
from prosima.ledger.log.directory import Entry, Ledger
from prosima.ledger.log.encoding import decode
from prosima.ledger.log.input_files import MAX_DOCUMENT, read_bounded
from prosima.ledger.log.proof import ProofCheck, check_document
from prosima.ledger.log.registry import Registry
from prosima.ledger.log.transaction import MAX_PAYLOAD, Transaction
from prosima.ledger.log.verify import ChainReport
from prosima.ledger.log.witness import Witness

STDIN = Path("-")
TX_BYTES = 32
MISSING_RECORD = "no record {tx} on this ledger"  # the service's words
MISSING_TX = "no transaction with id {hex}"  # the command line's (and the store's)


def parse_hex(value: str, what: str, size: int | None = None) -> bytes:
    """``value`` as bytes, refused (naming ``what``) unless it is hex of ``size`` bytes."""
    try:
        data = bytes.fromhex(value)
    except ValueError:
        raise LedgerError(f"{what} must be hex, got {value!r}") from None
    if size is not None and len(data) != size:
        raise LedgerError(f"{what} must be {size} bytes ({2 * size} hex digits), got {len(data)}")
    return data


def iso_time(time_us: int) -> str:
    """A ledger time (microseconds since the Unix epoch) in ISO 8601, UTC."""
    return datetime.fromtimestamp(time_us / 1e6, UTC).isoformat(timespec="microseconds")


def decoded_payload(payload: bytes) -> Any:
    """A payload as JSON-ready data: canonical CBOR decoded (bytes as hex), else None."""
    try:
        value = decode(payload)
    except EncodingError:
        return None

    def plain(v: Any) -> Any:
        if isinstance(v, bytes):
            return v.hex()
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, list):
            return [plain(x) for x in v]
        return v

    return plain(value)


@dataclass(frozen=True)
class LedgerCreated:
    """A new ledger: its node ids and the quorum threshold."""

    directory: Path
    nodes: list[str]
    threshold: int

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": True,
            "directory": str(self.directory),
            "nodes": self.nodes,
            "threshold": self.threshold,
        }


@dataclass(frozen=True)
class Appended:
    """The block a set of payloads was appended as."""

    height: int
    block_hash: str
    tx_ids: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"ok": True, "height": self.height, "block_hash": self.block_hash, "tx_ids": self.tx_ids}


@dataclass(frozen=True)
class TransactionView:
    """One transaction, found by id: its block height, leaf index and contents."""

    transaction: Transaction
    height: int
    leaf_index: int

    def fields(self) -> dict[str, Any]:
        """The transaction as JSON, with its time in ISO 8601 and its payload decoded."""
        tx = self.transaction
        return tx.to_json() | {"time_iso": iso_time(tx.time), "payload_decoded": decoded_payload(tx.payload)}

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": True,
            "height": self.height,
            "leaf_index": self.leaf_index,
            "transaction": self.fields(),
        }


@dataclass(frozen=True)
class KeyListing:
    """The transactions under one payload key: (id, height, leaf index) each, in ledger order."""

    key: str
    transactions: list[tuple[str, int, int]]

    def to_json(self) -> dict[str, Any]:
        rows = [{"id": i, "height": h, "leaf_index": s} for i, h, s in self.transactions]
        return {"ok": True, "key": self.key, "transactions": rows}


@dataclass(frozen=True)
class BlockView:
    """One block: its header, quorum certificate and transactions."""

    block: Block

    def header(self) -> dict[str, Any]:
        header = self.block.header
        return header.to_json() | {"time_iso": iso_time(header.time)}

    def transactions(self) -> list[dict[str, Any]]:
        return [
            {
                "id": t.tx_id.hex(),
                "kind": t.kind,
                "key": t.key.hex(),
                "time_iso": iso_time(t.time),
                "payload_size": len(t.payload),
                "payload_decoded": decoded_payload(t.payload),
            }
            for t in self.block.txs
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": True,
            "header": self.header(),
            "quorum": self.block.qc.to_json(),
            "transactions": self.transactions(),
        }


@dataclass(frozen=True)
class WitnessReport:
    """What a witness saw: ``problems`` (empty: the log only grew, and its head was recorded), the
    tree size it had seen before (0: first sight) and the size now."""

    problems: list[str]
    seen: int
    now: int
    first_sight: bool

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "problems": self.problems, "seen": self.seen, "now": self.now}


def init_ledger(directory: Path, nodes: int = 4) -> LedgerCreated:
    """Create ``nodes`` node keys (keys/, mode 0600), their registry and an empty store."""
    ledger = Ledger.init(directory, nodes=nodes)
    ledger.close()
    return LedgerCreated(directory, [k.node_id.hex() for k in ledger.keys], ledger.registry.threshold)


def append_payloads(ledger: Path, files: Sequence[Path], kind: str = "data", key: str = "") -> Appended:
    """Append the payload files (``-``: standard input) as one block, one transaction each, signed by
    a quorum of the local node keys."""
    key_bytes = parse_hex(key, "--key")
    payloads = [read_bounded(f, MAX_PAYLOAD, "payload") for f in files or [STDIN]]
    with Ledger.open(ledger) as led:
        block = led.append([Entry(p, kind, key_bytes) for p in payloads])
    return Appended(block.header.height, block.hash.hex(), [tx.tx_id.hex() for tx in block.txs])


def tx_id(value: str, what: str = "record id") -> bytes:
    """A transaction id as bytes; refused (naming ``what``) unless 64 hex digits."""
    return parse_hex(value, what, TX_BYTES)


def find_transaction(
    led: Ledger, tx: str, what: str = "record id", missing: str = MISSING_RECORD
) -> TransactionView:
    """The transaction ``tx`` (hex); ``NotFound`` when the ledger has none (a tampered row is
    refused). The caller's words: ``what`` names the id when it is not hex, ``missing`` says it is
    not there (``{tx}``: as given, ``{hex}``: the id)."""
    wanted = tx_id(tx, what)
    try:
        found, height, leaf = led.store.find_tx(wanted)
    except TamperedStoreError:
        raise
    except StoreError:
        raise NotFound(missing.format(tx=tx, hex=wanted.hex())) from None
    return TransactionView(found, height, leaf)


def transactions_by_key(led: Ledger, key: str) -> KeyListing:
    """The transactions whose payload key is ``key`` (hex)."""
    rows = led.store.txs_by_key(parse_hex(key, "--key"))
    return KeyListing(key, [(i.hex(), h, s) for i, h, s in rows])


def block_height(led: Ledger, height: int | None) -> int:
    """``height`` (default: the tip); ``NotFound`` unless the ledger has that block."""
    tip = led.store.height
    if tip < 0:
        raise NotFound("the ledger has no blocks yet")
    chosen = tip if height is None else height
    if not 0 <= chosen <= tip:
        raise NotFound(f"no block at height {chosen}; the ledger's blocks are 0 to {tip}")
    return chosen


def block_view(led: Ledger, height: int | None = None) -> BlockView:
    """The block at ``height`` (default: the last one): header, quorum certificate, transactions."""
    return BlockView(led.store.block(block_height(led, height)))


def tree_head(led: Ledger, height: int | None = None) -> dict[str, Any]:
    """The certified tree head after block ``height`` (default: the last; the empty log's head on a
    ledger without blocks)."""
    chosen = None if height is None and led.store.height < 0 else block_height(led, height)
    head: dict[str, Any] = led.tree_head(chosen).to_json()
    return head


def inclusion_proof(
    led: Ledger, tx: str, what: str = "record id", missing: str = MISSING_RECORD
) -> dict[str, Any]:
    """The inclusion proof of ``tx`` against the current certified tree head (``what`` and
    ``missing`` as ``find_transaction``)."""
    find_transaction(led, tx, what, missing)
    proof: dict[str, Any] = led.inclusion_proof(tx_id(tx, what))
    return proof


def consistency_proof(led: Ledger, old: int, new: int | None = None) -> dict[str, Any]:
    """The consistency proof from the tree head after block ``old`` (-1: the empty log) to the one
    after ``new`` (default: the last)."""
    tip = led.store.height
    chosen = tip if new is None else new
    if not -1 <= old <= chosen <= tip:
        raise NotFound(f"no tree heads from height {old} to {chosen}: heights run from -1 to {tip}")
    proof: dict[str, Any] = led.consistency_proof(old, chosen)
    return proof


def verify_ledger(ledger: Path, registry: Path | None = None) -> ChainReport:
    """Verify every block, hash and signature from scratch (the report names the first fault).
    A negative verdict when the store cannot be read at all, or its node registry is not the
    trusted ``registry``."""
    try:
        with Ledger.open(ledger, verify="none") as led:
            if registry is not None and Registry.load(registry).digest != led.registry.digest:
                raise NegativeVerdict("registry: the ledger's node registry is not the trusted one")
            return led.verify()
    except StoreError as exc:  # a store that cannot even be read is not whole
        raise NegativeVerdict(str(exc)) from None


def check_proof(file: Path, registry: Path | None = None) -> ProofCheck:
    """Check the proof document in ``file`` (``-``: standard input) offline, without the store. Tree
    heads must carry a quorum certificate of the pinned ``registry`` (or, unpinned, of the one the
    proof lists). Refused input when the file is not a proof document at all."""
    text = read_bounded(file, MAX_DOCUMENT, "proof file")
    trusted = Registry.load(registry) if registry is not None else None
    result = check_document(text, registry=trusted)
    if not result.is_proof:
        raise InputError(f"{file} is not a proof document: {'; '.join(result.problems)}")
    return result


def witness_ledger(ledger: Path, state: Path, registry: Path | None = None) -> WitnessReport:
    """Check that the log only grew since the witness keeping ``state`` last saw it, then record its
    head (nothing is recorded when it shrank, forked or changed its node keys)."""
    witness = Witness.load(state)
    before = witness.last
    trusted = Registry.load(registry) if registry is not None else None
    with Ledger.open(ledger, verify="none") as led:
        problems = witness.observe(led, trusted)
        head = led.tree_head()
    seen = 0 if before is None else before.tree_size
    return WitnessReport(problems, seen, head.tree_size, before is None)


def ledger_stats(led: Ledger) -> dict[str, Any]:
    """Blocks, transactions, bytes on disk and bytes per transaction."""
    stats: dict[str, Any] = {"ok": True} | led.stats()
    return stats
