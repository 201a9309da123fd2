"""The audit report of the ledger the service holds: the chain verified from scratch (every block,
hash and signature), the certified tree head, the node registry, what the ledger holds by kind,
the model versions with their proofs, and every image record (anchors and restorations), as
JSON-ready data for the printable page. Runs on the ledger thread."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prosima.app.ledger_queries import iso_time, tree_head
from prosima.app.model_versions import anchored_versions
from prosima.ledger.log.transaction import Transaction
from prosima.provenance.model_versions import find_versions
from prosima.provenance.naming import record_name
from prosima.provenance.records import RestorationRecord

if TYPE_CHECKING:
    from prosima.app.session import Session
    from prosima.provenance.index import Indexed, Record

MAX_LISTED = 2000  # image records listed; the counts cover them all


def _kinds(session: Session) -> dict[str, int]:
    ledger = session.provenance.ledger
    kinds: dict[str, int] = {}
    for raw in ledger.store.raw_blocks(0, ledger.store.height + 1):
        for data in raw.txs:
            kind = Transaction.decode(data).kind
            kinds[kind] = kinds.get(kind, 0) + 1
    return dict(sorted(kinds.items()))


def _row(item: Indexed[Record]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "tx": item.tx,
        "height": item.height,
        "time_iso": iso_time(item.time_us),
        "kind": item.kind,
        "name": record_name(item.record),
        "pixels": item.pixels,
    }
    if isinstance(item.record, RestorationRecord):
        row |= {
            "original": item.record.original,
            "model_name": item.record.model_name,
            "model": item.record.model,
        }
    return row


def _versions(session: Session) -> list[dict[str, Any]]:
    """Every model version with its inclusion proof checked (``find_versions``)."""
    ledger = session.provenance.ledger
    seen: set[str] = set()
    rows = []
    for v in anchored_versions(ledger):
        digest = v["version"]["digest"]
        if digest in seen:
            continue
        seen.add(digest)
        rows += [r | {"time_iso": iso_time(r["time_us"])} for r in find_versions(ledger, digest)]
    return sorted(rows, key=lambda r: (r["height"], r["tx"]))


def audit_report(session: Session) -> dict[str, Any]:
    """Everything the audit page shows, computed now."""
    ledger = session.provenance.ledger
    chain = ledger.verify().to_json()
    index = session.provenance.index.refresh()
    items = sorted(index.by_tx.values(), key=lambda i: (i.height, i.time_us, i.tx))
    anchors = [i for i in items if i.kind == "anchor"]
    restorations = [i for i in items if i.kind == "restoration"]
    registry = ledger.registry
    return {
        "generated_iso": datetime.now(UTC).isoformat(timespec="seconds"),
        "chain": chain,
        "stats": ledger.stats(),
        "tree_head": tree_head(ledger),
        "registry": {
            "digest": registry.digest.hex(),
            "threshold": registry.threshold,
            "nodes": [{"node": n.hex(), "public_key": k.hex()} for n, k in registry.members.items()],
        },
        "kinds": _kinds(session),
        "model_versions": _versions(session),
        "anchors": len(anchors),
        "restorations": len(restorations),
        "unreadable": list(index.unreadable),
        "records": [_row(i) for i in items[:MAX_LISTED]],
        "unlisted": max(0, len(items) - MAX_LISTED),
    }
