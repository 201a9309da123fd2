"""X-Mark dataset watermarks: train a marker, embed a mark in a dataset (and commit its key to a
ledger), verify a suspicious model against a key (and that the key is committed)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prosima.errors import InputError
from prosima.watermark.data import Split, XrayData
from prosima.watermark.key import WatermarkKey

METHODS = ("xmark", "badnets", "blended")
Log = Callable[[str], None]


def _quiet(_line: str) -> None:
    """A log that says nothing."""


def _target(classes: list[str], target: str | None) -> int:
    """The index of ``target`` (a class name or index; default: the first class)."""
    if target is None:
        return 0
    if target in classes:
        return classes.index(target)
    if target.isdigit() and int(target) < len(classes):
        return int(target)
    raise InputError(f"--target {target!r} is not one of the classes {classes}")


def _load(dataset: Path, size: int | None, split_seed: int) -> tuple[XrayData, Split]:
    from prosima.watermark.data import load_dataset, split_by_file

    data = load_dataset(dataset, size=size)
    return data, split_by_file(data.ids, data.labels, seed=split_seed)


@dataclass(frozen=True)
class TrainedMarker:
    """A trained X-Mark marker in ``out`` (surrogate.pt, generator.pt, train.json) and its record."""

    out: Path
    info: dict[str, Any]

    @property
    def surrogate_accuracy(self) -> float:
        return float(self.info["surrogate"]["test_accuracy"])

    def describe(self) -> str:
        """One line: the surrogate's test accuracy and the generator's last epoch."""
        last = self.info["generator"]["history"][-1]
        return (
            f"surrogate test accuracy {self.surrogate_accuracy:.3f}; generator: surrogate WSR "
            f"{last['surrogate_wsr']:.3f}, 1-SSIM {last['ssim']:.4f}; written to {self.out}"
        )


def train_marker(
    dataset: Path,
    out: Path,
    *,
    target: str | None = None,
    size: int = 128,
    eps: int = 8,
    mask_fraction: float = 0.25,
    arch: str = "cnn",
    surrogate_epochs: int = 10,
    epochs: int = 10,
    seed: int = 0,
    split_seed: int = 0,
    log: Log = _quiet,
) -> TrainedMarker:
    """Train the surrogate classifier and the mark generator on the training split of ``dataset``
    (``size``: down-sample PNGs to SIZE x SIZE, 0 as stored; ``eps`` in 1/255 steps)."""
    from prosima.watermark.classifier import TrainConfig
    from prosima.watermark.pipeline import train_xmark
    from prosima.watermark.train import GeneratorConfig

    data, split = _load(dataset, size or None, split_seed)
    t = _target(data.classes, target)
    gcfg = GeneratorConfig(eps=eps / 255, mask_fraction=mask_fraction, epochs=epochs, seed=seed)
    scfg = TrainConfig(epochs=surrogate_epochs, seed=seed)
    _, info = train_xmark(data, split, t, gcfg, scfg, arch=arch, out=out, log=log)
    return TrainedMarker(out, info)


@dataclass(frozen=True)
class Embedded:
    """A marked release and its key: ``summary`` is what is reported (key file, digest, method,
    target class, images marked and, when committed, the ledger record)."""

    key: WatermarkKey
    key_path: Path
    release: Path
    summary: dict[str, Any]

    @property
    def committed(self) -> dict[str, Any] | None:
        """The key's record on the ledger (tx, height), or ``None`` when it was not committed."""
        return self.summary.get("ledger")

    @property
    def calibrated_tau(self) -> float | None:
        """The margin calibrated on a clean reference model, when it was."""
        return float(self.key.verify["tau"]) if "tau_floor" in self.key.verify else None


