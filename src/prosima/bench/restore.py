"""Restoration benchmark (paper Tables 2-4): learned restorers against BM3D and NLM on held-out slices.

Every method sees the same noisy slices (seed rule of ``bench denoise``) and is scored by PSNR, SSIM,
brain-masked PSNR, embedding cosine and seconds per slice at batch 1. The cosine is the mean over the
K=16 GFT shards of the cosine between the *evaluation* encoder's embeddings of the restored and the
clean shard: that encoder was trained independently of the semantic encoder the losses use, so no
model is graded with its own answer key. ``prosima-full`` is conditioned on the fingerprint of the
clean slice, as if it had been anchored at acquisition; computing it is not counted in its time.

``measure`` scores; ``run_restore_bench`` writes JSON shaped like ``bench denoise`` (a ``results``
list, one record per method and sigma), prints a table with the seed paper's figures beside ours,
and saves a figure: clean / noisy / BM3D / ours / errors.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prosima.bench import restore_volume
from prosima.bench.denoise import load_bench_slices
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
from prosima.bench.report import environment, results_rows, summarise
from prosima.bench.weights import find_weights
from prosima.imaging.baselines import get_denoiser
from prosima.imaging.corruption import gaussian_noise, rician_noise
from prosima.imaging.metrics import brain_mask, cosine_similarity, masked_psnr, psnr, ssim
from prosima.imaging.validation import ImageError
from prosima.models.checkpoint import CheckpointError, load_model, state_digest
from prosima.models.fingerprint import compute_fingerprints, inference, shard_embeddings
from prosima.models.inference import restore

LEARNED = ("unet-pixel", "unet-perceptual", "unet-semantic", "prosima-no-fingerprint", "prosima-full")
CLASSICAL = ("bm3d", "nlm")
DEFAULT_METHODS = (*LEARNED, *CLASSICAL)
METRICS = ("psnr", "ssim", "psnr_brain", "cosine", "seconds_per_image")
COSINE_SHARDS = 16
NOISES = {"gaussian": gaussian_noise, "rician": rician_noise}
VOLUME_METHODS = ("noisy", "bm3d", "bm4d", "prosima-full", "prosima-volume")

# The seed paper's figures ("at least" / "at most" values; BraTS 2020, noise levels pooled in Table 2).
PAPER = {
    "unet-pixel": {
        "psnr": 26.0,
        "ssim": 0.80,
        "cosine": 0.62,
        "latency_ms": 251,
        "cosine_by_sigma": {0.02: 0.56, 0.05: 0.45, 0.10: 0.39},
    },
    "unet-perceptual": {
        "psnr": 27.6,
        "ssim": 0.83,
        "cosine": 0.68,
        "latency_ms": 238,
        "cosine_by_sigma": {0.02: 0.63, 0.05: 0.52, 0.10: 0.42},
    },
    "unet-semantic": {
        "psnr": 28.0,
        "ssim": 0.85,
        "cosine": 0.87,
        "latency_ms": 233,
        "cosine_by_sigma": {0.02: 0.86, 0.05: 0.81, 0.10: 0.73},
    },
    "prosima-no-fingerprint": {"cosine": 0.86, "latency_ms": 181, "source": "Table 4, w/o fingerprint"},
    "prosima-full": {
        "psnr": 28.2,
        "ssim": 0.86,
        "cosine": 0.92,
        "latency_ms": 204,
        "cosine_by_sigma": {0.02: 0.91, 0.05: 0.86, 0.10: 0.79},
    },
}
PAPER_ABLATION = {"full": 0.91, "w/o semantic loss": 0.63, "w/o fingerprint": 0.86, "w/o GFT": 0.88}
TITLE = "Restoration of held-out slices (data_range 1; cosine: evaluation encoder)"


@dataclass(frozen=True)
class RestoreConfig:
    """What ``bench restore`` measures."""

    data: str | Path | None = None  # BraTS folder; None: the embedded default brain
    methods: tuple[str, ...] = DEFAULT_METHODS  # learned and classical restorers (also: noisy)
    sigmas: tuple[float, ...] = (0.02, 0.05, 0.10)  # noise sigmas on [0, 1]
    max_slices: int | None = None  # that many slices, evenly spaced (None: all)
    subjects: tuple[str, ...] | None = ("TCGA-DU-7294",)  # held-out subjects (ignored without data)
    contrasts: tuple[str, ...] = ("t1n", "t1c", "t2w", "t2f")  # BraTS contrasts
    weights: str | Path | None = None  # folder of candidate weights (None: the shipped ones)
    seed: int = 0  # base seed of the noise (rule in the JSON)
    threads: int = 2  # torch CPU threads (timing is per slice at batch 1)
    noises: tuple[str, ...] = ("gaussian",)  # noise kinds of the slice rows
    volume_slices: int = 0  # > 0: also score blocks of that many slices (``bench.restore_volume``)
    volume_methods: tuple[str, ...] = VOLUME_METHODS  # methods of the volume rows

    def __post_init__(self) -> None:
        bad_noise = sorted(set(self.noises) - set(NOISES))
        if bad_noise:
            raise ImageError(f"unknown noise {bad_noise}; choose from {list(NOISES)}")
        unknown = sorted(set(self.methods) - {*DEFAULT_METHODS, "noisy"})
        if unknown:
            raise ImageError(f"unknown methods {unknown}; choose from {[*DEFAULT_METHODS, 'noisy']}")

    @property
    def held_out(self) -> tuple[str, ...] | None:
        """The subjects to read: only a BraTS folder has subjects."""
        return self.subjects if self.data is not None else None


@dataclass(frozen=True)
class RestoreResult:
    """The JSON document, one slice restored at every sigma (the figure) and the encoders' digests."""

    document: dict[str, Any]
    example: dict[float, dict[str, np.ndarray]]  # per sigma: "clean", "noisy" and each method's output
    example_title: str
    baseline: str | None  # the classical method in the figure
    ours: str | None  # the learned method in the figure
    semantic_digest: str | None  # the semantic encoder's state digest, when one was loaded


