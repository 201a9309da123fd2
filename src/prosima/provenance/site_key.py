"""The site key and the keyed instance link: what ties a ledger record to the image instance it is
of, without putting anything that identifies a person on the ledger (which cannot forget).

An anchor record holds, instead of identifiers in clear, HMAC-SHA256 digests of them under a secret
*site key*: the Study, Series and SOP Instance UIDs of a DICOM image; for any other file (whose name
may itself name a patient) its file name, the slice index being recorded in clear beside it. Only
who holds the key can compute a link from a UID or a file, so only the anchoring site can say which
instance a record is of (``prosima verify``, ``prosima records find``); to anyone else a link is an
opaque number. A link also names the key that made it (``key``: a digest of the key, not the key).

The key is 32 random bytes, written as 64 hexadecimal digits in ``site.key`` beside the ledger's
files (mode 0600; refused, like node keys, when group or others may read it). It never enters a
record, an export or a report. It belongs to the provenance layer, not to the ledger (which knows
nothing of images): ``prosima ledger init`` does not make it; the first ``anchor`` into a ledger
folder does, and every later anchor, verify and lookup there reads it. A site that shares a ledger
folder with others keeps its own copy of ``site.key`` (not shared), so moving the key elsewhere
leaves the ledger valid and the links unresolvable.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prosima.errors import InputError
from prosima.imaging.io import LoadedImage
from prosima.ledger.log.input_files import InputFileError, read_bounded
from prosima.provenance.index import Indexed, Record, RecordIndex
from prosima.provenance.records import AnchorRecord

SITE_KEY_FILE = "site.key"
LINK_TAG = b"prosima.instance-link.v1"
KEY_ID_TAG = b"prosima.site-key-id.v1"
UID_FIELDS = {"study": "StudyInstanceUID", "series": "SeriesInstanceUID", "sop": "SOPInstanceUID"}
FIELD_NAMES = {
    "study": "Study Instance UID",
    "series": "Series Instance UID",
    "sop": "SOP Instance UID",
    "file": "file name",
}
_MAX_KEY_FILE = 256


class SiteKeyError(InputError, ValueError):
    """A site key file that is missing, damaged or readable by others."""


@dataclass(frozen=True)
class SiteKey:
    """The secret that keys every instance link of one site (never printed: see ``id``)."""

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) != 32:
            raise SiteKeyError(f"a site key is 32 bytes, got {len(self.secret)}")

    @property
    def id(self) -> str:
        """A public name of the key (16 hex digits of a digest of it), recorded in each link."""
        return hmac.new(self.secret, KEY_ID_TAG, hashlib.sha256).hexdigest()[:16]

    def digest(self, name: str, value: str) -> str:
        """The keyed digest (hex) of identifier ``name`` (a ``FIELD_NAMES`` key) of value ``value``."""
        message = LINK_TAG + b"\0" + name.encode() + b"\0" + clean(value).encode("utf-8")
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    def link(self, instance: dict[str, str]) -> dict[str, str]:
        """The link recorded for an instance given by its clear identifiers (``instance_of``)."""
        if not instance:
            return {}
        return {"key": self.id} | {n: self.digest(n, v) for n, v in sorted(instance.items())}

    def __repr__(self) -> str:
        return f"SiteKey(id={self.id})"

    @classmethod
    def load(cls, path: str | Path) -> SiteKey:
        """Read a key file; refuse one that group or others can access, or that is damaged."""
        try:
            text = read_bounded(path, _MAX_KEY_FILE, "site key", private=True).decode("ascii").strip()
            return cls(bytes.fromhex(text))
        except InputFileError as exc:
            raise SiteKeyError(str(exc)) from None
        except (UnicodeDecodeError, ValueError):
            raise SiteKeyError(f"site key {path} is damaged: expected 64 hexadecimal digits") from None

    @classmethod
    def find(cls, ledger_dir: str | Path) -> SiteKey | None:
        """The site key kept beside the ledger in ``ledger_dir``; ``None`` when there is none."""
        path = key_path(ledger_dir)
        return cls.load(path) if os.path.lexists(path) else None

    @classmethod
    def ensure(cls, ledger_dir: str | Path) -> SiteKey:
        """The site key beside the ledger, made (random, mode 0600) when there is none yet; two
        processes making it at once agree on one (the file appears whole or not at all)."""
        found = cls.find(ledger_dir)
        if found is not None:
            return found
        path = key_path(ledger_dir)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.fchmod(fd, 0o600)
                os.write(fd, secrets.token_bytes(32).hex().encode() + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
            os.link(tmp, path)  # never replaces a key another process made meanwhile
        except FileExistsError:
            pass
        except OSError as exc:
            raise SiteKeyError(f"cannot make the site key {path}: {exc.strerror or exc}") from None
        finally:
            tmp.unlink(missing_ok=True)
        return cls.load(path)


def key_path(ledger_dir: str | Path) -> Path:
    """Where the site key of the ledger in ``ledger_dir`` is kept."""
    return Path(ledger_dir) / SITE_KEY_FILE


def clean(value: str) -> str:
    """An identifier as compared: DICOM's space and NUL padding and surrounding blanks removed."""
    return str(value).strip().strip("\0").strip()


