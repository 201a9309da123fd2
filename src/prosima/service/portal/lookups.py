"""What the portal's ledger pages read from the service's open session, as JSON-ready data: a page
of blocks, one block with its quorum checked, one record with its chain, restorations, inclusion
proof and quorum, and a search by record id, keyed UID or image digest. Every function runs on the
ledger thread (``LedgerWorker.call``) and reuses the decoded reads the routes answer with
(``app.ledger_queries``, ``app.record_reads``)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from prosima.app.ledger_queries import BlockView, block_view, find_transaction, inclusion_proof
from prosima.app.record_reads import indexed_json, record_view, records_by_digest
from prosima.errors import InputError
from prosima.ledger.log.proof import check_document
from prosima.ledger.log.quorum import QuorumCertificate
from prosima.pacs.orthanc_client import is_dicom_uid
from prosima.provenance.naming import record_name
from prosima.provenance.records import RestorationRecord
from prosima.service.errors import NotFound

if TYPE_CHECKING:
    from prosima.app.session import Session

BLOCKS_PER_PAGE = 20
HEX_ID = re.compile(r"[0-9a-fA-F]{64}")
SEARCH_KINDS = {
    "auto": "anything (guessed from its form)",
    "record": "record id",
    "digest": "image digest",
    "sop_uid": "SOP Instance UID",
    "series_uid": "Series Instance UID",
    "study_uid": "Study Instance UID",
}
MAX_QUERY = 128


def quorum_check(session: Session, height: int) -> dict[str, Any]:
    """Whether block ``height``'s quorum certificate holds against the ledger's registry."""
    ledger = session.provenance.ledger
    raw = next(ledger.store.raw_blocks(height, height + 1))
    fault = QuorumCertificate.decode(raw.qc).check(raw.header, ledger.registry)
    return {
        "height": height,
        "quorum_ok": fault is None,
        "quorum_problem": None if fault is None else fault[1],
        "threshold": ledger.registry.threshold,
        "nodes": len(ledger.registry),
    }


def block_page(session: Session, height: int) -> dict[str, Any]:
    """Block ``height`` decoded (header, certificate, transactions) with its quorum checked."""
    view = block_view(session.provenance.ledger, height).to_json()
    tip = session.provenance.ledger.store.height
    check = quorum_check(session, height) | {"quorum_certificate": view["quorum"]}
    return view | {"check": check, "tip": tip}


def block_list(session: Session, page: int) -> dict[str, Any]:
    """Page ``page`` (1: the newest) of the ledger's blocks, newest first: each header's height,
    time, hash, proposer and its transactions' kinds."""
    ledger = session.provenance.ledger
    tip = ledger.store.height
    pages = max(1, -(-(tip + 1) // BLOCKS_PER_PAGE))
    if not 1 <= page <= pages:
        raise NotFound(f"no page {page} of blocks: the ledger has {pages}")
    top = tip - (page - 1) * BLOCKS_PER_PAGE
    bottom = max(-1, top - BLOCKS_PER_PAGE)
    rows = []
    for height in range(top, bottom, -1):
        view = BlockView(ledger.store.block(height))
        kinds: dict[str, int] = {}
        for tx in view.block.txs:
            kinds[tx.kind] = kinds.get(tx.kind, 0) + 1
        rows.append({"header": view.header(), "kinds": kinds, "signatures": len(view.block.qc.signatures)})
    return {"blocks": rows, "page": page, "pages": pages, "tip": tip}


def _named(session: Session, item: dict[str, Any] | None) -> dict[str, Any] | None:
    """An indexed record's JSON with the words it is named by (``naming.record_name``)."""
    if item is None:
        return None
    found = session.provenance.index.by_tx.get(str(item.get("tx")))
    return item if found is None else item | {"name": record_name(found.record)}


def image_chain(session: Session, tx: str) -> dict[str, Any]:
    """The decoded record ``tx`` with what it stands on (its original, the model's versions), each
    image record named, and the restorations made from it."""
    view = record_view(session, tx)
    view["image_record"] = _named(session, view.get("image_record"))
    view["original"] = _named(session, view.get("original"))
    index = session.provenance.index
    view["restorations"] = [
        _named(session, indexed_json(item))
        for item in index.by_tx.values()
        if isinstance(item.record, RestorationRecord) and item.record.original == tx
    ]
    return view


def record_page(session: Session, tx: str) -> dict[str, Any]:
    """``image_chain`` plus the record's inclusion proof (checked against the ledger's own
    registry) and its block's quorum."""
    view = image_chain(session, tx)
    ledger = session.provenance.ledger
    document = inclusion_proof(ledger, tx)
    check = check_document(document, registry=ledger.registry)
    view["proof"] = {"ok": check.ok, "problems": check.problems, "document": document}
    height = int(view["height"])
    view["block"] = quorum_check(session, height) | {
        "quorum_certificate": block_view(ledger, height).block.qc.to_json()
    }
    return view


def _kind_of(query: str) -> str:
    if HEX_ID.fullmatch(query):
        return "record-or-digest"
    if "." in query and is_dicom_uid(query):  # a bare number is no UID worth searching
        return "sop_uid"
    raise InputError(
        "search for a record id or an image digest (64 hex digits) or a DICOM UID (digits and dots); "
        f"{query[:40]!r} is neither"
    )


def search(session: Session, by: str, query: str) -> dict[str, Any]:
    """The records ``query`` names, looked up ``by`` one of ``SEARCH_KINDS``: ``record`` (``goto``
    says which record page to show), ``digest`` (the records of an image's pixels), or a UID
    (hashed with the site key beside the ledger: the keyed link, never a UID in clear)."""
    query = query.strip()
    if by not in SEARCH_KINDS:
        raise InputError(f"search by one of {', '.join(SEARCH_KINDS)}, not {by[:40]!r}")
    if not query:
        raise InputError("type what to search for: a record id, an image digest or a DICOM UID")
    if len(query) > MAX_QUERY:
        raise InputError(f"a search is at most {MAX_QUERY} characters")
    if by == "auto":
        by = _kind_of(query)
    if by in ("record", "record-or-digest"):
        try:
            find_transaction(session.provenance.ledger, query)
        except NotFound:
            if by == "record":
                raise
            by = "digest"
        else:
            return {"goto": query.lower()}
    if by == "digest":
        result = records_by_digest(session, query)
        rows = [_named(session, r) for r in result["records"]]
        return {"by": by, "what": f"image digest {query.lower()}", "records": rows}
    search_result = session.find_records(
        sop_uid=query if by == "sop_uid" else None,
        series_uid=query if by == "series_uid" else None,
        study_uid=query if by == "study_uid" else None,
    )
    index = session.provenance.index
    rows = [
        _named(session, indexed_json(index.by_tx[r.tx])) for r in search_result.records if r.tx in index.by_tx
    ]
    return {
        "by": by,
        "what": search_result.what,
        "records": rows,
        "unlinked": search_result.unlinked,
        "other_key": search_result.other_key,
    }
