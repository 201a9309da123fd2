"""What the anchor, restore and verify pipelines share: an open ledger directory, its fingerprint
store and record index, the semantic encoder, and how new records are committed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from prosima.ledger.block import Block
from prosima.ledger.directory import Entry, Ledger
from prosima.models.checkpoint import state_digest
from prosima.models.fingerprint import Fingerprint
from prosima.models.pretrained import load_model_ref
from prosima.provenance.fingerprint_store import (
    STORE_DIR,
    FingerprintStore,
    FingerprintStoreError,
    shard_fingerprint_digests,
)
from prosima.provenance.index import Indexed, RecordIndex
from prosima.provenance.records import AnchorRecord
from prosima.provenance.semantic import shard_cosines

DEFAULT_ENCODER = "pretrained:semantic-encoder"
DEFAULT_GENERATOR = "pretrained:prosima-full"
DEFAULT_K = 16

Commit = Callable[[Sequence[Entry]], Block]


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

    def nearest_anchor(self, query: Fingerprint) -> tuple[Indexed, Fingerprint, np.ndarray] | None:
        """The anchored image of the query's shape whose fingerprint is nearest (highest mean
        per-shard cosine), with that fingerprint and the cosines; None when none has the shape."""
        self.index.refresh()
        best = None
        for item in self.index.anchors:
            record = item.record
            if tuple(record.shape) != tuple(query.shape) or record.k != query.k:  # type: ignore[union-attr]
                continue
            fp = self.anchored_fingerprint(record)  # type: ignore[arg-type]
            if fp.dim != query.dim:
                continue
            cosines = shard_cosines(query, fp)
            score = float(np.mean(cosines))
            if best is None or score > best[0]:
                best = (score, item, fp, cosines)
        return None if best is None else best[1:]

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
        from prosima.ledger.committee import Committee

        transport = None
        if consensus == "mpi":
            from prosima.ledger.mpi import MpiTransport

            transport = MpiTransport(nodes=len(ledger.registry))
        committee = Committee(ledger, seed=seed, transport=transport)
        return committee.commit
    raise ValueError(f"consensus must be inproc, mpi or direct, got {consensus!r}")
