"""Dataset-ownership benchmark for X-Mark (issue 7) against BadNets and Blended on real chest X-rays.

One split by file; the owner trains a surrogate and the X-Mark generator on the training split and
marks a fraction of the target-class training images, clean label (BadNets and Blended mark the same
images the same way). Suspicious models are then queried, black box, with m held-out non-target
images, clean and marked: paired one-sided t-test on the target probability above a margin tau
(``verify_ownership``), and the label-only Wilcoxon variant. Scenarios: Malicious (trained on the
marked set: must be claimed; also at another resolution, with another architecture, fine-tuned on
clean data, pruned, and queried through JPEG), Independent-Model (trained on clean data: must not be
claimed) and Independent-Trigger (a marked model queried with another owner's key: must not be
claimed). Tau is calibrated per method, before any suspect is seen, on clean reference models that
are not among the Independent-Model runs (``calibrate_tau``). Every seed is recorded in the JSON.
``measure`` runs it all; ``run_watermark_bench`` prints the tables and writes the JSON and a figure.
"""

from __future__ import annotations

import copy
import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from prosima.bench.progress import SILENT, Progress
from prosima.bench.render import (
    Block,
    FigureFile,
    Rows,
    console_progress,
    figure_beside,
    make_console,
    publish,
    pyplot,
    show,
)
from prosima.bench.report import environment
from prosima.imaging.metrics import psnr, ssim
from prosima.watermark.baselines import BadNets, Blended
from prosima.watermark.classifier import TrainConfig, accuracy, predict_proba, train_classifier
from prosima.watermark.data import Split, XrayData, load_covid_xray, load_dataset, split_by_file
from prosima.watermark.embed import choose_queries
from prosima.watermark.marking import Marker, mark_dataset, quantise, to_uint8
from prosima.watermark.pipeline import train_xmark
from prosima.watermark.train import GeneratorConfig
from prosima.watermark.verify import DEFAULT_ALPHA, DEFAULT_TAU, calibrate_tau, verify_ownership

METHODS = ("xmark", "badnets", "blended")
LABELS = {"xmark": "X-Mark", "badnets": "BadNets", "blended": "Blended"}
MALICIOUS = ("malicious", "resolution", "architecture", "finetune", "prune", "jpeg")
CASES = (*MALICIOUS, "independent_model", "independent_trigger")
AIMS = {"wsr": 0.95, "alpha": DEFAULT_ALPHA, "psnr_db": 40.0, "ssim": 0.98, "accuracy_points": 2.0}
MIN_INDEPENDENT_RUNS = 10
FINETUNE_LR = 5e-4


@dataclass(frozen=True)
class WatermarkConfig:
    """What ``bench watermark`` measures (module note)."""

    data: XrayData | str | Path | None = None  # images, an image folder, or None: the COVID chest X-rays
    size: int | None = 64  # images down-sampled to size x size when loaded (None: as stored)
    seeds: int = 3  # Malicious models per method (each also fine-tuned, pruned and queried via JPEG)
    independent_runs: int = 10  # clean models shared by all methods (Independent-Model)
    reference_runs: int = 2  # other clean models that calibrate tau
    retrain_seeds: int = 1  # Malicious models also retrained at ``scale`` x resolution and as ``other_arch``
    fraction: float = 0.1  # fraction of the target class's training images marked
    target: int | str = "Pneumonia"  # target class: name or index
    epochs: int = 10  # epochs of every classifier trained
    generator_epochs: int = 8  # epochs of the X-Mark generator
    finetune_epochs: int = 5  # epochs of the fine-tuning attack (on the clean validation split)
    eps: float = 8 / 255  # X-Mark's L-inf bound on the mark
    mask_fraction: float = 0.25  # fraction of the image X-Mark may change
    width: int = 16  # width of every classifier
    m: int = 100  # held-out non-target images the suspects are queried with
    scale: int = 2  # resolution factor of the retrained Malicious model
    other_arch: str = "resnet"  # architecture of the retrained Malicious model
    prune_amount: float = 0.5  # share of weights the pruning attack removes
    jpeg_quality: int = 75  # JPEG quality of the query attack
    blend_alpha: float = 0.1  # Blended's blend weight
    split_seed: int = 0  # seed of the split by file
    key_seed: int = 0  # the owner's key (X-Mark generator, Blended pattern, queries, marked images)
    other_key_seed: int = 1  # another owner's key (Independent-Trigger)
    threads: int = 2  # torch CPU threads (at most 2)


