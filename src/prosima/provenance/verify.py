"""Verification: is this image exactly on the ledger, and if not, what changed?

For an image it answers, each with evidence a third party can check offline:

1. Exact match: its pixel digest is the key of an anchor or of a restoration's output; the
   transaction's inclusion proof against a signed tree head, and its block's quorum certificate.
2. Tamper localisation: otherwise, the record sharing most shard digests with it (its likely
   original) and the shards that differ; with none shared, the semantically nearest anchor.
3. Semantic faithfulness: per-shard cosine between its fingerprint and the anchored original's,
   against ``FAITHFUL_COSINE``, failing shards named.
4. The model version that made a restoration, and whether that version is anchored.

``ok`` (exit status 0) only for these exact pixels: an anchored original, or the recorded output of a
restoration whose model version is anchored and whose fingerprints are faithful to its original.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from prosima.imaging.io import LoadedImage, read_volume
from prosima.ledger.errors import LedgerError
from prosima.ledger.proof import check_document
from prosima.ledger.quorum import QuorumCertificate
from prosima.models.fingerprint import Fingerprint, compute_fingerprints
from prosima.provenance.context import Provenance
from prosima.provenance.index import Indexed
from prosima.provenance.intensity import model_range, to_model
from prosima.provenance.model_versions import find_versions
from prosima.provenance.pixels import differing_shards, pixel_digest, shard_digests
from prosima.provenance.records import AnchorRecord, RestorationRecord
from prosima.provenance.semantic import FAITHFUL_COSINE, shard_cosines, unfaithful_shards


@dataclass
class Verdict:
    """What verification found; ``to_json`` is the machine-readable report."""

    ok: bool
    status: str
    pixels: str
    shape: tuple[int, ...]
    record: dict[str, Any] | None = None
    proof: dict[str, Any] | None = None
    block: dict[str, Any] | None = None
    nearest: dict[str, Any] | None = None
    differing_shards: list[int] = field(default_factory=list)
    shard_cosines: list[float] | None = None
    unfaithful_shards: list[int] = field(default_factory=list)
    threshold: float = FAITHFUL_COSINE
    model: dict[str, Any] | None = None
    reasons: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"shape": list(self.shape)}


def _evidence(prov: Provenance, item: Indexed) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """The inclusion proof (checked) and the block's quorum check for one transaction."""
    ledger = prov.ledger
    document = ledger.inclusion_proof(bytes.fromhex(item.tx))
    check = check_document(document, registry=ledger.registry)
    raw = next(ledger.store.raw_blocks(item.height, item.height + 1))
    qc = QuorumCertificate.decode(raw.qc)
    fault = qc.check(raw.header, ledger.registry)
    block = {
        "height": item.height,
        "quorum_ok": fault is None,
        "quorum_problem": None if fault is None else fault[1],
        # what a third party needs to re-check the quorum against the registry's public keys
        "header": raw.header.hex(),
        "quorum_certificate": qc.to_json(),
        "signatures": len(qc.signatures),
        "threshold": ledger.registry.threshold,
        "nodes": len(ledger.registry),
    }
    problems = [f"inclusion proof: {p}" for p in check.problems]
    if fault is not None:
        problems.append(f"block {item.height} quorum certificate: {fault[1]}")
    return {"ok": check.ok, "problems": check.problems, "document": document}, block, problems


def _model(prov: Provenance, record: RestorationRecord) -> tuple[dict[str, Any], list[str]]:
    versions = find_versions(prov.ledger, record.model)
    anchored = any(v["proof_ok"] for v in versions)
    info = {
        "digest": record.model,
        "name": record.model_name,
        "anchored": anchored,
        "versions": [
            {"tx": v["tx"], "height": v["height"], "round": v["version"].get("round")} for v in versions
        ],
    }
    reasons = (
        []
        if anchored
        else [f"model version {record.model} ({record.model_name}) is not anchored on this ledger"]
    )
    return info, reasons


def _cosines(
    prov: Provenance, unit: np.ndarray, original: AnchorRecord, query: Fingerprint | None = None
) -> np.ndarray:
    """Per-shard cosine of the image's fingerprint (``query`` when already computed) to the original's."""
    if query is None or query.k != original.k:
        query = compute_fingerprints(prov.encoder, unit, original.k)
    return shard_cosines(query, prov.anchored_fingerprint(original))


