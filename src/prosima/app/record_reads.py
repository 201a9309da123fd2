"""An image record read from an open session, as JSON-ready data: a transaction decoded with what it
stands on (a restoration's original anchor, the anchored versions of the model that made it), and
the records of an image by its pixel digest. What is not on the ledger is ``NotFound``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prosima.app.ledger_queries import TX_BYTES, find_transaction, iso_time, parse_hex

if TYPE_CHECKING:
    from prosima.app.session import Session
    from prosima.provenance.index import Indexed, Record


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

    view = find_transaction(session.provenance.ledger, tx)
    body: dict[str, Any] = {"ok": True} | view.to_json()
    item = session.provenance.index.refresh().by_tx.get(tx)
    if item is None:
        return body
    body["image_record"] = indexed_json(item)
    if isinstance(item.record, RestorationRecord):
        original = session.provenance.index.by_tx.get(item.record.original)
        body["original"] = indexed_json(original) if original is not None else None
        body["model_versions"] = find_versions(session.provenance.ledger, item.record.model)
    return body


def records_by_digest(session: Session, digest: str) -> dict[str, Any]:
    """The image records whose image (an anchor's pixels, a restoration's output) has ``digest``."""
    parse_hex(digest, "digest", TX_BYTES)
    index = session.provenance.index.refresh()
    items = [index.by_tx[tx] for tx in index.by_pixels.get(digest.lower(), [])]
    return {"ok": bool(items), "digest": digest.lower(), "records": [indexed_json(i) for i in items]}
