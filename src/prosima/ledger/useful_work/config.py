"""The validators' rules for a round: minimum score, tolerances and the commit deadline."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class RoundConfig:
    """The validators' rules. A winner scores at least ``min_score`` (default ``-inf``: only the
    chain model's score bounds it); ``commit_deadline`` is in network ticks (``None``: twice the
    node count); ``validators`` is how many nodes re-run ``decide`` (``None``: all)."""

    min_score: float = -math.inf
    score_tolerance: float = 1e-6
    copy_distance: float = 1e-5
    commit_deadline: int | None = None
    validators: int | None = None

    def __post_init__(self) -> None:
        if math.isnan(self.min_score) or self.min_score == math.inf:
            raise ValueError("min_score must be a number below infinity (-inf: no minimum)")
        if not (self.score_tolerance >= 0 and self.copy_distance >= 0):
            raise ValueError("score_tolerance and copy_distance must be >= 0")
        if self.commit_deadline is not None and self.commit_deadline < 0:
            raise ValueError("commit_deadline must be >= 0")
        if self.validators is not None and self.validators < 1:
            raise ValueError("validators must be >= 1")

    def deadline(self, nodes: int) -> int:
        """The commit deadline for ``nodes`` nodes."""
        return 2 * nodes if self.commit_deadline is None else self.commit_deadline
