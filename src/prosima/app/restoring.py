"""Restore a corrupted file (Protocol 3) conditioned on its anchored original and commit the
restoration: a 2-D image (optionally with a signed C2PA manifest and an in-toto statement), or a
volume slice by slice. One call opens the ledger for itself; many calls share a
``prosima.app.session.Session``."""

from __future__ import annotations

from pathlib import Path

from prosima.app.restoration import VOLUME_GENERATOR, RestoreResult, check_restore_request
from prosima.app.session import Session
from prosima.provenance.context import DEFAULT_GENERATOR
from prosima.provenance.match_rule import MatchRule
from prosima.provenance.restore_volume import RestoredVolume

__all__ = ["VOLUME_GENERATOR", "RestoreResult", "restore_file"]


def restore_file(
    corrupted: Path,
    ledger: Path,
    out: Path,
    *,
    rule: MatchRule | None = None,
    model: str | None = None,
    record: str | None = None,
    consensus: str = "inproc",
    c2pa_certs: Path | None = None,
    intoto: bool = False,
) -> RestoreResult | RestoredVolume:
    """Restore ``corrupted`` into ``out`` and commit the restoration record(s).

    The original is ``record`` when given, else the nearest anchor passing ``rule``; a
    ``NoConfidentMatch`` or ``ConstantImage`` refusal (nothing written) otherwise. ``model``
    (default: prosima-full for 2-D images, the 2.5-D prosima-volume for volumes) must be anchored.
    A volume (3-D NIfTI, DICOM series folder) is restored slice by slice, each matched to its own
    original, one record per slice in one block."""
    volume = check_restore_request(
        corrupted, out, consensus=consensus, record=record, c2pa_certs=c2pa_certs, intoto=intoto
    )
    ref = model or (VOLUME_GENERATOR if volume else DEFAULT_GENERATOR)
    with Session.open(ledger, consensus) as session:
        return session.restore(
            corrupted, out, model=ref, record=record, rule=rule, c2pa_certs=c2pa_certs, intoto=intoto
        )
