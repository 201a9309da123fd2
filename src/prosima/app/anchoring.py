"""Anchor image files (Protocol 2): every slice of every file, committed through the ledger's
consensus, each outcome reported as it is known. One call opens the ledger for itself; many calls
share a ``prosima.app.session.Session``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from prosima.app.origins import ORIGINS_HELP, anchor_origins
from prosima.app.session import Session
from prosima.errors import InputError
from prosima.ledger.sim.byzantine import FaultSchedule
from prosima.provenance.anchor import AnchorEvent, AnchorReport, read_inputs, rehearse_faults

__all__ = ["ORIGINS_HELP", "anchor_files", "anchor_origins"]


def anchor_files(
    images: Sequence[Path],
    ledger: Path,
    *,
    consensus: str = "inproc",
    batch: int = 16,
    origins: str = "local",
    byzantine: str = "",
    seed: int = 0,
    resubmit: bool = True,
    on_event: Callable[[AnchorEvent], None] | None = None,
    on_faults: Callable[[FaultSchedule], None] | None = None,
    on_read: Callable[[list[int]], None] | None = None,
    on_prepared: Callable[[int, int], None] | None = None,
) -> AnchorReport:
    """Anchor every image (every slice of a volume) in ``images``, ``batch`` per consensus round.

    ``byzantine`` rehearses faulty committee nodes (``silent@1``; inproc only) and ``on_faults``
    gets their schedule before the first commit; ``origins`` says which node signs each image.
    Images already anchored are reported, not committed again; ``on_event`` gets each outcome as
    soon as it is known. The report lists every image, dropped ones included. ``on_read`` hears how
    many images each file holds once all are read (before the ledger is opened), ``on_prepared``
    ``(done, total)`` as each new image is fingerprinted."""
    if byzantine and consensus != "inproc":
        raise InputError("--byzantine rehearses faulty nodes in this process: use it with --consensus inproc")
    if origins != "local" and consensus == "direct":
        raise InputError("--origins needs a consensus committee (--consensus inproc or mpi)")
    per_file = [read_inputs([path]) for path in images]  # verify's rule for what a volume is
    items = [item for file in per_file for item in file]
    if on_read is not None:
        on_read([len(file) for file in per_file])
    with Session.open(ledger, consensus) as session:
        if byzantine:
            schedule = rehearse_faults(session.provenance, byzantine, seed=seed)
            if on_faults is not None:
                on_faults(schedule)
        return session.anchor_inputs(
            items,
            batch=batch,
            on_event=on_event,
            origins=origins,
            seed=seed,
            resubmit=resubmit,
            on_prepared=on_prepared,
        )