@dataclass(frozen=True)
class WatermarkResult:
    """The JSON document, and three queries clean and marked by each method (the figure)."""

    document: dict[str, Any]
    examples: dict[str, np.ndarray]  # "clean" and each method's marked copies


@dataclass(frozen=True)
class _RandomPatch:
    """Another owner's BadNets key: a seeded random binary square patch in the top-left corner."""

    patch_fraction: float = 0.1
    margin: int = 1
    seed: int = 1
    method: str = "badnets"

    def __call__(self, images: np.ndarray) -> np.ndarray:
        out = np.array(images, dtype=np.float32, copy=True)
        s = max(3, round(self.patch_fraction * min(out.shape[-2:])))
        board = np.random.default_rng(self.seed).integers(0, 2, (s, s)).astype(np.float32)
        out[..., self.margin : self.margin + s, self.margin : self.margin + s] = board
        return out

    def describe(self) -> dict[str, Any]:
        return {"method": self.method, "patch": "random binary, top-left", **self.__dict__}


def resize_batch(images: np.ndarray, size: int) -> np.ndarray:
    """(N, H, W) images in [0, 1] resized to ``size`` x ``size`` (PIL bilinear on 8-bit pixels)."""
    from PIL import Image

    if images.shape[-1] == size and images.shape[-2] == size:
        return np.asarray(images, dtype=np.float32)
    px = to_uint8(images)
    out = [np.asarray(Image.fromarray(p).resize((size, size), Image.Resampling.BILINEAR)) for p in px]
    return np.stack(out).astype(np.float32) / 255.0


def jpeg_batch(images: np.ndarray, quality: int = 75) -> np.ndarray:
    """(N, H, W) images in [0, 1] through 8-bit JPEG at ``quality`` (PIL) and back."""
    from PIL import Image

    out = []
    for p in to_uint8(images):
        buf = io.BytesIO()
        Image.fromarray(p).save(buf, format="JPEG", quality=quality)
        buf.seek(0)
        with Image.open(buf) as im:
            out.append(np.asarray(im.convert("L")))
    return np.stack(out).astype(np.float32) / 255.0


def prune_global(model: nn.Module, amount: float) -> nn.Module:
    """A copy of ``model`` with global L1 magnitude pruning of ``amount`` of its conv/linear weights."""
    from torch.nn.utils import prune

    pruned = copy.deepcopy(model)
    params = [(m, "weight") for m in pruned.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=amount)
    for m, name in params:
        prune.remove(m, name)
    return pruned.eval()


def _prob_fn(model: nn.Module, transform: Callable[[np.ndarray], np.ndarray] | None) -> Callable:
    return lambda x: predict_proba(model, transform(x) if transform else x)


