"""The tamper heatmap: the image with each GFT shard shaded by how it compares with the record:
red where its pixels differ, the red's strength its semantic distance (1 - cosine) from the
anchored original, and the cosine printed in each shard."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from prosima.imaging.shards import plan_shards


def draw_heatmap(
    ax: object,
    unit: np.ndarray,
    k: int,
    differing: Sequence[int],
    cosines: Sequence[float] | None,
    title: str = "",
) -> None:
    """Draw onto a matplotlib axes ``ax``."""
    from matplotlib.patches import Rectangle

    grid = plan_shards(unit.shape, k, 0)
    ax.imshow(np.clip(unit, 0, 1), cmap="gray", vmin=0, vmax=1)  # type: ignore[attr-defined]
    for shard in grid.shards:
        (r0, r1), (c0, c1) = shard.core
        changed = shard.index in differing
        cos = None if cosines is None else float(cosines[shard.index])
        if changed:
            strength = 0.35 if cos is None else float(np.clip(0.25 + 2.5 * (1.0 - cos), 0.25, 0.7))
            ax.add_patch(  # type: ignore[attr-defined]
                Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0, r1 - r0, facecolor="red", alpha=strength, lw=0)
            )
        ax.add_patch(  # type: ignore[attr-defined]
            Rectangle(
                (c0 - 0.5, r0 - 0.5),
                c1 - c0,
                r1 - r0,
                fill=False,
                ec="yellow" if changed else "white",
                lw=1.2 if changed else 0.3,
                alpha=0.9,
            )
        )
        if cos is not None:
            ax.text(c0 + 3, r0 + 10, f"{cos:.2f}", color="yellow" if changed else "white", fontsize=6)  # type: ignore[attr-defined]
    ax.set_title(title, fontsize=8)  # type: ignore[attr-defined]
    ax.set_axis_off()  # type: ignore[attr-defined]


def save_heatmap(
    path: str | Path,
    unit: np.ndarray,
    k: int,
    differing: Sequence[int],
    cosines: Sequence[float] | None,
    title: str,
) -> Path:
    """Write the heatmap of one image as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4.3), dpi=150)
    draw_heatmap(ax, unit, k, differing, cosines, title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
