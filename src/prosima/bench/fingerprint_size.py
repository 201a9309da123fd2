"""What the fingerprint buys per byte: restoration PSNR of ``prosima-full`` against the size of the
z* it is conditioned on, on held-out slices.

The size varies two ways without retraining: the number of GFT shards ``k`` (one 128-d vector each)
and the bits kept per code (the anchored int8 codes re-quantised to fewer levels). Zero bytes is the
same network run blind (no conditioning), so every gain is measured against the model itself, and
the noise draws are the restoration benchmark's (same seeds per slice and sigma). ``measure``
scores; ``run_fingerprint_bench`` prints the table and writes the JSON and the figure.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prosima.bench.denoise import load_bench_slices
from prosima.bench.render import (
    Block,
    FigureFile,
    Rows,
    figure_beside,
    make_console,
    publish,
    pyplot,
    show,
)
from prosima.bench.report import environment
from prosima.bench.weights import find_weights
from prosima.imaging.corruption import gaussian_noise
from prosima.imaging.metrics import brain_mask, masked_psnr, psnr
from prosima.models.checkpoint import load_model, state_digest
from prosima.models.fingerprint import QMAX, Fingerprint, compute_fingerprints
from prosima.models.inference import restore

SCALE_BYTES = 4  # one float32 scale per shard


@dataclass(frozen=True)
class FingerprintConfig:
    """What ``bench fingerprint`` measures."""

    data: str | Path | None = None  # BraTS folder; None: the embedded default brain
    sigmas: tuple[float, ...] = (0.05, 0.10)  # Gaussian noise sigmas on [0, 1]
    ks: tuple[int, ...] = (1, 4, 16, 64)  # GFT shard counts of the fingerprint
    bits: tuple[int, ...] = (8, 4, 2)  # bits kept per code (2-8)
    subjects: tuple[str, ...] | None = ("TCGA-DU-7294",)  # held-out subjects (ignored without data)
    contrasts: tuple[str, ...] = ("t1n", "t1c", "t2w", "t2f")  # BraTS contrasts
    max_slices: int | None = None  # that many slices, evenly spaced (None: all)
    weights: str | Path | None = None  # folder of candidate weights (None: the shipped ones)
    seed: int = 0  # base seed of the noise (the restoration benchmark's rule)
    threads: int = 2  # torch CPU threads


def requantise(fp: Fingerprint, bits: int) -> Fingerprint:
    """``fp`` with its int8 codes rounded to ``2**(bits-1) - 1`` levels a side (8 bits: unchanged)."""
    if not 2 <= bits <= 8:
        raise ValueError(f"bits must be between 2 and 8, got {bits}")
    if bits == 8:
        return fp
    levels = 2 ** (bits - 1) - 1
    q = np.rint(fp.codes.astype(np.float32) * levels / QMAX)
    codes = np.rint(q * QMAX / levels).astype(np.int8)
    return Fingerprint(codes, fp.scales, fp.shape, fp.k)


def fingerprint_bytes(k: int, dim: int, bits: int) -> int:
    """Bytes a slice's fingerprint takes at ``bits`` per code (codes packed, one scale per shard)."""
    return k * ((dim * bits + 7) // 8 + SCALE_BYTES)


def measure(config: FingerprintConfig) -> dict[str, Any]:
    """PSNR (whole slice and brain) of the blind run and of every (k, bits) fingerprint; the JSON
    document, its rows with bytes per slice and the gain over blind."""
    sigmas, ks, seed = config.sigmas, config.ks, config.seed
    torch.set_num_threads(config.threads)
    model_path = find_weights("prosima-full", config.weights)
    model, _ = load_model(model_path, "generator")
    encoder, _ = load_model(find_weights("semantic-encoder", config.weights), "encoder")
    subjects = config.subjects if config.data is not None else None
    ds, picks, source = load_bench_slices(config.data, subjects, config.contrasts, config.max_slices)
    configs = [(0, 0), *itertools.product(ks, config.bits)]
    per: dict[tuple[float, int, int], list[tuple[float, float]]] = {
        (s, k, b): [] for s in sigmas for k, b in configs
    }
    dim = 0
    for i in picks:
        clean = ds[i].image
        mask = brain_mask(clean)
        prints = {k: compute_fingerprints(encoder, clean, k) for k in ks}
        dim = next(iter(prints.values())).dim if prints else 0
        for si, sigma in enumerate(sigmas):
            noisy = gaussian_noise(clean, sigma, seed=seed + 100_000 * si + i).image
            for k, b in configs:
                fp = None if k == 0 else requantise(prints[k], b)
                out = restore(model, noisy, fp)
                per[(sigma, k, b)].append((psnr(clean, out, 1.0), masked_psnr(clean, out, mask, 1.0)))
    return {
        "benchmark": "fingerprint-size",
        "data": source,
        "model": {"file": model_path.name, "state_digest": state_digest(model.state_dict())},
        "shipped_fingerprint": {"k": 16, "bits": 8, "bytes_per_slice": fingerprint_bytes(16, dim, 8)},
        "seed": seed,
        "results": _rows(per, dim),
        "environment": environment(threads=config.threads, torch=torch.__version__),
    }


def _rows(per: dict[tuple[float, int, int], list[tuple[float, float]]], dim: int) -> list[dict[str, Any]]:
    """Mean PSNRs per (sigma, k, bits), with the bytes per slice and the gain over the blind run."""
    rows = []
    for (sigma, k, b), values in per.items():
        blind = np.mean([v[0] for v in per[(sigma, 0, 0)]])
        arr = np.asarray(values)
        rows.append(
            {
                "sigma": sigma,
                "k": k,
                "bits": b,
                "bytes_per_slice": 0 if k == 0 else fingerprint_bytes(k, dim, b),
                "psnr": float(arr[:, 0].mean()),
                "psnr_brain": float(arr[:, 1].mean()),
                "gain_db": float(arr[:, 0].mean() - blind),
                "n_slices": len(values),
            }
        )
    return rows


def report(document: dict[str, Any]) -> list[Block]:
    """PSNR against fingerprint bytes per slice, per sigma."""
    rows = [
        (
            f"{r['sigma']:.2f}",
            str(r["k"]),
            str(r["bits"]),
            str(r["bytes_per_slice"]),
            f"{r['psnr']:.2f}",
            f"{r['psnr_brain']:.2f}",
            f"{r['gain_db']:+.2f}",
        )
        for r in sorted(document["results"], key=lambda r: (r["sigma"], r["bytes_per_slice"]))
    ]
    columns = ("sigma", "k", "bits", "bytes/slice", "PSNR dB", "brain PSNR dB", "gain dB")
    return [Rows("prosima-full: PSNR against fingerprint bytes per slice (0 = blind)", columns, rows)]


def draw_gain(rows: Sequence[dict[str, Any]]) -> Any:
    """Gain over the blind run against fingerprint bytes, one line per sigma and bits per code."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for sigma in sorted({r["sigma"] for r in rows}):
        for b in sorted({r["bits"] for r in rows if r["k"]}):
            pts = sorted(
                (r["bytes_per_slice"], r["gain_db"]) for r in rows if r["sigma"] == sigma and r["bits"] == b
            )
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", label=f"sigma {sigma:.2f}, {b}-bit codes")
    ax.set_xscale("log")
    ax.axhline(0.0, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("fingerprint bytes per slice (log)")
    ax.set_ylabel("PSNR gain over the blind run (dB)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def run_fingerprint_bench(
    data: str | Path | None = None,
    sigmas: Sequence[float] = FingerprintConfig.sigmas,
    *,
    ks: Sequence[int] = FingerprintConfig.ks,
    bits: Sequence[int] = FingerprintConfig.bits,
    subjects: Sequence[str] | None = FingerprintConfig.subjects,
    contrasts: Sequence[str] = FingerprintConfig.contrasts,
    max_slices: int | None = None,
    weights: str | Path | None = None,
    seed: int = 0,
    threads: int = 2,
    json_path: str | Path | None = None,
    figure_path: str | Path | None = None,
) -> dict[str, Any]:
    """Measure, print the table, write the JSON and the figure (beside the JSON unless
    ``figure_path``); return the JSON document."""
    config = FingerprintConfig(
        data,
        tuple(sigmas),
        ks=tuple(ks),
        bits=tuple(bits),
        subjects=None if subjects is None else tuple(subjects),
        contrasts=tuple(contrasts),
        max_slices=max_slices,
        weights=weights,
        seed=seed,
        threads=threads,
    )
    document = measure(config)
    console = make_console()
    show(console, report(document))
    figure = figure_beside(json_path) if figure_path is None else Path(figure_path)
    figures = [] if figure is None else [FigureFile(figure, lambda: draw_gain(document["results"]), 120)]
    publish(console, document, json_path, figures)
    return document
