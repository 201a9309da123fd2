"""A small client of Orthanc's REST API: the changes feed, an instance's file and tags, lookup of an
instance by SOP Instance UID, and upload of a DICOM file.

Every answer is treated as hostile: a bounded number of bytes is read whatever the server claims,
JSON is parsed and its shape checked before use, every Orthanc identifier received is checked
against Orthanc's own format before it goes into a URL, and each failure is an ``OrthancError``
naming what was asked and what was wrong. Nothing here retries or caches."""

from __future__ import annotations

import base64
import http.client
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prosima.errors import InputError

DEFAULT_TIMEOUT_S = 30.0
MAX_JSON_BYTES = 8 * 1024 * 1024
MAX_INSTANCE_BYTES = 2 * 1024 * 1024 * 1024  # one DICOM instance, as a modality may send it
MAX_UPLOAD_BYTES = MAX_INSTANCE_BYTES
MAX_CHANGES_PAGE = 1000  # Orthanc's own ceiling on ``limit``
_CHUNK = 1024 * 1024
ORTHANC_ID = re.compile(r"[0-9a-f]{8}(?:-[0-9a-f]{8}){4}")  # a SHA-1 in five groups
DICOM_UID = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*")
MAX_UID_CHARS = 64


class OrthancError(InputError, RuntimeError):
    """Orthanc could not be reached, refused the request, or answered something unusable."""


class OrthancNotFound(OrthancError):
    """Orthanc holds no such resource."""


def check_orthanc_id(value: str, what: str = "Orthanc instance id") -> str:
    """``value`` if it has the form of an Orthanc identifier, else a clear refusal."""
    if not isinstance(value, str) or not ORTHANC_ID.fullmatch(value):
        raise OrthancError(
            f"{what} {str(value)[:80]!r} is not of Orthanc's form (xxxxxxxx-... five groups of 8 hex)"
        )
    return value


def is_orthanc_id(value: str) -> bool:
    return bool(ORTHANC_ID.fullmatch(value))


def is_dicom_uid(value: str) -> bool:
    """Whether ``value`` has the form of a DICOM UID (PS3.5 9.1: digits and dots, at most 64)."""
    return len(value) <= MAX_UID_CHARS and DICOM_UID.fullmatch(value) is not None


def check_uid(value: str, what: str = "SOP Instance UID") -> str:
    """``value`` (DICOM padding removed) if it is a DICOM UID, else a clear refusal."""
    uid = str(value).strip().strip("\0").strip()
    if not is_dicom_uid(uid):
        raise OrthancError(f"{what} {uid[:80]!r} is not a DICOM UID (digits and dots, at most 64 characters)")
    return uid


@dataclass(frozen=True)
class Change:
    """One entry of Orthanc's changes feed."""

    seq: int
    change_type: str
    resource_type: str
    resource_id: str


@dataclass(frozen=True)
class ChangesPage:
    """A page of the changes feed: its changes, whether it reached the end, and the last sequence
    number it covers (the ``since`` of the next page)."""

    changes: list[Change]
    done: bool
    last: int


@dataclass(frozen=True)
class Stored:
    """What Orthanc said about an uploaded file: its instance id and status (``Success``,
    ``AlreadyStored``)."""

    instance_id: str
    status: str


def _field(doc: dict[str, Any], name: str, kind: type | tuple[type, ...], what: str) -> Any:
    """``doc[name]`` of type ``kind``, else an error naming the field."""
    value = doc.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise OrthancError(f"Orthanc's answer to {what} has no valid {name!r} field")
    return value


def _change(item: Any, what: str) -> Change:
    if not isinstance(item, dict):
        raise OrthancError(f"Orthanc's answer to {what} lists a change that is not an object")
    seq = _field(item, "Seq", int, what)
    change_type = _field(item, "ChangeType", str, what)
    resource_type = _field(item, "ResourceType", str, what)
    resource_id = _field(item, "ID", str, what)
    return Change(seq, change_type, resource_type, resource_id)


def _check_base_url(url: str) -> str:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise OrthancError(f"--orthanc {url!r}: give the archive's REST URL, e.g. http://127.0.0.1:8042")
    if parsed.username or parsed.password or parsed.query or parsed.fragment:
        raise OrthancError(
            f"--orthanc {parsed.scheme}://{parsed.hostname}...: give credentials with --user/--password or "
            "a credentials file, not in the URL; and no query or fragment"
        )
    return url.rstrip("/")


