"""Classical denoising benchmark: PSNR, SSIM, brain-masked PSNR and time per image, per method and sigma.

``measure`` scores; ``run_denoise_bench`` prints the table, writes JSON (a ``results`` list with one
record per method and sigma) and a PNG figure of one slice: clean, noisy and every method, one row
per sigma.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from prosima.bench.progress import SILENT, Progress
from prosima.bench.render import (
    Block,
    FigureFile,
    console_progress,
    figure_beside,
    make_console,
    publish,
    pyplot,
    show,
)
from prosima.bench.report import environment, results_rows, summarise
from prosima.imaging.baselines import get_denoiser
from prosima.imaging.corruption import gaussian_noise
from prosima.imaging.datasets import SliceItem, VolumeSlices, brats_slices, embedded_default_slices
from prosima.imaging.metrics import brain_mask, masked_psnr, psnr, ssim
from prosima.imaging.validation import ImageError

METRICS = ("psnr", "ssim", "psnr_brain", "seconds_per_image")
TITLE = "Gaussian denoising (data_range 1)"


@dataclass(frozen=True)
class DenoiseConfig:
    """What ``bench denoise`` measures."""

    data: str | Path | None = None  # BraTS folder; None: the embedded default brain
    methods: tuple[str, ...] = ("noisy", "nlm", "tv", "wavelet", "bm3d")  # denoisers, in figure order
    sigmas: tuple[float, ...] = (0.02, 0.05, 0.10)  # Gaussian noise sigmas on [0, 1]
    max_slices: int | None = None  # that many slices, evenly spaced (None: all)
    subjects: tuple[str, ...] | None = None  # BraTS subject folders (None: all)
    contrasts: tuple[str, ...] = ("t1n",)  # BraTS contrasts
    seed: int = 0  # base seed of the noise (rule in the JSON)


@dataclass(frozen=True)
class DenoiseResult:
    """The JSON document, and one slice restored by every method at every sigma (the figure)."""

    document: dict[str, Any]
    example: dict[float, dict[str, np.ndarray]]  # per sigma: "clean" and each method's output
    example_title: str
    methods: tuple[str, ...]


def load_bench_slices(
    data: str | Path | None,
    subjects: Sequence[str] | None = None,
    contrasts: Sequence[str] = ("t1n",),
    max_slices: int | None = None,
    min_brain_fraction: float = 0.05,
) -> tuple[VolumeSlices, list[int], str]:
    """The slices to benchmark: a BraTS folder, or the embedded default brain when ``data`` is None.

    ``max_slices`` keeps that many slices evenly spaced over the whole set (deterministic).
    """
    if data is None:
        ds = embedded_default_slices(min_brain_fraction=min_brain_fraction)
        source = "embedded MNI152 2009 T1 template (nilearn)"
    else:
        ds = brats_slices(data, subjects, contrasts, min_brain_fraction=min_brain_fraction)
        source = str(data)
    picks = list(range(len(ds)))
    if max_slices is not None and max_slices < len(ds):
        if max_slices < 1:
            raise ImageError(f"--max-slices must be >= 1, got {max_slices}")
        picks = sorted(set(np.linspace(0, len(ds) - 1, max_slices).round().astype(int).tolist()))
    return ds, picks, source


def _score(clean: np.ndarray, restored: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    return {
        "psnr": psnr(clean, restored, data_range=1.0),
        "ssim": ssim(clean, restored, data_range=1.0),
        "psnr_brain": masked_psnr(clean, restored, mask, data_range=1.0),
    }


def measure(config: DenoiseConfig, progress: Progress = SILENT) -> DenoiseResult:
    """Run every method at every sigma on the chosen slices."""
    methods, sigmas, seed = config.methods, config.sigmas, config.seed
    denoisers = {m: get_denoiser(m) for m in methods}
    ds, picks, source = load_bench_slices(config.data, config.subjects, config.contrasts, config.max_slices)
    per: dict[tuple[str, float], list[dict[str, float]]] = {(m, s): [] for m in methods for s in sigmas}
    example: dict[float, dict[str, np.ndarray]] = {}
    example_index = picks[len(picks) // 2]
    total = len(sigmas) * len(picks) * len(methods)
    for si, sigma in enumerate(sigmas):
        for i in picks:
            item: SliceItem = ds[i]
            noisy = gaussian_noise(item.image, sigma, seed=seed + 100_000 * si + i).image
            mask = brain_mask(item.image)
            for method, fn in denoisers.items():
                t0 = time.perf_counter()
                restored, _ = fn(noisy, sigma)
                seconds = time.perf_counter() - t0
                per[(method, sigma)].append(
                    {**_score(item.image, restored, mask), "seconds_per_image": seconds}
                )
                if i == example_index:
                    example.setdefault(sigma, {"clean": item.image})[method] = restored
                progress.advance("denoising", total)
    first = ds[picks[0]]
    document = {
        "benchmark": "denoise",
        "data": source,
        "noise": "additive white Gaussian, unclipped, on [0, 1]",
        "seed": seed,
        "noise_seed_rule": "seed + 100000 * sigma_index + slice_index",
        "ssim": "scikit-image, Gaussian window sigma 1.5, data_range 1",
        "normalisation": first.normalisation,
        "slices": [[ds[i].subject, ds[i].contrast, ds[i].z] for i in picks],
        "environment": environment(),
        "results": summarise(per, METRICS),
    }
    item = ds[example_index]
    return DenoiseResult(document, example, f"{item.subject} {item.contrast} z={item.z}", tuple(methods))


def report(result: DenoiseResult) -> list[Block]:
    """The results table."""
    return [results_rows(result.document["results"], TITLE, METRICS)]


def draw_examples(result: DenoiseResult) -> Any:
    """One row per sigma: clean, then each method's output for the same slice."""
    plt = pyplot()
    example = result.example
    cols = ["clean", *result.methods]
    fig, axes = plt.subplots(
        len(example), len(cols), figsize=(2.2 * len(cols), 2.4 * len(example)), squeeze=False
    )
    for row, (sigma, images) in enumerate(sorted(example.items())):
        for col, name in enumerate(cols):
            ax = axes[row][col]
            ax.imshow(images[name], cmap="gray", vmin=0.0, vmax=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
            if name == "clean":
                ax.set_ylabel(f"sigma {sigma:.2f}")
            else:
                ax.set_xlabel(f"{psnr(images['clean'], images[name], 1.0):.1f} dB", fontsize=8)
            if row == 0:
                ax.set_title(name)
    fig.suptitle(result.example_title)
    fig.tight_layout()
    return fig


def run_denoise_bench(
    data: str | Path | None = None,
    methods: Sequence[str] = DenoiseConfig.methods,
    sigmas: Sequence[float] = DenoiseConfig.sigmas,
    *,
    max_slices: int | None = None,
    subjects: Sequence[str] | None = None,
    contrasts: Sequence[str] = DenoiseConfig.contrasts,
    seed: int = 0,
    json_path: str | Path | None = None,
    figure_path: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Measure, print the table, write the JSON and the figure (beside the JSON unless
    ``figure_path``); return the JSON document."""
    config = DenoiseConfig(
        data,
        tuple(methods),
        tuple(sigmas),
        max_slices=max_slices,
        subjects=None if subjects is None else tuple(subjects),
        contrasts=tuple(contrasts),
        seed=seed,
    )
    console = make_console()
    with console_progress(console, progress) as watch:
        result = measure(config, watch)
    show(console, report(result))
    figure = figure_beside(json_path) if figure_path is None else Path(figure_path)
    figures = [] if figure is None else [FigureFile(figure, lambda: draw_examples(result), 110)]
    publish(console, result.document, json_path, figures)
    return result.document
