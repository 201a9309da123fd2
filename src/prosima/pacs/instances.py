"""Verify and restore images that live in the archive: an instance named by its Orthanc id or its
SOP Instance UID is read from Orthanc into a private temporary folder and judged by the same
session calls as a file; a restoration is written as a derived DICOM (a new series of the same
study whose Source Image Sequence names the restored instance) and stored back into Orthanc, then
read back to check that the archive kept its pixels."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prosima.errors import InputError
from prosima.pacs.orthanc_client import (
    OrthancClient,
    OrthancError,
    Stored,
    is_dicom_uid,
    is_orthanc_id,
)

if TYPE_CHECKING:
    from prosima.app.restoration import RestoreResult
    from prosima.app.session import Session
    from prosima.app.verify_results import VerifyResult, VolumeVerifyResult
    from prosima.provenance.match_rule import MatchRule


class InstanceRefError(InputError, ValueError):
    """Something given as an instance that is neither an Orthanc id nor a SOP Instance UID."""


def resolve_instance(client: OrthancClient, ref: str) -> str:
    """The Orthanc id of ``ref``: an Orthanc instance id as given, or the instance holding the SOP
    Instance UID ``ref``."""
    ref = ref.strip()
    if is_orthanc_id(ref):
        return ref
    if is_dicom_uid(ref):
        return client.find_instance(ref)
    raise InstanceRefError(
        f"{ref[:80]!r} is neither an Orthanc instance id (five groups of 8 hex digits) nor a SOP "
        "Instance UID (digits and dots, at most 64 characters)"
    )


@contextmanager
def downloaded(client: OrthancClient, instance_id: str) -> Iterator[Path]:
    """The DICOM file of ``instance_id`` in a private temporary folder, removed afterwards; named
    by the instance id, so that a refusal of the file names the instance."""
    with tempfile.TemporaryDirectory(prefix="prosima-instance-") as tmp:
        yield client.instance_file(instance_id, Path(tmp) / f"{instance_id}.dcm")


def verify_instance(
    session: Session, client: OrthancClient, instance: str
) -> VerifyResult | VolumeVerifyResult:
    """Verify the archive's instance ``instance`` (an Orthanc id or a SOP Instance UID) against the
    session's ledger: the same verdict as ``Session.verify`` gives for its file."""
    instance_id = resolve_instance(client, instance)
    with downloaded(client, instance_id) as path:
        return session.verify(path)


@dataclass(frozen=True)
class StoredRestoration:
    """A committed restoration of the archive's instance ``source``, stored back as ``stored``."""

    result: RestoreResult
    source: str
    stored: Stored

    def to_json(self) -> dict[str, Any]:
        restored = self.result.to_json()
        restored.pop("out", None)  # a temporary file, gone
        return restored | {
            "orthanc": {
                "source": self.source,
                "stored": self.stored.instance_id,
                "status": self.stored.status,
            }
        }


def _check_stored_pixels(client: OrthancClient, stored: Stored, expected: str, folder: Path) -> None:
    """Read the stored-back instance again and refuse when its pixels are not the recorded output's."""
    from prosima.imaging.io import read_image_2d
    from prosima.provenance.pixels import pixel_digest

    back = client.instance_file(stored.instance_id, folder / "stored.dcm")
    if pixel_digest(read_image_2d(back).array).hex() != expected:
        raise OrthancError(
            f"the archive holds instance {stored.instance_id} with other pixels than the restoration "
            "recorded (it transcoded or changed the file); it will not verify"
        )


def restore_instance(
    session: Session,
    client: OrthancClient,
    instance: str,
    *,
    model: str | None = None,
    record: str | None = None,
    rule: MatchRule | None = None,
) -> StoredRestoration:
    """Restore the archive's instance ``instance`` (an Orthanc id or a SOP Instance UID) against its
    anchored original (``record``, else the nearest passing ``rule``), commit the restoration, and
    store it into the archive as a derived series that references the instance."""
    from prosima.app.restoration import RestoreResult

    instance_id = resolve_instance(client, instance)
    with downloaded(client, instance_id) as path:
        out = path.with_name("restored.dcm")
        done = session.restore(path, out, model=model, record=record, rule=rule)
        if not isinstance(done, RestoreResult):  # a single file is never a volume
            raise InputError(f"instance {instance_id} was restored as a volume; store-back takes one image")
        stored = client.upload(done.restored.out)
        _check_stored_pixels(client, stored, done.restored.record.output_pixels, path.parent)
    return StoredRestoration(done, instance_id, stored)
