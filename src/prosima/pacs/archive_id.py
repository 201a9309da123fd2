"""A private archive's identity: a random id written into its storage folder when the archive is
first started there and read back on every later start, so that what is kept about the archive
(a watcher's position in its changes feed) outlives the loopback ports it gets anew each time.

The id lives beside Orthanc's index in the storage folder: an archive whose storage was removed
starts again empty, and gets a new id with it. The file is created whole or not at all (written
beside, synced, then linked into place, which fails when another start made it first)."""

from __future__ import annotations

import os
import secrets
import uuid
from pathlib import Path

from prosima.errors import InputError
from prosima.ledger.log.input_files import InputFileError, read_bounded

ARCHIVE_ID_FILE = "prosima-archive-id"
MAX_ID_BYTES = 256


class ArchiveIdError(InputError, ValueError):
    """An archive id file that is damaged or cannot be written."""


def archive_id_path(storage: Path) -> Path:
    return Path(storage) / ARCHIVE_ID_FILE


def _read(path: Path) -> str:
    way_out = "remove it to give the archive a new id (its feed is then followed from its start)"
    try:
        text = read_bounded(path, MAX_ID_BYTES, "archive id file").decode("ascii").strip()
        parsed = uuid.UUID(text)
    except InputFileError as exc:
        raise ArchiveIdError(f"{exc}; {way_out}") from None
    except (UnicodeDecodeError, ValueError):
        raise ArchiveIdError(f"archive id file {path} does not hold an id; {way_out}") from None
    if str(parsed) != text:
        raise ArchiveIdError(f"archive id file {path} does not hold an id in its usual form; {way_out}")
    return text


def _create(path: Path) -> None:
    """Write a new random id to ``path`` unless it exists (atomically: whole or not at all)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, f"{uuid.uuid4()}\n".encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # refused when the file exists: the first start's id is kept
        except FileExistsError:
            return
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise ArchiveIdError(f"cannot write the archive id file {path}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)


def archive_id(storage: Path) -> str:
    """The id of the archive stored in ``storage`` (made), created at its first start."""
    storage = Path(storage)
    storage.mkdir(parents=True, exist_ok=True)
    path = archive_id_path(storage)
    if not path.exists():
        _create(path)
    return _read(path)