def _verify(
    model: nn.Module,
    clean: np.ndarray,
    marked: np.ndarray,
    target: int,
    tau: float,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict[str, Any]:
    """The probability test and the label-only test of one model (queries passed through ``transform``)."""
    fn = _prob_fn(model, transform)
    res = verify_ownership(fn, clean, marked, target, tau=tau)
    lab = verify_ownership(lambda x: fn(x).argmax(1), clean, marked, target, tau=tau, label_only=True)
    res["label_only"] = {k: lab[k] for k in ("wsr", "wsr_clean", "statistic", "p_value", "claim")}
    return _finite(res)


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    return obj


def _target_index(classes: list[str], target: int | str) -> int:
    if isinstance(target, str):
        if target not in classes:
            raise ValueError(f"target {target!r} is not one of {classes}")
        return classes.index(target)
    if not 0 <= int(target) < len(classes):
        raise ValueError(f"target {target} out of range for {len(classes)} classes")
    return int(target)


def _load(data: XrayData | str | Path | None, size: int | None) -> XrayData:
    if isinstance(data, XrayData):
        return data
    if data is None:
        return load_covid_xray(size=size)
    return load_dataset(data, size=size)


def _quality(original: np.ndarray, marked: np.ndarray) -> dict[str, float]:
    p = [psnr(a, b, data_range=1.0) for a, b in zip(original, marked, strict=True)]
    s = [ssim(a, b, data_range=1.0) for a, b in zip(original, marked, strict=True)]
    p = [v for v in p if np.isfinite(v)] or [float("inf")]
    return {
        "psnr_db": float(np.mean(p)),
        "psnr_db_min": float(np.min(p)),
        "ssim": float(np.mean(s)),
        "ssim_min": float(np.min(s)),
        "linf": float(np.abs(marked - original).max()),
        "n": len(original),
    }


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "runs": len(runs),
        "wsr_median": float(np.median([r["wsr"] for r in runs])),
        "wsr_clean_median": float(np.median([r["wsr_clean"] for r in runs])),
        "delta_p_median": float(np.median([r["delta_p"] for r in runs])),
        "p_value_median": float(np.median([r["p_value"] for r in runs])),
        "p_value_max": float(np.max([r["p_value"] for r in runs])),
        "claims": int(sum(r["claim"] for r in runs)),
        "label_only_claims": int(sum(r["label_only"]["claim"] for r in runs)),
        "label_only_p_median": float(np.median([r["label_only"]["p_value"] for r in runs])),
    }


class _Run:
    """One run's data, split, target, seeds and timings, and the classifiers it trains."""

    def __init__(self, config: WatermarkConfig) -> None:
        self.config = config
        self.data = _load(config.data, config.size)
        self.target = _target_index(self.data.classes, config.target)
        self.split: Split = split_by_file(self.data.ids, self.data.labels, seed=config.split_seed)
        self.train = self.data.subset(self.split.train)
        self.val = self.data.subset(self.split.val)
        self.test = self.data.subset(self.split.test)
        self.hw = int(self.data.images.shape[-1])
        self.big = config.scale * self.hw
        self.seeds: dict[str, Any] = {
            "split": config.split_seed,
            "key": config.key_seed,
            "other_key": config.other_key_seed,
            "queries": config.key_seed,
            "mark": config.key_seed,
            "malicious": [100 + i for i in range(config.seeds)],
            "independent": [200 + i for i in range(config.independent_runs)],
            "reference": [300 + i for i in range(config.reference_runs)],
        }
        self.timing: dict[str, float] = {}

    @cached_property
    def test_big(self) -> np.ndarray:
        """The test images at ``scale`` x the resolution."""
        return resize_batch(self.test.images, self.big)

    def fit(self, images: np.ndarray, labels: np.ndarray, seed: int, arch: str = "cnn") -> nn.Module:
        """A classifier trained from scratch."""
        cfg = TrainConfig(epochs=self.config.epochs, seed=seed)
        return train_classifier(
            images, labels, arch, cfg, n_classes=len(self.data.classes), width=self.config.width
        )


@dataclass(frozen=True)
class _Marks:
    """Each method's marker and another owner's, the marked training sets and queries, their quality."""

    markers: dict[str, Marker]
    others: dict[str, Marker]
    owner_info: dict[str, Any]
    other_info: dict[str, Any]
    sets: dict[str, Any]
    query_ids: list[str]
    clean: np.ndarray  # the queries as they are
    marked: dict[str, np.ndarray]  # marked with the owner's key
    other_marked: dict[str, np.ndarray]  # marked with another owner's key
    quality: dict[str, Any]


