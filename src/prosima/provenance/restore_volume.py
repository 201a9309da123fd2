"""Restoring a whole volume (a NIfTI volume or a DICOM series folder), slice by slice.

Every slice was anchored as an image of its own (``prosima anchor`` on the volume), so every slice
of the corrupted volume is matched to its anchored original by fingerprint under the same rule as a
2-D image (``matching.MatchRule``: a volume with any slice that fails it, or with a constant slice,
is refused whole, the slices named, nothing written), restored conditioned on
that original's checked fingerprint (a 2.5-D generator also reads the slice's noisy neighbours) and
recorded by one ``image.restored`` transaction of its own: ``prosima verify`` then checks each
output slice exactly as it checks a restored 2-D image. All the slices' transactions go into one
block, so a volume is recorded whole or not at all, and the output (a NIfTI file, or a folder of
derived DICOM slices forming one new series) is moved into place only after that block is committed.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from prosima.imaging.io import (
    LoadedImage,
    read_dicom_series,
    read_image,
    read_volume,
    write_derived_dicom,
    write_nifti,
)
from prosima.ledger.log.directory import Entry
from prosima.ledger.log.transaction import TxKind
from prosima.models.inference import restore_volume
from prosima.provenance.context import Provenance, recorded_range
from prosima.provenance.index import Indexed
from prosima.provenance.intensity import from_model, model_range, to_model
from prosima.provenance.match_rule import MatchRule
from prosima.provenance.matching import (
    ConstantImage,
    Match,
    NoConfidentMatch,
    constant_value,
    match_original,
    volume_range,
)
from prosima.provenance.model_versions import find_versions
from prosima.provenance.records import AnchorRecord, RestorationRecord
from prosima.provenance.restore import (
    Generator,
    RestoreError,
    check_out_path,
    has_shape,
    require_anchored,
    restoration_record,
)

SHOWN_SLICES = 5  # refused slices described one by one

NIFTI_SUFFIXES = (".nii", ".nii.gz")


@dataclass(frozen=True)
class RestoredVolume:
    """A committed volume restoration: one record per slice, all in one block."""

    records: list[RestorationRecord]
    txs: list[str]
    height: int
    out: Path
    matches: list[dict[str, Any]]
    model_anchored: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "out": str(self.out),
            "model_anchored": self.model_anchored,
            "slices": [
                {"slice": i, "tx": tx, "match": m, "record": r.to_json()}
                for i, (tx, m, r) in enumerate(zip(self.txs, self.matches, self.records, strict=True))
            ],
        }


def _original_range(
    originals: list[Indexed[AnchorRecord]], own: tuple[float, float]
) -> tuple[tuple[float, float], str]:
    """The stored values that mapped to [0, 1] when the matched originals were anchored, if they all
    share one (slices of one anchored volume); else the corrupted volume's own range.

    Noise widens a volume's min-max range, so scaling a corrupted copy by its own range would shift
    and shrink it against the intensities the fingerprints were made from.
    """
    ranges = {recorded_range(item.record) for item in originals}
    if len(ranges) == 1 and (found := ranges.pop()) is not None:
        return found, "original"
    return own, "input"


def _refuse_constant(planes: np.ndarray) -> None:
    constant = [z for z, plane in enumerate(planes) if constant_value(plane) is not None]
    if constant:
        raise ConstantImage(
            f"nothing restored: slices {constant} of the volume are constant images (no information: "
            "nothing to restore, no original they can be matched to)"
        )


def _refuse_unmatched(matches: list[Match], rule: MatchRule) -> None:
    bad = [z for z, m in enumerate(matches) if not m.accepted]
    if not bad:
        return
    lines = [f"slice {z}: {matches[z].reason}; nearest {matches[z].named(2)}" for z in bad[:SHOWN_SLICES]]
    more = f" (and {len(bad) - SHOWN_SLICES} more)" if len(bad) > SHOWN_SLICES else ""
    raise NoConfidentMatch(
        f"no confident match for {len(bad)} of {len(matches)} slices {bad}, so nothing of the volume "
        f"is restored. " + " | ".join(lines) + f"{more}. The rule is {rule.options()}; restore the "
        "slices one by one with --record ID if you know their originals"
    )


def _check_out(out: Path, loaded: LoadedImage) -> None:
    name = out.name.lower()
    if loaded.meta.format == "nifti" and not name.endswith(NIFTI_SUFFIXES):
        raise RestoreError(f"--out {out}: a NIfTI volume is restored into a .nii or .nii.gz file")
    if loaded.meta.format == "dicom" and name.endswith((".dcm", *NIFTI_SUFFIXES)):
        raise RestoreError(f"--out {out}: a DICOM series is restored into a new folder of derived slices")
    check_out_path(out)


def _write(tmp: Path, stored: np.ndarray, loaded: LoadedImage, note: str, digest: str) -> np.ndarray:
    """Write the output; return the slices ``[Z, H, W]`` exactly as a reader decodes them."""
    meta = loaded.meta
    if meta.format == "nifti":
        write_nifti(tmp, np.moveaxis(stored, 0, 2), like=meta.path)  # the input's header geometry
        return np.moveaxis(read_image(tmp).array, 2, 0)
    tmp.mkdir()
    for i, (name, plane) in enumerate(zip(meta.extra["files"], stored, strict=True)):
        write_derived_dicom(
            tmp / f"{i + 1:04d}.dcm",
            plane,
            Path(meta.path) / name,
            derivation_description=note,
            uid_entropy=[digest],
        )
    return read_dicom_series(tmp).array


def restore_volume_file(
    prov: Provenance,
    corrupted: str | Path,
    out: str | Path,
    generator: Generator,
    *,
    rule: MatchRule | None = None,
    require_anchored_model: bool = True,
) -> RestoredVolume:
    """Restore every slice of ``corrupted`` into ``out`` and commit one record per slice (module note)."""
    out = Path(out)
    rule = rule or MatchRule()
    loaded, axis = read_volume(corrupted)
    _check_out(out, loaded)
    value_range = model_range(loaded)
    inputs = np.moveaxis(loaded.array, axis, 0)
    if not has_shape(prov, inputs.shape[1:]):
        raise RestoreError(f"no anchored image of shape {inputs.shape[1:]} on this ledger to restore against")
    _refuse_constant(inputs)
    if require_anchored_model:
        require_anchored(prov, generator)
    ranges = volume_range(prov, inputs, value_range)
    matches = [
        match_original(prov, plane, value_range, fixed_range=False, rule=rule, ranges=ranges)
        for plane in inputs
    ]
    _refuse_unmatched(matches, rule)
    bests = [m.best for m in matches if m.best is not None]  # every accepted match has one
    originals = [best.item for best in bests]
    found = [
        {
            "method": "nearest",
            "tx": best.tx,
            "similarity": best.similarity,
            "margin": m.margin,
            "rule": rule.to_json(),
        }
        for m, best in zip(matches, bests, strict=True)
    ]
    fps = [prov.anchored_fingerprint(item.record) for item in originals]
    value_range, range_from = _original_range(originals, value_range)
    unit = to_model(inputs, value_range)
    restored = restore_volume(generator.model, unit, fps)
    note = (
        f"Restored by PROSIMA {generator.name} (weights {generator.digest[:16]}) slice by slice, each "
        "conditioned on the anchored fingerprints of its matched original"
    )
    tmp = out.with_name(f".prosima-tmp-{out.name}")
    try:
        written = _write(tmp, from_model(restored, value_range), loaded, note, generator.digest)
        anchored = bool(find_versions(prov.ledger, generator.digest))
        records = [
            restoration_record(
                prov,
                generator,
                inputs[z],
                plane,
                item.tx,
                {
                    "mode": "volume",
                    "slice": str(z),
                    "axis": str(axis),
                    "slices": str(len(written)),
                    "context": str(generator.model.spec.context),
                    "match": "nearest",
                    "similarity": repr(match["similarity"]),
                    **({"margin": repr(match["margin"])} if match["margin"] is not None else {}),
                    "range": f"{value_range[0]!r},{value_range[1]!r}",
                    "range_from": range_from,
                },
            )
            for z, (item, match, plane) in enumerate(zip(originals, found, written, strict=True))
        ]
        block = prov.commit(
            [Entry(r.payload(), TxKind.IMAGE_RESTORED, bytes.fromhex(r.output_pixels)) for r in records]
        )
        assert block is not None  # one entry per slice was committed
        tmp.replace(out)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp)
        else:
            tmp.unlink(missing_ok=True)
    return RestoredVolume(
        records, [tx.tx_id.hex() for tx in block.txs], block.header.height, out, found, anchored
    )
