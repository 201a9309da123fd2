"""Uploads written to a private folder (mode 0700, removed after the work that reads them) under
names the application layer's readers see as the client named them, so file-type rules and
name-keyed instance links are the command line's."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from types import TracebackType

from fastapi import UploadFile
from starlette.concurrency import run_in_threadpool

from prosima.errors import InputError
from prosima.service.errors import TooLarge

CHUNK = 1024 * 1024
MAX_NAME = 200
SERIES_FOLDER = "series"


def safe_name(filename: str | None, fallback: str = "upload") -> str:
    """The last component of a client's file name, without control characters or path syntax."""
    name = PurePosixPath((filename or "").replace("\\", "/")).name
    name = "".join(c for c in name if c.isprintable() and c not in "\x00/")
    if name in ("", ".", ".."):
        return fallback
    if len(name) > MAX_NAME:
        suffix = "".join(PurePosixPath(name).suffixes)[-20:]
        name = name[: MAX_NAME - len(suffix)] + suffix
    return name


def check_count(files: Sequence[UploadFile], max_files: int, least: int = 1) -> None:
    """Refuse a request with fewer than ``least`` files, or more than ``max_files`` (413)."""
    if len(files) < least:
        raise InputError(f"upload at least {least} file{'s' if least > 1 else ''}")
    if len(files) > max_files:
        raise TooLarge(f"{len(files)} files in one request; this service accepts at most {max_files}")


def _copy(upload: UploadFile, target: Path) -> None:
    upload.file.seek(0)
    with target.open("xb") as out:
        shutil.copyfileobj(upload.file, out, CHUNK)


class UploadFolder:
    """A private folder for one request's (or one job's) uploads and outputs; removed on close."""

    def __init__(self, parent: Path | None = None, prefix: str = "prosima-upload-") -> None:
        self.path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))  # mode 0700

    async def save(self, upload: UploadFile, *, place: str = "") -> Path:
        """Write ``upload`` as ``place/<its name>`` inside the folder (``place`` keeps names that
        clash apart)."""
        folder = self.path / place if place else self.path
        folder.mkdir(mode=0o700, exist_ok=True)
        target = folder / safe_name(upload.filename)
        await run_in_threadpool(_copy, upload, target)
        return target

    async def save_each(self, uploads: Sequence[UploadFile]) -> list[Path]:
        """Every upload under its own name, each in a folder of its own (same names may repeat)."""
        return [await self.save(u, place=f"{i:05d}") for i, u in enumerate(uploads)]

    async def save_series(self, uploads: Sequence[UploadFile]) -> Path:
        """The files of one DICOM series in one folder (their names do not matter to the reader)."""
        folder = self.path / SERIES_FOLDER
        folder.mkdir(mode=0o700)
        for i, upload in enumerate(uploads):
            await run_in_threadpool(_copy, upload, folder / f"{i:05d}.dcm")
        return folder

    def out_path(self, name: str) -> Path:
        """Where an output called ``name`` goes (a folder of its own, inside this one)."""
        folder = self.path / "out"
        folder.mkdir(mode=0o700, exist_ok=True)
        return folder / safe_name(name, "restored")

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> UploadFolder:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.remove()
