"""Restoration benchmark (paper Tables 2-4): learned restorers against BM3D and NLM on held-out slices.

Every method sees the same noisy slices (seed rule of ``bench denoise``) and is scored by PSNR, SSIM,
brain-masked PSNR, embedding cosine and seconds per slice at batch 1. The cosine is the mean over the
K=16 GFT shards of the cosine between the *evaluation* encoder's embeddings of the restored and the
clean shard: that encoder was trained independently of the semantic encoder the losses use, so no
model is graded with its own answer key. ``prosima-full`` is conditioned on the fingerprint of the
clean slice, as if it had been anchored at acquisition; computing it is not counted in its time.

Writes JSON shaped like ``bench denoise`` (a ``results`` list, one record per method and sigma), a
table with the seed paper's figures beside ours, and a figure: clean / noisy / BM3D / ours / errors.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prosima.bench.denoise import load_bench_slices
from prosima.bench.report import environment, print_results, summarise, write_json
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


def _shard_cosine(encoder: torch.nn.Module, clean_emb: np.ndarray, image: np.ndarray) -> float:
    with inference(encoder):
        emb = shard_embeddings(encoder, image, COSINE_SHARDS).numpy()
    return float(np.mean([cosine_similarity(a, b) for a, b in zip(clean_emb, emb, strict=True)]))


def run_restore_bench(
    data: str | Path | None = None,
    methods: Sequence[str] = DEFAULT_METHODS,
    sigmas: Sequence[float] = (0.02, 0.05, 0.10),
    *,
    max_slices: int | None = None,
    subjects: Sequence[str] | None = ("TCGA-DU-7294",),
    contrasts: Sequence[str] = ("t1n", "t1c", "t2w", "t2f"),
    weights: str | Path | None = None,
    seed: int = 0,
    threads: int = 2,
    noises: Sequence[str] = ("gaussian",),
    volume_slices: int = 0,
    volume_methods: Sequence[str] = VOLUME_METHODS,
    json_path: str | Path | None = None,
    figure_path: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run every method at every sigma and noise on held-out slices; return (and optionally save) the
    results. ``volume_slices`` > 0 also scores whole blocks of that many slices (``bench.restore_volume``)."""
    from rich.console import Console
    from rich.progress import Progress

    torch.set_num_threads(threads)
    bad_noise = sorted(set(noises) - set(NOISES))
    if bad_noise:
        raise ImageError(f"unknown noise {bad_noise}; choose from {list(NOISES)}")
    unknown = sorted(set(methods) - {*DEFAULT_METHODS, "noisy"})
    if unknown:
        raise ImageError(f"unknown methods {unknown}; choose from {[*DEFAULT_METHODS, 'noisy']}")
    models: dict[str, torch.nn.Module] = {}
    provenance: dict[str, Any] = {}
    for m in methods:
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
    classical = {m: get_denoiser("noisy" if m == "noisy" else m) for m in methods if m not in LEARNED}
    eval_digest = state_digest(eval_encoder.state_dict())
    for m, info in provenance.items():
        if info["links"].get("semantic_encoder", {}).get("state_digest") == eval_digest:
            raise CheckpointError(
                f"{m} was trained against the evaluation encoder itself: its cosine is void"
            )

    ds, picks, source = load_bench_slices(data, subjects if data is not None else None, contrasts, max_slices)
    per: dict[tuple[str, float, str], list[dict[str, float]]] = {
        (m, s, n): [] for n in noises for m in methods for s in sigmas
    }
    fp_seconds: list[float] = []
    example: dict[float, dict[str, np.ndarray]] = {}
    example_index = picks[len(picks) // 2]
    console = Console()
    with Progress(console=console, disable=not progress, transient=True) as bar:
        task = bar.add_task("restoring", total=len(noises) * len(sigmas) * len(picks) * len(methods))
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
                    bar.advance(task)
    results = summarise(per, METRICS)
    out = {
        "benchmark": "restore",
        "data": source,
        "noise": {
            "gaussian": "additive white Gaussian, unclipped, on [0, 1]",
            "rician": "magnitude of the image plus complex Gaussian noise of that sigma per channel (MRI)",
        },
        "noises": list(noises),
        "seed": seed,
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
        "models": provenance,
        "evaluation_encoder": {"file": eval_path.name, "state_digest": eval_digest},
        "normalisation": ds[picks[0]].normalisation,
        "slices": [[ds[i].subject, ds[i].contrast, ds[i].z] for i in picks],
        "environment": environment(torch=torch.__version__, threads=threads),
        "paper": {"tables_2_3": PAPER, "table_4_ablation_cosine": PAPER_ABLATION},
        "results": results,
    }
    title = "Restoration of held-out slices (data_range 1; cosine: evaluation encoder)"
    print_results(results, title, METRICS, console)
    print_paper([r for r in results if r["noise"] == "gaussian"], console)
    if volume_slices:
        from prosima.bench.restore_volume import run_volume_bench

        out["volumes"] = run_volume_bench(
            data,
            volume_methods,
            sigmas,
            subjects=subjects if data is not None else None,
            contrasts=contrasts,
            depth=volume_slices,
            weights=weights,
            seed=seed,
            threads=threads,
            console=console,
            progress=progress,
        )
    sem = f" {state_digest(semantic.state_dict())[:12]}" if semantic is not None else ""
    console.print(
        f"cosine: evaluation encoder {eval_digest[:12]} ({eval_path.name}), trained independently of the "
        f"semantic encoder{sem} that the losses and fingerprints use"
    )
    if json_path is not None:
        write_json(out, json_path, console)
    if figure_path is None and json_path is not None:
        figure_path = Path(json_path).with_suffix(".png")
    if figure_path is not None:
        item = ds[example_index]
        ours = next((m for m in ("prosima-full", *LEARNED) if m in methods), None)
        base = next((m for m in ("bm3d", "nlm") if m in methods), None)
        save_figure(example, base, ours, figure_path, f"{item.subject} {item.contrast} z={item.z}")
        console.print(f"wrote {figure_path}")
    return out


def print_paper(results: Sequence[dict[str, Any]], console: Any = None) -> None:
    """The seed paper's Tables 2-4 beside our figures (ours: mean over the sigmas we ran)."""
    from rich.console import Console
    from rich.table import Table

    def ours(method: str, key: str, sigma: float | None = None) -> str:
        rows = [
            r for r in results if r["method"] == method and (sigma is None or abs(r["sigma"] - sigma) < 1e-9)
        ]
        if not rows:
            return "-"
        v = float(np.mean([r[key] for r in rows]))
        return f"{v * 1000:.0f}" if key == "seconds_per_image" else f"{v:.3f}" if v < 2 else f"{v:.1f}"

    table = Table(title="Seed paper (BraTS 2020; its values are bounds) | ours")
    for col in (
        "method",
        "PSNR paper|ours",
        "SSIM paper|ours",
        "cosine paper|ours",
        "cos@.02",
        "cos@.05",
        "cos@.10",
        "ms paper|ours",
    ):
        table.add_column(col, justify="right")
    for method in (*LEARNED, *CLASSICAL):
        if not any(r["method"] == method for r in results):
            continue
        p = PAPER.get(method, {})
        by = p.get("cosine_by_sigma", {})

        def pair(key: str, fmt: str, p: dict = p, method: str = method) -> str:
            return f"{format(p[key], fmt) if key in p else '-'} | {ours(method, key)}"

        table.add_row(
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
    c = console or Console()
    c.print(table)
    c.print(
        "Paper Table 4 (ablation, embedding cosine): "
        + ", ".join(f"{k} {v:.2f}" for k, v in PAPER_ABLATION.items())
    )


def save_figure(
    example: dict[float, dict[str, np.ndarray]],
    baseline: str | None,
    ours: str | None,
    path: str | Path,
    title: str,
) -> None:
    """One row per sigma: clean, noisy, baseline, ours, then |error| maps of the baseline and ours."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    fig.suptitle(title)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
