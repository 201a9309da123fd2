"""What the fingerprint buys per byte: restoration PSNR of ``prosima-full`` against the size of the
z* it is conditioned on, on held-out slices.

The size varies two ways without retraining: the number of GFT shards ``k`` (one 128-d vector each)
and the bits kept per code (the anchored int8 codes re-quantised to fewer levels). Zero bytes is the
same network run blind (no conditioning), so every gain is measured against the model itself, and
the noise draws are the restoration benchmark's (same seeds per slice and sigma).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prosima.bench.denoise import load_bench_slices
from prosima.bench.report import environment, write_json
from prosima.bench.weights import find_weights
from prosima.imaging.corruption import gaussian_noise
from prosima.imaging.metrics import brain_mask, masked_psnr, psnr
from prosima.models.checkpoint import load_model, state_digest
from prosima.models.fingerprint import QMAX, Fingerprint, compute_fingerprints
from prosima.models.inference import restore

SCALE_BYTES = 4  # one float32 scale per shard


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


def run_fingerprint_bench(
    data: str | Path | None = None,
    sigmas: Sequence[float] = (0.05, 0.10),
    *,
    ks: Sequence[int] = (1, 4, 16, 64),
    bits: Sequence[int] = (8, 4, 2),
    subjects: Sequence[str] | None = ("TCGA-DU-7294",),
    contrasts: Sequence[str] = ("t1n", "t1c", "t2w", "t2f"),
    max_slices: int | None = None,
    weights: str | Path | None = None,
    seed: int = 0,
    threads: int = 2,
    json_path: str | Path | None = None,
    figure_path: str | Path | None = None,
) -> dict[str, Any]:
    """PSNR (whole slice and brain) of the blind run and of every (k, bits) fingerprint; returns (and
    optionally saves) the rows with bytes per slice and the gain over blind."""
    torch.set_num_threads(threads)
    model_path = find_weights("prosima-full", weights)
    model, _ = load_model(model_path, "generator")
    encoder, _ = load_model(find_weights("semantic-encoder", weights), "encoder")
    ds, picks, source = load_bench_slices(data, subjects if data is not None else None, contrasts, max_slices)
    configs = [(0, 0), *itertools.product(ks, bits)]
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
    out = {
        "benchmark": "fingerprint-size",
        "data": source,
        "model": {"file": model_path.name, "state_digest": state_digest(model.state_dict())},
        "shipped_fingerprint": {"k": 16, "bits": 8, "bytes_per_slice": fingerprint_bytes(16, dim, 8)},
        "seed": seed,
        "results": rows,
        "environment": environment(threads=threads, torch=torch.__version__),
    }
    _print(rows)
    if json_path is not None:
        write_json(out, json_path)
        figure_path = figure_path or Path(json_path).with_suffix(".png")
    if figure_path is not None:
        _plot(rows, figure_path)
    return out


def _print(rows: Sequence[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="prosima-full: PSNR against fingerprint bytes per slice (0 = blind)")
    for col in ("sigma", "k", "bits", "bytes/slice", "PSNR dB", "brain PSNR dB", "gain dB"):
        table.add_column(col, justify="right")
    for r in sorted(rows, key=lambda r: (r["sigma"], r["bytes_per_slice"])):
        table.add_row(
            f"{r['sigma']:.2f}",
            str(r["k"]),
            str(r["bits"]),
            str(r["bytes_per_slice"]),
            f"{r['psnr']:.2f}",
            f"{r['psnr_brain']:.2f}",
            f"{r['gain_db']:+.2f}",
        )
    Console().print(table)


def _plot(rows: Sequence[dict[str, Any]], path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
