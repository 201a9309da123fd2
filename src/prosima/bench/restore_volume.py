"""Volume rows of the restoration benchmark: whole blocks of consecutive slices, BM4D among the methods.

From each held-out volume (one per subject and contrast) a block of ``depth`` consecutive axial
slices is cut around the middle of its usable slices (the whole slice in-plane, padded to 256 like
the slice rows). Gaussian noise is drawn over the whole block once, so a slice's noise is the same
whether it is restored alone or as another slice's neighbour. Methods: the noisy block, BM3D slice
by slice, BM4D on the whole block, any 2-D learned restorer slice by slice, and a 2.5-D one
(``prosima-volume``) reading each slice's noisy neighbours. Conditioned models get each slice's
fingerprint of its clean slice, as if the volume had been anchored at acquisition (not timed).
Scores are over the whole block: PSNR, PSNR inside the brain mask, SSIM (mean over slices) and
seconds per block. ``measure`` scores; ``bench restore`` prints the table (``report``) and keeps the
document under ``volumes``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prosima.bench.denoise import load_bench_slices
from prosima.bench.progress import SILENT, Progress
from prosima.bench.render import Block
from prosima.bench.report import results_rows, summarise
from prosima.bench.weights import find_weights
from prosima.imaging.baselines import bm4d, get_denoiser
from prosima.imaging.corruption import gaussian_noise
from prosima.imaging.metrics import brain_mask, masked_psnr, psnr, ssim
from prosima.imaging.validation import ImageError
from prosima.models.checkpoint import CheckpointError, load_model, state_digest
from prosima.models.fingerprint import compute_fingerprints
from prosima.models.inference import restore_volume

METRICS = ("psnr", "ssim", "psnr_brain", "seconds_per_image")
CLASSICAL = ("noisy", "bm3d", "bm4d")


@dataclass(frozen=True)
class VolumeConfig:
    """What the volume rows of ``bench restore`` measure."""

    data: str | Path | None  # BraTS folder; None: the embedded default brain
    methods: tuple[str, ...]  # noisy, bm3d, bm4d or a generator's name (2-D or 2.5-D)
    sigmas: tuple[float, ...]  # Gaussian noise sigmas on [0, 1]
    subjects: tuple[str, ...] | None  # held-out subject folders (None: all)
    contrasts: tuple[str, ...]  # BraTS contrasts
    depth: int = 16  # consecutive slices per block
    weights: str | Path | None = None  # folder of candidate weights (None: the shipped ones)
    seed: int = 0  # base seed of the noise (rule in the JSON)
    threads: int = 2  # torch CPU threads


def volume_blocks(
    data: str | Path | None,
    subjects: Sequence[str] | None,
    contrasts: Sequence[str],
    depth: int,
) -> list[tuple[str, str, int, np.ndarray]]:
    """``(subject, contrast, first z, block [depth, 256, 256])`` of each held-out volume."""
    if depth < 3:
        raise ImageError(f"a volume block needs at least 3 slices, got {depth}")
    ds, _, _ = load_bench_slices(data, subjects, contrasts)
    by_volume: dict[tuple[str, str], list[int]] = {}
    for i in range(len(ds)):
        item = ds[i]
        by_volume.setdefault((item.subject, item.contrast), []).append(i)
    blocks = []
    for (subject, contrast), indices in by_volume.items():
        middle = indices[len(indices) // 2]
        half = depth // 2
        block = ds.stack(middle, half)[:depth]
        blocks.append((subject, contrast, ds[middle].z - half, block))
    return blocks


def _score(clean: np.ndarray, restored: np.ndarray, mask: np.ndarray, seconds: float) -> dict[str, float]:
    return {
        "psnr": psnr(clean, restored, 1.0),
        "ssim": float(np.mean([ssim(c, r, 1.0) for c, r in zip(clean, restored, strict=True)])),
        "psnr_brain": masked_psnr(clean, restored, mask, 1.0),
        "seconds_per_image": seconds,
    }


def _load_models(
    config: VolumeConfig,
) -> tuple[dict[str, torch.nn.Module], dict[str, Any], torch.nn.Module | None]:
    """The generators by method, their provenance, and the semantic encoder if one is conditioned."""
    models: dict[str, torch.nn.Module] = {}
    provenance: dict[str, Any] = {}
    for m in config.methods:
        if m not in CLASSICAL:
            path = find_weights(m, config.weights)
            models[m], payload = load_model(path, "generator")
            provenance[m] = {
                "file": path.name,
                "state_digest": state_digest(models[m].state_dict()),
                "context": models[m].spec.context,
                "links": payload.get("links", {}),
            }
    semantic = None
    if any(model.conditioned for model in models.values()):
        semantic, _ = load_model(find_weights("semantic-encoder", config.weights), "encoder")
        have = state_digest(semantic.state_dict())
        for m, info in provenance.items():
            want = info["links"].get("semantic_encoder", {}).get("state_digest")
            if models[m].conditioned and want is not None and want != have:
                raise CheckpointError(f"{m} was trained with another semantic encoder ({want[:12]}...)")
    return models, provenance, semantic


def measure(config: VolumeConfig, progress: Progress = SILENT) -> dict[str, Any]:
    """Score every method on every block at every sigma; the document of the volume rows."""
    torch.set_num_threads(config.threads)
    methods, sigmas, seed = config.methods, config.sigmas, config.seed
    models, provenance, semantic = _load_models(config)
    blocks = volume_blocks(config.data, config.subjects, config.contrasts, config.depth)
    per: dict[tuple[str, float], list[dict[str, float]]] = {(m, s): [] for m in methods for s in sigmas}
    total = len(blocks) * len(sigmas) * len(methods)
    for bi, (_, _, _, clean) in enumerate(blocks):
        mask = brain_mask(clean)
        fps = [compute_fingerprints(semantic, plane, 16) for plane in clean] if semantic else None
        for si, sigma in enumerate(sigmas):
            noisy = gaussian_noise(clean, sigma, seed=seed + 100_000 * si + bi).image
            for method in methods:
                t0 = time.perf_counter()
                if method == "bm4d":
                    restored, _ = bm4d(noisy, sigma)
                elif method in CLASSICAL:
                    denoise = get_denoiser(method)
                    restored = np.stack([denoise(plane, sigma)[0] for plane in noisy])
                else:
                    model = models[method]
                    restored = restore_volume(model, noisy, fps if model.conditioned else None)
                per[(method, sigma)].append(_score(clean, restored, mask, time.perf_counter() - t0))
                progress.advance("volumes", total)
    return {
        "unit": "volume block (n_slices counts blocks)",
        "depth": config.depth,
        "blocks": [[s, c, z0] for s, c, z0, _ in blocks],
        "noise": "additive white Gaussian over the whole block, unclipped, on [0, 1]",
        "noise_seed_rule": "seed + 100000 * sigma_index + block_index",
        "models": provenance,
        "results": summarise(per, METRICS),
    }


def report(volumes: dict[str, Any]) -> list[Block]:
    """The table of the volume rows."""
    title = (
        f"Restoration of held-out volume blocks ({volumes['depth']} slices; data_range 1; seconds per block)"
    )
    return [results_rows(volumes["results"], title, METRICS)]