def _mark(run: _Run, progress: Progress) -> _Marks:
    """Train both X-Mark generators, then mark the training set and the queries with every key."""
    c, data, t = run.config, run.data, run.target
    t0 = time.perf_counter()
    gcfg = GeneratorConfig(
        eps=c.eps, mask_fraction=c.mask_fraction, epochs=c.generator_epochs, seed=c.key_seed
    )
    xmark, xinfo = train_xmark(
        data, run.split, t, gcfg, TrainConfig(epochs=c.epochs, seed=c.key_seed), width=c.width
    )
    ocfg = GeneratorConfig(
        eps=c.eps, mask_fraction=c.mask_fraction, epochs=c.generator_epochs, seed=c.other_key_seed
    )
    other_xmark, oinfo = train_xmark(
        data, run.split, t, ocfg, TrainConfig(epochs=c.epochs, seed=c.other_key_seed), width=c.width
    )
    run.timing["xmark_train_s"] = time.perf_counter() - t0
    markers: dict[str, Marker] = {
        "xmark": xmark,
        "badnets": BadNets(),
        "blended": Blended(c.blend_alpha, c.key_seed),
    }
    others: dict[str, Marker] = {
        "xmark": other_xmark,
        "badnets": _RandomPatch(seed=c.other_key_seed),
        "blended": Blended(c.blend_alpha, c.other_key_seed),
    }
    progress.note(
        f"X-Mark surrogate test accuracy {xinfo['surrogate']['test_accuracy']:.3f}, surrogate WSR "
        f"{xinfo['generator']['history'][-1]['surrogate_wsr']:.3f} ({run.timing['xmark_train_s']:.0f} s)"
    )
    queries = choose_queries(data, run.split.test, t, c.m, run.seeds["queries"])
    qc = queries.images
    train = run.train
    marked_sets, qm, qo, quality = {}, {}, {}, {}
    for name, marker in markers.items():
        ms = mark_dataset(train.images, train.labels, train.ids, marker, t, c.fraction, run.seeds["mark"])
        marked_sets[name] = ms
        qm[name] = quantise(marker(qc))
        qo[name] = quantise(others[name](qc))
        quality[name] = {
            "train": _quality(train.images[ms.marked], ms.images[ms.marked]),
            "queries": _quality(qc, qm[name]),
        }
    return _Marks(markers, others, xinfo, oinfo, marked_sets, queries.ids, qc, qm, qo, quality)


def _clean_models(
    run: _Run, marks: _Marks, runs: dict[str, dict[str, list[dict[str, Any]]]], progress: Progress
) -> tuple[dict[str, Any], list[float]]:
    """Tau per method from the reference models, then the Independent-Model runs (kept in ``runs``);
    the taus and the clean models' test accuracies."""
    t, train, test, qc = run.target, run.train, run.test, marks.clean
    t0 = time.perf_counter()
    refs = [run.fit(train.images, train.labels, s) for s in run.seeds["reference"]]
    tau: dict[str, Any] = {}
    for name in METHODS:
        if refs:
            tau[name] = calibrate_tau(
                [_prob_fn(r, None) for r in refs], qc, marks.marked[name], t, floor=DEFAULT_TAU
            )
        else:
            tau[name] = {"tau": DEFAULT_TAU, "reference_effects": [], "reference_bounds": []}
    clean_acc = []
    for s in run.seeds["independent"]:
        model = run.fit(train.images, train.labels, s)
        clean_acc.append(accuracy(model, test.images, test.labels))
        for name in METHODS:
            res = _verify(model, qc, marks.marked[name], t, tau[name]["tau"])
            runs[name]["independent_model"].append(res | {"seed": s, "test_accuracy": clean_acc[-1]})
    run.timing["clean_models_s"] = time.perf_counter() - t0
    progress.note(
        f"{len(refs)} reference + {len(clean_acc)} independent clean models "
        f"({run.timing['clean_models_s']:.0f} s)"
    )
    return tau, clean_acc