def embed_watermark(
    dataset: Path,
    out: Path,
    *,
    ledger: Path | None = None,
    marker: Path | None = None,
    method: str = "xmark",
    target: str | None = None,
    size: int = 128,
    fraction: float = 0.1,
    queries: int = 100,
    blend_alpha: float = 0.1,
    seed: int = 0,
    split_seed: int = 0,
    calibrate: bool = True,
    log: Log = _quiet,
) -> Embedded:
    """Mark ``fraction`` of the target class's training images (labels untouched), write the release
    (OUT/release) and the key (OUT/key), and commit the key to ``ledger`` when given.

    X-Mark uses ``marker`` (the output of ``train_marker``; without one, one is trained into
    OUT/marker) and, with ``calibrate``, sets tau from a clean reference model trained here
    (seed + 1000); BadNets and Blended need no marker."""
    from prosima.watermark.baselines import BadNets, Blended
    from prosima.watermark.classifier import TrainConfig, probability_fn, train_classifier
    from prosima.watermark.embed import embed, xmark_from_files

    files: dict[str, str | Path] = {}
    references: list[Any] = []
    seeds: dict[str, int] = {}
    if method == "xmark":
        if marker is None:
            log(f"no --marker: training one into {out / 'marker'}")
            trained = train_marker(
                dataset, out / "marker", target=target, size=size, seed=seed, split_seed=split_seed, log=log
            )
            log(trained.describe())
            marker = trained.out
        info = json.loads((marker / "train.json").read_text())
        size = int(info["dataset"].get("size") or 0)
        split_seed = int(info["split"]["seed"])
        files = {"generator": marker / "generator.pt", "surrogate": marker / "surrogate.pt"}
        mark: Any = xmark_from_files(
            files["generator"], files["surrogate"], info["generator"]["config"]["mask_fraction"]
        )
        data, split = _load(dataset, size or None, split_seed)
        if data.classes != info["classes"]:
            raise InputError(
                f"{dataset} has classes {data.classes}; the marker was trained on {info['classes']}"
            )
        t = int(info["target"])
        seeds = {
            "surrogate": info["surrogate"]["config"]["seed"],
            "generator": info["generator"]["config"]["seed"],
        }
        if calibrate:
            sur = info["surrogate"]
            train = data.subset(split.train)
            reference = train_classifier(
                train.images,
                train.labels,
                sur["arch"],
                TrainConfig(**(sur["config"] | {"seed": seed + 1000})),
                n_classes=len(data.classes),
                width=sur["width"],
            )
            references = [probability_fn(reference)]
            seeds["reference"] = seed + 1000
    elif method in ("badnets", "blended"):
        data, split = _load(dataset, size or None, split_seed)
        t = _target(data.classes, target)
        mark = BadNets() if method == "badnets" else Blended(alpha=blend_alpha, seed=seed)
    else:
        raise InputError(f"--method {method!r}: expected xmark, badnets or blended")
    marked, key, key_path = embed(
        data,
        split,
        mark,
        out,
        target=t,
        fraction=fraction,
        seed=seed,
        queries=queries,
        marker_files=files,
        extra_seeds={k: int(v) for k, v in seeds.items()},
        references=references,
    )
    summary: dict[str, Any] = {
        "key": str(key_path),
        "digest": key.digest(),
        "method": key.method,
        "target": data.classes[t],
        "marked": len(marked.marked),
    }
    if ledger is not None:
        from prosima.ledger.log.directory import Ledger
        from prosima.provenance.watermark_keys import commit_key

        with Ledger.open(ledger) as led:
            summary["ledger"] = commit_key(led, key)
    return Embedded(key, key_path, out / "release", summary)


@dataclass(frozen=True)
class OwnershipVerdict:
    """The ownership test's verdict (``verdict``: test, p-value, WSRs, n...; ``ledger``: whether the
    key is committed, when that was asked) against ``key``."""

    key: WatermarkKey
    verdict: dict[str, Any]

    @property
    def committed(self) -> bool:
        """The key is committed on the ledger (true when no ledger was asked about)."""
        return bool(self.verdict.get("ledger", {}).get("committed", True))

    @property
    def claimed(self) -> bool:
        """Ownership is claimed: the test says so and the key is committed (when asked)."""
        return bool(self.verdict["claim"]) and self.committed

    @property
    def target(self) -> str:
        return self.key.classes[self.key.target]

    def to_json(self) -> dict[str, Any]:
        return self.verdict


def verify_watermark(
    model: Path,
    key: Path,
    *,
    ledger: Path | None = None,
    label_only: bool = False,
    tau: float | None = None,
    alpha: float | None = None,
) -> OwnershipVerdict:
    """Query the suspicious ``model`` on the key's clean and marked held-out images; with ``ledger``,
    also require the key to be committed there. ``tau`` and ``alpha`` default to the key's."""
    from prosima.watermark.classifier import label_fn, load_classifier, probability_fn
    from prosima.watermark.embed import Queries, load_marker
    from prosima.watermark.key import load_key
    from prosima.watermark.verify import DEFAULT_ALPHA, DEFAULT_TAU, verify_ownership

    k = load_key(key)
    marker = load_marker(k, key)
    q = Queries.load(k.file_path("queries", key))
    suspect = load_classifier(model)
    fn = label_fn(suspect) if label_only else probability_fn(suspect)
    verdict: dict[str, Any] = verify_ownership(
        fn,
        q.images,
        marker(q.images),
        k.target,
        tau=k.verify.get("tau", DEFAULT_TAU) if tau is None else tau,
        alpha=k.verify.get("alpha", DEFAULT_ALPHA) if alpha is None else alpha,
        label_only=label_only,
    )
    verdict["key_digest"] = k.digest()
    if ledger is not None:
        from prosima.ledger.log.directory import Ledger
        from prosima.provenance.watermark_keys import check_key

        with Ledger.open(ledger) as led:
            verdict["ledger"] = check_key(led, k)
    return OwnershipVerdict(k, verdict)
