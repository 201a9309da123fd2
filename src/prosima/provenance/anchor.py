"""Anchoring (Protocol 2): cut each image into K GFT shards, hash each shard's decoded pixels,
fingerprint each shard with the semantic encoder, put the fingerprints in the content-addressed
store, and commit one ``image.anchored`` transaction per image (a batch per consensus round).

A run is resumable: an image whose exact pixels are already anchored (found by the store's key
index, then confirmed in the transaction's own record) is reported, not committed again, and the
same pixels twice in one run are committed once. Each result is handed to ``on_event`` as it is
known, so a caller can show every commit before the next round starts. Under a consensus committee
an image its origin node drops (a faulty node: silent, or signing garbage) is resubmitted through
the next node until one commits it; what was dropped, by whom and why is reported.

Nothing that identifies a person goes into a record: an input's ``source`` names its file for the
messages on this machine, but only its ``SOURCE_KEYS`` are recorded, and its instance (DICOM UIDs,
or the file name) is recorded as a link keyed by the site key, made beside the ledger by the first
anchor into it (``prosima.provenance.site_key``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from prosima.errors import InputError
from prosima.imaging.io import LoadedImage, read_input
from prosima.ledger.log.block import Block
from prosima.ledger.log.directory import Entry
from prosima.ledger.log.transaction import TxKind
from prosima.ledger.sim.byzantine import FaultSchedule
from prosima.models.fingerprint import Fingerprint, compute_fingerprints
from prosima.provenance.context import Provenance
from prosima.provenance.fingerprint_store import fingerprint_digest, shard_fingerprint_digests
from prosima.provenance.index import RecordIndex, is_anchor
from prosima.provenance.intensity import model_range, to_model
from prosima.provenance.pixels import pixel_digest, shard_digests
from prosima.provenance.records import SOURCE_KEYS, AnchorRecord
from prosima.provenance.site_key import SiteKey, instance_of


class AnchorError(InputError, ValueError):
    """An image that cannot be anchored; nothing was committed."""


class PartialAnchorError(AnchorError):
    """Some images were committed, others dropped by every node they were submitted through."""

    def __init__(self, report: AnchorReport) -> None:
        names = ", ".join(_where(d.source) or "?" for d in report.dropped)
        super().__init__(f"{len(report.dropped)} of {len(report.results)} images not committed: {names}")
        self.report = report


@dataclass(frozen=True)
class AnchorInput:
    """One 2-D image to anchor: its stored values, the range that maps them to [0, 1], its source
    (its file's name for messages here; only ``SOURCE_KEYS`` are recorded) and its instance's clear
    identifiers (recorded only as a keyed link)."""

    array: np.ndarray
    value_range: tuple[float, float]
    source: dict[str, str]
    instance: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Drop:
    """One failed submission: the origin node (committee index) that dropped the image, and why."""

    origin: int
    reason: str

    def to_json(self) -> dict[str, object]:
        return {"origin": self.origin, "reason": self.reason}


@dataclass(frozen=True)
class Anchored:
    """An image on the ledger: its record, transaction id and block height. ``existing``: it was
    on the ledger already (not committed again); ``origin``: the committee node that signed it
    (``None``: the local node or a direct commit); ``drops``: the submissions dropped before."""

    record: AnchorRecord
    tx: str
    height: int
    source: dict[str, str]
    existing: bool = False
    origin: int | None = None
    drops: tuple[Drop, ...] = ()

    @property
    def status(self) -> str:
        return "already-anchored" if self.existing else "committed"

    def to_json(self) -> dict[str, object]:
        return {
            "status": self.status,
            "tx": self.tx,
            "height": self.height,
            "root": self.record.root.hex(),
            "pixels": self.record.pixels,
            "source": recorded_source(self.source),
            "link": self.record.link,
            "origin": self.origin,
            "dropped_by": [d.to_json() for d in self.drops],
        }


@dataclass(frozen=True)
class Dropped:
    """An image not committed (yet): every submission's drop; ``retry``: the node it is resubmitted
    through next (``None``: given up, nothing of it is on the ledger)."""

    record: AnchorRecord
    source: dict[str, str]
    drops: tuple[Drop, ...]
    retry: int | None = None

    @property
    def status(self) -> str:
        return "resubmitting" if self.retry is not None else "dropped"

    def to_json(self) -> dict[str, object]:
        return {
            "status": self.status,
            "tx": None,
            "height": None,
            "root": self.record.root.hex(),
            "pixels": self.record.pixels,
            "source": recorded_source(self.source),
            "link": self.record.link,
            "dropped_by": [d.to_json() for d in self.drops],
            "retry": self.retry,
        }


AnchorEvent = Anchored | Dropped


@dataclass
class AnchorReport:
    """Every input's outcome, in input order: ``Anchored`` (committed now or before) or ``Dropped``."""

    results: list[AnchorEvent] = field(default_factory=list)

    @property
    def anchored(self) -> list[Anchored]:
        return [r for r in self.results if isinstance(r, Anchored)]

    @property
    def dropped(self) -> list[Dropped]:
        return [r for r in self.results if isinstance(r, Dropped)]

    @property
    def committed(self) -> int:
        """Images committed by this run."""
        return sum(not a.existing for a in self.anchored)

    @property
    def existing(self) -> int:
        """Images found already anchored."""
        return sum(a.existing for a in self.anchored)

    @property
    def resubmitted(self) -> int:
        """Images committed through another node after their origin dropped them."""
        return sum(bool(a.drops) for a in self.anchored)


def _where(source: dict[str, str]) -> str:
    """``file`` or ``file slice N``: how an image is named in messages."""
    return source.get("file", "") + (f" slice {source['slice']}" if "slice" in source else "")


def recorded_source(source: dict[str, str]) -> dict[str, str]:
    """What of an input's ``source`` is recorded (and reported): never its file name."""
    return {k: v for k, v in source.items() if k in SOURCE_KEYS}


def slices_of(loaded: LoadedImage) -> Iterator[AnchorInput]:
    """The 2-D images in a loaded file: itself, or each slice along the first axis of a volume
    (a NIfTI volume or DICOM series), all scaled with the volume's one range."""
    meta = loaded.meta
    base = {"file": Path(meta.path).name, "format": meta.format}
    if meta.modality:
        base["modality"] = meta.modality
    value_range = model_range(loaded)
    arr = loaded.array
    if arr.ndim == 2:
        yield AnchorInput(arr, value_range, base, instance_of(loaded))
        return
    if meta.format in ("png", "jpeg"):
        raise AnchorError(f"{meta.path}: colour images are not anchored; convert to grayscale first")
    axis = 0 if meta.format == "dicom" else 2
    for i in range(arr.shape[axis]):
        yield AnchorInput(
            np.take(arr, i, axis=axis),
            value_range,
            base | {"slice": str(i), "axis": str(axis)},
            instance_of(loaded, i),
        )


def read_inputs(paths: Iterable[str | Path]) -> list[AnchorInput]:
    """Every 2-D image in ``paths`` (files, or DICOM series folders), read before anything is committed;
    what is a volume is decided by the one rule that ``verify`` and ``restore`` use (``read_input``)."""
    out: list[AnchorInput] = []
    for path in paths:
        loaded, _axis = read_input(path)
        out.extend(slices_of(loaded))
    return out


def make_record(
    prov: Provenance, item: AnchorInput, key: SiteKey | None = None
) -> tuple[AnchorRecord, Fingerprint]:
    """The anchor record and fingerprint of one image (nothing stored or committed); its link is
    keyed by ``key``, default the ledger's site key (made when there is none yet)."""
    key = key or SiteKey.ensure(prov.ledger.path)
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
        source=recorded_source(item.source) | {"range": f"{item.value_range[0]!r},{item.value_range[1]!r}"},
        link=key.link(item.instance),
    )
    return record, fp


