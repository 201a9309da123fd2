"""Anchor image files (Protocol 2): every slice of every file, committed through the ledger's
consensus, each outcome reported as it is known."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from prosima.app.ledger_access import open_provenance
from prosima.errors import InputError
from prosima.imaging.io import read_input
from prosima.ledger.sim.byzantine import FaultSchedule
from prosima.provenance.anchor import (
    AnchorEvent,
    AnchorReport,
    anchor_run,
    rehearse_faults,
    slices_of,
    spread_origins,
)

ORIGINS_HELP = "local, spread or a node index"


def anchor_origins(spec: str, nodes: int, count: int, seed: int) -> list[int] | None:
    """The origin node of each of ``count`` images for ``spec``: ``local`` (``None``: the local
    node), ``spread`` (one drawn per image from ``seed``) or one node index for all."""
    if spec == "local":
        return None
    if spec == "spread":
        return spread_origins(nodes, count, seed=seed)
    if spec.isdigit():
        if int(spec) >= nodes:
            raise InputError(f"--origins {spec}: the committee has nodes 0 to {nodes - 1}")
        return [int(spec)] * count
    raise InputError(f"--origins must be {ORIGINS_HELP}, got {spec!r}")


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
) -> AnchorReport:
    """Anchor every image (every slice of a volume) in ``images``, ``batch`` per consensus round.

    ``byzantine`` rehearses faulty committee nodes (``silent@1``; inproc only) and ``on_faults``
    gets their schedule before the first commit; ``origins`` says which node signs each image.
    Images already anchored are reported, not committed again; ``on_event`` gets each outcome as
    soon as it is known. The report lists every image, dropped ones included."""
    if byzantine and consensus != "inproc":
        raise InputError("--byzantine rehearses faulty nodes in this process: use it with --consensus inproc")
    if origins != "local" and consensus == "direct":
        raise InputError("--origins needs a consensus committee (--consensus inproc or mpi)")
    items = [item for path in images for item in slices_of(read_input(path)[0])]  # verify's rule
    with open_provenance(ledger, consensus) as prov:
        if byzantine:
            schedule = rehearse_faults(prov, byzantine, seed=seed)
            if on_faults is not None:
                on_faults(schedule)
        nodes = prov.committee.n if prov.committee is not None else 1
        where = anchor_origins(origins, nodes, len(items), seed)
        return anchor_run(prov, items, batch=batch, on_event=on_event, origins=where, resubmit=resubmit)
