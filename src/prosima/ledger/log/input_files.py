"""Bounded reading of the files a command is given: at most a limit of bytes, from a regular file
or standard input ('-'), never from a FIFO, device or folder (which could block or never end)."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from prosima.ledger.errors import LedgerError

__all__ = ["MAX_DOCUMENT", "InputFileError", "read_bounded"]

MAX_DOCUMENT = 1 << 20
"""The largest proof document read (real ones are a few kilobytes; a quorum of signatures adds some)."""

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class InputFileError(LedgerError):
    """An input file that is not a regular file, or larger than its limit; nothing was done."""


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _too_large(what: str, where: str, limit: int, size: int | None = None) -> InputFileError:
    held = "" if size is None else f" ({size:,} bytes)"
    return InputFileError(f"{what} {where} is larger than the limit of {limit:,} bytes{held}; refused")


def read_bounded(path: str | Path, limit: int, what: str, *, private: bool = False) -> bytes:
    """The bytes of ``path`` ('-': standard input), refused when there are more than ``limit``.

    A path is opened without blocking and checked to be a regular file before anything is read; at
    most ``limit + 1`` bytes are ever read, whatever the file claims or holds. ``private`` (a key
    file) also refuses a file that group or others can access, checked on the opened file.
    """
    if str(path) == "-":
        data = sys.stdin.buffer.read(limit + 1)
        if len(data) > limit:
            raise _too_large(what, "on standard input", limit)
        return data
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise InputFileError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise InputFileError(f"{what} {path} is a folder, not a regular file") from None
    except OSError as exc:
        raise InputFileError(f"{what} {path} cannot be opened: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputFileError(
                f"{what} {path} is {_kind(st.st_mode)}, not a regular file; give a file or '-'"
            )
        if private and st.st_mode & 0o077:
            raise InputFileError(
                f"{what} {path} has mode {stat.S_IMODE(st.st_mode):04o}; it must not be accessible "
                "to group or others (chmod 600)"
            )
        if st.st_size > limit:
            raise _too_large(what, str(path), limit, st.st_size)
        os.set_blocking(fd, True)
        fh = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with fh:
        data = fh.read(limit + 1)  # the file may have grown since fstat
    if len(data) > limit:
        raise _too_large(what, str(path), limit)
    return data
