"""Anchor every instance stored into an Orthanc archive, by following its changes feed.

Why the changes feed and not an Orthanc hook (a Lua ``OnStoredInstance`` script or a Python plugin
calling the service): the feed is a durable, numbered log that Orthanc keeps in its own index, so a
watcher that was stopped, busy or restarted catches up from the last position it saved and misses
nothing, while a hook fires once, inside the archive's process, and an instance stored while the
service is down or the call fails is never anchored unless the hook queues and retries (the feed,
written again). The feed also needs nothing installed or configured in the archive (a stock Orthanc,
its ordinary REST login, no credentials of the ledger kept in Orthanc's configuration) and keeps
the ledger's code out of the archive's process. The price is latency: an instance is anchored on
the next poll (an interval of about a second), not at once.

Exactly once: the position (the last change whose instances are on the ledger) is saved atomically
in the ledger folder only after those instances are committed. A crash in between makes the next
run see them again, and anchoring reports pixels already on the ledger instead of committing them
twice.

What is not anchored, and why it is reported instead:
- an instance whose pixels are a restoration recorded on this ledger (PROSIMA's own store-back,
  which verifies as that restoration and must not become an "acquisition");
- an instance whose SOP Instance UID is linked (by its keyed hash) to anchored pixels that differ
  from its own: a changed copy stored under an anchored identity, never a new original;
- an instance that cannot be anchored (no pixel data, multi-frame, unreadable), with the reason;
- an instance deleted from the archive before it was read.

Records link to instances only by the site key's keyed hashes of their UIDs (as every anchor does);
the Orthanc instance ids in the report (unkeyed hashes of the UIDs, Orthanc's own) are for this
machine's output and never enter the ledger.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prosima.errors import InputError
from prosima.pacs.orthanc_client import Change, OrthancClient, OrthancError, OrthancNotFound
from prosima.pacs.watch_state import archive_key, read_position, watch_lock, write_position

if TYPE_CHECKING:
    from prosima.app.session import Session
    from prosima.provenance.anchor import AnchorInput, AnchorReport

DEFAULT_PAGE = 100
DEFAULT_INTERVAL_S = 1.0
COMMITTED = "committed"
ALREADY_ANCHORED = "already-anchored"
RESTORATION = "restoration"
CHANGED = "changed"
SKIPPED = "skipped"


class WatchError(OrthancError):
    """The watcher could not go on; its position is left before the changes it did not finish."""


@dataclass(frozen=True)
class WatchEvent:
    """What became of one stored instance: its change number, Orthanc id, outcome (``committed``,
    ``already-anchored``, ``restoration``, ``changed`` or ``skipped``), why, and its record ids."""

    seq: int
    instance: str
    outcome: str
    detail: str = ""
    txs: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "instance": self.instance,
            "outcome": self.outcome,
            "detail": self.detail or None,
            "records": list(self.txs),
        }


@dataclass
class WatchReport:
    """One poll: the feed's position before and after, every instance's outcome, and a note when
    the archive's feed was behind the saved position (a new or reset archive, followed anew)."""

    archive: str
    start: int
    last: int
    events: list[WatchEvent] = field(default_factory=list)
    note: str | None = None

    def count(self, outcome: str) -> int:
        return sum(e.outcome == outcome for e in self.events)

    def to_json(self) -> dict[str, Any]:
        counts = {o: self.count(o) for o in (COMMITTED, ALREADY_ANCHORED, RESTORATION, CHANGED, SKIPPED)}
        return {
            "archive": self.archive,
            "since": self.start,
            "last": self.last,
            "counts": counts,
            "instances": [e.to_json() for e in self.events],
            "note": self.note,
        }


@dataclass(frozen=True)
class _Downloaded:
    seq: int
    instance: str
    path: Path
    inputs: list[AnchorInput]


def new_instances(changes: list[Change]) -> list[tuple[int, str]]:
    """The instances stored in ``changes``, each once (at its first change), in feed order."""
    seen: dict[str, int] = {}
    for c in changes:
        if c.change_type == "NewInstance" and c.resource_type == "Instance" and c.resource_id not in seen:
            seen[c.resource_id] = c.seq
    return [(seq, instance) for instance, seq in seen.items()]


