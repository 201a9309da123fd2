"""How often ``restore`` (no ``--record``) finds the right original, and how often its matching rule
refuses images that were never anchored: the calibration of ``--min-similarity``, ``--min-margin``
and ``--margin-scale``.

Two ledgers are filled the way ``prosima anchor`` fills them (direct commits): one of 8-bit slices
(every usable axial slice, brain fraction >= 0.05, of every contrast of the anchored BraTS subjects,
normalised and cropped to 256 x 256 as the other benchmarks do, plus some chest X-rays), one of the
same slices as their raw int16 values, each scaled by its volume's range (as anchoring a NIfTI
volume scales them). Neighbouring slices, 1 mm apart, are all anchored: the hardest case.

Queries, each written to a file and read back as ``restore`` reads it, then matched by
``matching.rank`` and the rule: noisy copies of anchored slices and X-rays (positives), and images
never anchored (negatives): slices of a held-out subject and other X-rays, clean and noisy. Noise
is Gaussian or Rician at each sigma (image units on the original's [0, 1]); 8-bit copies are clipped
by their storage, int16 copies are stored clipped to the original's range and unclipped (an
unclipped copy's min-max range is wider than the original's). Every random choice is seeded.

Per query the best candidate's similarity, its margin over the runner-up and whether it is the right
original are kept, so any other rule can be scored from the JSON (``sweep`` does it on a grid).
``measure`` runs the queries; ``run_restore_match_bench`` prints the rates and writes the JSON.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from prosima.bench.render import Block, Rows, make_console, publish, show
from prosima.bench.report import environment
from prosima.imaging.corruption import gaussian_noise, rician_noise
from prosima.imaging.datasets import (
    BRATS_CONTRASTS,
    ImageFolder,
    VolumeSlices,
    crop_or_pad,
    find_brats_subjects,
)
from prosima.imaging.io import read_image, read_image_2d, write_png
from prosima.imaging.validation import ImageError
from prosima.ledger.log.directory import Ledger
from prosima.provenance.anchor import AnchorInput, anchor_run
from prosima.provenance.context import Provenance
from prosima.provenance.intensity import model_range
from prosima.provenance.match_rule import MatchRule
from prosima.provenance.matching import decide, rank
from prosima.provenance.restore import is_fixed_range

STORAGES = ("8-bit", "int16 clipped", "int16 unclipped")
MIN_BRAIN_FRACTION = 0.05
SWEEP_SIMILARITY = (0.93, 0.95, 0.96, 0.97, 0.98, 0.99)
SWEEP_MARGIN = (0.0, 0.0005, 0.001, 0.002, 0.005, 0.01)
SWEEP_SCALE = (0.0, 0.5, 1.0, 1.25, 1.5, 2.0)
NOISES = ("gaussian", "rician")
TABLE_WIDTH = 170


@dataclass(frozen=True)
class MatchConfig:
    """What ``bench restore-match`` measures."""

    data: str | Path  # BraTS folder: every subject but ``held_out`` is anchored
    xray: str | Path | None = None  # chest X-ray label folders: some anchored, others never
    held_out: str = "TCGA-DU-7294"  # subject never anchored (its slices: negatives)
    contrasts: tuple[str, ...] = BRATS_CONTRASTS  # BraTS contrasts anchored
    sigmas: tuple[float, ...] = (0.02, 0.05, 0.10)  # noise sigmas on [0, 1]
    noises: tuple[str, ...] = NOISES  # noise kinds of the copies
    max_slices: int | None = 24  # queries per group, evenly spaced (None: all)
    anchored_xrays: int = 16  # X-rays anchored beside the brain slices
    negative_xrays: int = 24  # X-rays never anchored (negatives)
    rule: MatchRule = field(default_factory=MatchRule)  # the matching rule scored
    seed: int = 0  # seed of the X-ray order and of every noise draw
    threads: int = 1  # torch CPU threads

    def __post_init__(self) -> None:
        bad = sorted(set(self.noises) - set(NOISES))
        if bad:
            raise ValueError(f"--noise takes gaussian and rician, got {bad}")


@dataclass(frozen=True)
class Original:
    """An image as anchored: its key, kind, values in [0, 1] and stored values with their range."""

    key: str
    kind: str  # "brain" or "xray"
    unit: np.ndarray
    stored: np.ndarray
    value_range: tuple[float, float]


def _volume_path(root: Path, subject: str, contrast: str) -> Path:
    path = root / subject / f"{subject}-{contrast}.nii.gz"
    if not path.is_file():
        raise ImageError(f"{path}: missing BraTS volume for subject {subject}, contrast {contrast}")
    return path


def brain_originals(
    root: Path, subjects: Sequence[str], contrasts: Sequence[str]
) -> tuple[list[Original], list[Original]]:
    """Every usable slice of ``subjects`` x ``contrasts``: as 8-bit (normalised) and as raw int16."""
    eight, raw = [], []
    for subject in subjects:
        for contrast in contrasts:
            volume = read_image(_volume_path(root, subject, contrast)).array
            lo, hi = float(volume.min()), float(volume.max())
            ds = VolumeSlices([(subject, contrast, volume)], min_brain_fraction=MIN_BRAIN_FRACTION)
            for item in ds:
                key = f"{subject}/{contrast}/z{item.z:03d}"
                unit8 = np.rint(item.image * 255.0) / 255.0
                eight.append(Original(key, "brain", unit8, np.rint(item.image * 255.0), (0.0, 255.0)))
                plane = crop_or_pad(volume[:, :, item.z])
                raw.append(Original(key, "brain", (plane - lo) / (hi - lo), plane, (lo, hi)))
    return eight, raw


def xray_originals(folder: Path, count: int, *, seed: int) -> list[Original]:
    """``count`` chest X-rays (8-bit) in a seeded order over every label folder."""
    images = ImageFolder(folder)
    order = np.random.default_rng(seed).permutation(len(images))[:count]
    out = []
    for i in order:
        unit, _ = images[int(i)]
        if unit.shape != (256, 256):
            unit = crop_or_pad(unit)
        stored = np.rint(np.clip(unit, 0.0, 1.0) * 255.0)
        out.append(
            Original(f"xray/{images.samples[int(i)][0].name}", "xray", stored / 255.0, stored, (0.0, 255.0))
        )
    return out


def evenly(items: Sequence[Original], n: int | None) -> list[Original]:
    """``n`` items evenly spaced over ``items`` (all when ``n`` is None or larger)."""
    if n is None or n >= len(items):
        return list(items)
    picks = sorted(set(np.linspace(0, len(items) - 1, max(n, 1)).round().astype(int).tolist()))
    return [items[i] for i in picks]


def anchor_pool(prov: Provenance, originals: Sequence[Original]) -> dict[str, str]:
    """Anchor ``originals`` on ``prov``'s ledger; their tx id by key."""
    items = [
        AnchorInput(o.stored.astype(np.float32), o.value_range, {"format": "nifti", "file": o.key})
        for o in originals
    ]
    report = anchor_run(prov, items, batch=256)
    return {o.key: a.tx for o, a in zip(originals, report.anchored, strict=True)}


