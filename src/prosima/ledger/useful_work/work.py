"""The useful work the nodes do, and scoring weights with it without trusting them."""

from __future__ import annotations

import math
from typing import Protocol

from prosima.ledger.errors import EncodingError


class UsefulWork(Protocol):
    """The work the nodes do. ``score`` and ``distance`` must be deterministic functions of their
    arguments; ``score`` and ``distance`` raise ``ValueError`` for bytes that are not weights."""

    def train(self, node: int, round_no: int, weights: bytes, seed: bytes) -> bytes:
        """Node ``node``'s new weights, trained on its own data from ``weights``."""
        ...

    def score(self, weights: bytes, validation_seed: bytes) -> float:
        """How good ``weights`` are on the validation batch drawn from ``validation_seed``
        (higher is better)."""
        ...

    def distance(self, a: bytes, b: bytes) -> float:
        """L2 distance between two weight vectors (``inf`` when they are not comparable)."""
        ...

    def perturb(self, weights: bytes, seed: bytes) -> bytes:
        """``weights`` nudged by far less than any honest training step (the near-copy cheat)."""
        ...


def evaluate(work: UsefulWork, weights: bytes, seed: bytes) -> float | str:
    """The work's score of ``weights`` on the batch of ``seed``, or why it cannot be had."""
    try:
        s = float(work.score(weights, seed))
    except (ValueError, TypeError, EncodingError) as exc:
        return f"the work cannot evaluate the weights: {exc}"
    return s if math.isfinite(s) else f"the work scores the weights {s}"
