"""A restoration asked for: what is refused before any work (the output's folder, options that
apply to 2-D images only, the consensus), and what a committed 2-D restoration answers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prosima.errors import InputError
from prosima.imaging.io import is_volume
from prosima.provenance.restore import Restored

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


def check_restore_request(
    corrupted: Path,
    out: Path,
    *,
    consensus: str,
    record: str | None = None,
    c2pa_certs: Path | None = None,
    intoto: bool = False,
) -> bool:
    """Refuse what can be refused from the request alone; whether ``corrupted`` is a volume."""
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
        return True
    if consensus == "mpi":
        raise InputError(
            "restore commits one record through --consensus inproc or direct; MPI is for 'prosima anchor'"
        )
    if c2pa_certs is not None and out.suffix.lower() != ".png":
        raise InputError("--c2pa manifests are signed into PNG outputs only")
    return False
