"""Verify a file against the ledger: is it exactly an anchored image or a trusted restoration, which
shards differ, which instance its record is of; for a 2-D image also its PROV and in-toto exports
and the tamper heatmap, for a volume every slice."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from prosima.app.ledger_access import open_provenance, rollback_problems
from prosima.errors import InputError
from prosima.imaging.io import LoadedImage, is_volume, read_image_2d, read_volume
from prosima.provenance.context import Provenance
from prosima.provenance.exports import ExportError
from prosima.provenance.file_exports import signed, verify_exports
from prosima.provenance.heatmap import save_heatmap
from prosima.provenance.intensity import model_range, to_model
from prosima.provenance.site_key import Resolution, SiteKey, instance_of, resolve
from prosima.provenance.verify import Verdict, verify_loaded, verify_volume


@dataclass(frozen=True)
class InstanceLink:
    """How a verdict's record's keyed link compares with the verified file's instance, and that
    instance's clear identifiers (for this machine's terminal only; never in ``to_json``)."""

    resolution: Resolution
    identifiers: dict[str, str]

    def text(self) -> str:
        return self.resolution.text(self.identifiers)

    def to_json(self) -> dict[str, Any]:
        return self.resolution.to_json()


@dataclass
class VerifyResult:
    """The verdict on a 2-D image, its instance link, its exports (``None`` where not asked for, or
    where ``export_note`` says why there is nothing to export) and the image as judged (``unit``,
    on [0, 1], cut into ``k`` shards) for the heatmap."""

    verdict: Verdict
    instance: InstanceLink | None
    unit: np.ndarray
    k: int
    prov_document: dict[str, Any] | None = None
    intoto: dict[str, Any] | None = None
    export_note: str | None = None

    @property
    def ok(self) -> bool:
        return self.verdict.ok

    def to_json(self) -> dict[str, Any]:
        return self.verdict.to_json() | {"instance": self.instance and self.instance.to_json()}


@dataclass
class VolumeVerifyResult:
    """The verdict on every slice of a volume, with each slice's instance link."""

    verdicts: list[Verdict]
    instances: list[InstanceLink | None]

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verdicts)

    def to_json(self) -> dict[str, Any]:
        slices = [
            v.to_json() | {"instance": i and i.to_json()}
            for v, i in zip(self.verdicts, self.instances, strict=True)
        ]
        return {"ok": self.ok, "slices": slices}


def _instances(
    prov: Provenance, verdicts: list[Verdict], loaded: LoadedImage, volume: bool = False
) -> list[InstanceLink | None]:
    """For each verdict (slice by slice), its record's instance link against the verified file's
    instance; ``None`` where nothing matched."""
    key = SiteKey.find(prov.ledger.path)
    out: list[InstanceLink | None] = []
    for z, v in enumerate(verdicts):
        tx = (v.record or v.nearest or {}).get("tx")
        instance = instance_of(loaded, z)
        found = resolve(prov.index, key, tx, instance, z if volume else None) if tx else None
        out.append(None if found is None else InstanceLink(found, instance))
    return out


def _distrust(verdicts: list[Verdict], problems: list[str]) -> None:
    """Fail every verdict for ``problems`` with the ledger itself (a rollback, a fork)."""
    for v in verdicts if problems else []:
        v.ok = False
        v.reasons += problems


def verify_file(
    image: Path,
    ledger: Path,
    *,
    registry: Path | None = None,
    since: Path | None = None,
    prov_export: bool = False,
    intoto_export: bool = False,
    heatmap: bool = False,
) -> VerifyResult | VolumeVerifyResult:
    """Verify ``image`` (a 2-D image, or every slice of a volume) against ``ledger``.

    ``registry``: trust only these node keys (else ``$PROSIMA_TRUSTED_REGISTRY``); ``since``: a
    tree head kept earlier that the ledger must extend. ``prov_export`` / ``intoto_export`` ask for
    the W3C PROV document and the signed in-toto statement of the verification, ``heatmap`` for
    the tamper heatmap: 2-D images only."""
    if is_volume(image):
        if heatmap or prov_export or intoto_export:
            raise InputError(
                "--heatmap, --prov and --intoto apply to 2-D images; verify a volume's slice for them"
            )
        with open_provenance(ledger, "direct", trusted=registry) as prov:
            verdicts = verify_volume(prov, image)
            instances = _instances(prov, verdicts, read_volume(image)[0], volume=True)
            _distrust(verdicts, rollback_problems(prov, since))
        return VolumeVerifyResult(verdicts, instances)
    loaded = read_image_2d(image)
    with open_provenance(ledger, "direct", trusted=registry) as prov:
        verdict = verify_loaded(prov, loaded)
        _distrust([verdict], rollback_problems(prov, since))
        result = VerifyResult(verdict, None, to_model(loaded.array, model_range(loaded)), prov.k)
        if prov_export or intoto_export:
            try:
                document, statement = verify_exports(prov, verdict, image)
            except ExportError as exc:  # the verdict still stands; only the exports have nothing to say
                result.export_note = str(exc)
            else:
                result.prov_document = document if prov_export else None
                result.intoto = signed(prov, statement) if intoto_export else None
        (result.instance,) = _instances(prov, [verdict], loaded)
    return result


def write_heatmap(result: VerifyResult, path: Path) -> Path:
    """The tamper heatmap of a verified 2-D image (differing shards, shard cosines) as a PNG."""
    v = result.verdict
    return save_heatmap(path, result.unit, result.k, v.differing_shards, v.shard_cosines, v.status)
