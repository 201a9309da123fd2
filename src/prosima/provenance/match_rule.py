"""The rule that lets ``restore`` name an original by fingerprint alone (``matching`` applies it):

- the nearest anchor's similarity must reach ``min_similarity``, and
- it must lead the runner-up (the best anchor with other pixels) by a margin of at least
  ``max(min_margin, margin_scale * (1 - similarity))``: noise moves an image's fingerprint away
  from its original's by about ``1 - similarity``, so a runner-up nearer than that could as well be
  the original. With ``margin_scale`` 1.5 the runner-up must be at least 2.5 times as far from
  the image (in 1 - similarity) as the best.

Light to import: the command line reads its defaults for ``--help``. The defaults were calibrated
with ``prosima bench restore-match`` (README, "restore"): on BraTS slices and chest X-rays they
refused every never-anchored image measured and accepted no wrong original, at the cost of refusing
many right ones whose runner-up is a neighbouring slice 1 mm away.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MIN_SIMILARITY = 0.97
DEFAULT_MIN_MARGIN = 0.0005
DEFAULT_MARGIN_SCALE = 1.5


@dataclass(frozen=True)
class MatchRule:
    """Accept the nearest anchor only with ``min_similarity`` and enough margin over the runner-up."""

    min_similarity: float = DEFAULT_MIN_SIMILARITY
    min_margin: float = DEFAULT_MIN_MARGIN
    margin_scale: float = DEFAULT_MARGIN_SCALE

    def __post_init__(self) -> None:
        if not -1.0 <= self.min_similarity <= 1.0:
            raise ValueError(f"--min-similarity must lie in [-1, 1], got {self.min_similarity}")
        if not 0.0 <= self.min_margin <= 2.0:
            raise ValueError(f"--min-margin must lie in [0, 2], got {self.min_margin}")
        if not 0.0 <= self.margin_scale <= 100.0:
            raise ValueError(f"--margin-scale must lie in [0, 100], got {self.margin_scale}")

    def required_margin(self, similarity: float) -> float:
        """The margin over the runner-up a best candidate of ``similarity`` needs."""
        return max(self.min_margin, self.margin_scale * (1.0 - similarity))

    def accepts(self, similarity: float, margin: float | None) -> bool:
        """Whether a best candidate of ``similarity`` and ``margin`` (None: no runner-up) passes."""
        if similarity < self.min_similarity:
            return False
        return margin is None or margin >= self.required_margin(similarity)

    def options(self) -> str:
        """The rule as the command-line options that set it."""
        return (
            f"--min-similarity {self.min_similarity} --min-margin {self.min_margin} "
            f"--margin-scale {self.margin_scale}"
        )

    def to_json(self) -> dict[str, float]:
        return {
            "min_similarity": self.min_similarity,
            "min_margin": self.min_margin,
            "margin_scale": self.margin_scale,
        }
