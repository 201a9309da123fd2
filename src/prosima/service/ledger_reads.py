"""What the read routes look up on the service's open ledger: a transaction with its decoded record
and the records it stands on, blocks, tree heads, proofs and model versions. Each names what does
not exist with ``NotFound`` (a 404), never as a corrupt store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prosima.app.ledger_queries import BlockView, TransactionView, iso_time, parse_hex
from prosima.ledger.errors import StoreError, TamperedStoreError
from prosima.service.errors import NotFound

if TYPE_CHECKING:
    from prosima.app.session import Session
    from prosima.ledger.log.directory import Ledger
    from prosima.provenance.index import Indexed, Record

TX_BYTES = 32


def _ledger(session: Session) -> Ledger:
    return session.provenance.ledger


def tx_id(value: str) -> bytes:
    """A record id (a transaction id) as bytes; refused unless 64 hex digits."""
    return parse_hex(value, "record id", TX_BYTES)


def find_transaction(session: Session, tx: str) -> TransactionView:
    """The transaction ``tx``; ``NotFound`` when the ledger has none (a tampered row is refused)."""
    wanted = tx_id(tx)
    try:
        found, height, leaf = _ledger(session).store.find_tx(wanted)
    except TamperedStoreError:
        raise
    except StoreError:
        raise NotFound(f"no record {tx} on this ledger") from None
    return TransactionView(found, height, leaf)


def indexed_json(item: Indexed[Record]) -> dict[str, Any]:
    """An image record as JSON: its transaction, kind and decoded fields."""
    return item.tx_info() | {
        "time_iso": iso_time(item.time_us),
        "kind": item.kind,
        "record": item.record.to_json(),
    }


def record_view(session: Session, tx: str) -> dict[str, Any]:
    """The transaction ``tx`` decoded; for an image record also what it stands on: a restoration's
    original anchor and the anchored versions of the model that made it."""
    from prosima.provenance.model_versions import find_versions
    from prosima.provenance.records import RestorationRecord

    view = find_transaction(session, tx)
    body: dict[str, Any] = {"ok": True} | view.to_json()
    item = session.provenance.index.refresh().by_tx.get(tx)
    if item is None:
        return body
    body["image_record"] = indexed_json(item)
    if isinstance(item.record, RestorationRecord):
        original = session.provenance.index.by_tx.get(item.record.original)
        body["original"] = indexed_json(original) if original is not None else None
        body["model_versions"] = find_versions(_ledger(session), item.record.model)
    return body


def records_by_digest(session: Session, digest: str) -> dict[str, Any]:
    """The image records whose image (an anchor's pixels, a restoration's output) has ``digest``."""
    parse_hex(digest, "digest", TX_BYTES)
    index = session.provenance.index.refresh()
    items = [index.by_tx[tx] for tx in index.by_pixels.get(digest.lower(), [])]
    return {"ok": bool(items), "digest": digest.lower(), "records": [indexed_json(i) for i in items]}


def _height(session: Session, height: int | None) -> int:
    """``height`` (default: the tip), ``NotFound`` unless the ledger has that block."""
    tip = _ledger(session).store.height
    if tip < 0:
        raise NotFound("the ledger has no blocks yet")
    chosen = tip if height is None else height
    if not 0 <= chosen <= tip:
        raise NotFound(f"no block at height {chosen}; the ledger's blocks are 0 to {tip}")
    return chosen


def block_view(session: Session, height: int | None) -> dict[str, Any]:
    """The block at ``height`` (default: the last): header, quorum certificate, decoded transactions."""
    led = _ledger(session)
    return BlockView(led.store.block(_height(session, height))).to_json()


def tree_head(session: Session, height: int | None) -> dict[str, Any]:
    """The certified tree head after block ``height`` (default: the last)."""
    led = _ledger(session)
    chosen = None if height is None and led.store.height < 0 else _height(session, height)
    head: dict[str, Any] = led.tree_head(chosen).to_json()
    return head


def inclusion_proof(session: Session, tx: str) -> dict[str, Any]:
    """The inclusion proof of ``tx`` against the current certified tree head."""
    find_transaction(session, tx)
    proof: dict[str, Any] = _ledger(session).inclusion_proof(tx_id(tx))
    return proof


def consistency_proof(session: Session, old: int, new: int | None) -> dict[str, Any]:
    """The consistency proof from the tree head after block ``old`` (-1: the empty log) to the one
    after ``new`` (default: the last)."""
    led = _ledger(session)
    tip = led.store.height
    chosen = tip if new is None else new
    if not -1 <= old <= chosen <= tip:
        raise NotFound(f"no tree heads from height {old} to {chosen}: heights run from -1 to {tip}")
    proof: dict[str, Any] = led.consistency_proof(old, chosen)
    return proof


def model_versions(session: Session) -> list[dict[str, Any]]:
    """Every model version anchored on the ledger, oldest first."""
    from prosima.provenance.model_versions import list_versions

    return [
        {"tx": v["tx"], "height": v["height"], "time_iso": iso_time(v["time_us"]), "version": v["version"]}
        for v in list_versions(_ledger(session))
    ]
