"""The record chain behind an image: its acquisition (the anchored original), the restoration made
from it and the model version that made it, each step with its record on the ledger; built from
the decoded record view (``app.record_reads.record_view``), never from payload bytes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prosima.service.portal.pages import iso


@dataclass(frozen=True)
class ChainStep:
    """One step: ``role`` (acquisition, restoration, model version), what it was, and its record
    (``tx`` ``None``: the ledger holds no record of it, which ``ok`` false says is a gap)."""

    role: str
    title: str
    tx: str | None
    height: int | None
    time_iso: str
    ok: bool = True
    details: list[str] = field(default_factory=list)


def _image_step(role: str, item: dict[str, Any]) -> ChainStep:
    record = item.get("record") or {}
    details: list[str] = []
    if role == "acquisition":
        source = record.get("source") or {}
        shape = record.get("shape") or []
        details.append("x".join(str(n) for n in shape) + f" pixels in {record.get('k')} shards")
        details += [f"{key}: {value}" for key, value in sorted(source.items())]
    else:
        details.append(f"input pixels {record.get('input_pixels', '')[:16]}…")
        details.append(f"output pixels {record.get('output_pixels', '')[:16]}…")
        details += [f"{key}: {value}" for key, value in sorted((record.get("params") or {}).items())]
    name = item.get("name")
    title = name or (
        "anchored original" if role == "acquisition" else f"restored by {record.get('model_name')}"
    )
    return ChainStep(
        role,
        title,
        item.get("tx"),
        item.get("height"),
        item.get("time_iso") or iso(item.get("time_us")),
        True,
        details,
    )


def _model_steps(record: dict[str, Any], versions: list[dict[str, Any]]) -> list[ChainStep]:
    name = record.get("model_name") or "unnamed model"
    digest = str(record.get("model", ""))
    if not versions:
        return [
            ChainStep(
                "model version",
                f"{name} {digest[:12]}: not anchored on this ledger",
                None,
                None,
                "",
                False,
                [f"weights digest {digest}"],
            )
        ]
    steps = []
    for v in versions:
        version = v.get("version") or {}
        details = [f"weights digest {digest}", f"kind {version.get('kind', 'generator')}"]
        if version.get("round") is not None:
            details.append(f"training round {version['round']}")
        if not v.get("proof_ok", True):
            details += [f"inclusion proof: {p}" for p in v.get("proof_problems", [])]
        steps.append(
            ChainStep(
                "model version",
                f"{version.get('name') or name} version {digest[:12]}",
                v.get("tx"),
                v.get("height"),
                iso(v.get("time_us")),
                bool(v.get("proof_ok", True)),
                details,
            )
        )
    return steps


def record_chain(view: dict[str, Any]) -> list[ChainStep]:
    """Acquisition -> restoration -> model version for the image record in ``view`` (an anchor's
    chain is its acquisition alone); empty when the transaction holds no image record."""
    item = view.get("image_record")
    if not item:
        return []
    if item.get("kind") == "anchor":
        return [_image_step("acquisition", item)]
    record = item.get("record") or {}
    original = view.get("original")
    first = (
        _image_step("acquisition", original)
        if original
        else ChainStep(
            "acquisition",
            f"original {record.get('original')}: no anchor on this ledger",
            None,
            None,
            "",
            False,
        )
    )
    return [first, _image_step("restoration", item), *_model_steps(record, view.get("model_versions") or [])]
