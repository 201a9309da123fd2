"""What the anchor, restore and verify pipelines share: an open ledger directory, its fingerprint
store and record index, the semantic encoder, how new records are committed, and the anchored
fingerprints stacked for nearest-anchor retrieval (``pool``; the rule that picks from it is
``prosima.provenance.matching``)."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from prosima.ledger.log.block import Block
from prosima.ledger.log.directory import Entry, Ledger
from prosima.models.checkpoint import state_digest
from prosima.models.fingerprint import Fingerprint, compute_fingerprints
from prosima.models.pretrained import load_model_ref
from prosima.provenance.fingerprint_store import (
    STORE_DIR,
    FingerprintStore,
    FingerprintStoreError,
    shard_fingerprint_digests,
)
from prosima.provenance.index import Indexed, RecordIndex
from prosima.provenance.records import AnchorRecord
from prosima.provenance.semantic import background_mask, unit_rows

DEFAULT_ENCODER = "pretrained:semantic-encoder"
DEFAULT_GENERATOR = "pretrained:prosima-full"
DEFAULT_K = 16
REMEMBERED_QUERIES = 64  # fingerprints of images being verified or matched, kept for reuse

Commit = Callable[[Sequence[Entry]], Block | None]  # None only when there are no entries


def recorded_range(record: AnchorRecord) -> tuple[float, float] | None:
    """The stored values that mapped to [0, 1] when ``record``'s image was anchored, if recorded."""
    text = record.source.get("range", "")
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        return None
    return (lo, hi) if np.isfinite([lo, hi]).all() and hi > lo else None


@dataclass(frozen=True)
class Pool:
    """The anchored images of one geometry, their checked fingerprints stacked for retrieval:
    ``rows`` ``[N, K, D]`` unit embeddings, ``anatomy`` ``[N, K]`` the shards that are not
    background (``semantic.background_mask``), ``ranges`` each anchor's recorded range."""

    items: list[Indexed[AnchorRecord]]
    rows: np.ndarray
    anatomy: np.ndarray
    ranges: list[tuple[float, float] | None]


