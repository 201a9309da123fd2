"""Learning curves: validation PSNR against cumulative training steps, from model cards or run folders.

A shipped model's card carries its whole curve across sessions (``training.curve``); a run folder's
``metrics.jsonl`` carries the validations of that run (its own steps). Each validation sigma is one
panel; a restoration benchmark's JSON, if given, draws each classical method's PSNR at that sigma
as a dashed line, the bar the curve has to clear.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prosima.bench.render import pyplot, save_figure
from prosima.models.checkpoint import CheckpointError
from prosima.models.pretrained import PRETRAINED_PREFIX, verify_pretrained
from prosima.models.training import read_metrics

REFERENCE_METHODS = ("bm3d", "bm4d", "nlm")


def load_curve(source: str) -> tuple[str, list[dict[str, Any]]]:
    """``(label, rows)`` of ``pretrained:NAME`` (its card's curve) or of a run folder."""
    if source.startswith(PRETRAINED_PREFIX):
        name = source.removeprefix(PRETRAINED_PREFIX)
        _, card = verify_pretrained(name)
        rows = list(card.training.get("curve") or [])
        if not rows:
            raise CheckpointError(f"the card of {name} holds no learning curve (exported before curves)")
        return name, rows
    folder = Path(source)
    by_step = {int(r["step"]): r for r in read_metrics(folder) if r.get("type") == "val"}  # resumes repeat
    rows = [by_step[k] for k in sorted(by_step)]
    if not rows:
        raise CheckpointError(f"{folder}: no validation rows in metrics.jsonl")
    return folder.name, rows


def reference_lines(bench_json: str | Path | None) -> dict[float, dict[str, float]]:
    """Mean PSNR of each classical method per sigma in a ``bench restore`` JSON (Gaussian slice rows)."""
    if bench_json is None:
        return {}
    data = json.loads(Path(bench_json).read_text())
    out: dict[float, dict[str, float]] = {}
    for r in data.get("results", []):
        if r["method"] in REFERENCE_METHODS and r.get("noise", "gaussian") == "gaussian":
            out.setdefault(round(float(r["sigma"]), 4), {})[r["method"]] = float(r["psnr"])
    return out


def save_curves(
    sources: Sequence[str], path: str | Path, bench_json: str | Path | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Plot every source's validation PSNR per sigma into ``path`` (PNG); return the curves."""
    plt = pyplot()
    curves = dict(load_curve(s) for s in sources)
    sigmas = sorted(
        {
            float(k.split("@")[1])
            for rows in curves.values()
            for r in rows
            for k in r
            if k.startswith("val_psnr@")
        }
    )
    if not sigmas:
        raise CheckpointError("no per-sigma validation PSNR in these curves")
    refs = reference_lines(bench_json)
    fig, axes = plt.subplots(1, len(sigmas), figsize=(4.2 * len(sigmas), 3.4), squeeze=False)
    for ax, sigma in zip(axes[0], sigmas, strict=True):
        key = f"val_psnr@{sigma:g}"
        for label, rows in curves.items():
            pts = [(r["step"], r[key]) for r in rows if key in r]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", markersize=3, label=label)
        for method, value in refs.get(round(sigma, 4), {}).items():
            ax.axhline(value, linestyle="--", linewidth=1, color="grey")
            ax.annotate(method, (0, value), textcoords="offset points", xytext=(2, 2), fontsize=7)
        ax.set_title(f"sigma {sigma:g}")
        ax.set_xlabel("training steps (cumulative)")
        ax.set_ylabel("validation PSNR dB")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, 110)
    return curves
