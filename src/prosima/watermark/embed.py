"""The owner's side end to end: mark the training split of a dataset, write the release (PNGs, labels
untouched), the held-out query set and the key; and rebuild a key's marker for verification.

Layout of ``out``: ``release/<class>/<file>.png`` (the marked training split), ``key/key.json``,
``key/queries.npz`` (m held-out non-target images, 8-bit, with ids and labels) and, for X-Mark,
``key/generator.pt`` and ``key/surrogate.pt``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from prosima.models.model_card import sha256_file
from prosima.watermark.baselines import baseline_from
from prosima.watermark.classifier import load_classifier, weights_digest
from prosima.watermark.data import Split, XrayData
from prosima.watermark.generator import load_generator
from prosima.watermark.key import WatermarkKey, WatermarkKeyFileError
from prosima.watermark.marking import MarkedSet, Marker, XMark, mark_dataset, save_pngs, to_uint8
from prosima.watermark.verify import DEFAULT_ALPHA, DEFAULT_TAU, ModelFn, calibrate_tau


@dataclass(frozen=True, eq=False)
class Queries:
    """The held-out verification images (m, H, W) in [0, 1], their ids and labels."""

    images: np.ndarray
    ids: list[str]
    labels: np.ndarray

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            np.savez(fh, images=to_uint8(self.images), ids=np.array(self.ids), labels=self.labels)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Queries:
        try:
            with np.load(path, allow_pickle=False) as npz:
                return cls(
                    npz["images"].astype(np.float32) / 255.0,
                    [str(i) for i in npz["ids"]],
                    npz["labels"].astype(np.int64),
                )
        except (OSError, KeyError, ValueError) as exc:
            raise WatermarkKeyFileError(f"{path}: not a query set ({exc})") from None


def release_name(file_id: str, class_name: str) -> str:
    """Where an image goes in the release: ``<class>/<file>.png`` (the id when it already reads so)."""
    name = file_id if file_id.startswith(f"{class_name}/") else f"{class_name}/{file_id.replace('/', '_')}"
    return name if name.endswith(".png") else f"{name}.png"


def choose_queries(data: XrayData, pool: np.ndarray, target: int, m: int, seed: int) -> Queries:
    """m images of ``pool`` (held-out indices) not of the target class, drawn with ``seed``."""
    others = np.array(sorted((i for i in pool if data.labels[i] != target), key=lambda i: data.ids[i]))
    if len(others) < 2:
        raise ValueError("fewer than 2 held-out non-target images to query with")
    pick = others[np.random.default_rng(seed).permutation(len(others))[: min(m, len(others))]]
    pick = np.sort(pick)
    return Queries(data.images[pick], [data.ids[i] for i in pick], data.labels[pick])


def xmark_from_files(generator: str | Path, surrogate: str | Path, mask_fraction: float) -> XMark:
    """The X-Mark marker of a generator file and a surrogate file."""
    return XMark(load_generator(generator), load_classifier(surrogate), float(mask_fraction))


def load_marker(key: WatermarkKey, key_path: str | Path) -> Marker:
    """The marker a key describes (its files are checked against their recorded SHA-256 first)."""
    key.check_files(key_path)
    if key.method == "xmark":
        marker = xmark_from_files(
            key.file_path("generator", key_path),
            key.file_path("surrogate", key_path),
            key.marker["mask_fraction"],
        )
        for role, model in (("generator", marker.generator), ("surrogate", marker.surrogate)):
            if role in key.weights and weights_digest(model) != key.weights[role]:
                raise WatermarkKeyFileError(f"key field 'weights.{role}' does not match the {role} weights")
        return marker
    try:
        return baseline_from(key.marker)
    except (TypeError, ValueError) as exc:
        raise WatermarkKeyFileError(f"key field 'marker': {exc}") from None


def embed(
    data: XrayData,
    split: Split,
    marker: Marker,
    out: str | Path,
    *,
    target: int,
    fraction: float = 0.1,
    seed: int = 0,
    queries: int = 100,
    marker_files: dict[str, str | Path] | None = None,
    tau: float = DEFAULT_TAU,
    alpha: float = DEFAULT_ALPHA,
    extra_seeds: dict[str, int] | None = None,
    references: list[ModelFn] | None = None,
) -> tuple[MarkedSet, WatermarkKey, Path]:
    """Mark ``fraction`` of the target images of the training split, write the release, the query set
    (from the test split) and the key under ``out``; returns the marked set, the key and its path.
    ``marker_files`` ({generator, surrogate} for X-Mark) are copied beside the key. With clean
    ``references`` (models trained without the marks), ``tau`` is calibrated on them
    (``verify.calibrate_tau``, with ``tau`` as the floor) and recorded."""
    out = Path(out)
    if (out / "key" / "key.json").exists():
        raise FileExistsError(f"{out}: a key is already there; choose a new --out")
    train = data.subset(split.train)
    marked = mark_dataset(train.images, train.labels, train.ids, marker, target, fraction, seed)
    names = [release_name(i, data.classes[y]) for i, y in zip(marked.ids, marked.labels, strict=True)]
    save_pngs(out / "release", marked.images, names)
    (out / "release" / "labels.tsv").write_text(
        "file\tid\tlabel\n"
        + "".join(f"{f}\t{i}\t{y}\n" for f, i, y in zip(names, marked.ids, marked.labels, strict=True))
    )
    keydir = out / "key"
    q = choose_queries(data, split.test, target, queries, seed)
    verify = {"tau": float(tau), "alpha": float(alpha)}
    if references:
        cal = calibrate_tau(references, q.images, marker(q.images), target, floor=tau)
        verify = {
            "tau": cal["tau"],
            "alpha": float(alpha),
            "tau_floor": float(tau),
            "reference_effect": max(cal["reference_effects"]),
        }
    files: dict[str, dict[str, str]] = {}
    q_path = q.save(keydir / "queries.npz")
    files["queries"] = {"path": q_path.name, "sha256": sha256_file(q_path)}
    weights: dict[str, str] = {}
    for role, src in (marker_files or {}).items():
        dst = keydir / f"{role}.pt"
        shutil.copyfile(src, dst)
        files[role] = {"path": dst.name, "sha256": sha256_file(dst)}
    if isinstance(marker, XMark):
        weights = {
            "generator": weights_digest(marker.generator),
            "surrogate": weights_digest(marker.surrogate),
        }
    describe: dict[str, Any] = getattr(marker, "describe", dict)()
    key = WatermarkKey(
        method=str(describe.get("method", "xmark")),
        marker=describe,
        target=int(target),
        classes=list(data.classes),
        marked_fraction=float(fraction),
        marked=marked.record(),
        files=files,
        weights=weights,
        seeds={"mark": int(seed), "split": int(split.seed), "queries": int(seed), **(extra_seeds or {})},
        dataset={
            **{k: v for k, v in data.source.items() if k != "path"},
            "n_train": len(split.train),
            "n_test": len(split.test),
            "split_fractions": list(split.fractions),
            "query_ids": q.ids,
        },
        verify=verify,
    )
    return marked, key, key.save(keydir / "key.json")
