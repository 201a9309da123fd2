"""What the verdict page shows, from the portal's verification answer (``verification``): the
headline in plain words, the heatmap as an inline image, the differing shards with their places,
the record chain, the inclusion proof and the quorum certificate, and how the record's keyed
instance link compares with the file (in words only: no identifier in clear)."""

from __future__ import annotations

from typing import Any

from prosima.service.portal.evidence import differing_shards, proof_summary, quorum_summary
from prosima.service.portal.record_chain import record_chain
from prosima.service.portal.verdict_words import headline, heatmap_text, volume_headline

_MATCH_WORDS = {
    "sop": "SOP Instance UID",
    "series": "Series Instance UID",
    "study": "Study Instance UID",
    "file": "file name",
}


def instance_words(link: dict[str, Any] | None) -> str | None:
    """How the record's instance link compares with the verified file's own identifiers."""
    if not link:
        return None
    whose = "The record" if link.get("linked_record") == link.get("record") else "The record's original"
    if not link.get("resolved"):
        return f"Which instance the record is of cannot be told here: {link.get('reason')}."
    matches = [_MATCH_WORDS.get(m, m) for m in link.get("matches") or []]
    if link.get("same_instance"):
        return f"{whose} is of this very instance (its keyed link matches this file's {', '.join(matches)})."
    if matches:
        return f"{whose} is of another instance that shares this file's {', '.join(matches)}."
    return f"{whose} is of another instance: none of this file's identifiers match its keyed link."


def verdict_context(answer: dict[str, Any]) -> dict[str, Any]:
    """The verdict template's context for one verification answer."""
    verdict = answer["verdict"]
    if "slices" in verdict:
        return {
            "file": answer["file"],
            "volume": True,
            "headline": volume_headline(verdict),
            "slices": verdict["slices"],
            "ok": verdict["ok"],
        }
    proof = verdict.get("proof")
    block = verdict.get("block")
    tx = (verdict.get("record") or verdict.get("nearest") or {}).get("tx")
    png = answer.get("heatmap_png")
    return {
        "file": answer["file"],
        "volume": False,
        "ok": verdict["ok"],
        "verdict": verdict,
        "headline": headline(verdict),
        "heatmap": f"data:image/png;base64,{png}" if png else None,
        "heatmap_text": heatmap_text(verdict),
        "shard_rows": differing_shards(verdict),
        "chain": record_chain(answer.get("chain") or {}),
        "exact": verdict.get("record") is not None,
        "tx": tx,
        "proof": proof_summary(proof["document"], proof["ok"], proof["problems"]) if proof else None,
        "quorum": quorum_summary(block) if block else None,
        "instance": instance_words(verdict.get("instance")),
        "reasons": verdict.get("reasons") or [],
    }