def find_anchored(
    index: RecordIndex, pixels: str, source: dict[str, str] | None = None, link: dict[str, str] | None = None
) -> Anchored | None:
    """The anchor of exactly these pixels (hex digest), or ``None``, from the record index (built
    from the records' own bytes up to the verified tip, never from the store's key column). Of
    several, the one recorded with ``source`` (and ``link``, when given) is preferred."""
    index.refresh()
    found = [
        Anchored(item.record, item.tx, item.height, dict(source or {}), existing=True)
        for item in (index.by_tx[tx] for tx in index.by_pixels.get(pixels, []))
        if is_anchor(item)
    ]
    if not found:
        return None
    if source is not None:
        for a in found:
            same = {k: v for k, v in a.record.source.items() if k != "range"} == recorded_source(source)
            if same and (link is None or a.record.link == link):
                return a
    return found[0]


def spread_origins(nodes: int, count: int, *, seed: int) -> list[int]:
    """``count`` origin nodes drawn uniformly from ``nodes`` (seeded): images from every node."""
    rng = random.Random(f"prosima.anchor.origins/{seed}")
    return [rng.randrange(nodes) for _ in range(count)]


def rehearse_faults(prov: Provenance, spec: str, *, seed: int = 0) -> FaultSchedule:
    """Commit through a committee of the ledger's own nodes of which those in ``spec`` misbehave
    (``ledger network --byzantine`` syntax, e.g. ``silent@1``); the schedule it made."""
    from prosima.ledger.consensus.committee import Committee

    if prov.committee is None:
        raise AnchorError("faulty nodes need a consensus committee (--consensus inproc)")
    plain = Committee(prov.ledger, seed=seed)
    schedule = FaultSchedule.parse(spec, n=plain.n, by_degree=plain.overlay.by_degree, seed=seed)
    prov.commit = Committee(prov.ledger, seed=seed, faults=schedule).commit
    return schedule


