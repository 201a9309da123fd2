"""Find the ledger's records of one image instance (its anchors and their restorations) by the keyed
link they carry: the given UID (or a file's UIDs, or its name) is hashed here with the site key kept
beside the ledger, on this machine, and compared; nothing given is sent anywhere or written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prosima.errors import InputError
from prosima.imaging.io import read_input
from prosima.ledger.log.directory import Ledger
from prosima.provenance.index import Indexed, RecordIndex
from prosima.provenance.records import AnchorRecord
from prosima.provenance.site_key import (
    FIELD_NAMES,
    SITE_KEY_FILE,
    SiteKey,
    instance_of,
    linked_records,
    most_specific,
)


@dataclass(frozen=True)
class FoundRecord:
    """One record of the instance: tx, height, kind, the slice (a restoration: its original's) and,
    for a restoration, its original's tx."""

    tx: str
    height: int
    kind: str
    slice: str | None
    original: str | None = None

    def to_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {"tx": self.tx, "height": self.height, "kind": self.kind, "slice": self.slice}
        return row if self.original is None else row | {"original": self.original}


@dataclass(frozen=True)
class RecordSearch:
    """The records found (ledger order) and how the instance is named here (``what``); when none
    were found, ``unlinked`` anchors carry no instance link (format v1) and ``other_key`` were linked
    with another site key: those cannot be matched here."""

    records: list[FoundRecord]
    what: str
    unlinked: int
    other_key: int

    @property
    def found(self) -> bool:
        return bool(self.records)

    def to_json(self) -> list[dict[str, Any]]:
        return [r.to_json() for r in self.records]


def _wanted(key: SiteKey, uids: dict[str, str | None], file: Path | None) -> tuple[dict[str, set[str]], str]:
    """The link digests to look for, and how the instance is named in messages here."""
    given = {n: v for n, v in uids.items() if v}
    if file is None:
        ((name, uid),) = given.items()
        return {name: {key.digest(name, uid)}}, f"{FIELD_NAMES[name]} {uid}"
    loaded, axis = read_input(file)
    slices = 1 if axis is None else loaded.array.shape[axis]
    wanted: dict[str, set[str]] = {}
    for i in range(slices):
        instance = instance_of(loaded, i)
        name = most_specific(instance)
        wanted.setdefault(name, set()).add(key.digest(name, instance[name]))
    return wanted, f"the file {file}"


def _found(item: Indexed[Any], index: RecordIndex) -> FoundRecord:
    record = item.record
    if isinstance(record, AnchorRecord):
        return FoundRecord(item.tx, item.height, item.kind, record.source.get("slice"))
    original = index.anchor(record.original).record
    return FoundRecord(
        item.tx,
        item.height,
        item.kind,
        record.params.get("slice", original.source.get("slice")),
        record.original,
    )


def _named(
    sop_uid: str | None, series_uid: str | None, study_uid: str | None, file: Path | None
) -> dict[str, str | None]:
    """The UIDs given, refused unless exactly one of them or ``file`` is."""
    uids = {"sop": sop_uid, "series": series_uid, "study": study_uid}
    if sum(bool(v) for v in uids.values()) + (file is not None) != 1:
        raise InputError("give exactly one of --sop-uid, --series-uid, --study-uid or --file")
    return uids


def search_records(
    ledger: Path,
    index: RecordIndex,
    *,
    sop_uid: str | None = None,
    series_uid: str | None = None,
    study_uid: str | None = None,
    file: Path | None = None,
) -> RecordSearch:
    """``find_records`` on the open ledger at ``ledger`` whose record ``index`` is given (it is
    refreshed to the ledger's tip first)."""
    uids = _named(sop_uid, series_uid, study_uid, file)
    key = SiteKey.find(ledger)
    if key is None:
        raise InputError(
            f"no site key {ledger / SITE_KEY_FILE}: the links on this ledger are keyed by the site "
            "that anchored them and cannot be resolved here (that site's key, mode 0600, goes there)"
        )
    wanted, what = _wanted(key, uids, file)
    index.refresh()
    found = [_found(item, index) for item in linked_records(index, key, wanted)]
    anchors = [i.record for i in index.anchors if isinstance(i.record, AnchorRecord)]
    unlinked = sum(not a.link for a in anchors)
    other = sum(bool(a.link) and a.link.get("key") != key.id for a in anchors)
    return RecordSearch(found, what, unlinked, other)


def find_records(
    ledger: Path,
    *,
    sop_uid: str | None = None,
    series_uid: str | None = None,
    study_uid: str | None = None,
    file: Path | None = None,
) -> RecordSearch:
    """The records of the instance named by exactly one of a SOP, Series or Study Instance UID, or
    an image file / DICOM series folder (its instances' UIDs, or its name for other formats)."""
    _named(sop_uid, series_uid, study_uid, file)
    with Ledger.open(ledger) as led:
        return search_records(
            ledger, RecordIndex(led), sop_uid=sop_uid, series_uid=series_uid, study_uid=study_uid, file=file
        )
