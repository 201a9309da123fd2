"""Which weights a benchmark scores: a folder of candidates, or the shipped ones."""

from __future__ import annotations

from pathlib import Path

from prosima.models.checkpoint import CheckpointError
from prosima.models.pretrained import verify_pretrained


def find_weights(name: str, weights: str | Path | None) -> Path:
    """Weights of ``name`` in ``weights`` (NAME.pt, NAME/best.pt or NAME/checkpoint.pt), else shipped."""
    if weights is None:
        path, _ = verify_pretrained(name)
        return path
    root = Path(weights)
    for candidate in (root / f"{name}.pt", root / name / "best.pt", root / name / "checkpoint.pt"):
        if candidate.is_file():
            card = root / f"{name}.card.json"
            if candidate.parent == root and card.is_file():
                path, _ = verify_pretrained(name, root)
                return path
            return candidate
    raise CheckpointError(
        f"no weights for {name!r} under {root} (looked for {name}.pt, {name}/best.pt, {name}/checkpoint.pt)"
    )
