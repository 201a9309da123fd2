"""Verification: is this image exactly on the ledger, and if not, what changed?

For an image it answers, each with evidence a third party can check offline:

1. Exact match: its pixel digest is the key of an anchor or of a restoration's output; the
   transaction's inclusion proof against a signed tree head, and its block's quorum certificate.
   When several records hold these pixels, how many (and which) is said.
2. Tamper localisation: otherwise, the record sharing most shard digests that no other record
   holds (its likely original) and the shards that differ; with none such, the anchor the matching
   rule of ``restore`` accepts (``matching.MatchRule``), or one that holds exact shards of the image
   and leads every other anchor by the rule's margin; else none.
3. Semantic faithfulness (``semantic.judge``): per-shard cosine between its fingerprint and the
   anchored original's, against ``FAITHFUL_COSINE``, in the shards where the original has anatomy;
   the original's background shards are listed as skipped, failing shards named.
4. The model version that made a restoration, and whether that version is anchored.

A constant image (every pixel one value) carries no information: it is reported as such, with the
number of records holding exactly those pixels, and never as a match to one of them. Only inside a
volume can its place say which it is (``volume_verify``: a blank slice bound by its recorded slice
index and instance link, in a volume whose other slices are its anchored originals at their places).

``ok`` (exit status 0) only for these exact pixels: an anchored original, or the recorded output of a
restoration whose model version is anchored and whose fingerprints are faithful to its original.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from prosima.imaging.io import LoadedImage
from prosima.ledger.errors import LedgerError
from prosima.ledger.log.proof import check_document
from prosima.ledger.log.quorum import QuorumCertificate
from prosima.models.fingerprint import Fingerprint
from prosima.provenance.context import Provenance, recorded_range
from prosima.provenance.index import Indexed, Record
from prosima.provenance.intensity import model_range, to_model
from prosima.provenance.match_rule import MatchRule
from prosima.provenance.matching import constant_value, match_original
from prosima.provenance.model_versions import find_versions
from prosima.provenance.naming import record_name
from prosima.provenance.pixels import differing_shards, pixel_digest, shard_digests
from prosima.provenance.records import AnchorRecord, RestorationRecord
from prosima.provenance.restore import is_fixed_range
from prosima.provenance.semantic import FAITHFUL_COSINE, Faithfulness, judge, shard_cosines


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
    faithfulness: dict[str, Any] | None = None
    model: dict[str, Any] | None = None
    same_pixels: list[dict[str, Any]] = field(default_factory=list)
    constant: float | None = None
    binding: dict[str, Any] | None = None  # a constant slice verified by its place in its volume
    reasons: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"shape": list(self.shape)}

    def judged(self, result: Faithfulness, cosines: np.ndarray) -> None:
        """Record a faithfulness judgement and its cosines."""
        self.shard_cosines = [float(c) for c in cosines]
        self.unfaithful_shards = list(result.unfaithful)
        self.threshold = result.threshold
        self.faithfulness = result.to_json()


def _evidence(prov: Provenance, item: Indexed[Record]) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
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
        query = prov.fingerprint(unit, original.k)
    return shard_cosines(query, prov.anchored_fingerprint(original))


def _faithfulness(
    prov: Provenance, unit: np.ndarray, original: AnchorRecord
) -> tuple[Faithfulness, np.ndarray]:
    cos = _cosines(prov, unit, original)
    return judge(cos, prov.background(original)), cos


def _original_of(prov: Provenance, item: Indexed[Record]) -> AnchorRecord:
    if isinstance(item.record, AnchorRecord):
        return item.record
    return prov.index.anchor(item.record.original).record


def _record_range(record: RestorationRecord, fallback: tuple[float, float]) -> tuple[float, float]:
    """The range a restoration was written with (its ``range`` param), else ``fallback``."""
    try:
        lo, hi = (float(v) for v in record.params.get("range", "").split(","))
    except ValueError:
        return fallback
    return (lo, hi) if np.isfinite([lo, hi]).all() and hi > lo else fallback


def _range_of(item: Indexed[Record], fallback: tuple[float, float]) -> tuple[float, float]:
    """The range the image of ``item``'s record was anchored or restored in, else ``fallback``."""
    if isinstance(item.record, AnchorRecord):
        return recorded_range(item.record) or fallback
    return _record_range(item.record, fallback)


def _described(item: Indexed[Record]) -> dict[str, Any]:
    return {"kind": item.kind, "name": record_name(item.record), **item.tx_info()}


def attest(prov: Provenance, verdict: Verdict, item: Indexed[Record]) -> dict[str, Any]:
    """Give ``verdict`` record ``item`` (returned as reported) with its checked evidence (inclusion
    proof, quorum certificate); problems found in that evidence are added to its reasons."""
    record = _described(item) | item.record.to_json()
    verdict.record = record
    verdict.proof, verdict.block, problems = _evidence(prov, item)
    verdict.reasons += problems
    return record


def _unfaithful_reason(result: Faithfulness) -> str | None:
    if not result.judged:
        return "faithfulness cannot be judged: every shard of the original is background"
    if result.unfaithful:
        return (
            f"shards {result.unfaithful} fall below cosine {result.threshold} against the original "
            f"(judged: the {len(result.judged)} shards with anatomy in it)"
        )
    return None


