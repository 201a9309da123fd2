"""An in-memory index of the image records on a ledger, for what the store's key index cannot
answer: which records share shard digests with an image (tamper localisation), and which anchored
image is semantically nearest (retrieval). Built by one scan, then refreshed block by block."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeGuard, TypeVar

from prosima.ledger.log.directory import Ledger
from prosima.ledger.log.transaction import Transaction, TxKind
from prosima.provenance.records import AnchorRecord, RecordError, RestorationRecord

Record = AnchorRecord | RestorationRecord
R_co = TypeVar("R_co", bound=Record, covariant=True)


@dataclass(frozen=True)
class Indexed(Generic[R_co]):
    """One image record and the transaction that holds it (``Indexed[AnchorRecord]``: an anchor)."""

    tx: str
    height: int
    time_us: int
    signer: str
    record: R_co

    @property
    def kind(self) -> str:
        return "anchor" if isinstance(self.record, AnchorRecord) else "restoration"

    @property
    def shape(self) -> tuple[int, int] | None:
        return self.record.shape if isinstance(self.record, AnchorRecord) else None

    @property
    def pixels(self) -> str:
        """The digest of the image this record is of (an anchor's pixels, a restoration's output)."""
        r = self.record
        return r.pixels if isinstance(r, AnchorRecord) else r.output_pixels

    @property
    def shard_pixels(self) -> list[str]:
        r = self.record
        return r.shard_pixels if isinstance(r, AnchorRecord) else r.output_shard_pixels

    def tx_info(self) -> dict[str, object]:
        """The transaction as the exports describe it."""
        return {"tx": self.tx, "height": self.height, "time_us": self.time_us, "signer": self.signer}


def is_anchor(item: Indexed[Record]) -> TypeGuard[Indexed[AnchorRecord]]:
    """Whether ``item`` holds an anchor record."""
    return isinstance(item.record, AnchorRecord)


@dataclass
class RecordIndex:
    """Every anchor and restoration on ``ledger``, by tx id, by pixel digest and by shard digest,
    all derived from the records' own (signed, hashed) bytes up to the verified tip, never from
    the store's index columns."""

    ledger: Ledger
    by_tx: dict[str, Indexed[Record]] = field(default_factory=dict)
    by_pixels: dict[str, list[str]] = field(default_factory=dict)
    by_shard: dict[str, set[str]] = field(default_factory=dict)
    anchors: list[Indexed[AnchorRecord]] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    height: int = -1

    def refresh(self) -> RecordIndex:
        """Read the blocks appended since the last refresh, up to the store's verified tip."""
        store = self.ledger.store
        for raw in store.raw_blocks(self.height + 1, store.height + 1):
            for data in raw.txs:
                tx = Transaction.decode(data)
                record: Record
                try:
                    if tx.kind == TxKind.IMAGE_ANCHORED:
                        record = AnchorRecord.from_payload(tx.payload)
                    elif tx.kind == TxKind.IMAGE_RESTORED:
                        record = RestorationRecord.from_payload(tx.payload)
                    else:
                        continue
                except RecordError:
                    # signed by a registered node but not a record: never matched, kept for reports
                    self.unreadable.append(tx.tx_id.hex())
                    continue
                item = Indexed(tx.tx_id.hex(), raw.position, tx.time, tx.signer.hex(), record)
                self.by_tx[item.tx] = item
                self.by_pixels.setdefault(item.pixels, []).append(item.tx)
                if is_anchor(item):
                    self.anchors.append(item)
                for digest in item.shard_pixels:
                    self.by_shard.setdefault(digest, set()).add(item.tx)
            self.height = raw.position
        return self

    def anchor(self, tx: str) -> Indexed[AnchorRecord]:
        """The anchor held by transaction ``tx``; ``KeyError`` with a clear message otherwise."""
        self.refresh()
        item = self.by_tx.get(tx)
        if item is None or not is_anchor(item):
            raise KeyError(f"no anchored image with record id {tx} on this ledger")
        return item

    def sharing_shards(self, shard_pixels: list[str]) -> list[tuple[Indexed[Record], int, int]]:
        """Records holding any of ``shard_pixels``'s digests at the same position and with the same
        number of shards: ``(record, shared, unique)``, where ``unique`` counts the shared digests
        that no other record holds (a blank background shard is shared by many images and says
        little; a shard of anatomy held by one record says which image this was). Most unique first."""
        self.refresh()
        shared: dict[str, int] = {}
        unique: dict[str, int] = {}
        for pos, digest in enumerate(shard_pixels):
            holders = self.by_shard.get(digest, set())
            for tx in holders:
                theirs = self.by_tx[tx].shard_pixels
                if len(theirs) == len(shard_pixels) and theirs[pos] == digest:
                    shared[tx] = shared.get(tx, 0) + 1
                    unique[tx] = unique.get(tx, 0) + (len(holders) == 1)
        ranked = sorted(shared, key=lambda tx: (-unique[tx], -shared[tx], self.by_tx[tx].height, tx))
        return [(self.by_tx[tx], shared[tx], unique[tx]) for tx in ranked]
