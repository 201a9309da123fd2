"""Which committee node signs each image an anchor run commits."""

from __future__ import annotations

from prosima.errors import InputError
from prosima.provenance.anchor import spread_origins

ORIGINS_HELP = "local, spread or a node index"


def anchor_origins(spec: str, nodes: int, count: int, seed: int) -> list[int] | None:
    """The origin node of each of ``count`` images for ``spec``: ``local`` (``None``: the local
    node), ``spread`` (one drawn per image from ``seed``) or one node index for all."""
    if spec == "local":
        return None
    if spec == "spread":
        return spread_origins(nodes, count, seed=seed)
    if spec.isdigit():
        if int(spec) >= nodes:
            raise InputError(f"--origins {spec}: the committee has nodes 0 to {nodes - 1}")
        return [int(spec)] * count
    raise InputError(f"--origins must be {ORIGINS_HELP}, got {spec!r}")
