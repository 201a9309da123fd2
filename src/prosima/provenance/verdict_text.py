"""What ``prosima verify`` prints: a verdict as lines a person can read, that never contradict one
another (an exact match that fails a check says so in one sentence; a changed image is never
called faithful without saying which shards changed) and that name the matched record and the
thresholds applied."""

from __future__ import annotations

from typing import Any

from prosima.provenance.semantic import BACKGROUND_COSINE
from prosima.provenance.verify import Verdict

SHOWN = 5  # records listed when several hold the same pixels


def _named(rec: dict[str, Any]) -> str:
    return f"{rec.get('name', rec.get('kind', 'record'))}, tx {rec['tx']}"


def _head(v: Verdict) -> str:
    reasons = "; ".join(v.reasons)
    if v.status == "anchored-original":
        name = _named(v.record or {})
        if v.binding is not None:
            name += f"; a constant slice, every pixel {v.constant:g}, bound by its place in this volume"
        return (
            f"VERIFIED EXACT: an anchored original ({name})"
            if v.ok
            else (f"EXACT pixels of an anchored original ({name}), but NOT VERIFIED: {reasons}")
        )
    if v.status == "recorded-restoration":
        if v.ok:
            return (
                "VERIFIED EXACT: the recorded output of a restoration, faithful to its anchored original, "
                "by an anchored model"
            )
        return f"EXACT pixels of a recorded restoration, but NOT VERIFIED: {reasons}"
    n = v.nearest or {}
    if v.status == "tampered":
        return (
            f"NOT VERIFIED CHANGED: shares shards with a record ({_named(n)}), others differ: "
            f"{len(v.differing_shards)} shards changed, the other {n.get('shared')} are its exact pixels"
        )
    if v.status == "changed":
        return (
            f"NOT VERIFIED CHANGED: no shard matches any record; it resembles the anchored original "
            f"{_named(n)}"
        )
    if v.status == "constant":
        return (
            f"NOT VERIFIED CONSTANT IMAGE: every pixel is {v.constant:g}; {len(v.same_pixels)} records "
            "share these pixels, and a constant image carries nothing to tell them apart"
        )
    return "NOT VERIFIED UNKNOWN: nothing on the ledger resembles it confidently"


def _record_line(v: Verdict) -> list[str]:
    if not v.record:
        return []
    b = v.block or {}
    lines = [
        f"  record {v.record['tx']} ({v.record.get('name', v.record.get('kind'))}) height "
        f"{v.record['height']}; inclusion proof {'ok' if v.proof and v.proof['ok'] else 'FAILED'}; "
        f"quorum {b.get('signatures')}/{b.get('nodes')} (threshold {b.get('threshold')}) "
        f"{'ok' if b.get('quorum_ok') else 'FAILED'}"
    ]
    if v.record.get("original"):
        lines.append(f"  original {v.record['original']} ({v.record.get('original_name', 'anchor')})")
    return lines


def _same_pixels(v: Verdict) -> list[str]:
    if len(v.same_pixels) < 2:
        return []
    listed = "; ".join(_named(r) for r in v.same_pixels[:SHOWN])
    more = f" and {len(v.same_pixels) - SHOWN} more" if len(v.same_pixels) > SHOWN else ""
    return [f"  {len(v.same_pixels)} records hold these exact pixels: {listed}{more}"]


def _nearest_lines(v: Verdict) -> list[str]:
    n = v.nearest
    if not n:
        return []
    sim = n.get("similarity")
    score = "" if sim is None else f", similarity {sim:.3f}"
    if n.get("margin") is not None:
        score += f", margin {n['margin']:.4f} over the runner-up"
    rule = n.get("rule")
    if rule and n.get("confident") is False:
        score += (
            f" (not a confident match: restore's rule needs similarity {rule['min_similarity']} and a "
            f"margin of the larger of {rule['min_margin']} and {rule['margin_scale']} x (1 - similarity))"
        )
    lines = [
        f"  nearest record {n['tx']} ({n.get('name', n['kind'])}; {n['kind']}, by {n['method']}, "
        f"{n['shared']} shards shared){score}"
    ]
    if v.status in ("tampered", "changed"):
        lines.append(f"  differing shards: {v.differing_shards}")
    return lines


def _skipped(f: dict[str, Any]) -> str:
    if not f["background"]:
        return "no shard skipped as background"
    return (
        f"skipped as background: {f['background']} (the original's shard fingerprint is within "
        f"cosine {BACKGROUND_COSINE} of a blank shard's)"
    )


def _semantic_lines(v: Verdict) -> list[str]:
    f = v.faithfulness
    if f is None or v.shard_cosines is None:
        return []
    cos = v.shard_cosines
    if v.status == "tampered":
        changed = ", ".join(f"{i}: {cos[i]:.3f}" for i in v.differing_shards)
        kept = [i for i in v.differing_shards if cos[i] >= f["threshold"] or i in f["background"]]
        meaning = (
            "their meaning is close to the original's"
            if len(kept) == len(v.differing_shards)
            else f"shards {sorted(set(v.differing_shards) - set(kept))} also change in meaning"
        )
        return [
            f"  semantic: the change is localised to shards {v.differing_shards} (cosine to the original "
            f"{changed}; threshold {f['threshold']}: {meaning}); every other shard is the record's "
            "exact pixels"
        ]
    if not f["judged"]:
        return [f"  semantic: nothing judged, every shard of the original is background; {_skipped(f)}"]
    verdict = "faithful" if not f["unfaithful"] else f"NOT faithful in shards {f['unfaithful']}"
    if v.status == "changed":
        verdict = "faithful in meaning (no pixel of it is recorded)" if not f["unfaithful"] else verdict
    return [
        f"  semantic: judged the {len(f['judged'])} shards with anatomy in the original, min cosine "
        f"{f['min_judged_cosine']:.3f} against threshold {f['threshold']}: {verdict}; {_skipped(f)}"
    ]


def _model_line(v: Verdict) -> list[str]:
    if not v.model:
        return []
    state = "anchored" if v.model["anchored"] else "NOT anchored"
    return [f"  model {v.model['name']} {v.model['digest'][:16]}: {state}"]


def verdict_lines(v: Verdict) -> list[str]:
    """Every line ``prosima verify`` prints for one 2-D image."""
    lines = [_head(v), *_record_line(v), *_same_pixels(v), *_nearest_lines(v), *_semantic_lines(v)]
    lines += _model_line(v)
    if v.binding is not None:
        lines.append(f"  bound: {v.binding['reason']}")
    if v.status not in ("anchored-original", "recorded-restoration", "constant"):
        lines += [f"  - {r}" for r in v.reasons]
    return lines


def slice_line(z: int, v: Verdict) -> str:
    """One line for a slice of a volume that did not verify."""
    rec = v.record or v.nearest
    named = f" ({_named(rec)})" if rec else ""
    why = "; ".join(v.reasons) or f"differing shards {v.differing_shards}"
    return f"  slice {z}: {v.status}{named}; {why}"
