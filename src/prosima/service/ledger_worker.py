"""The one thread that does every piece of ledger work, holding the service's open ``Session``.

SQLite connections belong to the thread that opened them, and one session is not thread-safe, so
the session is opened, used and closed on this thread only, under ``session.lock``. Requests and
jobs queue for it in the order they came: concurrent writes are serialized, never interleaved.
Before each piece of work the session catches up with blocks other writers (a command line on the
same ledger) appended.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

from prosima.service.errors import NotReady
from prosima.service.settings import ServiceSettings

if TYPE_CHECKING:  # opening a session loads torch and the models: on the ledger thread only
    from prosima.app.session import Session

T = TypeVar("T")
log = logging.getLogger("prosima.service")


class LedgerWorker:
    """The ledger thread and the session it holds (``None`` until opened, or when opening failed:
    ``problem`` says why)."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prosima-ledger")
        self._session: Session | None = None
        self._opening: Future[None] | None = None
        self.problem: str | None = None

    def start(self) -> Future[None]:
        """Open the session on the ledger thread; work queued meanwhile waits for it."""
        self._opening = self._pool.submit(self._open)
        return self._opening

    def _open(self) -> None:
        from prosima.app.session import Session

        if self.settings.torch_threads is not None:
            import torch

            torch.set_num_threads(self.settings.torch_threads)
        try:
            self._session = Session.open(
                self.settings.ledger, self.settings.consensus, trusted=self.settings.trusted
            )
        except Exception as exc:
            self.problem = str(exc) or type(exc).__name__
            log.error("the ledger %s could not be opened: %s", self.settings.ledger, self.problem)

    @property
    def ready(self) -> bool:
        """Whether the ledger is open and the models are loaded."""
        return self._session is not None

    @property
    def opening(self) -> bool:
        return self._opening is not None and not self._opening.done()

    def _run(self, work: Callable[[Session], T]) -> T:
        session = self._session
        if session is None:
            raise NotReady(f"the service could not open its ledger: {self.problem or 'not started'}")
        with session.lock:
            session.refresh()
            return work(session)

    def submit(self, work: Callable[[Session], T]) -> Future[T]:
        """Queue ``work(session)`` on the ledger thread."""
        return self._pool.submit(self._run, work)

    async def call(self, work: Callable[[Session], T]) -> T:
        """Run ``work(session)`` on the ledger thread and wait for it without blocking the server."""
        return await asyncio.wrap_future(self.submit(work))

    def close(self) -> None:
        """Let queued work finish, then close the session on its own thread and stop the thread."""
        self._pool.submit(self._close).result()
        self._pool.shutdown(wait=True)

    def _close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.close()
