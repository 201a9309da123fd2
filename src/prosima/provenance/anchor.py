"""Anchoring (Protocol 2): cut each image into K GFT shards, hash each shard's decoded pixels,
fingerprint each shard with the semantic encoder, put the fingerprints in the content-addressed
store, and commit one ``image.anchored`` transaction per image (a batch per consensus round)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prosima.imaging.io import LoadedImage, read_image
from prosima.ledger.directory import Entry
from prosima.ledger.transaction import TxKind
from prosima.models.fingerprint import Fingerprint, compute_fingerprints
from prosima.provenance.context import Provenance
from prosima.provenance.fingerprint_store import fingerprint_digest, shard_fingerprint_digests
from prosima.provenance.intensity import model_range, to_model
from prosima.provenance.pixels import pixel_digest, shard_digests
from prosima.provenance.records import AnchorRecord


class AnchorError(ValueError):
    """An image that cannot be anchored; nothing was committed."""


@dataclass(frozen=True)
class AnchorInput:
    """One 2-D image to anchor: its stored values, the range that maps them to [0, 1], its source."""

    array: np.ndarray
    value_range: tuple[float, float]
    source: dict[str, str]


@dataclass(frozen=True)
class Anchored:
    """An image on the ledger: its record, transaction id and block height."""

    record: AnchorRecord
    tx: str
    height: int
    source: dict[str, str]

    def to_json(self) -> dict[str, object]:
        return {
            "tx": self.tx,
            "height": self.height,
            "root": self.record.root.hex(),
            "pixels": self.record.pixels,
            "source": self.source,
        }


def slices_of(loaded: LoadedImage) -> Iterator[AnchorInput]:
    """The 2-D images in a loaded file: itself, or each slice along the first axis of a volume
    (a NIfTI volume or DICOM series), all scaled with the volume's one range."""
    meta = loaded.meta
    base = {"file": Path(meta.path).name, "format": meta.format}
    if meta.modality:
        base["modality"] = meta.modality
    base |= {k: str(v) for k, v in meta.identifiers.items()}
    value_range = model_range(loaded)
    arr = loaded.array
    if arr.ndim == 2:
        yield AnchorInput(arr, value_range, base)
        return
    if meta.format in ("png", "jpeg"):
        raise AnchorError(f"{meta.path}: colour images are not anchored; convert to grayscale first")
    axis = 0 if meta.format == "dicom" else 2
    for i in range(arr.shape[axis]):
        yield AnchorInput(
            np.take(arr, i, axis=axis), value_range, base | {"slice": str(i), "axis": str(axis)}
        )


def read_inputs(paths: Iterable[str | Path]) -> list[AnchorInput]:
    """Every 2-D image in ``paths`` (files, or DICOM series folders), read before anything is committed."""
    from prosima.imaging.io import read_dicom_series

    out: list[AnchorInput] = []
    for path in paths:
        p = Path(path)
        loaded = read_dicom_series(p) if p.is_dir() else read_image(p)
        out.extend(slices_of(loaded))
    return out


def make_record(prov: Provenance, item: AnchorInput) -> tuple[AnchorRecord, Fingerprint]:
    """The anchor record and fingerprint of one image (nothing stored or committed)."""
    arr = item.array
    if arr.ndim != 2:
        raise AnchorError(f"expected a 2-D image, got shape {arr.shape}")
    grid, pixels = shard_digests(arr, prov.k)
    fp = compute_fingerprints(prov.encoder, to_model(arr, item.value_range), prov.k)
    record = AnchorRecord(
        pixels=pixel_digest(arr).hex(),
        shape=(int(arr.shape[0]), int(arr.shape[1])),
        k=prov.k,
        shard_ids=[s.shard_id for s in grid.shards],
        shard_pixels=[p.hex() for p in pixels],
        shard_fingerprints=[d.hex() for d in shard_fingerprint_digests(fp)],
        fingerprint=fingerprint_digest(fp).hex(),
        encoder=prov.encoder_digest,
        source=item.source | {"range": f"{item.value_range[0]!r},{item.value_range[1]!r}"},
    )
    return record, fp


def anchor_images(
    prov: Provenance,
    items: Sequence[AnchorInput],
    *,
    batch: int = 16,
    timings: dict[str, list[float]] | None = None,
) -> list[Anchored]:
    """Anchor ``items``, ``batch`` per consensus round. Every record is made before the first
    commit, so an image that fails leaves the ledger untouched; fingerprints are stored before the
    transaction that names them is committed."""
    if batch < 1:
        raise AnchorError(f"batch must be >= 1, got {batch}")
    made = []
    for item in items:
        t0 = time.perf_counter()
        made.append((item, *make_record(prov, item)))
        if timings is not None:
            timings.setdefault("fingerprint", []).append(time.perf_counter() - t0)
    out: list[Anchored] = []
    for start in range(0, len(made), batch):
        chunk = made[start : start + batch]
        for _, _, fp in chunk:
            prov.store.put(fp)
        t0 = time.perf_counter()
        entries = [Entry(r.payload(), TxKind.IMAGE_ANCHORED, bytes.fromhex(r.pixels)) for _, r, _ in chunk]
        block = prov.commit(entries)
        if timings is not None:
            timings.setdefault("commit", []).append(time.perf_counter() - t0)
        ids: dict[bytes, list[str]] = {}
        for tx in block.txs:  # the same image twice in a batch: two transactions, one payload
            ids.setdefault(tx.payload, []).append(tx.tx_id.hex())
        for (item, record, _), entry in zip(chunk, entries, strict=True):
            out.append(Anchored(record, ids[entry.payload].pop(0), block.header.height, item.source))
    return out
