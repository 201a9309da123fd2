"""Group commit for one-image anchor requests: requests that arrive while the ledger thread is busy
wait in a queue, and the next piece of work commits all of them (up to ``most``) in one consensus
round, so many clients each anchoring one slice share rounds instead of queueing a round apiece.

Each request's file is read and checked before it joins the queue, so a refused input is answered
alone and never holds up, or fails, the others. Should a shared round still fail, each waiting
image is retried in a round of its own and answered with its own outcome.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prosima.service.ledger_worker import LedgerWorker

if TYPE_CHECKING:
    from prosima.app.session import Session
    from prosima.provenance.anchor import AnchorEvent, AnchorInput

Timing = Callable[["Session"], dict[str, Any]]


@dataclass(frozen=True)
class QueuedOutcome:
    """One image's outcome, the timing of the round(s) that committed it, and how many images
    shared its round."""

    result: AnchorEvent
    timing: dict[str, Any]
    shared_with: int


@dataclass
class _Waiting:
    item: AnchorInput
    future: Future[QueuedOutcome]


class AnchorQueue:
    """One-image anchors waiting for the ledger thread; ``timing(session)`` reports a round's time."""

    def __init__(self, worker: LedgerWorker, timing: Timing, most: int = 16) -> None:
        if most < 1:
            raise ValueError("a round takes at least one image")
        self._worker = worker
        self._timing = timing
        self._most = most
        self._lock = threading.Lock()
        self._waiting: list[_Waiting] = []
        self._scheduled = False

    async def anchor(self, item: AnchorInput) -> QueuedOutcome:
        """Queue ``item`` and wait for its outcome without blocking the server."""
        waiting = _Waiting(item, Future())
        with self._lock:
            self._waiting.append(waiting)
            schedule = not self._scheduled
            self._scheduled = True
        if schedule:
            self._schedule()
        return await asyncio.wrap_future(waiting.future)

    def _schedule(self) -> None:
        done = self._worker.submit(self._drain)
        done.add_done_callback(self._after)

    def _after(self, done: Future[None]) -> None:
        """A drain that could not run (the ledger is not open) fails everything still waiting."""
        problem = done.exception()
        if problem is None:
            return
        with self._lock:
            waiting, self._waiting = self._waiting, []
            self._scheduled = False
        for w in waiting:
            w.future.set_exception(problem)

    def _take(self) -> list[_Waiting]:
        with self._lock:
            batch, self._waiting = self._waiting[: self._most], self._waiting[self._most :]
            return batch

    def _drain(self, session: Session) -> None:
        """On the ledger thread: commit what waits, ``most`` per round, until nothing does."""
        while True:
            batch = self._take()
            if not batch:
                with self._lock:
                    if not self._waiting:
                        self._scheduled = False
                        return
                continue
            self._commit(session, batch)

    def _commit(self, session: Session, batch: list[_Waiting]) -> None:
        try:
            results = session.anchor_inputs([w.item for w in batch], batch=len(batch)).results
            if len(results) != len(batch):
                raise RuntimeError(f"{len(results)} outcomes for {len(batch)} images")
        except Exception as exc:
            if len(batch) == 1:
                batch[0].future.set_exception(exc)
                return
            for w in batch:  # each on its own, so one image's failure is its own answer
                self._commit(session, [w])
            return
        timing = self._timing(session)
        for w, result in zip(batch, results, strict=True):
            w.future.set_result(QueuedOutcome(result, timing, len(batch)))