@dataclass
class _Pending:
    """An image to commit: its input, record and fingerprint, current origin and drops so far."""

    item: AnchorInput
    record: AnchorRecord
    fingerprint: Fingerprint
    origin: int | None
    drops: list[Drop] = field(default_factory=list)


def _next_origin(origin: int, tried: set[int], nodes: int) -> int | None:
    """The first node after ``origin`` (cyclically) not tried yet."""
    return next((o % nodes for o in range(origin + 1, origin + nodes) if o % nodes not in tried), None)


def anchor_run(
    prov: Provenance,
    items: Sequence[AnchorInput],
    *,
    batch: int = 16,
    timings: dict[str, list[float]] | None = None,
    on_event: Callable[[AnchorEvent], None] | None = None,
    origins: Sequence[int] | None = None,
    resubmit: bool = True,
    on_prepared: Callable[[int, int], None] | None = None,
) -> AnchorReport:
    """Anchor ``items``, ``batch`` per consensus round, each signed by its node in ``origins``
    (committee indices; default: the local node). Images already anchored are reported, not
    committed. Every record is made before the first commit, so an image that fails leaves the
    ledger untouched; fingerprints are stored before the transaction that names them is committed.
    ``on_event`` gets each outcome as soon as it is known (a commit, a find, a drop); a dropped image
    is resubmitted through the next node while ``resubmit`` and untried nodes remain.
    ``on_prepared`` hears ``(done, total)`` as each new image's record is made."""
    if batch < 1:
        raise AnchorError(f"batch must be >= 1, got {batch}")
    committee = prov.committee
    submit = getattr(committee, "submit", None)
    if origins is not None:
        if submit is None:
            raise AnchorError("origin nodes need a consensus committee (--consensus inproc or mpi)")
        if len(origins) != len(items):
            raise AnchorError(f"{len(origins)} origins for {len(items)} images")
        bad = [o for o in origins if not 0 <= o < committee.n]
        if bad:
            raise AnchorError(f"origin {bad[0]} is not a node index between 0 and {committee.n - 1}")
    emit = on_event or (lambda _event: None)
    key = SiteKey.ensure(prov.ledger.path)
    results: list[AnchorEvent | None] = [None] * len(items)
    first: dict[str, int] = {}  # pixel digest -> the first input holding it
    repeats: dict[int, list[int]] = {}
    todo: list[int] = []
    for i, item in enumerate(items):
        if item.array.ndim != 2:
            raise AnchorError(f"expected a 2-D image, got shape {item.array.shape}")
        digest = pixel_digest(item.array).hex()
        if digest in first:
            repeats.setdefault(first[digest], []).append(i)
            continue
        first[digest] = i
        found = find_anchored(prov.index, digest, item.source, key.link(item.instance))
        if found is None:
            todo.append(i)
        else:
            results[i] = found
    pending: dict[int, _Pending] = {}
    for i in todo:
        t0 = time.perf_counter()
        record, fp = make_record(prov, items[i], key)
        pending[i] = _Pending(items[i], record, fp, None if origins is None else origins[i])
        if timings is not None:
            timings.setdefault("fingerprint", []).append(time.perf_counter() - t0)
        if on_prepared is not None:
            on_prepared(len(pending), len(todo))

    def settle(i: int, outcome: AnchorEvent) -> None:
        """Record input ``i``'s outcome and its repeats' (the same pixels), and emit them."""
        results[i] = outcome
        emit(outcome)
        for j in repeats.get(i, []):
            src = items[j].source
            repeat: AnchorEvent = (
                Anchored(outcome.record, outcome.tx, outcome.height, src, existing=True)
                if isinstance(outcome, Anchored)
                else Dropped(outcome.record, src, outcome.drops)
            )
            results[j] = repeat
            emit(repeat)

    for i, known in enumerate(results):
        if known is not None:
            settle(i, known)
    for start in range(0, len(todo), batch):
        chunk = todo[start : start + batch]
        for i in chunk:
            prov.store.put(pending[i].fingerprint)
        queue = chunk
        while queue:
            groups: dict[int | None, list[int]] = {}
            for i in queue:
                groups.setdefault(pending[i].origin, []).append(i)
            queue = []
            for origin, group in groups.items():
                entries = [
                    Entry(
                        pending[i].record.payload(),
                        TxKind.IMAGE_ANCHORED,
                        bytes.fromhex(pending[i].record.pixels),
                    )
                    for i in group
                ]
                t0 = time.perf_counter()
                blocks, dropped = _commit(prov, submit, entries, origin)
                if timings is not None:
                    timings.setdefault("commit", []).append(time.perf_counter() - t0)
                ids: dict[bytes, list[tuple[str, int]]] = {}
                for b in blocks:
                    for tx in b.txs:
                        ids.setdefault(tx.payload, []).append((tx.tx_id.hex(), b.header.height))
                for k, (i, entry) in enumerate(zip(group, entries, strict=True)):
                    p = pending[i]
                    if k in dropped:
                        at = committee.default_origin if origin is None else origin
                        p.drops.append(Drop(at, dropped[k]))
                        tried = {d.origin for d in p.drops}
                        retry = _next_origin(at, tried, committee.n) if resubmit else None
                        if retry is None:
                            settle(i, Dropped(p.record, p.item.source, tuple(p.drops)))
                        else:
                            p.origin = retry
                            emit(Dropped(p.record, p.item.source, tuple(p.drops), retry))
                            queue.append(i)
                        continue
                    tx_id, height = ids[entry.payload].pop(0)
                    settle(i, Anchored(p.record, tx_id, height, p.item.source, False, origin, tuple(p.drops)))
    return AnchorReport([r for r in results if r is not None])


def _commit(
    prov: Provenance, submit: Callable[..., object] | None, entries: Sequence[Entry], origin: int | None
) -> tuple[list[Block], dict[int, str]]:
    """Commit ``entries`` signed by ``origin``: the blocks written and the dropped entries' reasons."""
    if submit is None:
        block = prov.commit(entries)
        assert block is not None  # entries is never empty here
        return [block], {}
    done = submit(entries, origin=origin)
    return list(done.blocks), dict(done.dropped)  # type: ignore[attr-defined]


def anchor_images(
    prov: Provenance,
    items: Sequence[AnchorInput],
    *,
    batch: int = 16,
    timings: dict[str, list[float]] | None = None,
    on_event: Callable[[AnchorEvent], None] | None = None,
) -> list[Anchored]:
    """``anchor_run``'s anchored images, one per input in input order (committed now or found
    anchored); ``PartialAnchorError`` when some could not be committed (the others are)."""
    report = anchor_run(prov, items, batch=batch, timings=timings, on_event=on_event)
    if report.dropped:
        raise PartialAnchorError(report)
    return report.anchored
