"""Classical denoising benchmark: PSNR, SSIM, brain-masked PSNR and time per image, per method and sigma.

Prints a table, writes JSON (a ``results`` list with one record per method and sigma) and a PNG
figure of one slice: clean, noisy and every method, one row per sigma.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from prosima.bench.report import environment, print_results, summarise, write_json
from prosima.imaging.baselines import get_denoiser
from prosima.imaging.corruption import gaussian_noise
from prosima.imaging.datasets import SliceItem, VolumeSlices, brats_slices, embedded_default_slices
from prosima.imaging.metrics import brain_mask, masked_psnr, psnr, ssim
from prosima.imaging.validation import ImageError

METRICS = ("psnr", "ssim", "psnr_brain", "seconds_per_image")


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


def run_denoise_bench(
    data: str | Path | None = None,
    methods: Sequence[str] = ("noisy", "nlm", "tv", "wavelet", "bm3d"),
    sigmas: Sequence[float] = (0.02, 0.05, 0.10),
    *,
    max_slices: int | None = None,
    subjects: Sequence[str] | None = None,
    contrasts: Sequence[str] = ("t1n",),
    seed: int = 0,
    json_path: str | Path | None = None,
    figure_path: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run every method at every sigma on the chosen slices; return (and optionally save) the results."""
    from rich.console import Console
    from rich.progress import Progress

    denoisers = {m: get_denoiser(m) for m in methods}
    ds, picks, source = load_bench_slices(data, subjects, contrasts, max_slices)
    per: dict[tuple[str, float], list[dict[str, float]]] = {(m, s): [] for m in methods for s in sigmas}
    example: dict[float, dict[str, np.ndarray]] = {}
    example_index = picks[len(picks) // 2]
    console = Console()
    with Progress(console=console, disable=not progress, transient=True) as bar:
        task = bar.add_task("denoising", total=len(sigmas) * len(picks) * len(methods))
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
                    bar.advance(task)
    results = summarise(per, METRICS)
    first = ds[picks[0]]
    out = {
        "benchmark": "denoise",
        "data": source,
        "noise": "additive white Gaussian, unclipped, on [0, 1]",
        "seed": seed,
        "noise_seed_rule": "seed + 100000 * sigma_index + slice_index",
        "ssim": "scikit-image, Gaussian window sigma 1.5, data_range 1",
        "normalisation": first.normalisation,
        "slices": [[ds[i].subject, ds[i].contrast, ds[i].z] for i in picks],
        "environment": environment(),
        "results": results,
    }
    print_results(results, "Gaussian denoising (data_range 1)", METRICS, console)
    if json_path is not None:
        write_json(out, json_path, console)
    if figure_path is None and json_path is not None:
        figure_path = Path(json_path).with_suffix(".png")
    if figure_path is not None:
        item = ds[example_index]
        save_figure(example, list(methods), figure_path, f"{item.subject} {item.contrast} z={item.z}")
        console.print(f"wrote {figure_path}")
    return out


def save_figure(
    example: dict[float, dict[str, np.ndarray]], methods: list[str], path: str | Path, title: str
) -> None:
    """One row per sigma: clean, then each method's output for the same slice."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = ["clean", *methods]
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
    fig.suptitle(title)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
