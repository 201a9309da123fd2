"""API tokens that authorize writes: random, shown once when made, kept only as SHA-256 hashes in a
tokens file (JSON, mode 0600), and checked in constant time."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prosima.errors import InputError

TOKEN_BYTES = 32  # 256 random bits: a hash without salt cannot be searched
PREFIX = "prosima_"
MAX_TOKENS_FILE = 1024 * 1024
FORMAT = "prosima-tokens/1"


class TokensFileError(InputError):
    """A tokens file that is missing, readable by others, or not a tokens file."""


def token_hash(token: str) -> str:
    """The SHA-256 of a token's text, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenEntry:
    """One token as the file keeps it: a short public id, a name, when it was made, and its hash."""

    id: str
    name: str
    created: str
    sha256: str

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "created": self.created, "sha256": self.sha256}

    def listing(self) -> dict[str, str]:
        """What ``token list`` shows: everything but the hash."""
        return {"id": self.id, "name": self.name, "created": self.created}


def _entry(row: Any, path: Path) -> TokenEntry:
    fields = ("id", "name", "created", "sha256")
    if not isinstance(row, dict) or any(not isinstance(row.get(f), str) for f in fields):
        raise TokensFileError(f"{path}: every token needs the text fields {', '.join(fields)}")
    digest = row["sha256"]
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise TokensFileError(f"{path}: token {row['id']!r} has no SHA-256 hash (64 hex digits)")
    return TokenEntry(row["id"], row["name"], row["created"], digest)


@dataclass(frozen=True)
class TokenStore:
    """The tokens file at ``path`` and the tokens it held when read."""

    path: Path
    entries: tuple[TokenEntry, ...]

    @classmethod
    def load(cls, path: Path) -> TokenStore:
        """Read ``path``; refused unless it is a regular file of mode 0600 holding a tokens list."""
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            raise TokensFileError(
                f"no tokens file {path}; make one with 'prosima serve token create --tokens {path}'"
            ) from None
        except OSError as exc:
            raise TokensFileError(f"cannot open the tokens file {path}: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise TokensFileError(f"{path} is not a regular file")
            if stat.S_IMODE(info.st_mode) & 0o077:
                raise TokensFileError(
                    f"the tokens file {path} has mode {stat.S_IMODE(info.st_mode):04o}; it must be 0600"
                )
            data = f.read(MAX_TOKENS_FILE + 1)
        if len(data) > MAX_TOKENS_FILE:
            raise TokensFileError(f"{path} is larger than {MAX_TOKENS_FILE} bytes: not a tokens file")
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise TokensFileError(f"{path} is not JSON: not a tokens file") from None
        if (
            not isinstance(doc, dict)
            or doc.get("format") != FORMAT
            or not isinstance(doc.get("tokens"), list)
        ):
            raise TokensFileError(f"{path} is not a tokens file (format {FORMAT})")
        return cls(path, tuple(_entry(row, path) for row in doc["tokens"]))

    @classmethod
    def open_or_empty(cls, path: Path) -> TokenStore:
        """The tokens file at ``path``, or an empty store when there is none yet."""
        if not path.exists() and not path.is_symlink():
            return cls(path, ())
        return cls.load(path)

    def authorizes(self, token: str) -> TokenEntry | None:
        """The entry ``token`` is, or ``None``; every hash is compared, in constant time each."""
        presented = token_hash(token)
        found = None
        for entry in self.entries:
            if hmac.compare_digest(presented, entry.sha256):
                found = entry
        return found

    def with_new_token(self, name: str) -> tuple[TokenStore, str]:
        """A store holding one more token (not yet saved) and that token's text, shown only now."""
        token = PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
        taken = {e.id for e in self.entries}
        token_id = secrets.token_hex(4)
        while token_id in taken:
            token_id = secrets.token_hex(4)
        created = datetime.now(UTC).isoformat(timespec="seconds")
        entry = TokenEntry(token_id, name, created, token_hash(token))
        return TokenStore(self.path, (*self.entries, entry)), token

    def without(self, token_id: str) -> TokenStore:
        """A store without the token ``token_id`` (not yet saved); refused when there is none."""
        if token_id not in {e.id for e in self.entries}:
            raise TokensFileError(f"{self.path} holds no token with id {token_id!r}")
        return TokenStore(self.path, tuple(e for e in self.entries if e.id != token_id))

    def save(self) -> None:
        """Write the file atomically, mode 0600 from the start (never readable by others)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"format": FORMAT, "tokens": [e.to_json() for e in self.entries]}
        staged = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.partial")
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(doc, indent=2) + "\n")
            os.replace(staged, self.path)
        finally:
            staged.unlink(missing_ok=True)
