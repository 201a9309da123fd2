"""The ledger's own actions: create a ledger, append payloads, show a block, a transaction or the
transactions under a key, audit the chain, make and check proofs, keep tree heads, witness the log,
and its statistics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prosima.errors import InputError, NegativeVerdict
from prosima.ledger.errors import EncodingError, LedgerError, StoreError
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


def show_transaction(ledger: Path, tx: str) -> TransactionView:
    """The transaction with id ``tx`` (hex)."""
    with Ledger.open(ledger) as led:
        found, at, index = led.store.find_tx(parse_hex(tx, "--tx", 32))
    return TransactionView(found, at, index)


def show_key(ledger: Path, key: str) -> KeyListing:
    """The transactions whose payload key is ``key`` (hex)."""
    with Ledger.open(ledger) as led:
        rows = led.store.txs_by_key(parse_hex(key, "--key"))
    return KeyListing(key, [(i.hex(), h, s) for i, h, s in rows])


def show_block(ledger: Path, height: int | None = None) -> BlockView:
    """The block at ``height`` (default: the last one)."""
    with Ledger.open(ledger) as led:
        h = led.store.height if height is None else height
        if h < 0:
            raise InputError("the ledger has no blocks yet")
        return BlockView(led.store.block(h))


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


def make_proof(
    ledger: Path, *, tx: str | None = None, from_height: int | None = None, to_height: int | None = None
) -> dict[str, Any]:
    """An inclusion proof of ``tx`` with its certified tree head, or a consistency proof from the
    tree head at ``from_height`` to the one at ``to_height`` (default: the last)."""
    if (tx is None) == (from_height is None):
        raise InputError("give exactly one of --tx or --from-height")
    with Ledger.open(ledger) as led:
        if tx is not None:
            return led.inclusion_proof(parse_hex(tx, "--tx", 32))
        assert from_height is not None
        return led.consistency_proof(from_height, to_height)


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


def tree_head(ledger: Path, height: int | None = None) -> dict[str, Any]:
    """The certified tree head at ``height`` (default: the last block)."""
    with Ledger.open(ledger) as led:
        head: dict[str, Any] = led.tree_head(height).to_json()
    return head


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


def ledger_stats(ledger: Path) -> dict[str, Any]:
    """Blocks, transactions, bytes on disk and bytes per transaction."""
    with Ledger.open(ledger) as led:
        stats: dict[str, Any] = {"ok": True} | led.stats()
    return stats
