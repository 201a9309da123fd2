"""Restore a corrupted file (Protocol 3) conditioned on its anchored original and commit the
restoration: a 2-D image (optionally with a signed C2PA manifest and an in-toto statement), or a
volume slice by slice."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prosima.app.ledger_access import open_provenance
from prosima.errors import InputError
from prosima.imaging.io import is_volume, read_image
from prosima.provenance.context import DEFAULT_GENERATOR, Provenance
from prosima.provenance.exports import ExportError
from prosima.provenance.file_exports import restoration_statement, sign_restoration_c2pa, signed
from prosima.provenance.match_rule import MatchRule
from prosima.provenance.pixels import pixel_digest
from prosima.provenance.restore import Generator, Restored
from prosima.provenance.restore import restore_file as restore_into
from prosima.provenance.restore_volume import RestoredVolume, restore_volume_file

VOLUME_GENERATOR = "pretrained:prosima-volume"  # 2.5-D: reads neighbouring slices


@dataclass(frozen=True)
class RestoreResult:
    """A committed 2-D restoration; ``c2pa_certs``: where the certificates of the C2PA manifest
    signed into the output are kept (``None``: no manifest); ``intoto``: the restoration's in-toto
    statement about the output file, signed (``None``: not asked for)."""

    restored: Restored
    c2pa_certs: Path | None = None
    intoto: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return self.restored.to_json()


def _sign_c2pa(prov: Provenance, done: Restored, cert_dir: Path, parent: Path) -> None:
    """Sign the restoration's C2PA manifest (an edit of ``parent``, carrying the in-toto statement)
    into its PNG; the pixels (and so the recorded digest) are unchanged, which is checked."""
    staged = done.out.with_name(f".prosima-c2pa-{done.out.name}")
    try:
        sign_restoration_c2pa(prov, done.tx, done.out, staged, parent, cert_dir)
        if pixel_digest(read_image(staged).array).hex() != done.record.output_pixels:
            raise ExportError("signing the C2PA manifest changed the pixels; output left unsigned")
        staged.replace(done.out)
    finally:
        staged.unlink(missing_ok=True)


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
    rule = rule or MatchRule()
    if not out.parent.is_dir():
        raise InputError(f"--out {out}: the folder {out.parent} does not exist; create it first")
    if is_volume(corrupted):
        if record is not None or c2pa_certs is not None or intoto:
            raise InputError(
                "--record, --c2pa and --intoto apply to 2-D images; a volume's slices are matched one by one"
            )
        if consensus == "mpi":
            raise InputError(
                "restore commits through --consensus inproc or direct; MPI is for 'prosima anchor'"
            )
        generator = Generator.load(model or VOLUME_GENERATOR)
        with open_provenance(ledger, consensus) as prov:
            return restore_volume_file(prov, corrupted, out, generator, rule=rule)
    if consensus == "mpi":
        raise InputError(
            "restore commits one record through --consensus inproc or direct; MPI is for 'prosima anchor'"
        )
    if c2pa_certs is not None and out.suffix.lower() != ".png":
        raise InputError("--c2pa manifests are signed into PNG outputs only")
    generator = Generator.load(model or DEFAULT_GENERATOR)
    with open_provenance(ledger, consensus) as prov:
        done = restore_into(prov, corrupted, out, generator, record_tx=record, rule=rule)
        if c2pa_certs is not None:
            _sign_c2pa(prov, done, c2pa_certs, corrupted)
        statement = signed(prov, restoration_statement(prov, done.tx, done.out)) if intoto else None
    return RestoreResult(done, c2pa_certs, statement)
