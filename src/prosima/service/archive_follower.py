"""The service's follower of its archive: every ``interval`` seconds one poll of the archive's
changes feed (``ArchiveWatcher.poll``), run as work on the ledger thread like any request, so the
instances stored since the last poll are anchored by the service's own session. A poll that fails
(the archive down, another watcher on the ledger) is logged and kept for ``GET /v1/pacs/watch``;
the next poll tries again from the saved position."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prosima.service.ledger_worker import LedgerWorker

if TYPE_CHECKING:
    from prosima.app.session import Session
    from prosima.pacs.orthanc_client import OrthancClient

log = logging.getLogger("prosima.service")


def poll_archive(session: Session, client: OrthancClient) -> dict[str, Any]:
    """One poll of ``client``'s changes feed into ``session``'s ledger, as JSON."""
    from prosima.pacs.watcher import ArchiveWatcher

    return ArchiveWatcher(session, client).poll().to_json()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ArchiveFollower:
    """Polls the archive every ``interval`` seconds on the ledger thread until stopped."""

    def __init__(self, worker: LedgerWorker, client: OrthancClient, interval: float) -> None:
        self.worker = worker
        self.client = client
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._last: dict[str, Any] | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._follow, name="prosima-archive-follower", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                report = self.worker.submit(lambda session: poll_archive(session, self.client)).result()
            except Exception as exc:  # the archive down, another watcher, the ledger not open
                message = str(exc) or type(exc).__name__
                log.warning("polling the archive %s failed: %s", self.client.url, message)
                self._record({"ok": False, "at": _now(), "error": message})
            else:
                if report["note"]:
                    log.warning("archive %s: %s", self.client.url, report["note"])
                if report["instances"]:
                    log.info(
                        "archive %s: changes %s..%s %s",
                        self.client.url,
                        report["since"],
                        report["last"],
                        report["counts"],
                    )
                self._record({"ok": True, "at": _now(), "report": report})

    def _record(self, outcome: dict[str, Any]) -> None:
        with self._lock:
            self._last = outcome

    def to_json(self) -> dict[str, Any]:
        """The follower's interval and its last poll (its report, or why it failed)."""
        with self._lock:
            return {"interval_s": self.interval, "last_poll": self._last}

    def stop(self) -> None:
        """Stop after the poll in progress (if any) is done."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