def _attacks(
    run: _Run, name: str, marks: _Marks, tau_n: float, i: int, s: int
) -> tuple[float, dict[str, tuple[dict[str, Any], float]]]:
    """One Malicious model of ``name`` and every attack on it: its test accuracy, and per case the
    verification and the attacked model's accuracy."""
    c, t, test, val = run.config, run.target, run.test, run.val
    ms, qc, qm = marks.sets[name], marks.clean, marks.marked[name]
    base = run.fit(ms.images, ms.labels, s)
    acc = accuracy(base, test.images, test.labels)
    cases: dict[str, tuple[dict[str, Any], float]] = {
        "malicious": (_verify(base, qc, qm, t, tau_n), acc),
        "independent_trigger": (_verify(base, qc, marks.other_marked[name], t, tau_n), acc),
        "jpeg": (_verify(base, qc, qm, t, tau_n, lambda x: jpeg_batch(x, c.jpeg_quality)), acc),
    }
    pruned = prune_global(base, c.prune_amount)
    cases["prune"] = (_verify(pruned, qc, qm, t, tau_n), accuracy(pruned, test.images, test.labels))
    tuned = train_classifier(
        val.images,
        val.labels,
        config=TrainConfig(epochs=c.finetune_epochs, lr=FINETUNE_LR, seed=s),
        model=copy.deepcopy(base),
    )
    cases["finetune"] = (_verify(tuned, qc, qm, t, tau_n), accuracy(tuned, test.images, test.labels))
    if i < c.retrain_seeds:
        big = run.big
        hi = run.fit(resize_batch(ms.images, big), ms.labels, s)
        res_hi = _verify(hi, qc, qm, t, tau_n, lambda x: resize_batch(x, big))
        cases["resolution"] = (res_hi, accuracy(hi, run.test_big, test.labels))
        other = run.fit(ms.images, ms.labels, s, arch=c.other_arch)
        cases["architecture"] = (_verify(other, qc, qm, t, tau_n), accuracy(other, test.images, test.labels))
    return acc, cases


def _suspicious_models(
    run: _Run,
    marks: _Marks,
    tau: dict[str, Any],
    runs: dict[str, dict[str, list[dict[str, Any]]]],
    progress: Progress,
) -> dict[str, list[float]]:
    """Every Malicious model and its attacks (kept in ``runs``); the Malicious test accuracies."""
    marked_acc: dict[str, list[float]] = {n: [] for n in METHODS}
    t0 = time.perf_counter()
    for name in METHODS:
        for i, s in enumerate(run.seeds["malicious"]):
            acc, cases = _attacks(run, name, marks, tau[name]["tau"], i, s)
            marked_acc[name].append(acc)
            for case, (res, case_acc) in cases.items():
                runs[name][case].append(res | {"seed": s, "test_accuracy": case_acc})
        progress.note(f"{LABELS[name]}: suspicious models done ({time.perf_counter() - t0:.0f} s)")
    run.timing["suspicious_models_s"] = time.perf_counter() - t0
    return marked_acc


def _accuracy(clean_acc: list[float], marked_acc: dict[str, list[float]]) -> dict[str, Any]:
    """Clean test accuracy of the clean models and of the models trained on each marked set."""
    return {
        "clean_models": {"mean": float(np.mean(clean_acc)), "runs": clean_acc},
        **{
            n: {
                "mean": float(np.mean(marked_acc[n])),
                "runs": marked_acc[n],
                "points_vs_clean": 100 * float(np.mean(marked_acc[n]) - np.mean(clean_acc)),
            }
            for n in METHODS
        },
    }