def instance_of(loaded: LoadedImage, index: int = 0) -> dict[str, str]:
    """The clear identifiers of slice ``index`` of ``loaded``, for hashing on this machine only:
    a DICOM image's Study, Series and SOP Instance UIDs (those it has), else the file's name."""
    meta = loaded.meta
    if meta.format == "dicom":
        ids = {n: clean(meta.identifiers.get(kw, "")) for n, kw in UID_FIELDS.items()}
        sops = meta.extra.get("sop_instance_uids")
        if sops:  # a series: one SOP Instance UID per slice
            ids["sop"] = clean(sops[index]) if index < len(sops) else ""
        ids = {n: v for n, v in ids.items() if v}
        if ids:
            return ids
    return {"file": Path(meta.path).name}


def most_specific(instance: dict[str, str]) -> str:
    """The identifier that names one instance best: the SOP Instance UID, else the file name."""
    return next(n for n in ("sop", "file", "series", "study") if n in instance)


@dataclass(frozen=True)
class Resolution:
    """What a record's link says about a file: the identifiers of the file that it matches."""

    tx: str  # the record matched by pixels (or nearest)
    linked: str  # the anchor whose link was compared: ``tx`` itself or a restoration's original
    matches: tuple[str, ...] = ()
    reason: str = ""  # why it is not resolved here; empty when it is
    slice: str | None = None  # the anchored image's slice index in its file
    at: str | None = None  # the verified image's slice index in its file (None: a 2-D file)

    @property
    def resolved(self) -> bool:
        return not self.reason

    @property
    def same_instance(self) -> bool:
        """The record is of this very image: its SOP Instance UID, or (other files) its file name
        and slice index."""
        return self.resolved and ("sop" in self.matches or ("file" in self.matches and self.slice == self.at))

    def to_json(self) -> dict[str, Any]:
        """A report without any identifier in clear."""
        return {
            "record": self.tx,
            "linked_record": self.linked,
            "resolved": self.resolved,
            "same_instance": self.same_instance,
            "matches": list(self.matches),
            "reason": self.reason or None,
        }

    def text(self, instance: dict[str, str]) -> str:
        """One line for this machine's terminal, naming the file's own identifiers."""
        whose = "the record" if self.linked == self.tx else f"the record's original {self.linked}"
        if not self.resolved:
            return f"instance: not resolved here: {self.reason}"
        if "sop" in self.matches:
            series = f" (series {instance['series']})" if "series" in self.matches else ""
            return f"instance: {whose} is of this file's SOP Instance UID {instance['sop']}{series}"
        for name in ("series", "study"):
            if name in self.matches:
                return (
                    f"instance: {whose} is of another instance in this file's {name} "
                    f"{instance[name]} (its SOP Instance UID differs)"
                )
        if "file" in self.matches:
            at = f", slice {self.slice}" if self.slice is not None else ""
            return f"instance: {whose} is of a file named {instance['file']} (as this one){at}"
        return f"instance: {whose} is of another instance than this file (none of its identifiers match)"


def resolve(
    index: RecordIndex, key: SiteKey | None, tx: str, instance: dict[str, str], at: int | None = None
) -> Resolution:
    """Compare the link of record ``tx`` (a restoration: of its original) with ``instance``'s
    identifiers hashed under ``key`` (``at``: the verified slice's index in a volume); not resolved
    without a key, a link, or with another key."""
    item = index.refresh().by_tx[tx]
    record = item.record
    original = None if isinstance(record, AnchorRecord) else record.original
    anchor = item if original is None else index.by_tx.get(original)
    if anchor is None or not isinstance(anchor.record, AnchorRecord):
        return Resolution(tx, "", reason=f"its original {original} is not on this ledger")
    record = anchor.record
    if key is None:
        return Resolution(
            tx, anchor.tx, reason=f"no site key beside this ledger ({SITE_KEY_FILE}), so its link is opaque"
        )
    link = record.link
    if not link:
        return Resolution(
            tx, anchor.tx, reason=f"record {anchor.tx} is of format v{record.version}, with no instance link"
        )
    if link.get("key") != key.id:
        return Resolution(
            tx,
            anchor.tx,
            reason=f"record {anchor.tx} was linked with another site key ({link.get('key')}), "
            f"not this ledger's ({key.id})",
        )
    matches = tuple(
        n
        for n in FIELD_NAMES
        if n in link and n in instance and hmac.compare_digest(link[n], key.digest(n, instance[n]))
    )
    where = None if at is None else str(at)
    return Resolution(tx, anchor.tx, matches, slice=record.source.get("slice"), at=where)


def linked_records(index: RecordIndex, key: SiteKey, wanted: dict[str, set[str]]) -> list[Indexed[Record]]:
    """The anchors whose link (made with ``key``) holds one of the ``wanted`` digests per identifier,
    and the restorations conditioned on them, in ledger order."""
    found: list[Indexed[Record]] = []
    anchors: set[str] = set()
    for item in index.refresh().by_tx.values():
        record = item.record
        if isinstance(record, AnchorRecord):
            link = record.link
            if link.get("key") == key.id and any(link.get(n) in ds for n, ds in wanted.items()):
                anchors.add(item.tx)
                found.append(item)
        elif record.original in anchors:
            found.append(item)
    return found
