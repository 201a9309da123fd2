"""How a record is named in messages: from what its own fields say of where it came from (file and
DICOM identifiers only where an older record holds them in clear; slice, format and modality; the
keyed instance link's Series and SOP digests, shortened, where it has one)."""

from __future__ import annotations

from prosima.provenance.records import AnchorRecord, RestorationRecord

_UIDS = (("SeriesInstanceUID", "series"), ("SOPInstanceUID", "instance"))
_LINKS = (("series", "series link"), ("sop", "instance link"), ("file", "file link"))


def record_name(record: AnchorRecord | RestorationRecord) -> str:
    """``file slice 3 (nifti, MR)``-like words for an anchor; ``restoration of tx ...`` otherwise."""
    if isinstance(record, RestorationRecord):
        return f"restoration of original {record.original[:16]} by {record.model_name}"
    src = record.source
    parts = [src["file"]] if src.get("file") else []
    if "slice" in src:
        parts.append(f"slice {src['slice']}")
    words = [w for w in (src.get("format"), src.get("modality")) if w]
    ids = [f"{label} {src[key]}" for key, label in _UIDS if src.get(key)]
    link = getattr(record, "link", None) or {}
    ids += [f"{label} {link[key][:12]}" for key, label in _LINKS if link.get(key) and not src.get("file")]
    name = " ".join(parts) or "anchored image"
    detail = ", ".join(words + ids)
    return f"{name} ({detail})" if detail else name