@dataclass(frozen=True)
class _Models:
    """The restorers and encoders a run uses, with their provenance."""

    learned: dict[str, torch.nn.Module]
    classical: dict[str, Any]
    provenance: dict[str, Any]
    eval_encoder: torch.nn.Module
    eval_file: str
    eval_digest: str
    semantic: torch.nn.Module | None


def _shard_cosine(encoder: torch.nn.Module, clean_emb: np.ndarray, image: np.ndarray) -> float:
    with inference(encoder):
        emb = shard_embeddings(encoder, image, COSINE_SHARDS).numpy()
    return float(np.mean([cosine_similarity(a, b) for a, b in zip(clean_emb, emb, strict=True)]))


def _load_models(config: RestoreConfig) -> _Models:
    """Every method's restorer, the evaluation encoder and (for prosima-full) the semantic encoder,
    refusing encoders that do not match what the models were trained with."""
    weights = config.weights
    models: dict[str, torch.nn.Module] = {}
    provenance: dict[str, Any] = {}
    for m in config.methods:
        if m in LEARNED:
            path = find_weights(m, weights)
            models[m], payload = load_model(path, "generator")
            provenance[m] = {
                "file": path.name,
                "state_digest": state_digest(models[m].state_dict()),
                "step": payload.get("step"),
                "links": payload.get("links", {}),
            }
    eval_path = find_weights("eval-encoder", weights)
    eval_encoder, _ = load_model(eval_path, "encoder")
    semantic = None
    if "prosima-full" in models:
        sem_path = find_weights("semantic-encoder", weights)
        semantic, _ = load_model(sem_path, "encoder")
        want = provenance["prosima-full"]["links"].get("semantic_encoder", {}).get("state_digest")
        have = state_digest(semantic.state_dict())
        if want is not None and want != have:
            raise CheckpointError(
                f"prosima-full was trained with semantic encoder {want[:12]}..., but {sem_path} is "
                f"{have[:12]}...: its fingerprints would not be the ones it learned from (train it with "
                "semantic_encoder: pretrained:semantic-encoder, or put the encoder it used beside it)"
            )
    classical = {m: get_denoiser("noisy" if m == "noisy" else m) for m in config.methods if m not in LEARNED}
    eval_digest = state_digest(eval_encoder.state_dict())
    for m, info in provenance.items():
        if info["links"].get("semantic_encoder", {}).get("state_digest") == eval_digest:
            raise CheckpointError(
                f"{m} was trained against the evaluation encoder itself: its cosine is void"
            )
    return _Models(models, classical, provenance, eval_encoder, eval_path.name, eval_digest, semantic)


