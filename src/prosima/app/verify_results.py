"""What verifying a file answers: the verdict on a 2-D image or on every slice of a volume, each
with the link between its record and the verified file's instance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from prosima.imaging.io import LoadedImage
from prosima.provenance.context import Provenance
from prosima.provenance.site_key import Resolution, SiteKey, instance_of, resolve
from prosima.provenance.verify import Verdict


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


def instance_links(
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


def distrust(verdicts: list[Verdict], problems: list[str]) -> None:
    """Fail every verdict for ``problems`` with the ledger itself (a rollback, a fork)."""
    for v in verdicts if problems else []:
        v.ok = False
        v.reasons += problems