def verify_array(
    prov: Provenance,
    array: np.ndarray,
    value_range: tuple[float, float],
    *,
    fixed_range: bool = False,
    rule: MatchRule | None = None,
) -> Verdict:
    """Verify one 2-D image given as stored values and the range mapping them to [0, 1]
    (``fixed_range``: that range is fixed by the file's type, as for 8- and 16-bit PNG)."""
    if array.ndim != 2:
        raise ValueError(f"verify takes one 2-D image, got shape {array.shape}")
    digest = pixel_digest(array).hex()
    verdict = Verdict(False, "unknown", digest, tuple(int(n) for n in array.shape))
    unit = to_model(array, value_range)
    index = prov.index.refresh()
    exact = [index.by_tx[tx] for tx in index.by_pixels.get(digest, [])]  # from the records' own bytes
    value = constant_value(array)
    if len(exact) > 1 or value is not None:
        verdict.same_pixels = [_described(i) for i in exact]
    if value is not None:
        verdict.status = "constant"
        verdict.constant = value
        verdict.reasons.append(
            f"constant image (every pixel {value:g}): {len(exact)} records share these pixels; a constant "
            "image carries no information, so it is not taken for any one of them"
        )
        return verdict
    if exact:
        item = next((i for i in exact if i.kind == "anchor"), exact[0])
        record = attest(prov, verdict, item)
        if isinstance(item.record, AnchorRecord):
            verdict.status = "anchored-original"
        else:
            verdict.status = "recorded-restoration"
            verdict.model, reasons = _model(prov, item.record)
            verdict.reasons += reasons
            try:
                own = to_model(array, _record_range(item.record, value_range))
                original = _original_of(prov, item)
                record["original_name"] = record_name(original)
                result, cos = _faithfulness(prov, own, original)
                verdict.judged(result, cos)
                if (why := _unfaithful_reason(result)) is not None:
                    verdict.reasons.append(why)
            except (LedgerError, KeyError) as exc:
                verdict.reasons.append(f"original {item.record.original}: {exc}")
        verdict.ok = not verdict.reasons
        return verdict
    verdict.status = "not-on-ledger"
    verdict.reasons.append("these exact pixels are not on the ledger")
    _, shards = shard_digests(array, prov.k)
    sharing = [c for c in index.sharing_shards([s.hex() for s in shards]) if c[2] > 0]
    nearest: Indexed[Record] | None = None
    scaled = unit
    if sharing:
        nearest, shared, unique = sharing[0]
        method = "shared-shards"
        verdict.status = "tampered"
        extra: dict[str, Any] = {}
        if not fixed_range:  # compare in the scaling its record was made with
            scaled = to_model(array, _range_of(nearest, value_range))
    else:
        found = match_original(prov, array, value_range, fixed_range=fixed_range, rule=rule or MatchRule())
        if found.best is None:
            verdict.reasons.append(f"no anchored image of shape {verdict.shape} on this ledger")
            return verdict
        best = found.best
        extra = {
            "confident": found.accepted,
            "similarity": best.similarity,
            "margin": found.margin,
            "rule": found.rule.to_json(),
            "candidates": [c.to_json() for c in found.ranked[:3]],
        }
        shared = sum(a.hex() == b for a, b in zip(shards, best.item.shard_pixels, strict=True))
        unique, method = 0, "semantic"
        decisive = found.margin is None or found.margin >= found.rule.required_margin(best.similarity)
        if shared and decisive and not found.accepted:
            # it holds exact shards of the best anchor (shards other records hold too, as blank
            # background is) and no other anchor comes near: a tamper of that anchor, localised
            method, verdict.status = "shared-shards+semantic", "tampered"
        elif not found.accepted:
            verdict.nearest = {
                "method": method,
                "shared": shared,
                "unique": 0,
                **_described(best.item),
                **extra,
            }
            verdict.reasons.append(f"no confident match on the ledger: {found.reason}")
            return verdict
        nearest = best.item
        scaled = to_model(array, best.value_range)
        if verdict.status != "tampered":
            verdict.status = "changed"
    verdict.differing_shards = differing_shards(shards, [bytes.fromhex(s) for s in nearest.shard_pixels])
    verdict.nearest = {"method": method, "shared": shared, "unique": unique, **_described(nearest), **extra}
    try:
        result, cos = _faithfulness(prov, scaled, _original_of(prov, nearest))
        verdict.judged(result, cos)
        verdict.nearest.setdefault("similarity", float(np.mean(cos)))
        verdict.nearest["semantically_faithful"] = result.faithful
    except (LedgerError, KeyError) as exc:
        verdict.reasons.append(f"nearest record {nearest.tx}: {exc}")
    verdict.reasons.append(f"shards {verdict.differing_shards} differ from record {nearest.tx}")
    return verdict


def verify_loaded(prov: Provenance, loaded: LoadedImage) -> Verdict:
    """Verify a loaded 2-D image file."""
    return verify_array(prov, loaded.array, model_range(loaded), fixed_range=is_fixed_range(loaded))
