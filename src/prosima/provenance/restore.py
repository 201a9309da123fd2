"""Restoration (Protocol 3): find the anchored original of a corrupted image (by record id, or by
nearest-neighbour search over the anchored fingerprints), check its fingerprint against the ledger,
restore shard by shard conditioned on it, write the result in the input's format, and commit an
``image.restored`` transaction naming input, output, model version and parameters.

The output's digest is taken from the file as written and read back, so what is recorded is exactly
what a later reader decodes. The file is written under a temporary name and moved into place only
after its transaction is committed: a failed commit leaves neither a file nor a record.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from prosima.imaging.io import (
    LoadedImage,
    read_image_2d,
    write_derived_dicom,
    write_nifti,
    write_npy,
    write_png,
)
from prosima.ledger.directory import Entry
from prosima.ledger.transaction import TxKind
from prosima.models.checkpoint import state_digest
from prosima.models.fingerprint import Fingerprint, compute_fingerprints
from prosima.models.inference import restore_by_shards
from prosima.models.pretrained import load_model_ref
from prosima.provenance.context import DEFAULT_GENERATOR, Provenance
from prosima.provenance.index import Indexed
from prosima.provenance.intensity import from_model, model_range, to_model
from prosima.provenance.model_versions import find_versions
from prosima.provenance.pixels import pixel_digest, shard_digests
from prosima.provenance.records import RestorationRecord

OUTPUT_SUFFIXES = (".png", ".npy", ".nii", ".nii.gz", ".dcm")


class RestoreError(ValueError):
    """A restoration that cannot be done; nothing was written or committed."""


@dataclass(frozen=True)
class Generator:
    """A loaded generator and the names the ledger knows it by."""

    model: nn.Module
    digest: str
    name: str

    @classmethod
    def load(cls, ref: str = DEFAULT_GENERATOR) -> Generator:
        model, payload = load_model_ref(ref, "generator")
        return cls(model, state_digest(model.state_dict()), str(payload.get("name") or ref))


@dataclass(frozen=True)
class Restored:
    """A committed restoration and how its original was found."""

    record: RestorationRecord
    tx: str
    height: int
    out: Path
    match: dict[str, Any]
    model_anchored: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "tx": self.tx,
            "height": self.height,
            "out": str(self.out),
            "match": self.match,
            "model_anchored": self.model_anchored,
            "record": self.record.to_json(),
        }


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def restoration_record(
    prov: Provenance,
    generator: Generator,
    corrupted: np.ndarray,
    written: np.ndarray,
    original_tx: str,
    params: dict[str, str],
) -> RestorationRecord:
    """The record of one restored image: the input's and the written output's pixel digests (and the
    output's shard digests), the original, the model and the encoder, and ``params``."""
    _, shards = shard_digests(written, prov.k)
    return RestorationRecord(
        input_pixels=pixel_digest(corrupted).hex(),
        output_pixels=pixel_digest(written).hex(),
        output_shard_pixels=[s.hex() for s in shards],
        original=original_tx,
        model=generator.digest,
        model_name=generator.name,
        encoder=prov.encoder_digest,
        params={"k": str(prov.k), **params},
    )


def find_original(
    prov: Provenance, unit: np.ndarray, record_tx: str | None
) -> tuple[Indexed, Fingerprint, dict[str, Any]]:
    """The anchor to condition on, its checked fingerprint, and how it was chosen."""
    if record_tx is not None:
        try:
            item = prov.index.anchor(record_tx)
        except KeyError as exc:
            raise RestoreError(str(exc.args[0])) from None
        fp = prov.anchored_fingerprint(item.record)  # type: ignore[arg-type]
        if fp.shape != unit.shape:
            raise RestoreError(
                f"record {record_tx} is of an image of shape {fp.shape}, the input is {unit.shape}"
            )
        return item, fp, {"method": "record", "tx": item.tx}
    query = compute_fingerprints(prov.encoder, unit, prov.k)
    best = prov.nearest_anchor(query)
    if best is None:
        raise RestoreError(f"no anchored image of shape {unit.shape} on this ledger to restore against")
    item, fp, cosines = best
    similarity = float(np.mean(cosines))
    return (
        item,
        fp,
        {"method": "nearest", "tx": item.tx, "similarity": similarity, "distance": 1.0 - similarity},
    )


def _write(
    path: Path, unit: np.ndarray, loaded: LoadedImage, value_range: tuple[float, float], note: str
) -> None:
    suffix = _suffix(path)
    meta = loaded.meta
    if suffix == ".png":
        bits = 16 if meta.original_dtype == "uint16" else 8
        write_png(path, from_model(unit, value_range), data_range=value_range, bits=bits)
    elif suffix == ".npy":
        write_npy(path, from_model(unit, value_range))
    elif suffix in (".nii", ".nii.gz"):
        write_nifti(path, from_model(unit, value_range), like=meta.path)  # the input's header geometry
    else:
        write_derived_dicom(path, from_model(unit, value_range), meta.path, derivation_description=note)


def restore_file(
    prov: Provenance,
    corrupted: str | Path,
    out: str | Path,
    generator: Generator,
    *,
    record_tx: str | None = None,
    overlap: int = 16,
    timings: dict[str, list[float]] | None = None,
) -> Restored:
    """Restore ``corrupted`` into ``out`` and commit the restoration (see the module note)."""
    t_start = time.perf_counter()
    out = Path(out)
    loaded = read_image_2d(corrupted)
    suffix = _suffix(out)
    if suffix not in OUTPUT_SUFFIXES:
        raise RestoreError(f"--out {out}: must end in one of {', '.join(OUTPUT_SUFFIXES)}")
    if (suffix == ".dcm") != (loaded.meta.format == "dicom"):
        raise RestoreError(
            "a DICOM input is restored into a derived DICOM (.dcm) and only a DICOM input can be"
        )
    if out.exists():
        raise RestoreError(f"--out {out} exists; refusing to overwrite it")
    value_range = model_range(loaded)
    unit = to_model(loaded.array, value_range)
    item, fp, match = find_original(prov, unit, record_tx)
    t_match = time.perf_counter()
    restored = restore_by_shards(generator.model, unit, fp, k=prov.k, overlap=overlap)
    t_restore = time.perf_counter()
    note = (
        f"Restored by PROSIMA {generator.name} (weights {generator.digest[:16]}) conditioned on the "
        f"anchored fingerprints of record {item.tx[:16]}"
    )
    tmp = out.with_name(f".prosima-tmp-{out.name}")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        _write(tmp, restored, loaded, value_range, note)
        written = read_image_2d(tmp).array  # an X x Y x 1 NIfTI is its one slice
        anchored = bool(find_versions(prov.ledger, generator.digest))
        record = restoration_record(
            prov,
            generator,
            loaded.array,
            written,
            item.tx,
            {
                "overlap": str(overlap),
                "match": match["method"],
                **({"similarity": repr(match["similarity"])} if "similarity" in match else {}),
                "range": f"{value_range[0]!r},{value_range[1]!r}",
            },  # no file names: they may name the patient, and the ledger cannot forget
        )
        t_write = time.perf_counter()
        block = prov.commit(
            [Entry(record.payload(), TxKind.IMAGE_RESTORED, bytes.fromhex(record.output_pixels))]
        )
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    if timings is not None:
        timings.setdefault("match", []).append(t_match - t_start)
        timings.setdefault("restore", []).append(t_restore - t_match)
        timings.setdefault("write", []).append(t_write - t_restore)
        timings.setdefault("commit", []).append(time.perf_counter() - t_write)
    return Restored(record, block.txs[0].tx_id.hex(), block.header.height, out, match, anchored)