def corrupt(original: Original, storage: str, noise: str, sigma: float, seed: int) -> np.ndarray:
    """The stored values of a noisy copy (``sigma`` 0: the image itself)."""
    unit = original.unit.astype(np.float32)
    if sigma > 0:
        make = gaussian_noise if noise == "gaussian" else rician_noise
        unit = make(unit, sigma, seed=seed).image
    if storage == "8-bit":
        return np.rint(np.clip(unit, 0.0, 1.0) * 255.0)
    if storage == "int16 clipped":
        unit = np.clip(unit, 0.0, 1.0)
    lo, hi = original.value_range
    return np.clip(np.rint(unit.astype(np.float64) * (hi - lo) + lo), -32768, 32767)


def _read_back(
    stored: np.ndarray, storage: str, folder: Path
) -> tuple[np.ndarray, tuple[float, float], bool]:
    """Write the copy as restore's input would be stored (PNG or int16 .npy) and read it as restore does."""
    if storage == "8-bit":
        path = folder / "query.png"
        write_png(path, stored / 255.0, data_range=(0.0, 1.0))
    else:
        path = folder / "query.npy"
        np.save(path, stored.astype(np.int16), allow_pickle=False)
    loaded = read_image_2d(path)
    return loaded.array, model_range(loaded), is_fixed_range(loaded)


def _query(
    prov: Provenance, stored: np.ndarray, storage: str, folder: Path, rule: MatchRule, keys: dict[str, str]
) -> dict[str, Any]:
    array, own, fixed = _read_back(stored, storage, folder)
    match = decide(rank(prov, array, own, fixed_range=fixed), rule)
    best = match.best
    return {
        "best_tx": None if best is None else best.tx,
        "best_key": None if best is None else keys.get(best.tx),
        "similarity": None if best is None else best.similarity,
        "margin": match.margin,
        "accepted": match.accepted,
    }


def _accepts(row: dict[str, Any], rule: MatchRule) -> bool:
    return row["similarity"] is not None and rule.accepts(row["similarity"], row["margin"])


