"""What the image benchmarks share: mean and std per (method, sigma), the rows of their results
table, and the machine they ran on."""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from prosima.bench.render import Rows

# column header and number format of each metric a benchmark may report
COLUMNS = {
    "psnr": ("PSNR dB", "{:.2f} ± {:.2f}"),
    "ssim": ("SSIM", "{:.3f} ± {:.3f}"),
    "psnr_brain": ("brain PSNR dB", "{:.2f} ± {:.2f}"),
    "cosine": ("cosine", "{:.3f} ± {:.3f}"),
    "seconds_per_image": ("s/image", "{:.3f}"),
}


def summarise(
    per: Mapping[tuple[Any, ...], Sequence[Mapping[str, float]]], metrics: Sequence[str]
) -> list[dict[str, Any]]:
    """One record per (method, sigma[, noise]): ``n_slices`` and the mean and ``<metric>_std`` of each
    metric."""
    results = []
    for key, rows in per.items():
        method, sigma = key[:2]
        rec: dict[str, Any] = {"method": method, "sigma": sigma, "n_slices": len(rows)}
        if len(key) > 2:
            rec["noise"] = key[2]
        for key in metrics:
            values = np.array([r[key] for r in rows])
            rec[key] = float(values.mean())
            rec[f"{key}_std"] = float(values.std())
        results.append(rec)
    return results


def results_rows(results: Sequence[Mapping[str, Any]], title: str, metrics: Sequence[str]) -> Rows:
    """Mean ± std per method and sigma (and noise, when the records have one)."""
    noise = any("noise" in r for r in results)
    columns = (*(("noise",) if noise else ()), "method", "sigma", *(COLUMNS[m][0] for m in metrics), "n")
    rows = []
    for r in sorted(results, key=lambda r: (r.get("noise", ""), r["sigma"], r["method"])):
        cells = [COLUMNS[m][1].format(r[m], r[f"{m}_std"]) for m in metrics]
        first = (r.get("noise", ""),) if noise else ()
        rows.append((*first, r["method"], f"{r['sigma']:.2f}", *cells, str(r["n_slices"])))
    return Rows(title, columns, rows)


def environment(**extra: Any) -> dict[str, Any]:
    """Python version, machine and usable CPUs, plus ``extra``."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return {"python": platform.python_version(), "machine": platform.machine(), "cpus": cpus, **extra}
