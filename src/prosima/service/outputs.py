"""Restored files kept for their client to download: each under a random id, the most recent
``kept`` only, all in one private folder removed when the service stops. A folder output (a derived
DICOM series) is kept as a zip of its files."""

from __future__ import annotations

import secrets
import shutil
import tempfile
import threading
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from prosima.service.errors import NotFound

MEDIA_TYPES = {".png": "image/png", ".zip": "application/zip", ".gz": "application/gzip"}


@dataclass(frozen=True)
class KeptOutput:
    """A kept file: its id, its path and the name it is downloaded as."""

    id: str
    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES.get(self.path.suffix.lower(), "application/octet-stream")


def _zip_folder(folder: Path, target: Path) -> None:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                z.write(f, f"{folder.name}/{f.relative_to(folder)}")


class OutputStore:
    """The kept outputs (thread-safe: the ledger thread adds, request handlers read)."""

    def __init__(self, kept: int, parent: Path | None = None) -> None:
        self.kept = kept
        self._parent = parent
        self._root: Path | None = None
        self._items: OrderedDict[str, KeptOutput] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def root(self) -> Path:
        """The private folder (mode 0700), made when the first output is kept."""
        with self._lock:
            if self._root is None:
                self._root = Path(tempfile.mkdtemp(prefix="prosima-outputs-", dir=self._parent))
            return self._root

    def keep(self, produced: Path) -> KeptOutput:
        """Move ``produced`` (a file, or a folder zipped) into the store; the oldest beyond
        ``kept`` are deleted."""
        output_id = secrets.token_urlsafe(16)
        folder = self.root / output_id
        folder.mkdir(mode=0o700)
        if produced.is_dir():
            target = folder / f"{produced.name}.zip"
            _zip_folder(produced, target)
            shutil.rmtree(produced)
        else:
            target = folder / produced.name
            shutil.move(produced, target)
        item = KeptOutput(output_id, target)
        with self._lock:
            self._items[output_id] = item
            while len(self._items) > self.kept:
                _, old = self._items.popitem(last=False)
                shutil.rmtree(old.path.parent, ignore_errors=True)
        return item

    def get(self, output_id: str) -> KeptOutput:
        with self._lock:
            item = self._items.get(output_id)
        if item is None:
            raise NotFound(
                f"no restored file {output_id!r} is kept here (the service keeps the last {self.kept})"
            )
        return item

    def close(self) -> None:
        with self._lock:
            root, self._root = self._root, None
            self._items.clear()
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)