def _original_of(prov: Provenance, item: Indexed) -> AnchorRecord:
    if isinstance(item.record, AnchorRecord):
        return item.record
    return prov.index.anchor(item.record.original).record  # type: ignore[return-value]


def verify_array(prov: Provenance, array: np.ndarray, value_range: tuple[float, float]) -> Verdict:
    """Verify one 2-D image given as stored values and the range mapping them to [0, 1]."""
    if array.ndim != 2:
        raise ValueError(f"verify takes one 2-D image, got shape {array.shape}")
    digest = pixel_digest(array).hex()
    verdict = Verdict(False, "unknown", digest, tuple(int(n) for n in array.shape))
    unit = to_model(array, value_range)
    index = prov.index.refresh()
    exact = [index.by_tx[tx] for tx in index.by_pixels.get(digest, [])]  # from the records' own bytes
    if exact:
        item = next((i for i in exact if i.kind == "anchor"), exact[0])
        verdict.record = {"kind": item.kind, **item.tx_info(), **item.record.to_json()}
        verdict.proof, verdict.block, problems = _evidence(prov, item)
        verdict.reasons += problems
        if isinstance(item.record, AnchorRecord):
            verdict.status = "anchored-original"
        else:
            verdict.status = "recorded-restoration"
            verdict.model, reasons = _model(prov, item.record)
            verdict.reasons += reasons
            try:
                cos = _cosines(prov, unit, _original_of(prov, item))
                verdict.shard_cosines = [float(c) for c in cos]
                verdict.unfaithful_shards = unfaithful_shards(cos)
            except (LedgerError, KeyError) as exc:
                verdict.reasons.append(f"original {item.record.original}: {exc}")
            if verdict.unfaithful_shards:
                verdict.reasons.append(
                    f"shards {verdict.unfaithful_shards} fall below cosine {FAITHFUL_COSINE} "
                    "against the original"
                )
        verdict.ok = not verdict.reasons
        return verdict
    verdict.status = "not-on-ledger"
    verdict.reasons.append("these exact pixels are not on the ledger")
    _, shards = shard_digests(array, prov.k)
    sharing = [c for c in index.sharing_shards([s.hex() for s in shards]) if c[2] > 0]
    nearest: Indexed | None = None
    query: Fingerprint | None = None
    if sharing:
        nearest, shared, unique = sharing[0]
        method = "shared-shards"
        verdict.status = "tampered"
    else:
        query = compute_fingerprints(prov.encoder, unit, prov.k)
        best = prov.nearest_anchor(query)
        if best is not None:
            nearest = best[0]
            theirs = nearest.shard_pixels
            shared, unique = sum(a.hex() == b for a, b in zip(shards, theirs, strict=True)), 0
            method = "semantic"
            verdict.status = "changed"
    if nearest is not None:
        verdict.differing_shards = differing_shards(shards, [bytes.fromhex(s) for s in nearest.shard_pixels])
        verdict.nearest = {
            "method": method,
            "shared": shared,
            "unique": unique,
            "kind": nearest.kind,
            **nearest.tx_info(),
        }
    if nearest is not None:
        try:
            cos = _cosines(prov, unit, _original_of(prov, nearest), query)
            verdict.shard_cosines = [float(c) for c in cos]
            verdict.unfaithful_shards = unfaithful_shards(cos)
            verdict.nearest["similarity"] = float(np.mean(cos))  # type: ignore[index]
            verdict.nearest["semantically_faithful"] = not verdict.unfaithful_shards  # type: ignore[index]
        except (LedgerError, KeyError) as exc:
            verdict.reasons.append(f"nearest record {nearest.tx}: {exc}")
        verdict.reasons.append(f"shards {verdict.differing_shards} differ from record {nearest.tx}")
    else:
        verdict.reasons.append(f"no anchored image of shape {verdict.shape} on this ledger")
    return verdict


def verify_loaded(prov: Provenance, loaded: LoadedImage) -> Verdict:
    """Verify a loaded 2-D image file."""
    return verify_array(prov, loaded.array, model_range(loaded))


def verify_volume(prov: Provenance, path: str | Path) -> list[Verdict]:
    """Verify every slice of a NIfTI volume or DICOM series folder, scaled with the volume's one range
    (as anchoring and volume restoration scale it)."""
    loaded, axis = read_volume(path)
    value_range = model_range(loaded)
    return [verify_array(prov, plane, value_range) for plane in np.moveaxis(loaded.array, axis, 0)]
