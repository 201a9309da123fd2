"""Semantic comparison of fingerprints: per-shard cosine between quantised embeddings, which shards
of an anchored original are background, and the faithfulness rule.

``FAITHFUL_COSINE`` is the per-shard cosine a restoration must reach against its original's anchored
fingerprint in every *judged* shard. Measured by ``prosima bench pipeline`` on BraTS slices: the
smallest shard cosine of 3,000 restorations at sigma 0.05 was 0.916 (median 0.989), of lossy JPEG
copies (quality 90) 1.000 at the median, while a *different* slice (12 slices away, mostly the same
volume) has a median of 0.620 and clears 0.80 in 18% of pairs. So the test catches gross semantic
change, not a plausible neighbouring anatomy: which original an image belongs to is decided by the
ledger record and the exact shard digests, never by this threshold.

Background shards are not judged. A shard of the anchored original is background when its anchored
fingerprint lies within ``BACKGROUND_COSINE`` of the fingerprint of a blank (all-zero) shard of the
same size: the encoder's embedding of a near-empty shard is dominated by faint texture, so a
restoration's residual grain there (or the same noise stored clipped or unclipped) swings its cosine
without any anatomy changing. Measured on the 118 t1n slices of BraTS-GLI-00001-000 (1,888 shards):
every all-zero shard lies at 1.000, shards with up to 1% non-zero pixels at 0.68-1.00 (median 0.95),
1-5% at 0.46-0.82, more than 5% at or below 0.67; so 0.90 skips shards with well under 1% of their
pixels non-zero. The decision is the original's (its fingerprint is hash-checked against the ledger),
never the image under test's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from prosima.models.fingerprint import Fingerprint

FAITHFUL_COSINE = 0.80
BACKGROUND_COSINE = 0.90


def unit_rows(fp: Fingerprint) -> np.ndarray:
    """The fingerprint's shard embeddings scaled to unit length, ``float64 [K, D]``."""
    z = fp.dequantise().astype(np.float64)
    norms = np.linalg.norm(z, axis=1, keepdims=True)
    return z / np.where(norms > 0, norms, 1.0)


def shard_cosines(a: Fingerprint, b: Fingerprint) -> np.ndarray:
    """Cosine of each shard's embedding in ``a`` with the same shard's in ``b``."""
    if a.shape != b.shape or a.k != b.k or a.dim != b.dim:
        raise ValueError(
            f"fingerprints differ in geometry: {a.shape} k={a.k} d={a.dim} and {b.shape} k={b.k} d={b.dim}"
        )
    return np.einsum("kd,kd->k", unit_rows(a), unit_rows(b))


def background_mask(original: Fingerprint, blank: Fingerprint) -> np.ndarray:
    """``bool [K]``: the shards of ``original`` whose fingerprint is that of a blank shard (see the
    module note); ``blank`` is the fingerprint of an all-zero image of the same geometry."""
    return shard_cosines(original, blank) >= BACKGROUND_COSINE


def unfaithful_shards(cosines: np.ndarray, threshold: float = FAITHFUL_COSINE) -> list[int]:
    """Shards whose cosine falls below ``threshold``."""
    return [int(i) for i in np.flatnonzero(np.asarray(cosines) < threshold)]


@dataclass(frozen=True)
class Faithfulness:
    """The faithfulness rule applied to one image: which shards were judged (anatomy in the
    original), which skipped as background, and which judged shards fall below the threshold."""

    judged: list[int]
    background: list[int]
    unfaithful: list[int]
    threshold: float = FAITHFUL_COSINE
    min_judged: float | None = None

    @property
    def rule(self) -> str:
        return (
            f"every shard with anatomy in the anchored original must reach cosine {self.threshold}; "
            f"shards whose anchored fingerprint is within cosine {BACKGROUND_COSINE} of a blank "
            "shard's are background and not judged"
        )

    @property
    def faithful(self) -> bool:
        """Every judged shard clears the threshold, and at least one shard was judged."""
        return bool(self.judged) and not self.unfaithful

    def to_json(self) -> dict[str, object]:
        return {
            "faithful": self.faithful,
            "judged": self.judged,
            "background": self.background,
            "unfaithful": self.unfaithful,
            "threshold": self.threshold,
            "background_cosine": BACKGROUND_COSINE,
            "min_judged_cosine": self.min_judged,
            "rule": self.rule,
        }


def judge(cosines: np.ndarray, background: np.ndarray, threshold: float = FAITHFUL_COSINE) -> Faithfulness:
    """Apply the faithfulness rule to per-shard ``cosines`` given the original's ``background`` mask."""
    cos = np.asarray(cosines, dtype=np.float64)
    bg = np.asarray(background, dtype=bool)
    judged = [int(i) for i in np.flatnonzero(~bg)]
    low = [i for i in judged if cos[i] < threshold]
    return Faithfulness(
        judged=judged,
        background=[int(i) for i in np.flatnonzero(bg)],
        unfaithful=low,
        threshold=threshold,
        min_judged=float(cos[judged].min()) if judged else None,
    )
