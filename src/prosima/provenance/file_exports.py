"""What ``prosima verify`` and ``prosima restore`` export about the very file they verified or wrote,
assembled from the ledger's records: W3C PROV-JSON, an in-toto statement in a DSSE envelope signed by
the ledger's local node, and the C2PA manifest signed into a restored PNG.

Files are named by their pixel digest and the SHA-256 of their bytes, never by their file name
(which may name a patient).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prosima.provenance.context import Provenance
from prosima.provenance.dsse import sign_statement
from prosima.provenance.exports import (
    C2PA_LABEL,
    ExportError,
    Tx,
    Verified,
    embed_c2pa,
    intoto_statement,
    prov_document,
)
from prosima.provenance.index import Indexed, Record
from prosima.provenance.records import AnchorRecord, RestorationRecord

if TYPE_CHECKING:  # importing model_versions at run time would pull in torch
    from prosima.provenance.model_versions import ModelVersion

# the positional arguments of prov_document / intoto_statement
Records = tuple[AnchorRecord, Tx, RestorationRecord | None, Tx | None, "ModelVersion | None"]


def _records(prov: Provenance, item: Indexed[Record]) -> Records:
    """(anchor, anchor tx, restoration, restoration tx, anchored model version) of a record."""
    if isinstance(item.record, AnchorRecord):
        return item.record, item.tx_info(), None, None, None
    from prosima.provenance.model_versions import ModelVersion, find_versions

    original = prov.index.anchor(item.record.original)
    good = [v for v in find_versions(prov.ledger, item.record.model) if v["proof_ok"]]
    model = ModelVersion(**good[0]["version"]) if good else None
    return original.record, original.tx_info(), item.record, item.tx_info(), model


def verified_image(verdict: Any, item: Indexed[Record], data: bytes) -> Verified:
    """The verified file (its ``data``) as :class:`Verified` against the record ``item`` its verdict
    names (the exact match, or the nearest)."""
    record = item.record
    image = record.pixels if isinstance(record, AnchorRecord) else record.output_pixels
    return Verified(
        pixels=verdict.pixels,
        status=verdict.status,
        ok=bool(verdict.ok),
        record_pixels=image,
        differing_shards=tuple(int(i) for i in verdict.differing_shards),
        file_sha256=hashlib.sha256(data).hexdigest(),
    )


def verify_exports(
    prov: Provenance, verdict: Any, image: str | Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The PROV-JSON document and the in-toto statement of a verification of the file ``image``:
    the record it matched (or the nearest) and the verified image with its relation to it."""
    nearest = verdict.nearest or {}
    tx = (verdict.record or {}).get("tx") or (nearest.get("tx") if nearest.get("confident", True) else None)
    if tx is None:
        raise ExportError(
            "no record to export: the image matches no record on the ledger confidently (nothing is "
            "claimed about its origin, so --prov and --intoto write nothing)"
        )
    item = prov.index.refresh().by_tx[tx]
    records = _records(prov, item)
    verified = verified_image(verdict, item, Path(image).read_bytes())
    return prov_document(*records, verified=verified), intoto_statement(*records, verified=verified)


def signed(prov: Provenance, statement: dict[str, Any]) -> dict[str, Any]:
    """``statement`` in a DSSE envelope signed by the ledger's local node (keyid: its node id)."""
    if not prov.ledger.keys:
        raise ExportError(
            "an in-toto statement is signed (DSSE) with a node key of this ledger, and its keys/ folder "
            "holds none; export from a copy of the ledger that has one"
        )
    return sign_statement(statement, prov.ledger.local)


def restoration_statement(prov: Provenance, tx: str, written: str | Path | None = None) -> dict[str, Any]:
    """The in-toto statement of restoration ``tx``; with ``written`` (the output file as it is now)
    its subject also carries that file's SHA-256."""
    item = prov.index.refresh().by_tx[tx]
    data = None if written is None else Path(written).read_bytes()
    return intoto_statement(*_records(prov, item), subject_file=data)


def sign_restoration_c2pa(
    prov: Provenance, tx: str, png: str | Path, out: str | Path, parent: str | Path, cert_dir: str | Path
) -> dict[str, Any]:
    """Sign a C2PA manifest of restoration ``tx`` into ``out``, a copy of the PNG ``png`` it wrote:
    ``c2pa.edited`` of ``parent`` (the restored input, a ``parentOf`` ingredient), dated by the
    transaction's time, carrying the restoration's in-toto statement (whose subject has no file
    SHA-256: the manifest changes the file's bytes, and its own hard binding covers them). Returns
    the manifest store read back."""
    item = prov.index.refresh().by_tx[tx]
    when = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=item.time_us)
    records = _records(prov, item)
    record = records[2]
    if record is None:
        raise ExportError(f"transaction {tx} is an anchor, not a restoration: no C2PA manifest to sign")
    statement = intoto_statement(*records)
    return embed_c2pa(
        png,
        out,
        {C2PA_LABEL: statement},
        cert_dir,
        parent=parent,
        when=when,
        description=(
            f"Restored by {record.model_name} (weights {record.model[:16]}) conditioned on the "
            f"anchored record {record.original}; ledger transaction {tx}"
        ),
    )