def _settings(run: _Run, marks: _Marks) -> dict[str, Any]:
    c = run.config
    return {
        "size": run.hw,
        "fraction": c.fraction,
        "marked_images": {n: len(marks.sets[n].marked) for n in METHODS},
        "epochs": c.epochs,
        "generator_epochs": c.generator_epochs,
        "finetune": {"epochs": c.finetune_epochs, "lr": FINETUNE_LR, "data": "clean validation split"},
        "eps": c.eps,
        "mask_fraction": c.mask_fraction,
        "width": c.width,
        "m": len(marks.clean),
        "scale": c.scale,
        "resolution": run.big,
        "other_arch": c.other_arch,
        "prune_amount": c.prune_amount,
        "jpeg_quality": c.jpeg_quality,
        "markers": {n: getattr(marks.markers[n], "describe", dict)() for n in METHODS},
        "other_keys": {n: getattr(marks.others[n], "describe", dict)() for n in METHODS},
        "alpha": DEFAULT_ALPHA,
        "threads": torch.get_num_threads(),
        "seeds": run.seeds,
        "retrain_seeds": c.retrain_seeds,
    }


def measure(config: WatermarkConfig, progress: Progress = SILENT) -> WatermarkResult:
    """Run every method x scenario (module note)."""
    t_start = time.perf_counter()
    torch.set_num_threads(max(1, min(config.threads, 2)))
    run = _Run(config)
    data, hw = run.data, run.hw
    progress.note(
        f"{len(data.ids)} images {hw}x{hw}, classes {data.classes}, target {data.classes[run.target]}"
    )
    marks = _mark(run, progress)
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {n: {c: [] for c in CASES} for n in METHODS}
    tau, clean_acc = _clean_models(run, marks, runs, progress)
    marked_acc = _suspicious_models(run, marks, tau, runs, progress)
    split = run.split
    out: dict[str, Any] = {
        "benchmark": "watermark",
        "source": {k2: v for k2, v in data.source.items()},
        "classes": data.classes,
        "target": run.target,
        "split": {
            "seed": split.seed,
            "fractions": list(split.fractions),
            "n_train": len(split.train),
            "n_val": len(split.val),
            "n_test": len(split.test),
        },
        "settings": _settings(run, marks),
        "xmark": {"owner": marks.owner_info, "other_key": marks.other_info},
        "tau": tau,
        "query_ids": marks.query_ids,
        "quality": marks.quality,
        "accuracy": _accuracy(clean_acc, marked_acc),
        "summary": {n: {c: _summary(runs[n][c]) for c in CASES if runs[n][c]} for n in METHODS},
        "runs": runs,
        "environment": environment(torch=torch.__version__),
    }
    out["aims"] = aims(out)
    out["timing"] = run.timing | {"total_s": time.perf_counter() - t_start}
    examples = {"clean": marks.clean[:3], **{n: marks.marked[n][:3] for n in METHODS}}
    return WatermarkResult(out, examples)


def run_watermark_bench(
    data: XrayData | str | Path | None = None,
    *,
    size: int | None = 64,
    seeds: int = 3,
    independent_runs: int = 10,
    reference_runs: int = 2,
    retrain_seeds: int = 1,
    fraction: float = 0.1,
    target: int | str = "Pneumonia",
    epochs: int = 10,
    generator_epochs: int = 8,
    finetune_epochs: int = 5,
    eps: float = 8 / 255,
    mask_fraction: float = 0.25,
    width: int = 16,
    m: int = 100,
    scale: int = 2,
    other_arch: str = "resnet",
    prune_amount: float = 0.5,
    jpeg_quality: int = 75,
    blend_alpha: float = 0.1,
    split_seed: int = 0,
    key_seed: int = 0,
    other_key_seed: int = 1,
    threads: int = 2,
    json_path: str | Path | None = None,
) -> dict[str, Any]:
    """Measure (``WatermarkConfig`` says what each option sets), print the tables, write the JSON and
    the figure beside it; return the JSON document."""
    config = WatermarkConfig(
        data,
        size=size,
        seeds=seeds,
        independent_runs=independent_runs,
        reference_runs=reference_runs,
        retrain_seeds=retrain_seeds,
        fraction=fraction,
        target=target,
        epochs=epochs,
        generator_epochs=generator_epochs,
        finetune_epochs=finetune_epochs,
        eps=eps,
        mask_fraction=mask_fraction,
        width=width,
        m=m,
        scale=scale,
        other_arch=other_arch,
        prune_amount=prune_amount,
        jpeg_quality=jpeg_quality,
        blend_alpha=blend_alpha,
        split_seed=split_seed,
        key_seed=key_seed,
        other_key_seed=other_key_seed,
        threads=threads,
    )
    console = make_console(off_terminal=160)
    with console_progress(console, bar=False) as watch:
        result = measure(config, watch)
    show(console, report(result.document))
    figure = figure_beside(json_path)
    figures = [] if figure is None else [FigureFile(figure, lambda: draw_summary(result))]
    publish(console, result.document, json_path, figures)
    return result.document