@dataclass
class OrthancClient:
    """Orthanc's REST API at ``url``, with HTTP basic authentication when ``user`` is given.
    ``archive_id``: the archive's own id when it is known (a private archive's, kept in its storage
    folder), which outlives the address; ``None`` for an archive known by its URL only."""

    url: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT_S
    max_json_bytes: int = MAX_JSON_BYTES
    max_instance_bytes: int = MAX_INSTANCE_BYTES
    archive_id: str | None = None

    def __post_init__(self) -> None:
        self.url = _check_base_url(self.url)
        if (self.user is None) != (self.password is None):
            raise OrthancError("Orthanc credentials need both a user and a password")

    # the transport

    def _headers(self, accept: str) -> dict[str, str]:
        headers = {"Accept": accept}
        if self.user is not None and self.password is not None:
            token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode("ascii")
            headers["Authorization"] = f"Basic {token}"
        return headers

    def _request(
        self,
        method: str,
        path: str,
        what: str,
        *,
        limit: int,
        body: bytes | None = None,
        content_type: str | None = None,
        accept: str = "application/json",
        sink: Path | None = None,
    ) -> bytes:
        """The body of ``method path`` (at most ``limit`` bytes; written to ``sink`` instead of
        returned when given), or an ``OrthancError`` saying what failed."""
        headers = self._headers(accept)
        if content_type is not None:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                claimed = response.headers.get("Content-Length")
                if claimed is not None and claimed.isdigit() and int(claimed) > limit:
                    raise OrthancError(
                        f"Orthanc's answer to {what} is {claimed} bytes, over the {limit} allowed"
                    )
                return _read_bounded(response, limit, what, sink)
        except urllib.error.HTTPError as exc:
            raise _http_error(exc, what) from None
        except (urllib.error.URLError, ConnectionError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            raise OrthancError(f"cannot reach Orthanc at {self.url} for {what}: {reason}") from None
        except TimeoutError:
            raise OrthancError(
                f"Orthanc at {self.url} did not answer {what} within {self.timeout:g} s"
            ) from None

    def _json(self, method: str, path: str, what: str, body: bytes | None = None, **kw: Any) -> Any:
        data = self._request(method, path, what, limit=self.max_json_bytes, body=body, **kw)
        try:
            return json.loads(data)
        except (UnicodeDecodeError, ValueError):
            raise OrthancError(f"Orthanc's answer to {what} is not JSON") from None

    # the API

    def system(self) -> dict[str, Any]:
        """``/system``: the archive's name, version and AE title (answers once Orthanc is up)."""
        doc = self._json("GET", "/system", "GET /system")
        if not isinstance(doc, dict) or not isinstance(doc.get("Version"), str):
            raise OrthancError(f"{self.url} answered /system, but not as Orthanc does (no Version)")
        return doc

    def plugins(self) -> list[str]:
        """``/plugins``: the names of the plugins the archive runs (``dicom-web`` for DICOMweb)."""
        doc = self._json("GET", "/plugins", "GET /plugins")
        if not isinstance(doc, list) or not all(isinstance(p, str) for p in doc):
            raise OrthancError("Orthanc's answer to GET /plugins is not a list of names")
        return list(doc)

    def changes(self, since: int = 0, limit: int = 100) -> ChangesPage:
        """The changes after sequence number ``since``, at most ``limit`` of them."""
        if since < 0 or not 1 <= limit <= MAX_CHANGES_PAGE:
            raise OrthancError(
                f"changes since {since} limit {limit}: since >= 0, 1 <= limit <= {MAX_CHANGES_PAGE}"
            )
        what = f"GET /changes?since={since}"
        doc = self._json("GET", f"/changes?since={since}&limit={limit}", what)
        if not isinstance(doc, dict):
            raise OrthancError(f"Orthanc's answer to {what} is not an object")
        items = _field(doc, "Changes", list, what)
        if len(items) > limit:
            raise OrthancError(
                f"Orthanc's answer to {what} lists {len(items)} changes, more than the {limit} asked"
            )
        changes = [_change(item, what) for item in items]
        done = _field(doc, "Done", bool, what)
        last = _field(doc, "Last", int, what)
        seqs = [c.seq for c in changes]
        if any(s <= since for s in seqs) or seqs != sorted(set(seqs)) or (seqs and last < seqs[-1]):
            raise OrthancError(f"Orthanc's answer to {what} has sequence numbers out of order")
        return ChangesPage(changes, done, last)

    def last_change(self) -> int:
        """The sequence number of the newest change (0 when the feed is empty)."""
        what = "GET /changes?last"
        doc = self._json("GET", "/changes?last", what)
        if not isinstance(doc, dict):
            raise OrthancError(f"Orthanc's answer to {what} is not an object")
        return int(_field(doc, "Last", int, what))

    def instance_file(self, instance_id: str, out: Path) -> Path:
        """Download the DICOM file of instance ``instance_id`` into ``out`` (bounded in size)."""
        check_orthanc_id(instance_id)
        what = f"GET /instances/{instance_id}/file"
        self._request(
            "GET",
            f"/instances/{instance_id}/file",
            what,
            limit=self.max_instance_bytes,
            accept="application/dicom",
            sink=out,
        )
        return out

    def instance_tags(self, instance_id: str) -> dict[str, Any]:
        """The simplified main tags of instance ``instance_id`` (keyword -> value)."""
        check_orthanc_id(instance_id)
        what = f"GET /instances/{instance_id}/simplified-tags"
        doc = self._json("GET", f"/instances/{instance_id}/simplified-tags", what)
        if not isinstance(doc, dict):
            raise OrthancError(f"Orthanc's answer to {what} is not an object")
        return doc

    def instance_sop_uid(self, instance_id: str) -> str:
        """The SOP Instance UID of instance ``instance_id``."""
        tags = self.instance_tags(instance_id)
        value = tags.get("SOPInstanceUID")
        if not isinstance(value, str):
            raise OrthancError(f"instance {instance_id} has no SOP Instance UID in Orthanc's tags")
        return check_uid(value)

    def find_instance(self, sop_uid: str) -> str:
        """The Orthanc id of the instance whose SOP Instance UID is ``sop_uid``."""
        uid = check_uid(sop_uid)
        what = "POST /tools/lookup"
        doc = self._json("POST", "/tools/lookup", what, body=uid.encode("ascii"), content_type="text/plain")
        if not isinstance(doc, list):
            raise OrthancError(f"Orthanc's answer to {what} is not a list")
        found: list[str] = [
            str(item["ID"])
            for item in doc
            if isinstance(item, dict) and item.get("Type") == "Instance" and isinstance(item.get("ID"), str)
        ]
        if not found:
            raise OrthancNotFound("Orthanc holds no instance with this SOP Instance UID")
        if len(found) > 1:
            raise OrthancError("Orthanc holds several instances with this SOP Instance UID")
        return check_orthanc_id(found[0], "the id Orthanc gave for this SOP Instance UID")

    def upload(self, dicom: Path) -> Stored:
        """Store the DICOM file ``dicom`` (``POST /instances``)."""
        size = dicom.stat().st_size
        if size > MAX_UPLOAD_BYTES:
            raise OrthancError(f"{dicom} is {size} bytes, over the {MAX_UPLOAD_BYTES} a store may send")
        what = "POST /instances"
        doc = self._json(
            "POST", "/instances", what, body=dicom.read_bytes(), content_type="application/dicom"
        )
        if not isinstance(doc, dict):
            raise OrthancError(f"Orthanc's answer to {what} is not an object")
        instance_id = check_orthanc_id(_field(doc, "ID", str, what), "the id Orthanc gave the stored file")
        return Stored(instance_id, str(doc.get("Status", "")))


def _read_bounded(response: Any, limit: int, what: str, sink: Path | None) -> bytes:
    """At most ``limit`` bytes of ``response`` (written into ``sink`` when given, which is removed
    again when anything fails), refusing more."""

    def chunks() -> Iterator[bytes]:
        total = 0
        while chunk := response.read(_CHUNK):
            total += len(chunk)
            if total > limit:
                raise OrthancError(f"Orthanc's answer to {what} is over the {limit} bytes allowed")
            yield chunk

    if sink is None:
        return b"".join(chunks())
    try:
        with open(sink, "wb") as out:
            for chunk in chunks():
                out.write(chunk)
    except BaseException:
        sink.unlink(missing_ok=True)
        raise
    return b""


def _http_error(exc: urllib.error.HTTPError, what: str) -> OrthancError:
    """An error for Orthanc's HTTP status: its own message when it sent one (bounded, JSON)."""
    detail = ""
    try:
        body = exc.read(64 * 1024)
        doc = json.loads(body)
        if isinstance(doc, dict) and isinstance(doc.get("Message"), str):
            detail = f": {doc['Message'][:200]}"
    except (OSError, ValueError, UnicodeDecodeError):
        pass
    if exc.code == 401:
        return OrthancError(f"Orthanc refused the credentials for {what} (HTTP 401)")
    if exc.code == 403:
        return OrthancError(f"Orthanc forbade {what} (HTTP 403){detail}")
    if exc.code == 404:
        return OrthancNotFound(f"Orthanc has no such resource ({what}: HTTP 404){detail}")
    return OrthancError(f"Orthanc answered {what} with HTTP {exc.code}{detail}")