def _score_slices(
    config: RestoreConfig, loaded: _Models, ds: Any, picks: Sequence[int], progress: Progress
) -> tuple[dict[tuple[str, float, str], list[dict[str, float]]], list[float], dict[float, dict]]:
    """Every method's scores per (method, sigma, noise), the fingerprint times and the figure's slice."""
    methods, sigmas, noises, seed = config.methods, config.sigmas, config.noises, config.seed
    models, classical, eval_encoder, semantic = (
        loaded.learned,
        loaded.classical,
        loaded.eval_encoder,
        loaded.semantic,
    )
    per: dict[tuple[str, float, str], list[dict[str, float]]] = {
        (m, s, n): [] for n in noises for m in methods for s in sigmas
    }
    fp_seconds: list[float] = []
    example: dict[float, dict[str, np.ndarray]] = {}
    example_index = picks[len(picks) // 2]
    total = len(noises) * len(sigmas) * len(picks) * len(methods)
    for i in picks:
        item = ds[i]
        clean = item.image
        mask = brain_mask(clean)
        with inference(eval_encoder):
            clean_emb = shard_embeddings(eval_encoder, clean, COSINE_SHARDS).numpy()
        fingerprint = None
        if semantic is not None:
            t0 = time.perf_counter()
            fingerprint = compute_fingerprints(semantic, clean, 16)
            fp_seconds.append(time.perf_counter() - t0)
        for noise, (si, sigma) in itertools.product(noises, enumerate(sigmas)):
            ni = list(NOISES).index(noise)  # Gaussian draws what it drew before Rician existed
            noisy = NOISES[noise](clean, sigma, seed=seed + 100_000 * si + i + 10_000_000 * ni).image
            for method in methods:
                t0 = time.perf_counter()
                if method in models:
                    fp = fingerprint if method == "prosima-full" else None
                    restored = restore(models[method], noisy, fp)  # type: ignore[arg-type]
                else:
                    restored, _ = classical[method](noisy, sigma)
                seconds = time.perf_counter() - t0
                per[(method, sigma, noise)].append(
                    {
                        "psnr": psnr(clean, restored, 1.0),
                        "ssim": ssim(clean, restored, 1.0),
                        "psnr_brain": masked_psnr(clean, restored, mask, 1.0),
                        "cosine": _shard_cosine(eval_encoder, clean_emb, restored),
                        "seconds_per_image": seconds,
                    }
                )
                if i == example_index and noise == noises[0]:
                    example.setdefault(sigma, {"clean": clean, "noisy": noisy})[method] = restored
                progress.advance("restoring", total)
    return per, fp_seconds, example


def measure(config: RestoreConfig, progress: Progress = SILENT) -> RestoreResult:
    """Run every method at every sigma and noise on held-out slices (and the volume rows, when
    ``volume_slices`` > 0)."""
    torch.set_num_threads(config.threads)
    loaded = _load_models(config)
    ds, picks, source = load_bench_slices(config.data, config.held_out, config.contrasts, config.max_slices)
    per, fp_seconds, example = _score_slices(config, loaded, ds, picks, progress)
    threads = config.threads
    document = {
        "benchmark": "restore",
        "data": source,
        "noise": {
            "gaussian": "additive white Gaussian, unclipped, on [0, 1]",
            "rician": "magnitude of the image plus complex Gaussian noise of that sigma per channel (MRI)",
        },
        "noises": list(config.noises),
        "seed": config.seed,
        "noise_seed_rule": "seed + 100000 * sigma_index + slice_index + 10000000 * noise_index",
        "ssim": "scikit-image, Gaussian window sigma 1.5, data_range 1",
        "cosine": (
            f"mean over the {COSINE_SHARDS} GFT shards of the cosine between embeddings of the restored and "
            "the clean shard by the evaluation encoder, trained independently of the semantic encoder that "
            "the semantic and perceptual losses and the fingerprints use"
        ),
        "timing": f"seconds per slice at batch 1 with {threads} torch threads; prosima-full's fingerprint "
        "(z*) is computed from the clean slice beforehand, as if anchored at acquisition, and not timed",
        "fingerprint_seconds_per_image": float(np.mean(fp_seconds)) if fp_seconds else None,
        "models": loaded.provenance,
        "evaluation_encoder": {"file": loaded.eval_file, "state_digest": loaded.eval_digest},
        "normalisation": ds[picks[0]].normalisation,
        "slices": [[ds[i].subject, ds[i].contrast, ds[i].z] for i in picks],
        "environment": environment(torch=torch.__version__, threads=threads),
        "paper": {"tables_2_3": PAPER, "table_4_ablation_cosine": PAPER_ABLATION},
        "results": summarise(per, METRICS),
    }
    if config.volume_slices:
        volumes = restore_volume.VolumeConfig(
            config.data,
            config.volume_methods,
            config.sigmas,
            config.held_out,
            config.contrasts,
            depth=config.volume_slices,
            weights=config.weights,
            seed=config.seed,
            threads=threads,
        )
        document["volumes"] = restore_volume.measure(volumes, progress)
    item = ds[picks[len(picks) // 2]]
    semantic = loaded.semantic
    return RestoreResult(
        document,
        example,
        f"{item.subject} {item.contrast} z={item.z}",
        baseline=next((m for m in ("bm3d", "nlm") if m in config.methods), None),
        ours=next((m for m in ("prosima-full", *LEARNED) if m in config.methods), None),
        semantic_digest=None if semantic is None else state_digest(semantic.state_dict()),
    )


def report(result: RestoreResult) -> list[Block]:
    """The results table, the seed paper's figures beside ours, the volume rows, and which encoder
    scored the cosine."""
    doc = result.document
    blocks: list[Block] = [results_rows(doc["results"], TITLE, METRICS)]
    blocks += paper_report([r for r in doc["results"] if r["noise"] == "gaussian"])
    if "volumes" in doc:
        blocks += restore_volume.report(doc["volumes"])
    evaluation = doc["evaluation_encoder"]
    sem = f" {result.semantic_digest[:12]}" if result.semantic_digest is not None else ""
    blocks.append(
        f"cosine: evaluation encoder {evaluation['state_digest'][:12]} ({evaluation['file']}), trained "
        f"independently of the semantic encoder{sem} that the losses and fingerprints use"
    )
    return blocks


def run_restore_bench(
    data: str | Path | None = None,
    methods: Sequence[str] = DEFAULT_METHODS,
    sigmas: Sequence[float] = RestoreConfig.sigmas,
    *,
    max_slices: int | None = None,
    subjects: Sequence[str] | None = RestoreConfig.subjects,
    contrasts: Sequence[str] = RestoreConfig.contrasts,
    weights: str | Path | None = None,
    seed: int = 0,
    threads: int = 2,
    noises: Sequence[str] = RestoreConfig.noises,
    volume_slices: int = 0,
    volume_methods: Sequence[str] = VOLUME_METHODS,
    json_path: str | Path | None = None,
    figure_path: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Measure, print the tables, write the JSON and the figure (beside the JSON unless
    ``figure_path``); return the JSON document."""
    config = RestoreConfig(
        data,
        tuple(methods),
        tuple(sigmas),
        max_slices=max_slices,
        subjects=None if subjects is None else tuple(subjects),
        contrasts=tuple(contrasts),
        weights=weights,
        seed=seed,
        threads=threads,
        noises=tuple(noises),
        volume_slices=volume_slices,
        volume_methods=tuple(volume_methods),
    )
    console = make_console()
    with console_progress(console, progress) as watch:
        result = measure(config, watch)
    show(console, report(result))
    figure = figure_beside(json_path) if figure_path is None else Path(figure_path)
    figures = [] if figure is None else [FigureFile(figure, lambda: draw_comparison(result), 110)]
    publish(console, result.document, json_path, figures)
    return result.document


def paper_report(results: Sequence[dict[str, Any]]) -> list[Block]:
    """The seed paper's Tables 2-4 beside our figures (ours: mean over the sigmas we ran)."""

    def ours(method: str, key: str, sigma: float | None = None) -> str:
        rows = [
            r for r in results if r["method"] == method and (sigma is None or abs(r["sigma"] - sigma) < 1e-9)
        ]
        if not rows:
            return "-"
        v = float(np.mean([r[key] for r in rows]))
        return f"{v * 1000:.0f}" if key == "seconds_per_image" else f"{v:.3f}" if v < 2 else f"{v:.1f}"

    columns = (
        "method",
        "PSNR paper|ours",
        "SSIM paper|ours",
        "cosine paper|ours",
        "cos@.02",
        "cos@.05",
        "cos@.10",
        "ms paper|ours",
    )
    rows = []
    for method in (*LEARNED, *CLASSICAL):
        if not any(r["method"] == method for r in results):
            continue
        p = PAPER.get(method, {})
        by = p.get("cosine_by_sigma", {})

        def pair(key: str, fmt: str, p: dict = p, method: str = method) -> str:
            return f"{format(p[key], fmt) if key in p else '-'} | {ours(method, key)}"

        rows.append(
            (
                method,
                pair("psnr", ".1f"),
                pair("ssim", ".2f"),
                pair("cosine", ".2f"),
                *(
                    f"{by[s]:.2f} | {ours(method, 'cosine', s)}"
                    if s in by
                    else f"- | {ours(method, 'cosine', s)}"
                    for s in (0.02, 0.05, 0.10)
                ),
                f"{p.get('latency_ms', '-')} | {ours(method, 'seconds_per_image')}",
            )
        )
    ablation = "Paper Table 4 (ablation, embedding cosine): " + ", ".join(
        f"{k} {v:.2f}" for k, v in PAPER_ABLATION.items()
    )
    return [Rows("Seed paper (BraTS 2020; its values are bounds) | ours", columns, rows), ablation]


def draw_comparison(result: RestoreResult) -> Any:
    """One row per sigma: clean, noisy, baseline, ours, then |error| maps of the baseline and ours."""
    plt = pyplot()
    example, baseline, ours = result.example, result.baseline, result.ours
    images = [c for c in ("clean", "noisy", baseline, ours) if c]
    errors = [c for c in (baseline, ours) if c]
    cols = images + [f"|{c} - clean|" for c in errors]
    size = (2.3 * len(cols), 2.4 * len(example))
    fig, axes = plt.subplots(len(example), len(cols), figsize=size, squeeze=False)
    for row, (sigma, imgs) in enumerate(sorted(example.items())):
        clean = imgs["clean"]
        for col, name in enumerate(cols):
            ax = axes[row][col]
            ax.set_xticks([])
            ax.set_yticks([])
            if name.startswith("|"):
                src = name[1:].split(" - ")[0]
                ax.imshow(np.abs(imgs[src] - clean), cmap="magma", vmin=0.0, vmax=2.0 * sigma)
                ax.set_xlabel(f"0 .. {2 * sigma:.2f}", fontsize=8)
            else:
                ax.imshow(imgs[name], cmap="gray", vmin=0.0, vmax=1.0)
                if name != "clean":
                    ax.set_xlabel(f"{psnr(clean, imgs[name], 1.0):.1f} dB", fontsize=8)
            if col == 0:
                ax.set_ylabel(f"sigma {sigma:.2f}")
            if row == 0:
                ax.set_title(name, fontsize=9)
    fig.suptitle(result.example_title)
    fig.tight_layout()
    return fig
