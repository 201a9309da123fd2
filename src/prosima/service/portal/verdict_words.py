"""A verification's verdict in plain words, from the service's JSON answer (``verified_answer``):
the headline (exact original / faithful restoration by model X version Y / changed, shards
named), the sentence beneath it, and the heatmap's alternative text. Statuses are those of
``prosima.provenance.verify``; the words never call an image verified when ``ok`` is false."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prosima.service.portal.pages import iso, number, shards, short


@dataclass(frozen=True)
class Headline:
    """``tone``: ``ok`` (verified) or ``bad``; ``title`` in a few words; ``sentence`` says why."""

    tone: str
    title: str
    sentence: str


def model_label(model: dict[str, Any]) -> str:
    """``prosima-full version cd9d104c2bad`` (with its training round when a version records one)."""
    rounds = [v["round"] for v in model.get("versions", []) if v.get("round") is not None]
    label = f"{model.get('name') or 'unnamed model'} version {short(model.get('digest'), 12)}"
    return f"{label} (round {rounds[-1]})" if rounds else label


def _record_words(record: dict[str, Any]) -> str:
    return (
        f"“{record.get('name') or record.get('kind', 'record')}” (record {short(record['tx'])}, block "
        f"{record['height']}, {iso(record.get('time_us'))})"
    )


def _failed(verdict: dict[str, Any]) -> str:
    return "; ".join(verdict.get("reasons") or ["a check failed"])


def _restoration(verdict: dict[str, Any]) -> Headline:
    model = verdict.get("model") or {}
    label = model_label(model)
    record = verdict.get("record") or {}
    original = record.get("original_name") or f"record {short(record.get('original'))}"
    if not verdict["ok"]:
        return Headline(
            "bad",
            "Exact pixels of a restoration, but not verified",
            f"These pixels are the recorded output of a restoration by model {label}, but a check "
            f"failed: {_failed(verdict)}.",
        )
    judged = verdict.get("faithfulness") or {}
    return Headline(
        "ok",
        f"Faithful restoration by model {label}",
        f"This image is exactly the recorded output of a restoration of the anchored original "
        f"{original} by model {label}, which is anchored on this ledger; each of the "
        f"{len(judged.get('judged', []))} shards with anatomy stays faithful to the original (lowest "
        f"cosine {number(judged.get('min_judged_cosine'))}, threshold {number(judged.get('threshold'), 2)}).",
    )


def _meaning(verdict: dict[str, Any]) -> str:
    judged = verdict.get("faithfulness")
    if judged is None:
        return ""
    unfaithful = verdict.get("unfaithful_shards") or []
    if unfaithful:
        return (
            f" In meaning, {shards(unfaithful)} fall below cosine {number(judged.get('threshold'), 2)} "
            "against the original: the change alters what the image shows there."
        )
    return " In meaning the image stays close to the original (every judged shard reaches the threshold)."


def _changed(verdict: dict[str, Any]) -> Headline:
    near = verdict.get("nearest") or {}
    differing = verdict.get("differing_shards") or []
    if verdict["status"] == "tampered":
        where = (
            f"It shares {near.get('shared')} shards exactly with {_record_words(near)}; "
            f"{shards(differing)} differ from it."
        )
    else:
        where = (
            f"No shard of it is recorded; it most resembles {_record_words(near)} (similarity "
            f"{number(near.get('similarity'))}), from which {shards(differing)} differ."
        )
    return Headline(
        "bad",
        f"Changed: {shards(differing)} differ",
        f"These exact pixels are not on the ledger. {where}{_meaning(verdict)}",
    )


def headline(verdict: dict[str, Any]) -> Headline:
    """The headline of a 2-D image's verdict."""
    status = verdict["status"]
    if status == "anchored-original":
        record = verdict.get("record") or {}
        if verdict["ok"]:
            return Headline(
                "ok",
                "Exact original",
                f"Every pixel of this image is that of the anchored original {_record_words(record)}.",
            )
        return Headline(
            "bad",
            "Exact pixels of an original, but not verified",
            f"These pixels are those of the anchored original {_record_words(record)}, but a check failed: "
            f"{_failed(verdict)}.",
        )
    if status == "recorded-restoration":
        return _restoration(verdict)
    if status in ("tampered", "changed"):
        return _changed(verdict)
    if status == "constant":
        return Headline(
            "bad",
            "Constant image",
            f"Every pixel is {verdict.get('constant')}: {len(verdict.get('same_pixels') or [])} records "
            "share these pixels, and a constant image carries nothing that tells them apart.",
        )
    return Headline(
        "bad",
        "Not on this ledger",
        f"Nothing on this ledger matches it or confidently resembles it: {_failed(verdict)}.",
    )


def volume_headline(answer: dict[str, Any]) -> Headline:
    """The headline of a volume's verdict: how many slices verified."""
    slices = answer.get("slices") or []
    verified = sum(bool(s.get("ok")) for s in slices)
    if slices and verified == len(slices):
        return Headline(
            "ok",
            f"All {len(slices)} slices verified",
            "Every slice is an exact anchored original or a faithful restoration.",
        )
    return Headline(
        "bad",
        f"{verified} of {len(slices)} slices verified",
        "The slices that did not verify are listed below with what was found for each.",
    )


def heatmap_text(verdict: dict[str, Any]) -> str:
    """The heatmap's alternative text: which shards are shaded and what the numbers are."""
    differing = verdict.get("differing_shards") or []
    marked = (
        f"{shards(differing)} shaded red, their pixels differ from the record"
        if differing
        else "no shard shaded, no pixel differs from the record"
    )
    cosines = verdict.get("shard_cosines")
    labels = (
        "; each shard is labelled with its fingerprint cosine to the anchored original" if cosines else ""
    )
    return f"Tamper heatmap of the verified image cut into its shards: {marked}{labels}."