@dataclass
class Provenance:
    """An open ledger with everything the image pipelines need beside it."""

    ledger: Ledger
    encoder: nn.Module
    encoder_digest: str
    commit: Commit
    k: int = DEFAULT_K
    store: FingerprintStore = field(init=False)
    index: RecordIndex = field(init=False)

    _checked: dict[str, Fingerprint] = field(init=False, default_factory=dict)
    _blank: dict[tuple[tuple[int, ...], int], Fingerprint] = field(init=False, default_factory=dict)
    _pools: dict[tuple[tuple[int, ...], int], tuple[int, Pool]] = field(init=False, default_factory=dict)
    _queries: OrderedDict[tuple[bytes, int], Fingerprint] = field(init=False, default_factory=OrderedDict)

    def __post_init__(self) -> None:
        self.store = FingerprintStore(Path(self.ledger.path) / STORE_DIR)
        self.index = RecordIndex(self.ledger)

    def anchored_fingerprint(self, record: AnchorRecord) -> Fingerprint:
        """The record's fingerprint from the store, refused unless its hash and every shard's
        hash match what the ledger holds and its geometry matches the record."""
        cached = self._checked.get(record.fingerprint)
        if cached is not None:
            return cached
        fp = self.store.get(bytes.fromhex(record.fingerprint))
        if fp.shape != tuple(record.shape) or fp.k != record.k:
            raise FingerprintStoreError(
                f"fingerprint {record.fingerprint} is for shape {fp.shape} k={fp.k}, "
                f"the record for {tuple(record.shape)} k={record.k}: refused"
            )
        shards = [d.hex() for d in shard_fingerprint_digests(fp)]
        bad = [i for i, (a, b) in enumerate(zip(shards, record.shard_fingerprints, strict=True)) if a != b]
        if bad:
            raise FingerprintStoreError(
                f"fingerprint {record.fingerprint}: shards {bad} do not match their hashes "
                "on the ledger: refused"
            )
        self._checked[record.fingerprint] = fp
        return fp

    def fingerprint(self, unit: np.ndarray, k: int | None = None) -> Fingerprint:
        """The encoder's fingerprint of a 2-D image in model units, in ``k`` shards (default: the
        ledger's); the last ``REMEMBERED_QUERIES`` are kept, since matching an image and judging
        its faithfulness fingerprint it in the same scaling."""
        k = self.k if k is None else int(k)
        arr = np.ascontiguousarray(unit, dtype=np.float32)
        key = (hashlib.sha256(repr(arr.shape).encode() + arr.tobytes()).digest(), k)
        found = self._queries.get(key)
        if found is None:
            found = compute_fingerprints(self.encoder, arr, k)
            self._queries[key] = found
            if len(self._queries) > REMEMBERED_QUERIES:
                self._queries.popitem(last=False)
        else:
            self._queries.move_to_end(key)
        return found

    def blank_fingerprint(self, shape: tuple[int, int], k: int) -> Fingerprint:
        """The encoder's fingerprint of an all-zero image of ``shape`` (what background looks like)."""
        key = (tuple(int(n) for n in shape), int(k))
        if key not in self._blank:
            self._blank[key] = compute_fingerprints(self.encoder, np.zeros(key[0], np.float32), key[1])
        return self._blank[key]

    def background(self, record: AnchorRecord) -> np.ndarray:
        """``bool [K]``: the shards of the anchored original that are background (module
        ``semantic``), decided from its checked fingerprint."""
        fp = self.anchored_fingerprint(record)
        return background_mask(fp, self.blank_fingerprint(fp.shape, fp.k))

    def pool(self, shape: tuple[int, int], k: int, dim: int) -> Pool:
        """Every anchored image of ``shape`` and ``k`` shards of ``dim``-wide fingerprints, as of the
        ledger's tip (cached until a block is added)."""
        self.index.refresh()
        key = (tuple(int(n) for n in shape), int(k))
        cached = self._pools.get(key)
        if cached is not None and cached[0] == self.index.height and cached[1].rows.shape[2:] == (dim,):
            return cached[1]
        items, rows, anatomy, ranges = [], [], [], []
        for item in self.index.anchors:
            record = item.record
            if tuple(record.shape) != key[0] or record.k != key[1]:
                continue
            fp = self.anchored_fingerprint(record)
            if fp.dim != dim:
                continue
            items.append(item)
            rows.append(unit_rows(fp))
            anatomy.append(~self.background(record))
            ranges.append(recorded_range(record))
        pool = Pool(
            items,
            np.stack(rows) if rows else np.zeros((0, key[1], dim)),
            np.stack(anatomy) if anatomy else np.zeros((0, key[1]), bool),
            ranges,
        )
        self._pools[key] = (self.index.height, pool)
        return pool

    @classmethod
    def open(
        cls,
        ledger: Ledger,
        *,
        encoder: str = DEFAULT_ENCODER,
        consensus: str = "inproc",
        k: int = DEFAULT_K,
        seed: int = 0,
    ) -> Provenance:
        """Load the encoder and choose the committer: ``inproc`` (the directory's nodes run the
        consensus protocol in this process), ``mpi`` (spread over the ranks of ``mpirun``) or
        ``direct`` (every local key signs the block; no protocol run)."""
        model, _ = load_model_ref(encoder, "encoder")
        commit = make_committer(ledger, consensus, seed)
        return cls(ledger, model, state_digest(model.state_dict()), commit, k)

    @property
    def committee(self) -> Any:
        """The consensus committee behind ``commit`` (its timings), or None for direct commits."""
        owner = getattr(self.commit, "__self__", None)
        return owner if hasattr(owner, "last_critical") else None


def make_committer(ledger: Ledger, consensus: str, seed: int = 0) -> Commit:
    """A function committing entries to ``ledger`` the chosen way (see ``Provenance.open``)."""
    if consensus == "direct":
        return ledger.append
    if consensus in ("inproc", "mpi"):
        from prosima.ledger.consensus.committee import Committee

        transport = None
        if consensus == "mpi":
            from prosima.ledger.consensus.mpi import MpiTransport

            transport = MpiTransport(nodes=len(ledger.registry))
        committee = Committee(ledger, seed=seed, transport=transport)
        return committee.commit
    raise ValueError(f"consensus must be inproc, mpi or direct, got {consensus!r}")