class ArchiveWatcher:
    """Follows one archive's changes feed into one open ledger session."""

    def __init__(
        self,
        session: Session,
        client: OrthancClient,
        *,
        page: int = DEFAULT_PAGE,
        batch: int = 16,
        on_event: Callable[[WatchEvent], None] | None = None,
    ) -> None:
        self.session = session
        self.client = client
        self.page = page
        self.batch = batch
        self.on_event = on_event

    @property
    def archive(self) -> str:
        """What the saved position is kept under: the archive's id when known, else its URL."""
        return archive_key(self.client.url, self.client.archive_id)

    def poll(self) -> WatchReport:
        """Process every change after the saved position up to the feed's end, saving the position
        after each page; refused while another watcher follows an archive into this ledger."""
        with watch_lock(self.session.ledger):
            return self._poll()

    def run(
        self,
        *,
        interval: float = DEFAULT_INTERVAL_S,
        stop: threading.Event | None = None,
        on_report: Callable[[WatchReport], None] | None = None,
        on_error: Callable[[OrthancError], None] | None = None,
    ) -> None:
        """Poll every ``interval`` seconds until ``stop`` is set, holding the watcher lock. A poll
        that fails (the archive down, an answer refused) goes to ``on_error`` and the next poll
        tries again from the saved position; without ``on_error`` the failure ends the run."""
        stop = stop or threading.Event()
        with watch_lock(self.session.ledger):
            while not stop.is_set():
                try:
                    report = self._poll()
                except OrthancError as exc:
                    if on_error is None:
                        raise
                    on_error(exc)
                else:
                    if on_report is not None:
                        on_report(report)
                stop.wait(interval)

    def _poll(self) -> WatchReport:
        ledger = self.session.ledger
        since = read_position(ledger, self.archive)
        report = WatchReport(self.client.url, since, since)
        newest = self.client.last_change()
        if newest < since:
            report.note = (
                f"the archive's feed ends at change {newest}, before change {since} this ledger saw: "
                "a new or reset archive, followed from its start (what is on the ledger is not "
                "committed again)"
            )
            since = 0
            write_position(ledger, self.archive, since)  # noted once, not at every poll
        self.session.refresh()
        while True:
            page = self.client.changes(since, self.page)
            if page.last < since or (page.last == since and not page.done):
                raise WatchError(f"the archive's feed did not advance past change {since}")
            report.events += self._process(new_instances(page.changes))
            if page.last != since:
                write_position(ledger, self.archive, page.last)
            since = report.last = page.last
            if page.done:
                return report

    def _emit(self, event: WatchEvent) -> WatchEvent:
        if self.on_event is not None:
            self.on_event(event)
        return event

    def _process(self, instances: list[tuple[int, str]]) -> list[WatchEvent]:
        """Download, classify and anchor one page's new instances; their events in feed order."""
        if not instances:
            return []
        events: dict[int, WatchEvent] = {}
        with tempfile.TemporaryDirectory(prefix="prosima-watch-") as tmp:
            downloaded: list[_Downloaded] = []
            for seq, instance in instances:  # network reads, without holding the session
                got = self._download(seq, instance, Path(tmp))
                if isinstance(got, WatchEvent):
                    events[seq] = self._emit(got)
                else:
                    downloaded.append(got)
            with self.session.lock:  # the record index is read, then appended to
                ready: list[_Downloaded] = []
                for got in downloaded:
                    refusal = self._refusal(got)
                    if refusal is not None:
                        events[got.seq] = self._emit(refusal)
                    else:
                        ready.append(got)
                for event in self._anchor(ready) if ready else []:
                    events[event.seq] = self._emit(event)
        return [events[seq] for seq, _ in instances]

    def _download(self, seq: int, instance: str, folder: Path) -> _Downloaded | WatchEvent:
        """The instance's file and its 2-D images, or why it is skipped."""
        from prosima.imaging.io import read_input
        from prosima.provenance.anchor import slices_of

        path = folder / f"change-{seq}.dcm"
        try:
            self.client.instance_file(instance, path)
        except OrthancNotFound:
            return WatchEvent(seq, instance, SKIPPED, "deleted from the archive before it was read")
        try:
            loaded, _axis = read_input(path)
            inputs = list(slices_of(loaded))
        except InputError as exc:
            return WatchEvent(seq, instance, SKIPPED, str(exc).replace(str(path), f"instance {instance}"))
        return _Downloaded(seq, instance, path, inputs)

    def _refusal(self, got: _Downloaded) -> WatchEvent | None:
        """Why ``got`` must not be anchored (a recorded restoration, a changed copy), or ``None``."""
        from prosima.provenance.pixels import pixel_digest
        from prosima.provenance.site_key import SiteKey

        index = self.session.provenance.index
        key = SiteKey.find(self.session.ledger)
        for item in got.inputs:
            digest = pixel_digest(item.array).hex()
            held = [index.by_tx[tx] for tx in index.by_pixels.get(digest, [])]
            restorations = [h.tx for h in held if h.kind == "restoration"]
            if restorations:
                return WatchEvent(
                    got.seq,
                    got.instance,
                    RESTORATION,
                    f"its pixels are restoration {restorations[0]} on this ledger, not an acquisition",
                    tuple(restorations),
                )
            sop = item.instance.get("sop")
            if key is None or sop is None or any(h.kind == "anchor" for h in held):
                continue
            linked = self._anchored_pixels_of(key.id, key.digest("sop", sop))
            if linked:
                return WatchEvent(
                    got.seq,
                    got.instance,
                    CHANGED,
                    "its SOP Instance UID is anchored with other pixels: a changed copy, not anchored "
                    f"(the anchored original: {linked[0]})",
                    tuple(linked),
                )
        return None

    def _anchored_pixels_of(self, key_id: str, sop_digest: str) -> list[str]:
        """The anchors whose link (made with the site key ``key_id``) is of this SOP digest."""
        from prosima.provenance.index import is_anchor

        index = self.session.provenance.index
        return [
            item.tx
            for item in index.by_tx.values()
            if is_anchor(item)
            and item.record.link.get("key") == key_id
            and item.record.link.get("sop") == sop_digest
        ]

    def _anchor(self, ready: list[_Downloaded]) -> list[WatchEvent]:
        """Anchor the downloaded instances in one run (``batch`` per consensus round)."""
        report: AnchorReport = self.session.anchor([d.path for d in ready], batch=self.batch)
        if report.dropped:
            raise WatchError(
                f"{len(report.dropped)} image(s) were dropped by every consensus node; the position "
                f"stays before change {ready[0].seq}, so the next poll tries again"
            )
        events, at = [], 0
        for d in ready:
            results = report.anchored[at : at + len(d.inputs)]
            at += len(d.inputs)
            committed = any(not r.existing for r in results)
            txs = tuple(dict.fromkeys(r.tx for r in results))
            events.append(
                WatchEvent(d.seq, d.instance, COMMITTED if committed else ALREADY_ANCHORED, "", txs)
            )
        return events


def watch_once(
    session: Session,
    client: OrthancClient,
    *,
    on_event: Callable[[WatchEvent], None] | None = None,
    batch: int = 16,
) -> WatchReport:
    """Anchor every instance stored into the archive since the ledger's saved position."""
    return ArchiveWatcher(session, client, batch=batch, on_event=on_event).poll()