def aims(out: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per method, each aim of the issue with the value that decides it and ``met``."""
    res: dict[str, dict[str, Any]] = {}
    for n in METHODS:
        s = out["summary"][n]
        mal = [r for c in MALICIOUS for r in out["runs"][n][c]]
        ind = out["runs"][n]["independent_model"]
        q = out["quality"][n]["train"]
        pts = out["accuracy"][n]["points_vs_clean"]
        worst = f"min WSR {min(r['wsr'] for r in mal):.2f}, max p {max(r['p_value'] for r in mal):.1e}"
        trig = s["independent_trigger"]
        res[n] = {
            "malicious_claimed": {
                "value": worst,
                "met": all(r["wsr"] >= AIMS["wsr"] and r["p_value"] < AIMS["alpha"] for r in mal),
            },
            "no_false_claim": {
                "value": f"{s['independent_model']['claims']}/{len(ind)} Independent-Model, "
                f"{trig['claims']}/{trig['runs']} Independent-Trigger",
                "met": len(ind) >= MIN_INDEPENDENT_RUNS
                and s["independent_model"]["claims"] == 0
                and s["independent_trigger"]["claims"] == 0,
            },
            "image_quality": {
                "value": f"PSNR {q['psnr_db']:.1f} dB, SSIM {q['ssim']:.4f}",
                "met": q["psnr_db"] >= AIMS["psnr_db"] and q["ssim"] >= AIMS["ssim"],
            },
            "clean_accuracy": {"value": f"{pts:+.1f} points", "met": abs(pts) <= AIMS["accuracy_points"]},
        }
    return res


CASE_LABELS = {
    "malicious": "Malicious",
    "resolution": "Malicious, {res} px",
    "architecture": "Malicious, {arch}",
    "finetune": "Malicious, fine-tuned",
    "prune": "Malicious, pruned {prune:.0%}",
    "jpeg": "Malicious, JPEG q{q}",
    "independent_model": "Independent-Model",
    "independent_trigger": "Independent-Trigger",
}


def _scenario_rows(out: dict[str, Any]) -> Rows:
    """The method x scenario table."""
    st = out["settings"]
    fmt = {
        "res": st["resolution"],
        "arch": st["other_arch"],
        "prune": st["prune_amount"],
        "q": st["jpeg_quality"],
    }
    rows: list[tuple[str, ...] | None] = []
    for n in METHODS:
        for c in CASES:
            s = out["summary"][n].get(c)
            if s is None:
                continue
            want = c in MALICIOUS
            ok = s["claims"] == s["runs"] if want else s["claims"] == 0
            rows.append(
                (
                    LABELS[n],
                    CASE_LABELS[c].format(**fmt),
                    f"{out['tau'][n]['tau']:.3f}",
                    f"{100 * s['wsr_median']:.1f}%",
                    f"{s['delta_p_median']:+.3f}",
                    f"{s['p_value_median']:.1e}",
                    f"{s['claims']}/{s['runs']}",
                    f"{s['label_only_claims']}/{s['runs']}",
                    ("claim" if want else "no claim") + (" ✓" if ok else " ✗"),
                )
            )
        rows.append(None)
    title = (
        f"Ownership verification, {out['source'].get('name', 'data')} {st['size']} px, target "
        f"{out['classes'][out['target']]}, {st['fraction']:.0%} marked, m={st['m']} (medians over runs)"
    )
    columns = ("method", "scenario", "tau", "WSR", "ΔP", "p-value", "claims", "label-only", "expected")
    return Rows(title, columns, rows)


def _quality_line(out: dict[str, Any], n: str) -> str:
    """Image quality of one method's marks and the clean accuracy of models trained on them."""
    acc = out["accuracy"]
    q = out["quality"][n]["train"]
    return (
        f"{LABELS[n]}: marked vs original ({q['n']} training images) PSNR {q['psnr_db']:.2f} dB "
        f"(min {q['psnr_db_min']:.2f}), SSIM {q['ssim']:.4f} (min {q['ssim_min']:.4f}), "
        f"L-inf {255 * q['linf']:.0f}/255; clean test accuracy trained on marked set "
        f"{100 * acc[n]['mean']:.1f}% vs clean {100 * acc['clean_models']['mean']:.1f}% "
        f"({acc[n]['points_vs_clean']:+.1f} points)"
    )


def _aims_rows(out: dict[str, Any]) -> Rows:
    """Each aim, met or missed, per method."""
    rows = []
    for aim in ("malicious_claimed", "no_false_claim", "image_quality", "clean_accuracy"):
        cells = []
        for n in METHODS:
            a = out["aims"][n][aim]
            cells.append(f"{'met' if a['met'] else 'missed'}: {a['value']}")
        rows.append((aim.replace("_", " "), *cells))
    title = (
        "Aims: WSR >= 95% and p < 0.01 in every Malicious case; no false claim in >= 10 "
        "Independent-Model runs (nor Independent-Trigger); PSNR >= 40 dB and SSIM >= 0.98; "
        "clean accuracy within 2 points"
    )
    return Rows(title, ("aim", *(LABELS[n] for n in METHODS)), rows, justify="left")


def report(out: dict[str, Any]) -> list[Block]:
    """The method x scenario table, then image quality, clean accuracy and the aims."""
    return [_scenario_rows(out), *(_quality_line(out, n) for n in METHODS), _aims_rows(out)]


def draw_summary(result: WatermarkResult) -> Any:
    """WSR and -log10 p (median) per case and method; clean, marked and |diff| (x10) examples."""
    out, examples = result.document, result.examples
    plt = pyplot()
    fig = plt.figure(figsize=(14, 8), dpi=110)
    grid = fig.add_gridspec(2, 1 + 2 * len(METHODS), height_ratios=[1.2, 1])
    a, b = fig.add_subplot(grid[0, : len(METHODS) + 1]), fig.add_subplot(grid[0, len(METHODS) + 1 :])
    cases = [c for c in CASES if all(c in out["summary"][n] for n in METHODS)]
    x = np.arange(len(cases))
    w = 0.8 / len(METHODS)
    for j, n in enumerate(METHODS):
        s = out["summary"][n]
        a.bar(x + j * w, [100 * s[c]["wsr_median"] for c in cases], w, label=LABELS[n])
        b.bar(x + j * w, [-np.log10(max(s[c]["p_value_median"], 1e-300)) for c in cases], w, label=LABELS[n])
    a.axhline(100 * AIMS["wsr"], ls="--", c="gray")
    b.axhline(-np.log10(AIMS["alpha"]), ls="--", c="gray", label="p = 0.01")
    for ax, ylabel in ((a, "WSR % (median)"), (b, "-log10 p (median)")):
        ax.set_xticks(x + w, [c.replace("_", "\n") for c in cases], fontsize=7)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
    clean = examples["clean"][0]
    cols = [("clean", clean)]
    for n in METHODS:
        cols += [
            (LABELS[n], examples[n][0]),
            (f"|{LABELS[n]} - clean| x10", np.abs(examples[n][0] - clean) * 10),
        ]
    for j, (title, img) in enumerate(cols[: 1 + 2 * len(METHODS)]):
        ax = fig.add_subplot(grid[1, j])
        ax.imshow(np.clip(img, 0, 1), cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=7)
        ax.axis("off")
    fig.tight_layout()
    return fig
