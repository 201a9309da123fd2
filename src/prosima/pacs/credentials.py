"""How an archive's address and login are kept in a file: JSON ``{"url", "user", "password"}``
(the private archive's also ``dicom_port``, ``aet`` and ``archive_id``), mode 0600, refused when
group or others may read it, like the ledger's key files."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prosima.errors import InputError
from prosima.ledger.log.input_files import InputFileError, read_bounded

CREDENTIALS_FILE = "orthanc-credentials.json"  # where a private archive's login is written

MAX_CREDENTIALS_BYTES = 64 * 1024


class CredentialsError(InputError, ValueError):
    """A credentials file that is missing, readable by others, or not of the expected form."""


@dataclass(frozen=True)
class ArchiveLogin:
    """Where an archive's REST API is and who logs in (``url`` ``None``: not in the file)."""

    url: str | None
    user: str | None
    password: str | None = field(default=None, repr=False)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def archive_id(self) -> str | None:
        """The archive's own id (a private archive's), when the file keeps it."""
        value = self.extra.get("archive_id")
        return value if isinstance(value, str) else None


def _text(doc: dict[str, Any], name: str, path: Path) -> str | None:
    value = doc.get(name)
    if value is not None and not isinstance(value, str):
        raise CredentialsError(f"credentials file {path}: {name!r} must be a string")
    return value


def read_credentials(path: Path) -> ArchiveLogin:
    """The login kept in ``path`` (a private file)."""
    try:
        data = read_bounded(path, MAX_CREDENTIALS_BYTES, "credentials file", private=True)
    except InputFileError as exc:
        raise CredentialsError(str(exc)) from None
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        raise CredentialsError(f"credentials file {path} is not JSON") from None
    if not isinstance(doc, dict):
        raise CredentialsError(f"credentials file {path} must hold a JSON object")
    user, password = _text(doc, "user", path), _text(doc, "password", path)
    _text(doc, "archive_id", path)
    if (user is None) != (password is None):
        raise CredentialsError(f"credentials file {path} needs both 'user' and 'password'")
    rest = {k: v for k, v in doc.items() if k not in ("url", "user", "password")}
    return ArchiveLogin(_text(doc, "url", path), user, password, rest)


def write_credentials(path: Path, login: ArchiveLogin) -> Path:
    """Write ``login`` into ``path`` (mode 0600, replaced whole)."""
    doc = {"url": login.url, "user": login.user, "password": login.password} | login.extra
    tmp = path.with_name(f".{path.name}.partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
    return path