def sweep(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each rule on the grid: right originals accepted and wrong ones accepted (positives), and
    never-anchored images accepted (negatives)."""
    pos = [r for r in rows if r["truth"] is not None]
    neg = [r for r in rows if r["truth"] is None]
    out = []
    for s in SWEEP_SIMILARITY:
        for m in SWEEP_MARGIN:
            for k in SWEEP_SCALE:
                rule = MatchRule(s, m, k)
                acc_pos = [r for r in pos if _accepts(r, rule)]
                out.append(
                    rule.to_json()
                    | {
                        "accepted_right": sum(r["right"] for r in acc_pos) / max(len(pos), 1),
                        "accepted_wrong": sum(not r["right"] for r in acc_pos),
                        "negatives_accepted": sum(_accepts(r, rule) for r in neg),
                    }
                )
    return out


def summary(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rates per (group, storage, noise, sigma)."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["group"], r["storage"], r["noise"], r["sigma"]), []).append(r)
    out = []
    for (group, storage, noise, sigma), rs in groups.items():
        positive = rs[0]["truth"] is not None
        sims = [r["similarity"] for r in rs if r["similarity"] is not None]
        out.append(
            {
                "group": group,
                "storage": storage,
                "noise": noise,
                "sigma": sigma,
                "n": len(rs),
                "nearest_right": sum(r["right"] for r in rs) / len(rs) if positive else None,
                "accepted_right": sum(r["right"] and r["accepted"] for r in rs) / len(rs)
                if positive
                else None,
                "accepted_wrong": sum((not r["right"]) and r["accepted"] for r in rs) if positive else None,
                "refused": sum(not r["accepted"] for r in rs) / len(rs),
                "similarity_median": float(np.median(sims)) if sims else None,
                "similarity_max": float(np.max(sims)) if sims else None,
            }
        )
    return out


def report(document: dict[str, Any]) -> list[Block]:
    """The rates per group, storage, noise and sigma."""

    def pct(x: float | None) -> str:
        return "" if x is None else f"{100 * x:.0f}%"

    rows = []
    for r in document["results"]:
        sims = (
            ""
            if r["similarity_median"] is None
            else f"{r['similarity_median']:.3f} / {r['similarity_max']:.3f}"
        )
        rows.append(
            (
                r["group"],
                r["storage"],
                r["noise"],
                f"{r['sigma']:.2f}",
                str(r["n"]),
                pct(r["nearest_right"]),
                pct(r["accepted_right"]),
                "" if r["accepted_wrong"] is None else str(r["accepted_wrong"]),
                pct(r["refused"]),
                sims,
            )
        )
    columns = (
        "group",
        "storage",
        "noise",
        "sigma",
        "n",
        "nearest right",
        "accepted right",
        "wrong",
        "refused",
        "sim median / max",
    )
    rule = MatchRule(**document["rule"])
    return [Rows(f"restore's matching rule: {rule.options()}", columns, rows)]


@dataclass(frozen=True)
class _Queries:
    """The originals anchored per pool, and the queries of each pool: positives and negatives."""

    anchored_subjects: list[str]
    pools: dict[str, list[Original]]
    positives: dict[str, list[Original]]
    negatives: dict[str, list[Original]]


def _queries(config: MatchConfig, root: Path) -> _Queries:
    """Read every original and choose the queries (module note)."""
    max_slices, anchored_xrays, held_out = config.max_slices, config.anchored_xrays, config.held_out
    subjects = find_brats_subjects(root)
    if held_out not in subjects:
        raise ImageError(f"--held-out {held_out} is not a subject of {root} ({', '.join(subjects)})")
    anchored_subjects = [s for s in subjects if s != held_out]
    if not anchored_subjects:
        raise ImageError(f"{root}: no subject left to anchor besides the held-out {held_out}")
    eight, raw = brain_originals(root, anchored_subjects, config.contrasts)
    held8, held_raw = brain_originals(root, [held_out], config.contrasts)
    xray = config.xray
    xrays = (
        xray_originals(Path(xray), anchored_xrays + config.negative_xrays, seed=config.seed) if xray else []
    )
    x_anchored, x_never = xrays[:anchored_xrays], xrays[anchored_xrays:]
    return _Queries(
        anchored_subjects,
        pools={"8-bit": [*eight, *x_anchored], "int16": raw},
        positives={
            "8-bit": [*evenly(eight, max_slices), *evenly(x_anchored, max_slices)],
            "int16": evenly(raw, max_slices),
        },
        negatives={
            "8-bit": [*evenly(held8, max_slices), *evenly(x_never, max_slices)],
            "int16": evenly(held_raw, max_slices),
        },
    )


def _query_pool(
    config: MatchConfig, prov: Provenance, pool_name: str, queries: _Queries, txs: dict[str, str], work: Path
) -> list[dict[str, Any]]:
    """Every query of one pool against its ledger: one row each."""
    seed, rule = config.seed, config.rule
    keys = {tx: key for key, tx in txs.items()}
    variants = [(n, s) for n in config.noises for s in config.sigmas]
    storages = ["8-bit"] if pool_name == "8-bit" else ["int16 clipped", "int16 unclipped"]
    rows: list[dict[str, Any]] = []
    for positive, originals in ((True, queries.positives[pool_name]), (False, queries.negatives[pool_name])):
        for qi, o in enumerate(originals):
            group = ("anchored " if positive else "never-anchored ") + o.kind
            if not positive and o.kind == "brain":
                group = "held-out brain"
            cases = variants if positive else [("clean", 0.0), *variants]
            for storage in storages:
                for vi, (noise, sigma) in enumerate(cases):
                    noise_seed = seed * 1_000_003 + qi * 101 + vi + (0 if positive else 50_000)
                    stored = corrupt(o, storage, noise, sigma, noise_seed)
                    found = _query(prov, stored, storage, work, rule, keys)
                    truth = txs[o.key] if positive else None
                    rows.append(
                        {
                            "group": group,
                            "key": o.key,
                            "storage": storage,
                            "noise": noise,
                            "sigma": sigma,
                            "seed": noise_seed,
                            "truth": truth,
                            "right": truth is not None and found["best_tx"] == truth,
                            **found,
                        }
                    )
    return rows


def measure(config: MatchConfig) -> dict[str, Any]:
    """Anchor both pools, run every query (module note); the JSON document."""
    import torch

    torch.set_num_threads(config.threads)
    root = Path(config.data)
    t0 = time.perf_counter()
    queries = _queries(config, root)
    rows: list[dict[str, Any]] = []
    anchor_s = 0.0
    with tempfile.TemporaryDirectory(prefix="prosima-restore-match-") as tmp:
        work = Path(tmp)
        for pool_name, pool in queries.pools.items():
            ledger = Ledger.init(work / f"ledger-{pool_name}", nodes=4)
            try:
                prov = Provenance.open(ledger, consensus="direct")
                t = time.perf_counter()
                txs = anchor_pool(prov, pool)
                anchor_s += time.perf_counter() - t
                rows += _query_pool(config, prov, pool_name, queries, txs, work)
            finally:
                ledger.close()
    results = summary(rows)
    return {
        "benchmark": "restore-match",
        "rule": config.rule.to_json(),
        "data": str(root),
        "xray": None if config.xray is None else str(config.xray),
        "anchored_subjects": queries.anchored_subjects,
        "held_out": config.held_out,
        "contrasts": list(config.contrasts),
        "anchored": {"8-bit": len(queries.pools["8-bit"]), "int16": len(queries.pools["int16"])},
        "sigmas": list(config.sigmas),
        "noises": list(config.noises),
        "max_slices": config.max_slices,
        "seed": config.seed,
        "anchor_seconds": anchor_s,
        "seconds": time.perf_counter() - t0,
        "environment": environment(threads=config.threads),
        "results": results,
        "sweep": sweep(rows),
        "rows": rows,
    }


def run_restore_match_bench(
    data: str | Path,
    xray: str | Path | None = None,
    *,
    held_out: str = MatchConfig.held_out,
    contrasts: Sequence[str] = BRATS_CONTRASTS,
    sigmas: Sequence[float] = MatchConfig.sigmas,
    noises: Sequence[str] = NOISES,
    max_slices: int | None = MatchConfig.max_slices,
    anchored_xrays: int = MatchConfig.anchored_xrays,
    negative_xrays: int = MatchConfig.negative_xrays,
    rule: MatchRule | None = None,
    seed: int = 0,
    threads: int = 1,
    json_path: str | Path | None = None,
) -> dict[str, Any]:
    """Measure (module note), print the table and write the JSON; return the JSON document."""
    config = MatchConfig(
        data,
        xray,
        held_out=held_out,
        contrasts=tuple(contrasts),
        sigmas=tuple(sigmas),
        noises=tuple(noises),
        max_slices=max_slices,
        anchored_xrays=anchored_xrays,
        negative_xrays=negative_xrays,
        rule=rule or MatchRule(),
        seed=seed,
        threads=threads,
    )
    document = measure(config)
    console = make_console(TABLE_WIDTH)
    show(console, report(document))
    publish(console, document, json_path)
    return document
