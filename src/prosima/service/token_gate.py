"""The check every write passes: a token from the service's tokens file. The file is re-read when
it changes, so a token made or revoked while the service runs counts from the next request."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from prosima.service.errors import Unauthorized
from prosima.service.tokens import TokenEntry, TokensFileError, TokenStore


class TokenGate:
    """The tokens file a service checks writes against (``None``: writes are refused)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self._store: TokenStore | None = None

    def _current(self, path: Path) -> TokenStore:
        """The file's tokens, read again only when its inode, time or size changed."""
        try:
            info = os.stat(path)
        except FileNotFoundError:
            return TokenStore.load(path)  # refused, naming the missing file
        signature = (info.st_ino, info.st_mtime_ns, info.st_size)
        with self._lock:
            if self._store is None or signature != self._seen:
                self._store, self._seen = TokenStore.load(path), signature
            return self._store

    def check_file(self) -> None:
        """Refuse a tokens file that cannot be used (missing, open to others, malformed)."""
        if self.path is not None:
            self._current(self.path)

    def check(self, token: str | None) -> TokenEntry:
        """The token's entry; ``Unauthorized`` for none, a wrong one, or writes not configured."""
        if self.path is None:
            raise Unauthorized(
                "this service accepts no writes: start it with --tokens FILE (made by "
                "'prosima serve token create')",
                configured=False,
            )
        if not token:
            raise Unauthorized("this request writes to the ledger: send 'Authorization: Bearer <token>'")
        try:
            store = self._current(self.path)
        except TokensFileError as exc:
            raise Unauthorized(f"no token is valid now: {exc}") from None
        entry = store.authorizes(token)
        if entry is None:
            raise Unauthorized("the API token is not valid here")
        return entry
