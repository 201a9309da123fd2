"""Where a watcher is in an archive's changes feed, kept in the ledger folder so that a restart
neither misses a change nor processes one twice, and the lock that lets one watcher at a time
follow an archive into a ledger.

The state file ``orthanc-watch.json`` maps each archive to the last change sequence number whose
instances are on the ledger. An archive is named by its id when it has one (a private archive's,
``urn:uuid:...``), so its position outlives the new loopback ports of each restart, and otherwise
by its URL (an existing Orthanc reports no identity of its own in ``/system``). Files written
before archives had ids hold URLs only and are read as they are: a private archive's old entry
names ports it no longer has, so its feed is read once more from the start (nothing is anchored
twice). The file is replaced whole (written beside, synced, renamed), so a crash leaves the old
position or the new one, never a torn file; it holds no identifier of any image."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

from prosima.errors import InputError
from prosima.ledger.log.input_files import InputFileError, read_bounded

STATE_FILE = "orthanc-watch.json"
LOCK_FILE = ".orthanc-watch.lock"
STATE_VERSION = 1
MAX_STATE_BYTES = 1024 * 1024


class WatchStateError(InputError, ValueError):
    """A state file that is damaged, or a watcher already running on this ledger."""


def state_path(ledger: Path) -> Path:
    return Path(ledger) / STATE_FILE


def archive_key(url: str, archive_id: str | None = None) -> str:
    """What the state file names an archive by: its id when known, else its URL."""
    return f"urn:uuid:{archive_id}" if archive_id else url


def _read(path: Path) -> dict[str, int]:
    if not path.exists():
        return {}
    try:
        doc = json.loads(read_bounded(path, MAX_STATE_BYTES, "watch state file"))
    except InputFileError as exc:
        raise WatchStateError(str(exc)) from None
    except (UnicodeDecodeError, ValueError):
        raise WatchStateError(f"watch state file {path} is not JSON; remove it to start over") from None
    archives = doc.get("archives") if isinstance(doc, dict) else None
    if not isinstance(doc, dict) or doc.get("version") != STATE_VERSION or not isinstance(archives, dict):
        raise WatchStateError(
            f"watch state file {path} is not of version {STATE_VERSION}; remove it to start over"
        )
    for archive, last in archives.items():
        if not isinstance(last, int) or isinstance(last, bool) or last < 0:
            raise WatchStateError(f"watch state file {path}: position of {archive} is not a change number")
    return dict(archives)


def read_position(ledger: Path, archive: str) -> int:
    """The last change of ``archive`` whose instances are on the ledger (0: none yet)."""
    return _read(state_path(ledger)).get(archive, 0)


def write_position(ledger: Path, archive: str, last: int) -> None:
    """Record that every change of ``archive`` up to ``last`` is processed (atomic, synced)."""
    path = state_path(ledger)
    archives = _read(path) | {archive: int(last)}
    data = json.dumps({"version": STATE_VERSION, "archives": archives}, indent=2, sort_keys=True) + "\n"
    tmp = path.with_name(f".{path.name}.partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@contextlib.contextmanager
def watch_lock(ledger: Path) -> Iterator[None]:
    """Hold the ledger's watcher lock for the ``with`` block; refused when another watcher holds it."""
    path = Path(ledger) / LOCK_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WatchStateError(f"another watcher is following an archive into {ledger}") from None
        yield
    finally:
        os.close(fd)  # releases the lock
