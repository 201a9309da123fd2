"""Opening a ledger directory for the image actions: the pinned node registry it must match, the
tree head kept earlier it must extend, and which process reports under MPI."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from prosima.ledger.errors import LedgerError

if TYPE_CHECKING:  # the provenance layer loads torch: only when a ledger is opened
    from prosima.provenance.context import Provenance

TRUSTED_REGISTRY_ENV = "PROSIMA_TRUSTED_REGISTRY"


def pinned_registry(trusted: Path | None) -> Path | None:
    """The registry the ledger must match: ``trusted``, else ``$PROSIMA_TRUSTED_REGISTRY``, else none."""
    if trusted is not None:
        return trusted
    configured = os.environ.get(TRUSTED_REGISTRY_ENV)
    return Path(configured) if configured else None


@contextmanager
def open_provenance(
    ledger: Path,
    consensus: str = "inproc",
    *,
    encoder: str | None = None,
    trusted: Path | None = None,
) -> Iterator[Provenance]:
    """The ledger at ``ledger`` with its provenance (closed on exit), committing the ``consensus``
    way, with the semantic ``encoder`` (default: the shipped one). Refused when a pinned registry
    (``trusted`` or ``$PROSIMA_TRUSTED_REGISTRY``) is not the ledger's: its node keys were replaced."""
    from prosima.ledger.log.directory import Ledger
    from prosima.ledger.log.registry import Registry
    from prosima.provenance.context import DEFAULT_ENCODER, Provenance

    pinned = pinned_registry(trusted)
    led = Ledger.open(ledger)
    try:
        if pinned is not None and Registry.load(pinned).digest != led.registry.digest:
            raise LedgerError(
                f"the ledger's node registry is not the pinned one ({pinned.name}): its node keys "
                "were replaced, so nothing it holds can be trusted"
            )
        yield Provenance.open(led, encoder=encoder or DEFAULT_ENCODER, consensus=consensus)
    finally:
        led.close()


def rollback_problems(prov: Provenance, kept: Path | None) -> list[str]:
    """Problems with the ledger against a tree head kept earlier (it shrank or forked since)."""
    if kept is None:
        return []
    from prosima.ledger.log.witness import read_head, since

    return [f"ledger: {p}" for p in since(prov.ledger, read_head(kept))]


def reports_results(consensus: str) -> bool:
    """Whether this process reports results: always, except MPI ranks other than 0."""
    if consensus != "mpi":
        return True
    from prosima.ledger.consensus.mpi import world

    return bool(world().Get_rank() == 0)
